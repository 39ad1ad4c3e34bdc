"""A big import writes in short chunks, yet never half-lands: staged records show nowhere until
one short transaction at the end makes them visible, and a failed or killed import is removed."""

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from bench.pubmed_xml import make_file
from review.article import Article, ImportFileError
from review.importing import CHUNK, discard_abandoned_imports, import_articles
from review.models import Event, Record, Search
from screening.status import review_status
from tests.shared import ROOT, shared


def _articles(count, start=0):
    for i in range(start, start + count):
        yield Article(title=f"Kratom and sleep, cohort {i}", authors=[f"Author{i}, A"], year=2020, pmid=str(10_000 + i))


def _file_search(review, user):
    return Search(review=review, kind=Search.Kind.FILE, source="Embase", filename="big.ris", run_by=user)


def test_staged_records_show_nowhere_until_the_import_lands(review, alice):
    seen = {}

    def articles():
        yield from _articles(CHUNK)
        # The first chunk is written; the import is not over.
        seen["visible"] = Record.objects.count()
        seen["review.records"] = review.records.count()
        seen["status"] = review_status(review)["records"]
        seen["searches"] = Search.objects.filter(review=review).count()
        seen["staged"] = Record.all_objects.filter(staged=True).count()
        yield from _articles(10, start=CHUNK)

    result = import_articles(search=_file_search(review, alice), articles=articles(), user=alice)

    assert seen == {"visible": 0, "review.records": 0, "status": 0, "searches": 0, "staged": CHUNK}
    assert result.added == CHUNK + 10
    assert review.records.count() == CHUNK + 10
    assert not Record.all_objects.filter(staged=True).exists()
    assert Search.objects.get(review=review).staged_at is None


@pytest.mark.django_db(transaction=True)
def test_a_parse_error_half_way_removes_what_was_staged(review, alice):
    import_articles(search=_file_search(review, alice), articles=_articles(3), user=alice)
    events = Event.objects.count()

    def articles():
        yield from _articles(CHUNK + 5, start=100)
        raise ImportFileError("big.ris: record 2006: no TY line.")

    with pytest.raises(ImportFileError, match="record 2006"):
        import_articles(search=_file_search(review, alice), articles=articles(), user=alice)

    # The first chunk had been committed (short transactions), and is gone again.
    assert Record.all_objects.count() == 3
    assert Search.all_objects.count() == 1
    assert Event.objects.count() == events


@pytest.mark.django_db(transaction=True)
def test_an_abandoned_import_is_removed_by_the_next_one(review, alice, settings):
    dead = _file_search(review, alice)
    dead.staged_at = dead.run_at
    dead.save()
    Record.all_objects.bulk_create(
        [Record(review=review, search=dead, source="Embase", title=f"left over {i}", staged=True) for i in range(5)]
    )
    settings.SIEVE_IMPORT_STALE_SECONDS = 3600
    assert discard_abandoned_imports(review=review) == 0  # still within the time a live import may take

    settings.SIEVE_IMPORT_STALE_SECONDS = 0
    import_articles(search=_file_search(review, alice), articles=_articles(4), user=alice)

    assert not Search.all_objects.filter(pk=dead.pk).exists()
    assert Record.all_objects.count() == 4


# A real process killed half-way through a real file, on the database the tests run on.

RECORDS = 40_000  # big enough to be still importing after the other writes (a Django shell of its own), parsed in a second process


def _database_url(tmp_path):
    if connection.vendor == "postgresql":
        s = connection.settings_dict
        return f"postgres://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    return f"sqlite:///{tmp_path / 'sieve.sqlite3'}"


class Site:
    """Sieve run as separate processes (manage.py) against one database, as a deployment is."""

    def __init__(self, url, tmp_path):
        self.url, self.tmp_path = url, tmp_path
        self.env = {
            **os.environ,
            "DATABASE_URL": url,
            "SIEVE_IMPORT_STALE_SECONDS": "600",
            "SIEVE_MAX_UPLOAD_MB": "2000",
        }

    def manage(self, *args, **kwargs):
        return subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kwargs,
        )

    def run(self, *args, timeout=300):
        proc = self.manage(*args)
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err
        return out

    def python(self, code):
        return self.run("shell", "-c", code)

    def counts(self):
        return json.loads(
            self.python(
                "import json; from review.models import Record, Search, Event; "
                "big = Record.all_objects.filter(search__filename='big.xml'); "
                "print(json.dumps({'visible': Record.objects.count(), 'all': Record.all_objects.count(), "
                "'staged': Record.all_objects.filter(staged=True).count(), "
                "'searches': Search.objects.count(), 'all_searches': Search.all_objects.count(), "
                "'big': big.count(), 'big_pmids': big.values('pmid').distinct().count(), "
                "'merge_events': Event.objects.filter(kind='merge').count()}))"
            )
            .strip()
            .splitlines()[-1]
        )

    def staged(self):
        sql = "SELECT count(*) FROM review_record WHERE staged"
        if self.url.startswith("sqlite"):
            with sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=20) as db:
                return db.execute(sql).fetchone()[0]
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()[0]


SETUP = f"""
from django.contrib.auth.models import User
from review.importing import import_file
from review.models import Membership, Review, Role
alice = User.objects.create_user("alice", "alice@example.org", "pw")
bob = User.objects.create_user("bob", "bob@example.org", "pw")
review = Review.objects.create(slug="big", title="A big review", created_by=alice)
Membership.objects.create(review=review, user=alice, role=Role.OWNER)
Membership.objects.create(review=review, user=bob, role=Role.REVIEWER)
import_file(review=review, path={str(shared("fixtures", "exports", "embase.ris"))!r}, user=alice)
"""

# Bob screens a record and logs in (last_login is written) while the import runs.
BOB_WRITES = """
import time
from django.contrib.auth.models import User
from django.utils import timezone
from review.models import Record, Stage
from screening.decisions import record_decision
from screening.models import Decision
bob = User.objects.get(username="bob")
started = time.monotonic()
record = Record.objects.filter(review__slug="big").unique().first()
record_decision(record=record, reviewer=bob, stage=Stage.TITLE_ABSTRACT, decision="include")
User.objects.filter(pk=bob.pk).update(last_login=timezone.now())
print(Decision.objects.filter(reviewer=bob).count(), round(time.monotonic() - started, 2))
"""


def _children(pid):
    """pid -> command line of the processes whose parent is ``pid``."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found[int(stat.parent.name)] = (stat.parent / "cmdline").read_text().replace("\0", " ")
        except OSError:
            continue  # ended meanwhile
    return found


def _gone(pid, within=5.0):
    """True once ``pid`` no longer runs: reaped, or a zombie whose parent is not us (it exited)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in "ZX":
            return True
        time.sleep(0.05)
    return False


@pytest.mark.django_db(transaction=True)
def test_an_import_killed_half_way_leaves_nothing_and_runs_again_without_a_double(tmp_path):
    site = Site(_database_url(tmp_path), tmp_path)
    if connection.vendor != "postgresql":
        site.run("migrate", "--no-input")
    site.python(SETUP)
    before = site.counts()
    big = tmp_path / "big.xml"
    make_file(big, RECORDS)

    importing = site.manage("import_records", "big", str(big), "--user", "alice")
    try:
        deadline = time.monotonic() + 240
        while site.staged() < CHUNK:
            assert importing.poll() is None, importing.communicate()[1]
            assert time.monotonic() < deadline, "the import wrote nothing in 4 minutes"
            time.sleep(0.1)
        # The file is big: a second process parses it (review.importers.process), beside
        # multiprocessing's resource tracker, which every process that spawns one has.
        children = _children(importing.pid)
        assert sorted("spawn_main" in command for command in children.values()) == [False, True], children
        # Another reviewer writes while the import is in progress: no "database is locked".
        votes, seconds = site.python(BOB_WRITES).strip().splitlines()[-1].split()
        assert votes == "1"
        assert importing.poll() is None, "the import ended before the other writes were tried: make the file bigger"
        staged = site.staged()
    finally:
        importing.kill()  # SIGKILL: no clean-up code of the import runs
        importing.communicate()
    # The parser process notices its importer is gone (its pipe closed) and ends at once; so does the tracker.
    for pid, command in children.items():
        assert _gone(pid), f"{command} outlived its killed importer"

    after_kill = site.counts()
    assert staged >= CHUNK and after_kill["staged"] >= staged
    assert after_kill["visible"] == before["visible"]
    assert after_kill["searches"] == before["searches"]
    assert after_kill["merge_events"] == before["merge_events"]

    # Run again: the next import into the review removes what the killed one staged.
    site.env["SIEVE_IMPORT_STALE_SECONDS"] = "0"
    out = site.run("import_records", "big", str(big), "--user", "alice")
    assert f"{RECORDS} added" in out

    final = site.counts()
    assert final["big"] == final["big_pmids"] == RECORDS
    assert final["visible"] == final["all"] == before["visible"] + RECORDS
    assert final["staged"] == 0
    assert final["searches"] == final["all_searches"] == before["searches"] + 1
    print(f"killed after {staged} staged records; bob's writes took {seconds} s during the import")


def test_an_import_freezes_the_objects_it_found_and_unfreezes_them_after(review, alice):
    """The collector's full collections skip what existed before the import (gc.freeze), and the
    freeze is undone at the end, whether the import succeeds or fails."""
    import gc

    seen = []

    def articles():
        yield from _articles(3)
        seen.append(gc.get_freeze_count())

    assert gc.get_freeze_count() == 0
    import_articles(search=_file_search(review, alice), articles=articles(), user=alice)
    assert seen[0] > 1000  # Django's modules, the test's objects
    assert gc.get_freeze_count() == 0

    def failing():
        yield from _articles(2, start=50)
        raise ImportFileError("big.ris: record 3: no TY line.")

    with pytest.raises(ImportFileError):
        import_articles(search=_file_search(review, alice), articles=failing(), user=alice)
    assert gc.get_freeze_count() == 0


def test_an_import_leaves_a_freeze_made_before_it_alone(review, alice):
    import gc

    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        import_articles(search=_file_search(review, alice), articles=_articles(3), user=alice)
        # Not unfrozen (frozen objects freed meanwhile leave the count, a few dozen).
        assert gc.get_freeze_count() > frozen * 0.9
    finally:
        gc.unfreeze()
