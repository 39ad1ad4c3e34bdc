"""Time a bulk upload of full-text PDFs (review.fulltexts.bulk_attach): a zip of N small PDFs named
by PMID, DOI or nothing known, matched against a review of R records and attached.

    .venv/bin/python bench/fulltext_bulk.py --records 20000 --files 500

Prints the time of matching alone (names against the review's records) and of the whole upload
(matching, reading each PDF from the zip, storing it and its audit event), and the queries the
upload ran. Uses a throw-away database (SQLite in a temporary directory unless DATABASE_URL is
set) and a temporary storage folder.
"""

import argparse
import io
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PDF = b"%PDF-1.4\n" + b"%" + b"x" * 50_000 + b"\n%%EOF\n"  # ~50 KB


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--files", type=int, default=500)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="sieve-fulltext-bench-")
    os.environ.setdefault("SIEVE_DATA_DIR", data_dir)
    os.environ.setdefault("SIEVE_FULLTEXT_DIR", str(Path(data_dir) / "fulltexts"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sieve.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run(args.records, args.files)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}  ({settings.DATABASES['default']['ENGINE']})")


def run(size, files):
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from review import fulltexts
    from review.models import Membership, Record, Review, Role, Search

    alice = get_user_model().objects.create_user("alice", "alice@example.org", "x")
    review = Review.objects.create(slug="bulk", title="Bulk")
    Membership.objects.create(review=review, user=alice, role=Role.OWNER)
    search = Search.objects.create(review=review, kind="file", source="bench")
    Record.objects.bulk_create(
        (
            Record(
                review=review, search=search, source="bench", title=f"R{i}", pmid=str(10_000_000 + i), doi=f"10.1/{i}"
            )
            for i in range(size)
        ),
        batch_size=5000,
    )
    names = []
    for i in range(files):
        kind = i % 3
        names.append(f"{10_000_000 + i}.pdf" if kind == 0 else f"10.1_{i}.pdf" if kind == 1 else f"unknown {i}.pdf")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        for name in names:
            z.writestr(name, PDF)
    t0 = time.perf_counter()
    fulltexts.match_files(review, [(name, None) for name in names])
    matching = time.perf_counter() - t0
    upload = SimpleUploadedFile("all.zip", archive.getvalue(), "application/zip")
    with CaptureQueriesContext(connection) as queries:
        t0 = time.perf_counter()
        matches = fulltexts.bulk_attach(review, [upload], user=alice)
        whole = time.perf_counter() - t0
    attached = sum(1 for m in matches if m.record)
    print(
        f"{size:,} records, {files:,} files ({len(PDF) // 1024} KB each): matching {matching:.2f} s; "
        f"upload {whole:.2f} s ({attached:,} attached, {files - attached:,} refused, {len(queries):,} queries)"
    )


if __name__ == "__main__":
    main()
