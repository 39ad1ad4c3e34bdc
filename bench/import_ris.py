"""How fast a big RIS file imports, and how much memory it takes.

Run from the project root:

    .venv/bin/python bench/import_ris.py [--records 50000] [--seed 1]

It writes a throw-away RIS file of --records records in a temporary folder, made from the real
RIS exports in ../shared/fixtures/exports (EndNote, Embase, Scopus, Web of Science, ProQuest,
Ovid, Citavi, Rayyan): each record is a fixture record with its title words shuffled, a year
drawn between 1990 and 2024 and a DOI of its own; one in ten is an exact copy of an earlier
record (half of those without their DOI, so that title + year + first author must find them).
It then imports the file twice with review.importing.import_file into a fresh SQLite database
(the second time every record is a duplicate of the first import) and prints records per second
and memory: the peak resident set size of the process, and the peak of Python allocations
during the import as tracemalloc counts them (tracemalloc slows Python down, so its run is a
separate, third import).
"""

import argparse
import os
import random
import re
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SOURCES = [
    "baseline_endnote.ris",
    "embase.ris",
    "scopus.ris",
    "web_of_science.txt",
    "proquest.ris",
    "ovid_psycinfo.ris",
    "pubmed_endnote.txt",
    "ris_issue_1099.txt",
    "ris_issue_992.txt",
]
_TITLE = re.compile(r"^(TI|T1)  - (.*)$")


def fixture_records():
    from tests.shared import shared

    records = []
    for name in SOURCES:
        text = shared("fixtures", "exports", name).read_text(encoding="utf-8-sig")
        for block in text.split("\nER  -"):
            lines = block.strip("\n").splitlines()
            start = next((i for i, line in enumerate(lines) if line.startswith("TY  -")), None)
            if start is not None and any(_TITLE.match(line) for line in lines):
                records.append(lines[start:])
    return records


def write_file(path, n, seed):
    rng = random.Random(seed)
    bases = fixture_records()
    written = []  # (title line, year) of records written, for the exact copies
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            if written and rng.random() < 0.1:
                lines = list(rng.choice(written))
                if rng.random() < 0.5:
                    lines = [line for line in lines if not line.startswith("DO  -")]
            else:
                lines = []
                for line in rng.choice(bases):
                    match = _TITLE.match(line)
                    if match:
                        words = match.group(2).split()
                        rng.shuffle(words)
                        line = f"{match.group(1)}  - {' '.join(words)}"
                    elif line.startswith(("PY  -", "Y1  -", "DA  -", "DO  -", "ID  -", "AN  -", "C2  -", "C5  -")):
                        continue  # replaced below, or ids (PMIDs among them) that belong to the original
                    lines.append(line)
                lines.insert(1, f"PY  - {rng.randint(1990, 2024)}")
                lines.insert(2, f"DO  - 10.5555/bench.{seed}.{i}")
                lines.insert(3, f"ID  - bench-{i}")
                if len(written) < 20000:
                    written.append(lines)
            out.write("\n".join(lines) + "\nER  - \n\n")


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(review, path, label):
    from review.importing import import_file

    start = time.perf_counter()
    result = import_file(review=review, path=path)
    seconds = time.perf_counter() - start
    print(
        f"{label}: {result.added} records in {seconds:.1f} s = {result.added / seconds:,.0f} records/s; "
        f"{result.duplicates} duplicates ({dict(result.reasons)}); peak RSS so far {peak_rss_mib():.0f} MiB"
    )
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the third, traced import")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="sieve-bench-")
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp.name}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sieve.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from review.models import Review

    call_command("migrate", verbosity=0)
    path = Path(tmp.name, "big.ris")
    write_file(path, args.records, args.seed)
    print(
        f"{path.name}: {args.records:,} records, {path.stat().st_size / 2**20:.1f} MiB "
        f"(python {sys.version.split()[0]}, SQLite, {os.cpu_count()} CPUs)"
    )
    print(f"peak RSS before importing: {peak_rss_mib():.0f} MiB")

    review = Review.objects.create(slug="bench", title="Import benchmark")
    run(review, path, "first import (empty review)")
    run(review, path, "second import (all duplicates)")
    if not args.no_tracemalloc:
        other = Review.objects.create(slug="bench-traced", title="Import benchmark, traced")
        tracemalloc.start()
        run(other, path, "traced import (empty review)")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"peak Python allocations during the traced import: {peak / 2**20:.1f} MiB")
    print(f"reproduce: .venv/bin/python bench/import_ris.py --records {args.records} --seed {args.seed}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
