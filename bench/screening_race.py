"""Six reviewers dual-screening at once against gunicorn + PostgreSQL: speed and lost/doubled votes.

Run from the project root (PostgreSQL on 127.0.0.1 with trust auth):

    .venv/bin/python bench/screening_race.py [--database postgres://127.0.0.1:5432/sieve_bench_race]
        [--records 360] [--race-records 40] [--reviewers 6] [--workers 3] [--seconds 180]

It creates a throw-away database (refusing any host but 127.0.0.1, and dropping it at the end
unless --keep), migrates it, makes one review screened by two reviewers per record, starts
gunicorn with --workers on 127.0.0.1, and then, with one plain thread per reviewer:

1. screens every record the way the page does (GET the next card, POST the vote), one POST in
   ten sent twice at the same instant (a double click);
2. races: on each of --race-records records that already have one vote, three reviewers POST
   their vote at the same instant (only one of the three may be accepted).

Every request is bounded (30 s) and the whole run by --seconds. It prints requests/s, latency
percentiles, and the counts that must all be 0: over-voted records, records with all their votes
but a wrong or missing outcome, 5xx answers, and acknowledged (302) votes not stored.
"""

import argparse
import os
import random
import re
import secrets
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from functools import partial
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TA = "title_abstract"
CSRF = "BenchScreeningRace" + "x" * 14  # 32 alphanumerics: a valid CSRF secret
DECIDE = re.compile(rf"/screen/{TA}/(\d+)/decide/")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the 302 after a vote is the acknowledgement


OPENER = urllib.request.build_opener(NoRedirect)


class Client:
    """One reviewer's session; records every answer's status and latency."""

    def __init__(self, base, session, log):
        self.base, self.session, self.log = base, session, log

    def _open(self, request):
        started = time.perf_counter()
        try:
            with OPENER.open(request, timeout=30) as response:
                status, body = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read().decode()
        except OSError as error:  # refused, reset or timed out: counted apart from HTTP answers
            status, body = None, repr(error)
        self.log.append((status, time.perf_counter() - started))
        return status, body

    def next_card(self):
        request = urllib.request.Request(f"{self.base}/", headers={"Cookie": f"sessionid={self.session}"})
        return self._open(request)

    def vote(self, pk, decision):
        url = f"{self.base}/{pk}/decide/"
        body = urlencode({"decision": decision, "csrfmiddlewaretoken": CSRF}).encode()
        headers = {
            "Cookie": f"sessionid={self.session}; csrftoken={CSRF}",
            "Referer": url,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return self._open(urllib.request.Request(url, data=body, headers=headers))


def at_once(calls):
    """Run the callables at the same instant (one thread each); their results in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        barrier.wait(timeout=30)
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def setup_database(url, keep):
    import psycopg

    parts = urlsplit(url)
    if parts.hostname != "127.0.0.1":
        sys.exit(f"Refusing {url}: the benchmark only runs against PostgreSQL on 127.0.0.1.")
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        if keep:
            return
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')

    return drop


def populate(n_records, n_race, n_reviewers):
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.test import Client as DjangoClient

    from review.models import Membership, Record, Review, Role, Search

    call_command("migrate", verbosity=0)
    User = get_user_model()
    owner = User.objects.create_user("alice", password="x")
    review = Review.objects.create(slug="bench", title="Race benchmark", created_by=owner, title_abstract_reviewers=2)
    Membership.objects.create(review=review, user=owner, role=Role.OWNER)
    reviewers = []
    for i in range(n_reviewers):
        user = User.objects.create_user(f"reviewer{i}", password="x")
        Membership.objects.create(review=review, user=user, role=Role.REVIEWER)
        reviewers.append(user)
    # The races run on a second review, so that the hand-out of the first never gives them away.
    racing = Review.objects.create(slug="bench-race", title="Race", created_by=owner, title_abstract_reviewers=2)
    for user in [owner, *reviewers]:
        Membership.objects.create(review=racing, user=user, role=Role.OWNER if user == owner else Role.REVIEWER)
    for r, n in ((review, n_records), (racing, n_race)):
        search = Search.objects.create(review=r, kind="file", source="Embase", filename="bench.ris")
        Record.objects.bulk_create(
            Record(review=r, search=search, source="Embase", title=f"Kratom and trauma, cohort {i}") for i in range(n)
        )
    sessions = {}
    for user in reviewers:
        client = DjangoClient()
        client.force_login(user)
        sessions[user.username] = client.cookies["sessionid"].value
    assert SessionStore().exists(next(iter(sessions.values())))
    return review, racing, reviewers, sessions


def start_gunicorn(port, workers, env):
    command = [
        str(ROOT / ".venv/bin/gunicorn"),
        "sieve.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2)
            return server, command
        except urllib.error.HTTPError:
            return server, command
        except OSError:
            time.sleep(0.2)
    server.terminate()
    sys.exit("gunicorn did not answer within 20 s")


def screen(client, name, deadline, acknowledged, rng):
    """GET the next card and vote on it until nothing is left (or time is up)."""
    idle = 0
    while time.monotonic() < deadline:
        status, body = client.next_card()
        found = DECIDE.search(body) if status == 200 else None
        if not found:
            if status == 200 and "Nothing free right now" in body and idle < 20:
                idle += 1
                time.sleep(0.2)
                continue
            return
        idle = 0
        pk = int(found.group(1))
        decision = rng.choice(["include", "exclude", "maybe"])
        if rng.random() < 0.1:
            answers = at_once([partial(client.vote, pk, decision)] * 2)
        else:
            answers = [client.vote(pk, decision)]
        for status, _ in answers:
            if status == 302:
                acknowledged.append((pk, name, decision))


def race(clients, record_ids, deadline, acknowledged, refused, rng):
    """Three reviewers at once on records that need one more vote."""
    names = list(clients)
    for pk in record_ids:
        if time.monotonic() >= deadline:
            return
        trio = rng.sample(names[1:], 3)
        decisions = [rng.choice(["include", "exclude", "maybe"]) for _ in trio]
        answers = at_once([partial(clients[n].vote, pk, d) for n, d in zip(trio, decisions)])
        for name, decision, (status, body) in zip(trio, decisions, answers):
            if status == 302:
                acknowledged.append((pk, name, decision))
            elif status == 400 and "already has all the votes it needs" in body:
                refused.append(pk)


def audit(review, acknowledged):
    from review.models import Record
    from screening.decisions import outcome_of
    from screening.models import Decision

    review.refresh_from_db()
    needed = review.reviewers_needed(TA)
    votes = {}
    for pk, name, decision, reason in (
        Decision.objects.filter(record__review=review, stage=TA, is_current=True)
        .order_by("created_at", "pk")
        .values_list("record_id", "reviewer__username", "decision", "reason")
    ):
        votes.setdefault(pk, {})[name] = (decision, reason)
    outcomes = dict(Record.objects.filter(review=review).values_list("pk", "ta_outcome"))
    over = sum(1 for v in votes.values() if len(v) > needed)
    wrong = 0
    for pk, v in votes.items():
        if len(v) >= needed:
            expected, _ = outcome_of(
                list(v.values()), needed=needed, maybe_counts_as_include=review.maybe_counts_as_include
            )
            wrong += outcomes[pk] != expected
    missing = sum(1 for pk, name, decision in set(acknowledged) if votes.get(pk, {}).get(name, ("",))[0] != decision)
    full = sum(1 for v in votes.values() if len(v) >= needed)
    return {"over": over, "wrong": wrong, "missing": missing, "full": full, "records": len(outcomes)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="postgres://127.0.0.1:5432/sieve_bench_race")
    parser.add_argument("--records", type=int, default=360)
    parser.add_argument("--race-records", type=int, default=40)
    parser.add_argument("--reviewers", type=int, default=6)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    if not (1 <= args.records <= 5000 and 0 <= args.race_records <= 1000 and 4 <= args.reviewers <= 20):
        sys.exit("Keep it bounded: --records 1..5000, --race-records 0..1000, --reviewers 4..20.")

    drop = setup_database(args.database, args.keep)
    env = {
        **os.environ,
        "DATABASE_URL": args.database,
        "SECRET_KEY": secrets.token_urlsafe(40),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SETTINGS_MODULE": "sieve.settings",
    }
    os.environ.update(env)
    import django

    django.setup()
    server = None
    try:
        review, racing, reviewers, sessions = populate(args.records, args.race_records, args.reviewers)
        from review.models import Record
        from screening.decisions import record_decision

        race_ids = list(Record.objects.filter(review=racing).order_by("pk").values_list("pk", flat=True))
        # Race records: one vote in (by the first reviewer), so each needs exactly one more.
        for record in Record.objects.filter(pk__in=race_ids):
            record_decision(record=record, reviewer=reviewers[0], stage=TA, decision="exclude")
        server, command = start_gunicorn(args.port, args.workers, env)
        base = f"http://127.0.0.1:{args.port}/r/{review.slug}/screen/{TA}"
        log, acknowledged, refused = [], [], []
        clients = {name: Client(base, session, log) for name, session in sessions.items()}
        racers = {
            name: Client(f"http://127.0.0.1:{args.port}/r/{racing.slug}/screen/{TA}", session, log)
            for name, session in sessions.items()
        }
        deadline = time.monotonic() + args.seconds
        started = time.perf_counter()
        threads = [
            threading.Thread(target=screen, args=(c, n, deadline, acknowledged, random.Random(args.seed + i)))
            for i, (n, c) in enumerate(clients.items())
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        race_acknowledged = []
        race(racers, race_ids, deadline, race_acknowledged, refused, random.Random(args.seed))
        elapsed = time.perf_counter() - started
        timed_out = time.monotonic() >= deadline
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)

    figures = {
        key: a + b
        for (key, a), b in zip(audit(review, acknowledged).items(), audit(racing, race_acknowledged).values())
    }
    drop()
    statuses = Counter(status for status, _ in log)
    latencies = sorted(seconds * 1000 for _, seconds in log)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    print(f"command: {' '.join(sys.argv)}")
    print(f"server:  {' '.join(command)} (PostgreSQL {args.database})")
    print(
        f"{len(log)} requests in {elapsed:.1f} s: {len(log) / elapsed:.1f} requests/s"
        + (" (TIMED OUT)" if timed_out else "")
    )
    print(f"latency ms: p50 {q[49]:.0f}  p90 {q[89]:.0f}  p99 {q[98]:.0f}  max {latencies[-1]:.0f}")
    print(f"answers: {dict(sorted(statuses.items(), key=lambda kv: str(kv[0])))}")
    print(f"records with all their votes: {figures['full']} of {figures['records']}")
    print(f"racing votes: {3 * len(race_ids)} sent, {len(race_ids)} wanted, {len(refused)} refused as full")
    print(f"over-voted records:                           {figures['over']}")
    print(f"records with all votes, wrong/missing outcome: {figures['wrong']}")
    print(f"5xx answers:                                  {sum(n for s, n in statuses.items() if s and s >= 500)}")
    print(f"acknowledged votes not stored:                {figures['missing']}")
    print(f"connection errors/time-outs:                  {statuses.get(None, 0)}")


if __name__ == "__main__":
    main()
