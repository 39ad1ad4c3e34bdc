"""A request rate shared by every process that uses the database: one row holds the next free slot.

review.pubmed spaces its requests to NCBI through the limiter named by the NCBI_RATE_LIMITER
setting; its own RateLimiter counts within one process only, while gunicorn's web processes and
the task workers, on one machine or several, all search PubMed. DatabaseRateLimiter takes each
request's slot in one short transaction on the row (SELECT ... FOR UPDATE on PostgreSQL, BEGIN
IMMEDIATE on SQLite) and sleeps until it outside the transaction. Times come from the database's
clock, so machines whose clocks disagree still space their requests right.

Take slots outside any transaction of your own (review.importing.run_search fetches before it
opens one): inside it, the row would stay locked until that transaction ends.
"""

import time

from django.db import connection, transaction

from review.models import RateLimitSlot

NCBI = "ncbi-eutils"


class DatabaseRateLimiter:
    """At most ``rate`` requests a second to one service across every process sharing the database."""

    def __init__(self, key=NCBI):
        self.key = key

    def wait(self, rate):
        delay = take_slot(self.key, 1.0 / rate)
        if delay > 0:
            time.sleep(delay)


def take_slot(key, interval):
    """Reserve the next free slot of ``key`` (``interval`` seconds after the one before it, and
    not in the past); the seconds until it comes."""
    with transaction.atomic():
        slot = _locked(key)
        now = database_clock()
        start = max(now, slot.next_at)
        slot.next_at = start + interval
        slot.save(update_fields=["next_at"])
    return start - now


def _locked(key):
    slot = RateLimitSlot.objects.select_for_update().filter(key=key).first()
    if slot is None:
        # The first request ever (or after a flush); two processes may both get here.
        RateLimitSlot.objects.bulk_create([RateLimitSlot(key=key)], ignore_conflicts=True)
        slot = RateLimitSlot.objects.select_for_update().get(key=key)
    return slot


CLOCK_SQL = {
    # clock_timestamp(), not now(): the time after the row lock was granted, not when the transaction began.
    "postgresql": "SELECT EXTRACT(EPOCH FROM clock_timestamp())",
    "sqlite": "SELECT (julianday('now') - 2440587.5) * 86400.0",
}


def database_clock():
    """Seconds since the epoch on the database server's clock (this machine's for SQLite)."""
    sql = CLOCK_SQL.get(connection.vendor)
    if sql is None:
        return time.time()
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return float(cursor.fetchone()[0])
