"""Load: 20 reviewers screening at once against gunicorn + PostgreSQL, dual screening, 100,000 records.

Run from the project root (PostgreSQL on 127.0.0.1; gunicorn from the venv):

    DATABASE_URL=postgres://127.0.0.1:5432/sieve_speed .venv/bin/python bench/load.py [--reviewers 20] [--seconds 120] [--workers 4]
    ... bench/load.py --reuse     # keep the review bench/web_speed.py (or an earlier run) built

It builds the review of bench/web_speed.py (``build_review``: 100,000 records, dual screening,
ranked) unless --reuse, starts gunicorn with several workers on 127.0.0.1, and runs one thread
per reviewer (plain urllib, own cookies): log in, open the screening page, then decide on the card
shown and take the next card from the htmx answer, for --seconds. It prints throughput and latency
percentiles, then checks the database:

- lost votes: a POST answered 2xx without exactly one new Decision row by that reviewer on that record;
- doubled votes: a reviewer with two votes (rows) on one record from this run, or a record with more
  current votes than the review needs;
- stranded claims: a claim left on a record its holder has voted on, or more than two claims per reviewer (the card on screen and the prefetched next one).
"""

import argparse
import http.cookiejar
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import web_speed  # noqa: E402

LOGIN = "/accounts/login/"
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
DECIDE = re.compile(r'hx-post="(/[^"]+/(\d+)/decide/)"')


class Reviewer(threading.Thread):
    def __init__(self, base, username, password, slug, until):
        super().__init__(daemon=True)
        self.base, self.username, self.password, self.slug, self.until = base, username, password, slug, until
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.latencies, self.decided, self.errors = [], [], []

    def request(self, path, data=None, headers=None):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base + path, data=body, headers=headers or {})
        request.add_header("Referer", self.base + path)
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def log_in(self):
        _, page = self.request(LOGIN)
        token = CSRF.search(page).group(1)
        data = {"csrfmiddlewaretoken": token, "username": self.username, "password": self.password}
        status, _ = self.request(LOGIN, data)
        assert status == 200, (self.username, status)

    def run(self):
        try:
            self.log_in()
            screen = f"/r/{self.slug}/screen/title_abstract/"
            _, page = self.request(screen)
            i = 0
            while time.monotonic() < self.until:
                found, token = DECIDE.search(page), CSRF.search(page)
                if not found:
                    time.sleep(0.5)  # nothing free right now: try again
                    _, page = self.request(screen)
                    continue
                url, pk = found.group(1), int(found.group(2))
                decision = "include" if i % 10 == 0 else "exclude"
                data = {"csrfmiddlewaretoken": token.group(1), "decision": decision}
                start = time.perf_counter()
                status, page = self.request(url, data, {"HX-Request": "true", "X-CSRFToken": token.group(1)})
                self.latencies.append((time.perf_counter() - start) * 1000)
                if 200 <= status < 300:
                    self.decided.append(pk)
                else:
                    self.errors.append((status, pk))
                    if status != 400:  # 400: the record was full; the answer carries the next card
                        _, page = self.request(screen)
                i += 1
        except Exception as error:  # a thread that dies is a failed run, reported below
            self.errors.append(("exception", repr(error)))


def start_gunicorn(database_url, port, workers):
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        SECRET_KEY=os.environ.get("SECRET_KEY", "load-bench-secret-key-" + "x" * 40),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SIEVE_LOG_LEVEL="ERROR",
    )
    command = [str(ROOT / ".venv" / "bin" / "gunicorn"), "sieve.wsgi", "-b", f"127.0.0.1:{port}"]
    command += ["-w", str(workers), "--timeout", "120", "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    for _ in range(60):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=20)
            return process
        except OSError:  # refused while starting, or a worker still importing Django
            time.sleep(0.5)
    os.killpg(process.pid, signal.SIGTERM)
    raise SystemExit("gunicorn did not answer")


def check(review, users, started_at, decided):
    """(lost, doubled, over-voted records, stranded claims) from the database after the run."""
    from django.db.models import Count

    from screening.models import Claim, Decision

    made = Decision.objects.filter(record__review=review, stage="title_abstract", created_at__gte=started_at)
    rows = {}
    for reviewer, record in made.values_list("reviewer__username", "record_id"):
        rows[(reviewer, record)] = rows.get((reviewer, record), 0) + 1
    lost = sum(1 for key in decided if rows.get(key, 0) == 0)
    doubled = sum(1 for n in rows.values() if n > 1)
    over = (
        Decision.objects.filter(record__review=review, stage="title_abstract", is_current=True)
        .values("record")
        .annotate(n=Count("pk"))
        .filter(n__gt=review.reviewers_needed("title_abstract"))
        .count()
    )
    claims = Claim.objects.filter(record__review=review, reviewer__username__in=users)
    stranded = sum(
        1
        for reviewer_id, record_id in claims.values_list("reviewer_id", "record_id")
        if Decision.objects.filter(record_id=record_id, reviewer_id=reviewer_id, is_current=True).exists()
    )
    # A reviewer holds at most the card on screen and the prefetched next one (queue.HOLD).
    from screening.queue import HOLD

    per_reviewer = claims.values("reviewer").annotate(n=Count("pk")).values_list("n", flat=True)
    stranded += sum(max(0, n - HOLD) for n in per_reviewer)
    return lost, doubled, over, stranded


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--reviewers", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgres://127.0.0.1:5432/sieve_speed")
    )
    args = parser.parse_args()
    web_speed.setup(args.database_url)
    from django.core.management import call_command
    from django.utils import timezone

    from review.models import Record, Review

    call_command("migrate", verbosity=0)
    review = Review.objects.filter(slug=web_speed.SLUG).first() if args.reuse else None
    if review is None or review.memberships.count() < args.reviewers + 1:
        review = web_speed.build_review(args.records, reviewers=max(args.reviewers, web_speed.REVIEWERS))
    users = [f"reviewer{i:02d}" for i in range(args.reviewers)]
    print(f"{Record.objects.filter(review=review).count():,} records, {args.reviewers} reviewers, dual screening")
    server = start_gunicorn(args.database_url, args.port, args.workers)
    try:
        started_at = timezone.now()
        until = time.monotonic() + args.seconds
        threads = [Reviewer(f"http://127.0.0.1:{args.port}", u, web_speed.PASSWORD, review.slug, until) for u in users]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    latencies = sorted(ms for t in threads for ms in t.latencies)
    decided = [(t.username, pk) for t in threads for pk in t.decided]
    errors = [e for t in threads for e in t.errors]
    figures = web_speed.percentiles(latencies) if latencies else {"p50": 0, "p95": 0, "max": 0, "n": 0}
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else 0
    print(
        f"{len(decided)} decisions in {args.seconds} s: {len(decided) / args.seconds:.1f}/s; decide -> next card "
        f"p50 {figures['p50']:.0f} ms, p95 {figures['p95']:.0f} ms, p99 {p99:.0f} ms, max {figures['max']:.0f} ms; "
        f"mean {statistics.mean(latencies) if latencies else 0:.0f} ms"
    )
    print(f"non-2xx answers: {len(errors)} {errors[:5]}")
    lost, doubled, over, stranded = check(review, users, started_at, decided)
    print(f"lost votes {lost}, doubled votes {doubled}, records over-voted {over}, stranded claims {stranded}")
    print(
        f"Reproduce: DATABASE_URL={args.database_url} .venv/bin/python bench/load.py --reviewers {args.reviewers} "
        f"--seconds {args.seconds} --workers {args.workers}"
    )


if __name__ == "__main__":
    main()
