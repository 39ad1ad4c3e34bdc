import ast
import csv
import datetime
import io
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from review import pubmed, searchlog
from review.importing import import_file, run_search
from review.models import Event, Record, Search
from review.pubmed import PubMedError, RateLimiter, search
from tests import eutils_server as stand_in
from tests.eutils_server import EutilsServer, Fault, fixture_records
from tests.shared import ROOT, shared

eutils_server = stand_in.eutils_server  # the fixture, where pytest looks for it


@pytest.fixture(autouse=True)
def quick(settings):
    """Short timeouts and back-off; an API key so requests may go 10 a second."""
    settings.NCBI_EMAIL = "alice@example.org"
    settings.NCBI_API_KEY = "alices-key"
    settings.NCBI_CONNECT_TIMEOUT = 2
    settings.NCBI_READ_TIMEOUT = 2
    settings.NCBI_MAX_TRIES = 3
    settings.NCBI_BACKOFF = 0.05
    settings.NCBI_RETRY_TOTAL = 5
    settings.NCBI_BATCH_SIZE = 3


def esearch_fixture(name):
    return ET.parse(shared("fixtures", "entrez", name)).getroot()


def fixture_article(name, pmid):
    root = ET.parse(shared("fixtures", "entrez", name)).getroot()
    (article,) = [a for a in root.iter("PubmedArticle") if a.findtext("MedlineCitation/PMID") == pmid]
    return article


def fetch(query, **kwargs):
    """Search, then fetch every batch: the SearchResult and the Articles its batches brought."""
    result = search(query, **kwargs)
    return result, [article for batch in result.batches() for article in batch]


def gaps(seen):
    return [b.at - a.at for a, b in itertools.pairwise(seen)]


# --- Searching and storing --------------------------------------------------------------------


def test_alice_runs_a_pubmed_search_and_the_records_land_in_her_review(eutils_server, review, alice):
    result = run_search(review=review, query="biopython", user=alice)

    served = fixture_records()
    log = result.search
    assert (log.kind, log.source, log.query, log.run_by) == (Search.Kind.PUBMED, "PubMed", "biopython", alice)
    # The stand-in translates the way NCBI did for this query in the real esearch1.xml.
    assert log.query_translation == esearch_fixture("esearch1.xml").findtext("QueryTranslation")
    assert log.hits == log.fetched == result.added == len(served) == 8
    assert Record.objects.filter(review=review, search=log).count() == 8
    assert set(Record.objects.values_list("pmid", flat=True)) == {r.pmid for r in served}

    gut = Record.objects.get(pmid="27797938")
    article = fixture_article("pubmed4.xml", "27797938")
    assert gut.doi == article.findtext("PubmedData/ArticleIdList/ArticleId[@IdType='doi']")
    assert gut.journal == article.findtext("MedlineCitation/Article/Journal/Title") == "Gut"
    assert gut.authors[0] == "{}, {}".format(
        article.findtext(".//Author/LastName"), article.findtext(".//Author/ForeName")
    )
    assert gut.source == "PubMed"
    assert Event.objects.filter(review=review, kind=Event.Kind.SEARCH).count() == 1


def test_it_searches_on_the_history_server_and_fetches_in_batches(eutils_server, review):
    run_search(review=review, query="biopython")

    (esearch,) = eutils_server.requests("esearch")
    assert esearch.params["usehistory"] == "y"
    assert (esearch.params["email"], esearch.params["tool"]) == ("alice@example.org", "sieve")
    efetches = eutils_server.requests("efetch")
    assert [int(e.params["retstart"]) for e in efetches] == [0, 3, 6]  # NCBI_BATCH_SIZE = 3
    (webenv,) = eutils_server.histories
    assert {(e.params["WebEnv"], e.params["query_key"], e.params["retmode"]) for e in efetches} == {
        (webenv, "1", "xml")
    }


def test_rerunning_a_search_adds_only_the_new_records(eutils_server, review, alice):
    first = run_search(review=review, query="biopython", mindate="2018", maxdate="2018/12/31", user=alice)
    assert (first.search.mindate, first.search.maxdate) == ("2018", "2018/12/31")
    assert first.search.query_translation.endswith("2018/01/01:2018/12/31[Date - Publication]")
    from_2018 = {r.pmid for r in fixture_records() if any(d.year == 2018 for d in r.dates)}
    assert first.added == len(from_2018) == 3

    again = run_search(review=review, query="biopython", user=alice)
    assert again.search.hits == 8
    assert (again.added, again.skipped) == (5, 3)
    assert Record.objects.filter(review=review).count() == 8
    assert Search.objects.filter(review=review).count() == 2


def test_max_records_stops_fetching(eutils_server):
    result, _ = fetch("biopython", max_records=4)
    assert (result.count, result.fetched) == (8, 4)
    assert sum(int(e.params["retmax"]) for e in eutils_server.requests("efetch")) == 4


def test_a_search_that_finds_nothing_is_still_logged(eutils_server, review):
    result = run_search(review=review, query="abcXYZ")
    answer = esearch_fixture("esearch8.xml")
    assert result.search.hits == 0 == result.added
    assert result.search.query_translation == answer.findtext("QueryTranslation")
    assert eutils_server.requests("efetch") == []
    assert search("abcXYZ").warnings == ["PhraseNotFound: abcXYZ", "OutputMessage: No items found."]
    assert result.warnings == ["PhraseNotFound: abcXYZ", "OutputMessage: No items found."]


def test_bad_dates_and_empty_queries_are_refused_before_any_request(eutils_server):
    with pytest.raises(PubMedError, match="start date '2020-13' is not a date"):
        search("biopython", mindate="2020-13")
    with pytest.raises(PubMedError, match="after the end date"):
        search("biopython", mindate="2021", maxdate="2020")
    with pytest.raises(PubMedError, match="query is empty"):
        search("  ")
    assert eutils_server.seen == []


# --- A pure client, streaming -----------------------------------------------------------------


def test_the_client_never_imports_the_database_or_the_workflow():
    tree = ast.parse((ROOT / "review" / "pubmed.py").read_text())
    imported = set()
    for node in ast.walk(tree):  # function-level imports too
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
    writers = {"review.models", "review.importing", "django.db", "screening"}
    assert not {name for name in imported if any(name == w or name.startswith(w + ".") for w in writers)}


def test_importing_the_client_loads_no_models():
    # Without django.setup(): a module that touched the models would not even import.
    code = (
        "import sys, review.pubmed\n"
        "bad = sorted(m for m in sys.modules if m in ('review.models', 'review.importing') or m.startswith('django.db'))\n"
        "print(','.join(bad))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "sieve.settings"}
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == ""


def test_the_records_come_batch_by_batch_as_they_are_fetched(eutils_server):
    result = search("biopython")
    # esearch has run: the count is known, nothing is fetched yet.
    assert result.count == 8 and eutils_server.requests("efetch") == []
    seen = []
    batches = result.batches(progress=lambda fetched, hits: seen.append((fetched, hits)))
    first = next(batches)
    assert len(first) == 3 and len(eutils_server.requests("efetch")) == 1  # NCBI_BATCH_SIZE = 3
    rest = list(batches)
    assert [len(b) for b in rest] == [3, 2]
    assert seen == [(3, 8), (6, 8), (8, 8)]
    assert [a.pmid for b in [first, *rest] for a in b] == [
        r.pmid for r in sorted(fixture_records(), key=lambda r: -int(r.pmid))
    ]
    assert (result.fetched, result.stopped_reason()) == (8, "")


def test_nothing_is_written_while_the_records_are_fetched(eutils_server, review):
    during = []
    run_search(review=review, query="biopython", progress=lambda *_: during.append(Search.objects.count()))
    # The fetch happens before the transaction: a long search holds no write lock.
    assert during == [0, 0, 0]
    assert Record.objects.count() == 8


# --- The history server forgets the search ----------------------------------------------------


def test_a_lost_history_session_is_searched_again_and_the_fetch_goes_on(eutils_server, review, alice):
    eutils_server.expire_sessions(after=1)
    result = run_search(review=review, query="biopython", mindate="1970", maxdate="2020", user=alice)

    assert result.added == result.search.fetched == result.search.hits == 8
    assert set(Record.objects.values_list("pmid", flat=True)) == {r.pmid for r in fixture_records()}
    # Each session serves one batch: the search runs again twice, and each lost batch is asked once
    # more from the new session at the same offset (not four times from the dead one).
    efetches = eutils_server.requests("efetch")
    assert [int(e.params["retstart"]) for e in efetches] == [0, 3, 3, 6, 6]
    assert len(eutils_server.expired) == 2
    searches = eutils_server.requests("esearch")
    assert len(searches) == 3
    assert {(s.params["term"], s.params["mindate"], s.params["maxdate"]) for s in searches} == {
        ("biopython", "1970/01/01", "2020/12/31")
    }
    webenvs = [e.params["WebEnv"] for e in efetches]
    assert webenvs[0] == webenvs[1] != webenvs[2] == webenvs[3] != webenvs[4]
    assert eutils_server.expired == [webenvs[0], webenvs[2]]


def test_a_session_lost_again_at_once_is_a_clear_error_and_writes_nothing(eutils_server, review):
    eutils_server.expire_sessions(after=0)
    with pytest.raises(PubMedError, match=r"lost the search again right after it was run anew, at records 1-3"):
        run_search(review=review, query="biopython")
    assert len(eutils_server.requests("efetch")) == 2
    assert not Search.objects.exists() and not Record.objects.exists()


def test_records_removed_while_the_session_was_lost_do_not_make_others_missed(eutils_server):
    found = eutils_server.add_synthetic("kratom", [datetime.date(2020, 1, d) for d in range(1, 10)])
    newest = max(found, key=lambda r: int(r.pmid))

    def pubmed_deletes_the_newest():
        eutils_server.terms["kratom"] = [r for r in found if r is not newest]

    eutils_server.expire_sessions(after=1, then=pubmed_deletes_the_newest)
    result, articles = fetch("kratom")
    # The newest record (fetched in the first batch) left the result set: every record behind it
    # moved up a place, so the fetch goes back one to miss none.
    assert sorted(a.pmid for a in articles) == sorted(r.pmid for r in found)
    assert len(articles) == result.fetched == 9
    assert result.warnings == ["PubMed's count changed from 9 to 8 while the records were fetched."]


# --- What the search log says -----------------------------------------------------------------


def log_rows(review):
    return list(csv.DictReader(io.StringIO(searchlog.search_log_csv(review))))


def test_pmids_pubmed_already_brought_by_a_file_or_a_search_are_skipped_and_logged_by_origin(
    eutils_server, review, alice
):
    # Alice saved two records from PubMed's website as PubMed XML and imported the file.
    pubmed_file = import_file(review=review, path=shared("fixtures", "entrez", "pubmed1.xml"), user=alice)
    from_file = set(Record.objects.filter(search=pubmed_file.search).values_list("pmid", flat=True))
    first = run_search(review=review, query="biopython", mindate="2018", maxdate="2018/12/31", user=alice)
    from_search = set(Record.objects.filter(search=first.search).values_list("pmid", flat=True))
    assert from_file and from_search and not from_file & from_search

    again = run_search(review=review, query="biopython", user=alice)

    every = {r.pmid for r in fixture_records()}
    log = again.search
    assert (log.skipped, log.skipped_from_files) == (len(from_file | from_search), len(from_file))
    assert again.added == len(every - from_file - from_search) == 3
    assert Record.objects.filter(review=review).count() == len(every)
    event = Event.objects.get(kind=Event.Kind.SEARCH, detail__search=log.pk)
    assert sorted(event.detail["skipped_pmids"]["file"]) == sorted(from_file)
    assert sorted(event.detail["skipped_pmids"]["search"]) == sorted(from_search)
    expected = (
        f"Skipped {len(from_file | from_search)} already in the review: "
        f"{len(from_search)} from earlier PubMed searches, {len(from_file)} from imported PubMed files."
    )
    assert log.log_notes() == [expected]
    assert log_rows(review)[-1]["Notes"] == expected


def test_a_pmid_another_database_brought_is_kept_and_linked_as_a_duplicate(eutils_server, review, alice):
    scopus = import_file(review=review, path=ROOT / "tests" / "review" / "files" / "scopus_pmid.ris", user=alice)
    (theirs,) = Record.objects.filter(search=scopus.search)
    assert (theirs.source, theirs.pmid) == ("Scopus", "27797938")

    result = run_search(review=review, query="biopython", user=alice)

    # Scopus's count and PubMed's each keep the record: PRISMA counts both, dedup links them.
    assert (result.added, result.skipped) == (8, 0)
    ours = Record.objects.get(search=result.search, pmid="27797938")
    assert (ours.duplicate_of, ours.duplicate_reason) == (theirs, "pmid")
    assert result.search.log_notes() == []
    assert "skipped_pmids" not in Event.objects.get(kind=Event.Kind.SEARCH).detail


def test_a_search_stopped_at_its_maximum_says_so_in_the_log(eutils_server, review, alice, client):
    result = run_search(review=review, query="biopython", max_records=5, user=alice)

    log = result.search
    assert (log.hits, log.fetched, log.added) == (8, 5, 5)
    assert log.stopped_reason == "stopped at the maximum of 5 records asked for"
    note = "Fetched 5 of 8 found: stopped at the maximum of 5 records asked for."
    assert log_rows(review)[0]["Notes"] == note
    client.force_login(alice)
    assert note in client.get(reverse("review:searches", args=[review.slug])).content.decode()
    # ... and beside its count in the PRISMA diagram.
    from screening.prisma import compute

    assert compute(review).source_notes == {"PubMed": "5 of 8 found; stopped at the maximum of 5 records asked for"}


def test_records_pubmed_found_but_did_not_send_are_noted(eutils_server, review):
    eutils_server.withdrawn = {fixture_records()[0].pmid}
    result = run_search(review=review, query="biopython")
    assert (result.search.hits, result.search.fetched, result.added) == (8, 7, 7)
    assert result.search.stopped_reason == "PubMed sent 7 of the 8 records it found"
    assert log_rows(review)[0]["Notes"] == "Fetched 7 of 8 found: PubMed sent 7 of the 8 records it found."


def test_a_complete_search_has_no_note(eutils_server, review):
    result = run_search(review=review, query="biopython")
    assert result.search.stopped_reason == ""
    assert log_rows(review)[0]["Notes"] == ""


def test_bob_sees_why_his_web_search_fetched_fewer_than_found(eutils_server, review, bob, client, inline_worker):
    client.force_login(bob)
    response = client.post(
        reverse("review:search", args=[review.slug]),
        {"query": "biopython", "mindate": "", "maxdate": "", "max_records": 2},
        follow=True,
    )
    text = response.content.decode()
    assert "2 records added" in text
    assert "Fetched 2 of 8 found: stopped at the maximum of 2 records asked for." in text
    search = Search.objects.get()
    assert (search.platform, search.source_type, search.searched_on) == (
        "PubMed",
        Search.SourceType.DATABASE,
        timezone.localdate(),
    )


def test_offline_the_web_search_fails_at_once_with_a_clear_message(settings, review, bob, client, inline_worker):
    settings.NCBI_EUTILS_URL = "https://eutils.invalid/entrez/eutils/"
    settings.NCBI_RATE_LIMITER = ""  # no database here
    settings.NCBI_MAX_TRIES = 5
    settings.NCBI_BACKOFF = 1
    client.force_login(bob)
    started = time.monotonic()
    response = client.post(
        reverse("review:search", args=[review.slug]),
        {"query": "biopython", "mindate": "", "maxdate": "", "max_records": 10},
        follow=True,
    )
    assert time.monotonic() - started < 1
    assert "PubMed could not be reached at eutils.invalid" in response.content.decode()
    assert "Check the network connection and try again." in response.content.decode()
    assert not Search.objects.exists()


# --- Failures, retries, timeouts ----------------------------------------------------------


def test_a_429_is_retried_after_the_servers_retry_after(eutils_server):
    eutils_server.plan("esearch", [Fault(status=429, retry_after="1")])
    result, _ = fetch("biopython", max_records=1)
    assert result.fetched == 1
    first, second = eutils_server.requests("esearch")
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 0.95  # Retry-After: 1, though NCBI_BACKOFF is 0.05


def test_server_errors_are_retried_with_exponential_back_off(eutils_server, settings):
    settings.NCBI_BACKOFF = 0.25
    settings.NCBI_MAX_TRIES = 4
    eutils_server.plan("efetch", [Fault(status=500), Fault(status=502)])
    result, _ = fetch("biopython", max_records=2)
    assert result.fetched == 2
    efetches = eutils_server.requests("efetch")
    assert [e.status for e in efetches] == [500, 502, 200]
    first_wait, second_wait = gaps(efetches)
    assert first_wait >= 0.25
    assert second_wait >= 0.5  # doubled


def test_a_server_error_that_never_ends_writes_nothing(eutils_server, review, alice):
    # The first batch arrives; the second keeps failing.
    eutils_server.plan("efetch", [Fault(status=500)], after=1, forever=True)
    with pytest.raises(PubMedError, match=r"kept failing on records 4-6: HTTP 500 .*3 attempts.*try again later"):
        run_search(review=review, query="biopython", user=alice)
    assert [e.status for e in eutils_server.requests("efetch")] == [200, 500, 500, 500]
    assert not Search.objects.exists()
    assert not Record.objects.exists()
    assert not Event.objects.exists()


def test_a_request_pubmed_refuses_is_not_retried(eutils_server):
    eutils_server.plan("esearch", [Fault(status=400)])
    # NCBI explains a refusal in the body: the message passes it on.
    with pytest.raises(PubMedError, match="refused the search: HTTP 400 Bad Request .*HTTP 400 from the stand-in"):
        search("biopython")
    assert len(eutils_server.requests("esearch")) == 1


def test_a_slow_answer_times_out_quickly(eutils_server, settings):
    settings.NCBI_READ_TIMEOUT = 0.3
    settings.NCBI_MAX_TRIES = 2
    eutils_server.plan("esearch", [Fault(delay=5)], forever=True)
    started = time.monotonic()
    with pytest.raises(PubMedError, match=r"could not be reached at 127\.0\.0\.1:\d+: timed out"):
        search("biopython")
    assert time.monotonic() - started < 1.5
    assert len(eutils_server.requests("esearch")) == 2


def test_a_truncated_answer_is_a_clear_error_and_writes_nothing(eutils_server, review):
    eutils_server.plan("efetch", [Fault(truncate=True)], forever=True)
    with pytest.raises(PubMedError) as error:
        run_search(review=review, query="biopython")
    message = str(error.value)
    assert "could not be read for records 1-3" in message
    assert "cut short at line" in message
    assert not Record.objects.exists() and not Search.objects.exists()


def test_an_unreachable_server_fails_fast_with_a_clear_message(settings, db):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    settings.NCBI_EUTILS_URL = f"http://127.0.0.1:{port}/entrez/eutils/"
    started = time.monotonic()
    with pytest.raises(PubMedError) as error:
        search("biopython")
    assert time.monotonic() - started < 2
    assert str(error.value).startswith(f"PubMed could not be reached at 127.0.0.1:{port}: ")
    assert "Connection refused" in str(error.value)
    assert str(error.value).endswith("Check the network connection and try again.")


def test_without_name_resolution_it_gives_up_at_once(settings):
    # .invalid never resolves (RFC 6761): what an offline machine sees for any host.
    settings.NCBI_EUTILS_URL = "https://eutils.invalid/entrez/eutils/"
    settings.NCBI_RATE_LIMITER = ""  # no database here
    settings.NCBI_MAX_TRIES = 5
    settings.NCBI_BACKOFF = 1
    started = time.monotonic()
    with pytest.raises(PubMedError, match="PubMed could not be reached at eutils.invalid: .*Check the network"):
        search("biopython")
    assert time.monotonic() - started < 1  # no back-off: being offline does not pass


# --- Large result sets ----------------------------------------------------------------------


def test_more_than_9999_hits_are_split_by_publication_date(eutils_server, settings):
    settings.NCBI_BATCH_SIZE = 5000
    day = datetime.date(2000, 1, 1)
    dates = [day + datetime.timedelta(days=i % 8766) for i in range(21000)]
    # Some records have an electronic date in one half and a print date in the other:
    # PubMed finds them in both parts, and they must be kept once.
    for i in range(600):
        dates[i] = [datetime.date(2011, 12, 20), datetime.date(2012, 2, 1)]
    records = eutils_server.add_synthetic("kratom", dates)

    result, articles = fetch("kratom", mindate="2000", maxdate="2023")

    assert result.count == 21000
    assert result.fetched == 21000
    assert {a.pmid for a in articles} == {r.pmid for r in records}
    assert result.parts >= 3
    searches = eutils_server.requests("esearch")
    assert searches[0].params["mindate"] == "2000/01/01" and searches[0].params["maxdate"] == "2023/12/31"
    for part in eutils_server.requests("efetch"):
        assert int(part.params["retstart"]) + int(part.params["retmax"]) <= 9999
    assert result.query_translation == '"kratom"[All Fields] AND 2000/01/01:2023/12/31[Date - Publication]'


def test_max_records_counts_records_found_in_two_date_parts_once(eutils_server, settings):
    settings.NCBI_BATCH_SIZE = 5000
    dates = [datetime.date(2000, 1, 1) + datetime.timedelta(days=i % 8000) for i in range(10400)]
    # The newest PMIDs (served first in each part) straddle the split at 2011/12/31.
    for i in range(9800, 10400):
        dates[i] = [datetime.date(2011, 12, 20), datetime.date(2012, 2, 1)]
    eutils_server.add_synthetic("kratom", dates)
    result, articles = fetch("kratom", mindate="2000", maxdate="2023", max_records=10200)
    assert result.count == 10400
    assert result.fetched == len({a.pmid for a in articles}) == 10200


def test_too_many_records_on_one_day_is_a_clear_error(eutils_server):
    eutils_server.add_synthetic("kratom", [datetime.date(2020, 5, 5)] * 10000)
    with pytest.raises(PubMedError, match="more than 9,999 records for this query published on 2020/05/05"):
        search("kratom", mindate="2020/05/01", maxdate="2020/05/08")
    assert eutils_server.requests("efetch") == []


def test_max_records_below_the_limit_needs_no_split(eutils_server):
    eutils_server.add_synthetic("kratom", [datetime.date(2020, 5, 5)] * 10000)
    result, _ = fetch("kratom", max_records=6)
    assert (result.count, result.fetched, result.parts) == (10000, 6, 1)
    assert len(eutils_server.requests("esearch")) == 1


# --- Rate limit -------------------------------------------------------------------------------


def test_an_api_key_raises_the_rate_from_3_to_10_a_second(eutils_server, settings):
    settings.NCBI_BATCH_SIZE = 1
    settings.NCBI_API_KEY = ""
    fetch("biopython", max_records=4)
    slow = eutils_server.requests("esearch") + eutils_server.requests("efetch")
    assert len(slow) == 5
    assert all("api_key" not in s.params for s in slow)
    # Arrival times jitter by a few milliseconds under load; what they add up to does not.
    assert slow[-1].at - slow[0].at >= 4 / 3 - 0.05

    eutils_server.seen.clear()
    settings.NCBI_API_KEY = "alices-key"
    fetch("biopython", max_records=4)
    fast = eutils_server.requests("esearch") + eutils_server.requests("efetch")
    assert all(s.params["api_key"] == "alices-key" for s in fast)
    assert 4 / 10 - 0.05 <= fast[-1].at - fast[0].at < 4 / 3 - 0.3


def test_the_rate_limit_holds_across_threads():
    limiter = RateLimiter()
    times = []

    def work():
        for _ in range(3):
            limiter.wait(20)
            times.append(time.monotonic())

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times.sort()
    assert len(times) == 9
    # Nine requests at 20 a second take at least 8/20 s, whichever threads make them
    # (sleep never wakes early; a busy machine only wakes a thread late).
    assert times[-1] - times[0] >= 8 / 20 - 0.01


# --- Command ---------------------------------------------------------------------------------


def test_the_command_prints_what_the_search_did(eutils_server, review, alice):
    out = io.StringIO()
    call_command("search_pubmed", review.slug, "biopython", "--max", "5", "--user", "alice", stdout=out)
    text = out.getvalue()
    assert 'Query translation: "biopython"[All Fields]' in text
    assert "Hits: 8" in text and "Fetched: 5" in text and "Added: 5" in text and "Duplicates: 0" in text
    assert Search.objects.get().run_by == alice

    assert "Fetched 5 of 8 found: stopped at the maximum of 5 records asked for." in text

    out, err = io.StringIO(), io.StringIO()
    call_command("search_pubmed", review.slug, "biopython", "--mindate", "2018", stdout=out, stderr=err)
    assert "Already in the review (skipped): 3" in out.getvalue()
    assert "Skipped 3 already in the review: 3 from earlier PubMed searches." in out.getvalue()
    assert err.getvalue().endswith("Fetched 3 of 3 records\n")


def test_the_command_turns_pubmed_trouble_into_a_command_error(eutils_server, review):
    with pytest.raises(CommandError, match="is not a date"):
        call_command("search_pubmed", review.slug, "biopython", "--maxdate", "last week")
    eutils_server.plan("esearch", [Fault(status=503)], forever=True)
    with pytest.raises(CommandError, match="kept failing on the search: HTTP 503"):
        call_command("search_pubmed", review.slug, "biopython")
    with pytest.raises(CommandError, match="No review with the slug 'nope'"):
        call_command("search_pubmed", "nope", "biopython")


def test_settings_are_read_at_each_search(eutils_server, settings):
    other = EutilsServer().start()
    try:
        settings.NCBI_EUTILS_URL = other.url
        fetch("biopython", max_records=1)
        assert len(other.requests("esearch")) == 1
        assert eutils_server.seen == []
    finally:
        other.stop()
    assert pubmed._config().base_url == other.url
