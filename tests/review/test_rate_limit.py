"""NCBI's rate limit holds across processes: the shared limiter of review/ratelimit.py.

The proof runs several real processes, each a PubMed client of its own (as gunicorn's web
processes and the task workers are), released at the same instant against the stand-in
E-utilities server, which notes when each request arrives: no second ever holds more than NCBI's
rate. It runs on the test's database engine: SQLite (a file the processes share) and, in the
PostgreSQL pass of `make test`, PostgreSQL.
"""

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from review import pubmed
from review.models import RateLimitSlot
from review.ratelimit import DatabaseRateLimiter, database_clock, take_slot
from tests import eutils_server as stand_in
from tests.concurrent import database_url

eutils_server = stand_in.eutils_server  # the fixture, where pytest looks for it
ROOT = Path(__file__).resolve().parent.parent.parent

CLIENT = """
import sys

import django

django.setup()
from django.test import override_settings

from review import pubmed

print("ready", flush=True)
sys.stdin.readline()
with override_settings(NCBI_BATCH_SIZE=1):
    found = pubmed.search("biopython", max_records=int(sys.argv[1]))
    print(sum(len(batch) for batch in found.batches()), flush=True)
"""


class CountingLimiter:
    """Stands in for a shared limiter: notes each rate it is asked to keep."""

    rates = []

    def wait(self, rate):
        self.rates.append(rate)


def test_pubmed_asks_the_limiter_the_setting_names_before_every_request(eutils_server, settings):
    settings.NCBI_RATE_LIMITER = "tests.review.test_rate_limit.CountingLimiter"
    settings.NCBI_API_KEY = "alices-key"
    settings.NCBI_BATCH_SIZE = 2
    CountingLimiter.rates.clear()

    found = pubmed.search("biopython", max_records=4)
    list(found.batches())

    sent = eutils_server.requests("esearch") + eutils_server.requests("efetch")
    assert len(sent) == 3
    # Just under NCBI's 10 a second with a key, for every request sent.
    assert CountingLimiter.rates == [10 * pubmed.RATE_HEADROOM] * 3


def test_the_production_settings_share_the_limit_through_the_database():
    from django.conf import settings

    assert settings.NCBI_RATE_LIMITER == "review.ratelimit.DatabaseRateLimiter"


def test_slots_follow_each_other_one_interval_apart(db):
    before = database_clock()
    waits = [take_slot("ncbi-eutils", 0.25) for _ in range(3)]
    after = database_clock()

    # The first goes at once; each next one waits a further interval (less the time the calls took).
    assert waits[0] <= 0.0 + 1e-3
    assert 0.25 - (after - before) <= waits[1] <= 0.25
    assert 0.5 - (after - before) <= waits[2] <= 0.5
    assert RateLimitSlot.objects.get(key="ncbi-eutils").next_at >= before + 0.75


def test_the_limiter_sleeps_until_its_slot(db):
    limiter = DatabaseRateLimiter(key="test")
    started = time.monotonic()
    for _ in range(4):
        limiter.wait(20)
    # Four requests at 20 a second: the fourth goes three intervals after the first.
    assert time.monotonic() - started >= 3 / 20 - 0.01


# --- several processes ----------------------------------------------------------------------------


@pytest.fixture
def shared_database_url(transactional_db, tmp_path):
    """A database URL the client processes share, holding the limiter's table."""
    if connection.vendor == "postgresql":
        return database_url()  # the test database itself
    # SQLite's test database lives in memory: give the processes a file with the table.
    with connection.schema_editor(collect_sql=True) as editor:
        editor.create_model(RateLimitSlot)
    path = tmp_path / "shared.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as shared:
        shared.executescript("\n".join(editor.collected_sql))
    return f"sqlite:///{path}"


def _clients(count, records, url, server, api_key):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NCBI_", "SIEVE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="sieve.settings",
        DATABASE_URL=url,
        NCBI_EUTILS_URL=server.url,
        NCBI_EMAIL="alice@example.org",
        NCBI_API_KEY=api_key,
    )
    clients = [
        subprocess.Popen(
            [sys.executable, "-c", CLIENT, str(records)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        for client in clients:
            assert client.stdout.readline().strip() == "ready", client.stderr.read()
        for client in clients:  # all at once
            client.stdin.write("go\n")
            client.stdin.flush()
        return [client.communicate(timeout=120) for client in clients], [c.returncode for c in clients]
    finally:
        for client in clients:
            if client.poll() is None:
                client.kill()
                client.wait()


def busiest_second(times):
    """The most requests that arrived within any one second."""
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))


@pytest.mark.parametrize(
    "api_key, rate, processes, records",
    [("alices-key", 10, 4, 8), ("", 3, 2, 3)],
    ids=["10 a second with a key", "3 a second without"],
)
def test_the_rate_holds_across_processes(eutils_server, shared_database_url, api_key, rate, processes, records):
    outputs, codes = _clients(processes, records, shared_database_url, eutils_server, api_key)

    assert codes == [0] * processes, [err for _, err in outputs]
    assert [int(out.strip()) for out, _ in outputs] == [records] * processes
    arrivals = [s.at for s in eutils_server.seen]
    # One esearch and one efetch per record, from each process.
    assert len(arrivals) == processes * (1 + records)
    assert busiest_second(arrivals) <= rate
    # Not vacuous: the processes did press on the limit together.
    assert busiest_second(arrivals) >= rate - 1


def test_busiest_second_counts_a_window_from_each_arrival():
    assert busiest_second([0.0, 0.5, 0.99, 1.0, 1.2]) == 4  # 0.5 to 1.2
    assert busiest_second([0.0, 1.0, 2.0]) == 1
