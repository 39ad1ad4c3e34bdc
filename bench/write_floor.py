"""The write floor: what any importer pays the database for a big file, beside the bare parse of it.

Builds the file bench/ingest.py builds (PubMed XML or RIS, N records, default 100,000), times the
bare parse of it (stdlib ``iterparse`` / rispy, as ingest.py), then reads it once more, untimed,
into the very rows the importer writes (``review.importing._record_row`` and ``_values``), and
times, into ``review_record`` with every index the product has (those of the migrations, the
PostgreSQL word index on title and abstract included), each in a fresh review:

- the floor: the rows written landed (``staged`` false) by the fastest correct means, in one
  transaction: one COPY on PostgreSQL, one ``executemany`` on SQLite;
- the importer's way: the rows written staged by ``review.importing._write`` (COPY on PostgreSQL,
  multi-row INSERTs on SQLite) in transactions of ``CHUNK`` rows, then the landing UPDATE that
  makes them visible (timed apart).

Each is printed in wall seconds, the client's CPU seconds and, on PostgreSQL, the server
backend's CPU seconds (read from /proc: the server must run on this machine), with the ratio
(bare parse + floor) / bare parse: the least ratio an importer can reach on that database if its
parse cost nothing beyond the bare read. Run from the project root, on SQLite (a throw-away file)
or on a fresh PostgreSQL database (the bench migrates it and adds its own reviews):

    .venv/bin/python bench/write_floor.py [--records 100000] [--format xml ris] [--database-url URL]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import backend_pid, bare_read, make_ris, make_xml, server_cpu  # noqa: E402 (after the path is set)


class Clock:
    """Wall, client CPU and PostgreSQL backend CPU seconds of what runs inside ``with``."""

    def __init__(self, backend_pid=None):
        self.backend_pid = backend_pid

    def _server(self):
        return server_cpu(self.backend_pid)

    def __enter__(self):
        self.started, self.cpu, self.server0 = time.perf_counter(), time.process_time(), self._server()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.started
        self.cpu = time.process_time() - self.cpu
        self.server = self._server() - self.server0

    def __str__(self):
        server = f", {self.server:.1f} s server CPU" if self.backend_pid is not None else ""
        return f"{self.wall:.1f} s ({self.cpu:.1f} s CPU{server})"


def precomputed_rows(path, search):
    """The rows (and their values) the importer writes for the file at ``path``, dedup left out:
    every record as a new one."""
    from review.importers import read_articles, sniff
    from review.importing import _blank_row, _record_fields, _record_row

    blank = _blank_row()
    with open(path, "rb") as stream:
        articles = read_articles(stream, sniff(stream, path.name), path.name, lambda warning: None)
        rows = [_record_row(article, search, blank) for article in articles]
    fields = _record_fields()
    return rows, fields


def floor(rows, fields, clock):
    """Every row landed, in one transaction, by the fastest correct means of the database."""
    from django.db import connection, transaction

    from review.importing import _copy, _values
    from review.models import Record

    for row in rows:
        row["staged"] = False
    values = _values(rows, fields)
    with clock, transaction.atomic():
        if connection.vendor == "postgresql":
            _copy(rows, values, fields)
        else:
            quote = connection.ops.quote_name
            columns = ", ".join(quote(f.column) for f in fields)
            marks = ", ".join(["%s"] * len(fields))
            with connection.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {quote(Record._meta.db_table)} ({columns}) VALUES ({marks})", values)
    return clock


def importers_way(rows, fields, search, write_clock, land_clock):
    """Staged chunks as review.importing writes them, then the landing UPDATE."""
    from django.db import transaction

    from review.importing import CHUNK, _values, _write
    from review.models import Record

    for row in rows:
        row["staged"] = True
    chunks = [(rows[i : i + CHUNK], _values(rows[i : i + CHUNK], fields)) for i in range(0, len(rows), CHUNK)]
    with write_clock:
        for chunk, values in chunks:
            with transaction.atomic():
                _write(chunk, values, fields)
    with land_clock, transaction.atomic():
        Record.all_objects.filter(search=search, staged=True).update(staged=False)
    return write_clock, land_clock


def run(fmt, path, records):
    from django.db import connection

    from review.models import Review, Search

    with Clock() as bare:
        count = bare_read(fmt, path)
    assert count == records, count
    backend = backend_pid()
    results = {}
    for way in ("floor", "importer"):
        review = Review.objects.create(slug=f"floor-{fmt}-{way}-{time.time_ns()}", title="Write floor")
        search = Search.objects.create(review=review, kind=Search.Kind.FILE, source="Bench", filename=path.name)
        rows, fields = precomputed_rows(path, search)
        if way == "floor":
            results[way] = (floor(rows, fields, Clock(backend)),)
        else:
            results[way] = importers_way(rows, fields, search, Clock(backend), Clock(backend))
        del rows
    (written,) = results["floor"]
    staged, landed = results["importer"]
    baseline = "bare stdlib iterparse" if fmt == "xml" else "bare rispy parse"
    means = "one COPY" if connection.vendor == "postgresql" else "one executemany"
    print(f"{fmt.upper()} ({path.stat().st_size / 1e6:,.0f} MB, {count:,} records): {baseline} {bare}")
    print(
        f"  floor, {means} of landed rows: {written}; (bare + floor) / bare = "
        f"{(bare.wall + written.wall) / bare.wall:.2f}x wall, {_cpu_ratio(bare, written):.2f}x CPU"
    )
    print(
        f"  the importer's way, staged chunks {staged} + landing UPDATE {landed}; (bare + both) / bare = "
        f"{(bare.wall + staged.wall + landed.wall) / bare.wall:.2f}x wall, "
        f"{_cpu_ratio(bare, staged, landed):.2f}x CPU"
    )


def _cpu_ratio(bare, *writes):
    """(bare + writes) / bare in CPU seconds, the server's included: on a shared box the wall
    time measures the neighbours."""
    return (bare.cpu + sum(clock.cpu + clock.server for clock in writes)) / bare.cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--format", nargs="+", choices=["xml", "ris"], default=["xml", "ris"])
    parser.add_argument("--database-url", help="default: a throw-away SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sieve-floor-") as folder:
        os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{folder}/floor.sqlite3"
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sieve.settings")
        os.environ["SIEVE_MAX_UPLOAD_MB"] = "100000"
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        print(f"{args.records:,} records per file, {connection.vendor}, python {sys.version.split()[0]}")
        for fmt in args.format:
            path = Path(folder, f"big.{fmt}")
            (make_xml if fmt == "xml" else make_ris)(path, args.records)
            run(fmt, path, args.records)
            path.unlink()
    print(f"load: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")
    command = f".venv/bin/python bench/write_floor.py --records {args.records} --format {' '.join(args.format)}"
    print("command: " + command + (" --database-url URL" if args.database_url else ""))


if __name__ == "__main__":
    main()
