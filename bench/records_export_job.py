"""How long the records table's Download keeps a request when the set is big (it only queues a
job), and how long the worker then takes to write the file, with its progress writes.

Run from the project root:

    .venv/bin/python bench/records_export_job.py [--records 20000] [--format xlsx]

It builds the throw-away SQLite review of bench/records_table.py, then as bob (a blinded reviewer):
the Download of every record with decisions (the request: seconds and queries until the job's page
is the answer), the worker's run of that job (screening.tasks.export_records_file: seconds, the
progress UPDATEs it wrote, megabytes), and for comparison the Download of a set at the inline limit
(SIEVE_RECORDS_EXPORT_INLINE), streamed within the request.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--format", default="xlsx", choices=("ris", "csv", "xlsx"))
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="sieve-bench-")
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp.name}/bench.sqlite3"
    os.environ["SIEVE_DATA_DIR"] = tmp.name
    os.makedirs(f"{tmp.name}/static")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sieve.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from django.urls import reverse

    from bench.records_table import populate
    from review import exportfiles
    from review.models import Job
    from screening import tasks

    setup_test_environment()  # the test client's host
    call_command("migrate", verbosity=0)
    review, bob = populate(args.records)
    client = Client()
    client.force_login(bob)
    url = reverse("screening:records_export", args=[review.slug, args.format]) + "?decisions=1"

    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        response = client.get(url)
        seconds = time.perf_counter() - start
    job = Job.objects.get(kind=Job.Kind.RECORDS_EXPORT)
    print(f"Download of {args.records:,} records as {args.format.upper()} + decisions: the request")
    print(f"  answered {response.status_code} -> {response.url} in {seconds:.3f} s, {len(queries)} queries")

    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        tasks.export_records_file.call(job_id=job.pk)
        seconds = time.perf_counter() - start
    job.refresh_from_db()
    writes = sum(1 for q in queries.captured_queries if q["sql"].startswith('UPDATE "review_job"'))
    size = (exportfiles.export_dir() / job.result["file"]).stat().st_size if job.result.get("file") else 0
    print(f"  the worker: {job.status} in {seconds:.2f} s, {job.done:,} of {job.total:,} records,")
    print(f"  {writes} job-row UPDATEs (start, progress, finish), {size / 1e6:.1f} MB")

    # Before: the same Download streamed within the request (the limit raised above the set).
    settings.SIEVE_RECORDS_EXPORT_INLINE = args.records + 1
    start = time.perf_counter()
    response = client.get(url)
    pieces = iter(response.streaming_content)
    first = next(pieces)
    to_first = time.perf_counter() - start
    written = len(first) + sum(len(piece) for piece in pieces)
    seconds = time.perf_counter() - start
    print(f"The same Download streamed in the request (as before): first byte after {to_first:.2f} s,")
    print(f"  whole after {seconds:.2f} s, {written / 1e6:.1f} MB")
    print(f"Reproduce: .venv/bin/python bench/records_export_job.py --records {args.records} --format {args.format}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
