"""Memory and time of a big PubMed search: the client's batches, kept or let go, and run_search.

Run from the project root:

    .venv/bin/python bench/pubmed_search.py [--records 9999] [--batch 500]

It serves --records records from the stand-in E-utilities server of the tests (the real
PubmedArticles of ../shared/fixtures/entrez, repeated with PMIDs of their own) on 127.0.0.1, at
10 requests a second (as with an API key), and measures the peak of Python allocations
(tracemalloc) while:
1. the client's batches are read and let go (how review.importing.run_search reads them);
2. every Article is kept in a list (what review.pubmed.search() did before it streamed);
3. run_search stores the search in a fresh SQLite database: the records are spooled to a
   temporary file while they arrive and written after the last batch, so the write transaction
   (on SQLite, the lock every other writer waits on) lasts only the writing; both times printed.
The stand-in runs in the same process, so its answers (one batch at a time) count in every peak.
"""

import argparse
import os
import re
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PMID = re.compile(rb'(<PMID Version="\d+">)\d+(</PMID>)')


def serve(records):
    from tests.eutils_server import EutilsServer, Record

    server = EutilsServer().start()
    bases = server.records
    server.terms["bench"] = [
        Record(
            pmid=str(80000000 + i),
            dates=bases[i % len(bases)].dates,
            xml=PMID.sub(rb"\g<1>%d\g<2>" % (80000000 + i), bases[i % len(bases)].xml, count=1),
        )
        for i in range(records)
    ]
    return server


def traced(label, work):
    tracemalloc.start()
    start = time.perf_counter()
    outcome = work()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{label}: {seconds:.1f} s, peak Python allocations {peak / 2**20:.1f} MiB")
    return outcome


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=9_999)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="sieve-bench-")
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp.name}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sieve.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from review import pubmed
    from review.importing import run_search
    from review.models import Review

    call_command("migrate", verbosity=0)
    server = serve(min(args.records, pubmed.MAX_PER_QUERY))  # no date splitting: one query
    settings.NCBI_EUTILS_URL = server.url
    settings.NCBI_EMAIL = "bench@example.org"
    settings.NCBI_API_KEY = "bench"
    settings.NCBI_BATCH_SIZE = args.batch
    records = len(server.terms["bench"])
    print(f"{records:,} records in batches of {args.batch} (python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")

    def streamed():
        count = 0
        for batch in pubmed.search("bench").batches():
            count += len(batch)
        return count

    def kept():
        return [article for batch in pubmed.search("bench").batches() for article in batch]

    assert traced("1. batches read and let go", streamed) == records
    assert len(traced("2. every Article kept in a list", kept)) == records

    review = Review.objects.create(slug="bench", title="PubMed search benchmark")
    fetched_at = []
    start = time.perf_counter()
    result = traced(
        "3. run_search into SQLite",
        lambda: run_search(review=review, query="bench", progress=lambda *_: fetched_at.append(time.perf_counter())),
    )
    writing = time.perf_counter() - fetched_at[-1]
    print(
        f"   fetching {fetched_at[-1] - start:.1f} s, then writing (the only time in a transaction) "
        f"{writing:.1f} s; {result.added:,} records added"
    )
    server.stop()
    print(f"reproduce: .venv/bin/python bench/pubmed_search.py --records {args.records} --batch {args.batch}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
