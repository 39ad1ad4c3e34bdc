"""Ingestion speed: importing a big file (with deduplication) against a bare read of the same file.

Builds a PubMed XML file of N records (default 100,000) from the real PubmedArticles of
../shared/fixtures (new PMIDs, title words shuffled, one in ten an exact copy of an earlier
record) and a RIS file of N records (bench/import_ris.py's generator, from the real RIS
exports), then, each in a fresh process so each peak RSS is its own:

- the bare read: ``xml.etree.ElementTree.iterparse`` over the XML, clearing each article (the
  floor any importer pays), and for RIS rispy's own parser over the lines;
- the import: ``review.importing.import_file`` into a fresh review of a migrated database:
  parsing, deduplication, staged chunked writes, landing.

It prints both times, the ratio (target: at most 2x) and the import's peak RSS (target: under
500 MB). Run from the project root, on SQLite (a throw-away file) or on PostgreSQL (an existing,
migrated or empty database; the bench migrates it and adds its own reviews):

    .venv/bin/python bench/ingest.py [--records 100000] [--format xml ris] [--database-url URL]
"""

import argparse
import json
import logging
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ARTICLE = re.compile(rb"<PubmedArticle>.*?</PubmedArticle>", re.DOTALL)
PMID = re.compile(rb'(<MedlineCitation[^>]*>\s*<PMID Version="\d+">)\d+(</PMID>)')
TITLE = re.compile(rb"(<ArticleTitle>)(.*?)(</ArticleTitle>)", re.DOTALL)
IDS = re.compile(rb'((?:IdType|EIdType)="doi"[^>]*>)([^<]+)(<)')
# The cited works: PubmedData ends with them (the DTD puts ReferenceList last), so one greedy match
# takes them all, nested lists included.
REFERENCES = re.compile(rb"<ReferenceList>.*</ReferenceList>\s*", re.DOTALL)


def make_xml(path, records, seed=1):
    from tests.shared import shared

    rng = random.Random(seed)
    sources = sorted(shared("fixtures", "entrez").glob("pubmed*.xml")) + [shared("fixtures", "exports", "pubmed.xml")]
    # Without their reference lists: the fixtures' records cite 60 works on average, which made
    # 100,000 records 1.2 GB; the records of a search export are mostly much shorter.
    articles = [REFERENCES.sub(b"", a) for p in sources for a in ARTICLE.findall(p.read_bytes())]
    head = sources[0].read_bytes().split(b"<PubmedArticleSet>")[0]
    copies = []
    with open(path, "wb") as out:
        out.write(head + b"<PubmedArticleSet>\n")
        for i in range(records):
            if copies and rng.random() < 0.1:
                article = rng.choice(copies)  # the same PMID again: a duplicate to link
            else:
                article = PMID.sub(rb"\g<1>%d\g<2>" % (80000000 + i), rng.choice(articles), count=1)
                article = TITLE.sub(lambda m: m[1] + _shuffled(m[2], rng) + m[3], article, count=1)
                # Its own DOI: the fixture's would make every copy a duplicate.
                article = IDS.sub(rb"\g<1>\g<2>.b%d\g<3>" % i, article)
                if len(copies) < 20000:
                    copies.append(article)
            out.write(article + b"\n")
        out.write(b"</PubmedArticleSet>\n")


def _shuffled(title, rng):
    if b"<" in title:
        return title  # inline markup (<i>...</i>) stays whole
    words = title.split()
    rng.shuffle(words)
    return b" ".join(words)


def make_ris(path, records, seed=1):
    from bench.import_ris import write_file

    write_file(path, records, seed)


def bare_read(fmt, path, library="stdlib"):
    if fmt == "xml" and library == "lxml":
        # What the importer's own parser (lxml, record events only) pays before reading any field.
        from lxml import etree

        count = 0
        for _, elem in etree.iterparse(path, tag="PubmedArticle", resolve_entities=False, no_network=True):
            count += 1
            elem.clear(keep_tail=True)
            while elem.getprevious() is not None:
                del elem.getparent()[0]
        return count
    if fmt == "xml":
        from xml.etree.ElementTree import iterparse

        count = 0
        for _, elem in iterparse(path):
            if elem.tag == "PubmedArticle":
                count += 1
                elem.clear()
        return count
    import rispy

    with open(path, encoding="utf-8") as stream:
        return sum(1 for _ in rispy.RisParser().parse_lines(stream))


def imported(path, slug):
    import django

    django.setup()
    from django.core.management import call_command

    from review.importing import import_file
    from review.models import Review

    call_command("migrate", verbosity=0)
    review = Review.objects.create(slug=slug, title="Ingestion benchmark")
    backend = backend_pid()
    server = server_cpu(backend)
    started, cpu = time.perf_counter(), time.process_time()  # the import alone, not Django's start-up
    children, parser = _children_cpu(), _ParserFigures()
    logging.getLogger("review.importers.process").addHandler(parser)
    logging.getLogger("review.importers.process").setLevel(logging.INFO)
    result = import_file(review=review, path=path)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    # The parser process's CPU counts too (review.importers.process), or the ratio would flatter it.
    return (
        result.added,
        result.duplicates,
        seconds,
        cpu,
        _children_cpu() - children,
        parser.peak_mb,
        server_cpu(backend) - server,
        (parser.parser_waited, parser.importer_waited),
    )


class _ParserFigures(logging.Handler):
    """The parser process's own peak RSS, which it reports at the end of the file (its ru_maxrss,
    in RUSAGE_CHILDREN, would count the parent's pages it shared between fork and exec)."""

    peak_mb = parser_waited = importer_waited = 0.0

    def emit(self, record):
        if hasattr(record, "parser"):
            self.peak_mb = record.parser["peak_mb"]
            # Which side was the bound: each waited this long (wall) for the other.
            self.parser_waited = record.parser["waited"]
            self.importer_waited = record.parser["importer_waited"]


def _children_cpu():
    """CPU seconds of this process's finished (and reaped) children: the import's parser process."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def backend_pid():
    """The PostgreSQL server process of this connection (None on SQLite, which runs in ours)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def server_cpu(pid):
    """CPU seconds the server process ``pid`` has used (0 without one): its utime and stime from
    /proc, so the server must run on this machine. On a shared box the wall time measures the
    neighbours; this measures what the import asked of the server."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime, fields 14 and 15 of stat(5), counted from the third, the one after the name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child(task, fmt, path, slug):
    parser_cpu = parser_peak = 0.0
    waits = (0.0, 0.0)
    if task.startswith("bare"):
        started, cpu = time.perf_counter(), time.process_time()
        count, duplicates = bare_read(fmt, path, "lxml" if task == "bare-lxml" else "stdlib"), 0
        seconds, cpu, server = time.perf_counter() - started, time.process_time() - cpu, 0.0
    else:
        count, duplicates, seconds, cpu, parser_cpu, parser_peak, server, waits = imported(path, slug)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu + parser_cpu,
                "parser_cpu": parser_cpu,
                "server": server,
                "records": count,
                "duplicates": duplicates,
                # Both peaks added up: an upper bound of the two processes' memory at any one time.
                "peak_mb": peak + parser_peak,
                "parser_peak_mb": parser_peak,
                "parser_waited": waits[0],
                "importer_waited": waits[1],
            }
        )
    )


def run_child(task, fmt, path, url, slug="", parse_process=None):
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "sieve.settings",
        "SIEVE_MAX_UPLOAD_MB": "100000",
    }
    if parse_process is not None:
        env["SIEVE_IMPORT_PARSE_PROCESS_BYTES"] = parse_process
    args = [sys.executable, __file__, "--child", task, "--format", fmt, "--path", str(path), "--slug", slug]
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{task} {fmt} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _times(run):
    # CPU time too: on a shared box the wall time measures the neighbours as much as the code.
    server = f", {run['server']:.1f} s server CPU" if run.get("server") else ""
    if run.get("parser_cpu"):
        return f"{run['seconds']:.1f} s ({run['cpu']:.1f} s CPU, of which the parser process {run['parser_cpu']:.1f} s{server})"
    return f"{run['seconds']:.1f} s ({run['cpu']:.1f} s CPU{server})"


def _with_server(done, bare):
    # On PostgreSQL the server works for the import in a process of its own: its CPU counts too.
    if not done.get("server"):
        return ""
    return f", {(done['cpu'] + done['server']) / bare['cpu']:.2f}x CPU with the server's"


def _peak(run):
    if run.get("parser_peak_mb"):
        return f"{run['peak_mb']:.0f} MB (importer {run['peak_mb'] - run['parser_peak_mb']:.0f} + parser process {run['parser_peak_mb']:.0f})"
    return f"{run['peak_mb']:.0f} MB"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--format", nargs="+", choices=["xml", "ris"], default=["xml", "ris"])
    parser.add_argument("--database-url", help="default: a throw-away SQLite file")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="parse in the importing process (SIEVE_IMPORT_PARSE_PROCESS_BYTES=off), for comparison",
    )
    parser.add_argument("--child", choices=["bare", "bare-lxml", "import"], help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--slug", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.format[0], args.path, args.slug)

    with tempfile.TemporaryDirectory(prefix="sieve-ingest-") as folder:
        url = args.database_url or f"sqlite:///{folder}/bench.sqlite3"
        database = "PostgreSQL" if url.startswith("postgres") else "SQLite"
        print(f"{args.records:,} records per file, {database}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
        for fmt in args.format:
            path = Path(folder, f"big.{fmt}")
            (make_xml if fmt == "xml" else make_ris)(path, args.records)
            bare = run_child("bare", fmt, path, url)
            slug = f"ingest-{fmt}-{int(time.time())}"
            done = run_child("import", fmt, path, url, slug, "off" if args.in_process else None)
            assert bare["records"] == args.records == done["records"], (bare, done)
            baseline = "bare stdlib iterparse" if fmt == "xml" else "bare rispy parse"
            print(
                f"{fmt.upper()} ({path.stat().st_size / 1e6:,.0f} MB): {baseline} {_times(bare)}; "
                f"import with dedup {_times(done)} ({done['duplicates']:,} duplicates linked); "
                f"ratio {done['seconds'] / bare['seconds']:.2f}x wall, {done['cpu'] / bare['cpu']:.2f}x CPU "
                f"(target <= 2x){_with_server(done, bare)}; import peak RSS {_peak(done)} (target < 500 MB)"
            )
            if done["parser_cpu"]:
                print(
                    f"  {fmt.upper()} pipeline: importing process {done['cpu'] - done['parser_cpu']:.1f} s CPU, "
                    f"parser process {done['parser_cpu']:.1f} s CPU; the parser waited {done['parser_waited']:.1f} s "
                    f"for the importer (queue full), the importer {done['importer_waited']:.1f} s for the parser"
                )
            if fmt == "xml":
                # For honesty: the floor of the parser the importer uses, on the same file.
                floor = run_child("bare-lxml", fmt, path, url)
                print(
                    f"XML: bare lxml iterparse {_times(floor)}; import / lxml ratio "
                    f"{done['seconds'] / floor['seconds']:.2f}x wall, {done['cpu'] / floor['cpu']:.2f}x CPU"
                )
            path.unlink()
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1, 5, 15 min)")
    reproduce = f".venv/bin/python bench/ingest.py --records {args.records} --format {' '.join(args.format)}"
    if args.database_url:
        reproduce += " --database-url URL"
    if args.in_process:
        reproduce += " --in-process"
    print(f"command: {reproduce}")


if __name__ == "__main__":
    main()
