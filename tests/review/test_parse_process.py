"""A big file is parsed in a second process (review.importers.process) while the importing one
deduplicates and writes: the same records, links, warnings, progress and errors as in-process, and
no process outlives its import, whichever of the two is killed."""

import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from bench.ingest import make_ris, make_xml
from review.article import ImportFileError
from review.importers import read_articles, sniff
from review.importers.process import ParsedInProcess, ParserStopped
from review.importing import CHUNK, import_file
from review.models import Event, Record, Review, Search
from sieve.settings import _parse_process_bytes
from tests.shared import shared

FIXTURES = [
    ("exports", "pubmed.xml"),
    ("entrez", "pubmed1.xml"),
    ("medline", "pubmed_result1.txt"),
    ("exports", "scopus.ris"),
    ("exports", "faulty_year.ris"),  # a warning
    ("exports", "generic_bad_record_id.csv"),  # the warning _checked gives at the end
    ("exports", "web_of_science.txt"),
    ("exports", "pubmed_endnote.txt"),
]
SIZE = CHUNK + 1200  # more than one chunk, with duplicates across chunks


def _in_process(path):
    warnings = []
    with open(path, "rb") as stream:
        articles = list(read_articles(stream, sniff(stream, path.name), path.name, warnings.append))
    return articles, warnings


def _through_process(path):
    warnings = []
    with open(path, "rb") as stream:
        sniffed = sniff(stream, path.name)
    with ParsedInProcess(path, sniffed, path.name, warnings.append, batch=7, ahead=2) as articles:
        return list(articles), warnings


@pytest.mark.parametrize("parts", FIXTURES, ids=lambda parts: parts[-1])
def test_the_parser_process_reads_the_articles_and_warnings_read_articles_reads(parts):
    path = shared("fixtures", *parts)
    articles, warnings = _in_process(path)
    assert articles  # the comparison below compares something
    assert _through_process(path) == (articles, warnings)


def test_the_warnings_of_a_real_fixture_come_back(settings):
    assert _through_process(shared("fixtures", "exports", "faulty_year.ris"))[1] == [
        "faulty_year.ris: record 1 (line 1): '10 15' is not a year; the year is left empty."
    ]


# --- Through import_file, into the database ------------------------------------------------------


@pytest.fixture(scope="module")
def big_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big")
    xml, ris = folder / "big.xml", folder / "big.ris"
    make_xml(xml, SIZE)
    make_ris(ris, SIZE)
    return {"xml": xml, "ris": ris}


def _imported(review, path, settings, threshold):
    settings.SIEVE_IMPORT_PARSE_PROCESS_BYTES = threshold
    progress = []
    result = import_file(review=review, path=path, progress=progress.append)
    records = list(
        Record.objects.filter(search=result.search)
        .order_by("pk")
        .values_list(
            "pk", "title", "abstract", "authors", "year", "doi", "pmid", "journal", "source_key", "duplicate_of"
        )
    )
    position = {row[0]: i for i, row in enumerate(records)}
    # The links by position in the file, so the two imports' pks compare.
    shaped = [(*row[1:-1], position.get(row[-1], row[-1])) for row in records]
    search = Search.objects.get(pk=result.search.pk)
    return {
        "records": shaped,
        "summary": result.summary().split(": ", 1)[1],
        "warnings": result.warnings,
        "progress": progress,
        "search": (search.file_format, search.source, search.platform, search.added, search.duplicates),
        "merges": Event.objects.filter(review=review, kind=Event.Kind.MERGE).count(),
    }


def _fresh_review(slug):
    return Review.objects.create(slug=slug, title=slug)


@pytest.mark.parametrize(
    "which", [("big", "xml"), ("big", "ris"), ("exports", "pubmed.xml"), ("medline", "pubmed_result2.txt")]
)
def test_an_import_through_the_parser_process_stores_what_an_import_in_process_stores(which, big_files, settings, db):
    path = big_files[which[1]] if which[0] == "big" else shared("fixtures", *which)
    here = _imported(_fresh_review("here"), path, settings, threshold=None)
    there = _imported(_fresh_review("there"), path, settings, threshold=0)
    assert here["records"]
    if which[0] == "big":
        assert here["search"][-1] > 100 and here["progress"][-1] == SIZE  # links, across chunks
    assert there == here
    assert not _zombies()  # the parser process was reaped once it had sent the end of the file


def test_a_file_under_the_threshold_or_not_on_disk_is_parsed_in_process(review, settings, monkeypatch):
    def no_process(*args, **kwargs):
        raise AssertionError("a parser process was started")

    monkeypatch.setattr("review.importing.ParsedInProcess", no_process)
    path = shared("fixtures", "exports", "embase.ris")
    settings.SIEVE_IMPORT_PARSE_PROCESS_BYTES = path.stat().st_size + 1
    assert import_file(review=review, path=path).added
    settings.SIEVE_IMPORT_PARSE_PROCESS_BYTES = None
    assert import_file(review=review, path=path).added
    settings.SIEVE_IMPORT_PARSE_PROCESS_BYTES = 0
    with open(path, "rb") as upload:
        assert import_file(review=review, fileobj=upload, filename="upload.ris").added
    # At the threshold exactly, and over it, a process reads it.
    settings.SIEVE_IMPORT_PARSE_PROCESS_BYTES = path.stat().st_size
    with pytest.raises(AssertionError, match="a parser process was started"):
        import_file(review=review, path=path)


def test_the_setting_takes_a_size_or_off():
    assert _parse_process_bytes("0") == 0
    assert _parse_process_bytes("16777216") == 16 * 1024 * 1024
    assert _parse_process_bytes(" Off ") is None
    for wrong in ("-1", "16MB", ""):
        with pytest.raises(RuntimeError, match="SIEVE_IMPORT_PARSE_PROCESS_BYTES"):
            _parse_process_bytes(wrong)


# --- Errors and deaths --------------------------------------------------------------------------


def _nothing_of(review):
    return (
        Record.all_objects.filter(review=review).count(),
        Search.all_objects.filter(review=review).count(),
        Event.objects.filter(review=review).count(),
    ) == (0, 0, 0)


def _truncated_xml(source, tmp_path):
    data = source.read_bytes()
    path = tmp_path / "cut.xml"
    path.write_bytes(data[: int(len(data) * 0.8)])
    return path


def _ris_with_a_long_author(source, tmp_path):
    records = source.read_text().split("\nER  -")
    records[CHUNK + 300] += "\nAU  - " + "x" * 1200
    path = tmp_path / "long.ris"
    path.write_text("\nER  -".join(records))
    return path


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("bad", [_truncated_xml, _ris_with_a_long_author], ids=["truncated xml", "author too long"])
def test_a_file_bad_half_way_fails_with_the_same_message_and_leaves_nothing(bad, big_files, settings, tmp_path):
    path = bad(big_files["xml" if bad is _truncated_xml else "ris"], tmp_path)
    messages, progress = [], {}
    for threshold in (None, 0):
        settings.SIEVE_IMPORT_PARSE_PROCESS_BYTES = threshold
        review = _fresh_review(f"bad-{threshold}")
        seen = progress.setdefault(threshold, [])
        with pytest.raises(ImportFileError) as error:
            import_file(review=review, path=path, progress=seen.append)
        messages.append(str(error.value))
        assert _nothing_of(review)
    assert messages[0] == messages[1]
    assert messages[0].startswith(path.name + ": ")
    assert progress[0] == progress[None] and progress[0][-1] >= CHUNK  # a chunk was staged, then removed
    assert not multiprocessing.active_children()


def _zombies():
    """The pids of this process's children that ended and were not reaped."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] == "Z":
            found.append(int(stat.parent.name))
    return found


def _parser():
    (process,) = [p for p in multiprocessing.active_children() if p.name == "sieve-import-parser"]
    return process.pid


@pytest.mark.django_db(transaction=True)
def test_a_killed_parser_process_fails_the_import_clearly_and_leaves_nothing(big_files, settings):
    settings.SIEVE_IMPORT_PARSE_PROCESS_BYTES = 0
    review, killed = _fresh_review("killed"), []

    def kill_the_parser(parsed):
        if not killed:
            killed.append(_parser())
            os.kill(killed[0], signal.SIGKILL)

    with pytest.raises(ParserStopped) as error:
        import_file(review=review, path=big_files["xml"], progress=kill_the_parser)

    assert str(error.value).startswith(
        "big.xml: the parser process stopped before the end of the file (killed by SIGKILL)"
    )
    assert "nothing was imported" in str(error.value)
    assert _nothing_of(review)
    assert not multiprocessing.active_children()
    assert not Path(f"/proc/{killed[0]}").exists()  # reaped: no zombie


@pytest.mark.django_db(transaction=True)
def test_an_import_failing_in_the_importing_process_stops_and_reaps_the_parser(big_files, settings):
    settings.SIEVE_IMPORT_PARSE_PROCESS_BYTES = 0
    review, pids = _fresh_review("failing"), []

    def fail(parsed):
        pids.append(_parser())
        raise RuntimeError("the job was stopped")

    with pytest.raises(RuntimeError, match="the job was stopped"):
        import_file(review=review, path=big_files["ris"], progress=fail)

    assert _nothing_of(review)
    assert not multiprocessing.active_children()
    assert not Path(f"/proc/{pids[0]}").exists()


def test_an_error_the_parser_did_not_expect_comes_back_with_its_traceback(tmp_path, monkeypatch):
    # Not an ImportFileError: a bug would come back as itself, with where it happened in the child.
    path = tmp_path / "x.ris"
    path.write_text("TY  - JOUR\nTI  - One\nER  - \n")
    with open(path, "rb") as stream:
        sniffed = sniff(stream, path.name)
    sniffed.encoding = "no-such-encoding"
    with pytest.raises(LookupError) as error, ParsedInProcess(path, sniffed, path.name) as articles:
        list(articles)
    assert "In the parser process:" in error.value.__notes__[0]
    assert not multiprocessing.active_children()
