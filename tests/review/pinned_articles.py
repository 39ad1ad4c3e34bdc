"""The Articles every import fixture gives, pinned (issue 9: the RIS reader was made cheaper).

Run from the project root to write the pins from the current code (do this only when a change of
output is intended, and say why in the commit):

    .venv/bin/python tests/review/pinned_articles.py

``tests/review/test_pinned_articles.py`` compares the importers' output with them: every
fixture in ../shared/fixtures/exports and ../shared/fixtures/medline and tests/review/files (all
formats, since the RIS reader shares ``fields`` and ``identifiers`` with the others), plus a
digest of a generated 3,000-record RIS file (``bench/import_ris.py``'s generator).
"""

import dataclasses
import hashlib
import json
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from review.importers import fields, identifiers  # noqa: E402

PINS = Path(__file__).resolve().parent / "pinned" / "articles.json"
GENERATED_RECORDS = 3000
_FORMATS = (".ris", ".txt", ".csv", ".tsv", ".bib", ".xml", ".nbib")


def fixture_paths():
    from tests.shared import shared

    folders = [shared("fixtures", "exports"), shared("fixtures", "medline"), ROOT / "tests" / "review" / "files"]
    return [p for folder in folders for p in sorted(folder.iterdir()) if p.suffix in _FORMATS]


def read(path):
    """(articles as dicts, warnings) or the import error's message."""
    from review.article import ImportFileError
    from review.importers import read_articles, sniff

    warnings = []
    try:
        with open(path, "rb") as stream:
            sniffed = sniff(stream, path.name)
            articles = [dataclasses.asdict(a) for a in read_articles(stream, sniffed, path.name, warn=warnings.append)]
    except ImportFileError as exc:
        return {"error": str(exc)}
    return {"articles": articles, "warnings": warnings}


def generated_digest(records=GENERATED_RECORDS):
    """sha256 of the Articles of a generated RIS file (one JSON line each), and their count."""
    sys.path.insert(0, str(ROOT))
    from bench.import_ris import write_file

    with tempfile.TemporaryDirectory(prefix="sieve-pin-") as folder:
        path = Path(folder, "generated.ris")
        write_file(path, records, seed=1)
        result = read(path)
    digest = hashlib.sha256()
    for article in result["articles"]:
        digest.update(json.dumps(article, sort_keys=True).encode() + b"\n")
    return {"records": len(result["articles"]), "sha256": digest.hexdigest(), "warnings": result["warnings"]}


# The shared helpers, each called on every line of every text fixture (the tag cut off where the
# line has one): what they answer for each, as one digest per helper and file.
HELPERS = {
    "pmids": lambda v: sorted(identifiers.pmids(v)),
    "pmcids": lambda v: sorted(identifiers.pmcids(v)),
    "dois": lambda v: sorted(identifiers.dois(v)),
    "first_unambiguous": lambda v: identifiers.find(v, v.split()),
    "find_doi": lambda v: fields.find_doi(v),
    "clean_doi": lambda v: fields.clean_doi(v),
    "parse_year": lambda v: fields.parse_year(v),
    "person": lambda v: fields.person(v),
    "split_people": lambda v: fields.split_people(v),
    "split_terms": lambda v: fields.split_terms(v),
    "pages": lambda v: fields.pages(*(v.split("-", 1) + [""])[:2]),
}
_TAGGED = re.compile(r"^(?:[A-Z][A-Z0-9]{1,3} *-? ?|\s+)")


def helper_digests():
    """{helper: {file: sha256 of its answers, one JSON line per fixture line}}."""
    digests = {name: {} for name in HELPERS}
    for path in fixture_paths():
        if path.suffix == ".xml":
            continue
        values = [_TAGGED.sub("", line, count=1) for line in path.read_text("utf-8-sig", "replace").splitlines()]
        for name, helper in HELPERS.items():
            digest = hashlib.sha256()
            for value in values:
                digest.update(json.dumps(helper(value)).encode() + b"\n")
            digests[name][f"{path.parent.name}/{path.name}"] = digest.hexdigest()
    return digests


def _sha(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:20]


def pinned(result):
    """What is kept of ``read``'s answer: digests only (the fixtures are third-party exports whose
    text must not be copied into the project), one per article so that a failure names it."""
    if "error" in result:
        return {"error": _sha(result["error"])}
    return {
        "articles": [_sha(article) for article in result["articles"]],
        "locations": [article.get("location", "") for article in result["articles"]],
        "warnings": [_sha(warning) for warning in result["warnings"]],
    }


def current():
    return {
        "fixtures": {f"{p.parent.name}/{p.name}": pinned(read(p)) for p in fixture_paths()},
        "generated_ris": generated_digest(),
        "helpers": helper_digests(),
    }


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    PINS.parent.mkdir(exist_ok=True)
    PINS.write_text(json.dumps(current(), indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {PINS}")
