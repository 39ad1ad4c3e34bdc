"""Time and peak memory of reading PubMed XML: review.importers.pubmed_xml vs Bio.Entrez.read.

Writes a file of N records (default 10,000: the PubmedArticles of ../shared/fixtures repeated
with new PMIDs) to a temporary folder, then reads it in a fresh process per parser, so each
peak resident memory (ru_maxrss) is that parser's own. Run from the project root:

    .venv/bin/python bench/pubmed_xml.py [--records 10000] [--repeat 3]
"""

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.shared import shared  # noqa: E402 (after the path is set)

ARTICLE = re.compile(rb"<PubmedArticle>.*?</PubmedArticle>", re.DOTALL)
PMID = re.compile(rb'(<MedlineCitation[^>]*>\s*<PMID Version="\d+">)\d+(</PMID>)')


def make_file(path, records):
    sources = sorted(shared("fixtures", "entrez").glob("pubmed*.xml")) + [shared("fixtures", "exports", "pubmed.xml")]
    articles = [a for p in sources for a in ARTICLE.findall(p.read_bytes())]
    head = sources[0].read_bytes().split(b"<PubmedArticleSet>")[0]
    with open(path, "wb") as out:
        out.write(head + b"<PubmedArticleSet>\n")
        for i in range(records):
            out.write(PMID.sub(rb"\g<1>%d\g<2>" % (80000000 + i), articles[i % len(articles)], count=1) + b"\n")
        out.write(b"</PubmedArticleSet>\n")
    return len(articles)


def measure(parser, path):
    """Run in a child process: read the file, print seconds, records and peak RSS as JSON."""
    import django

    django.setup()  # review.importers' package imports the models
    from Bio import Entrez

    from review.importers.pubmed_xml import parse

    before = _rss_kb()
    started = time.perf_counter()
    with open(path, "rb") as stream:
        if parser == "iterparse":
            count = sum(1 for _ in parse(stream))
        else:
            count = len(Entrez.read(stream)["PubmedArticle"])
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps({"seconds": seconds, "records": count, "peak_mb": peak / 1024, "extra_mb": (peak - before) / 1024})
    )


def _rss_kb():
    # The resident size now (Linux), not the peak so far: Django's start-up may have peaked higher.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run(parser, path):
    env_setup = "import os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'sieve.settings'); "
    code = f"{env_setup}import sys; sys.path.insert(0, {str(ROOT)!r}); from bench.pubmed_xml import measure; "
    code += f"measure({parser!r}, {str(path)!r})"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per parser; the best time is reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "pubmed.xml")
        distinct = make_file(path, args.records)
        size = path.stat().st_size / 1e6
        print(f"{args.records:,} records ({distinct} distinct fixture articles repeated), {size:.1f} MB of XML")
        print(f"{'parser':<34} {'seconds':>8} {'peak RSS MB':>12} {'growth MB':>10}")
        for name, label in (("iterparse", "review.importers.pubmed_xml"), ("entrez", "Bio.Entrez.read")):
            runs = [run(name, path) for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r["seconds"])
            assert best["records"] == args.records, best
            print(f"{label:<34} {best['seconds']:>8.2f} {best['peak_mb']:>12.0f} {best['extra_mb']:>10.1f}")
    print(f"command: .venv/bin/python bench/pubmed_xml.py --records {args.records} --repeat {args.repeat}")


if __name__ == "__main__":
    main()
