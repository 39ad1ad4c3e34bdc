"""review.pubmed's PubMed Central client (elink pubmed -> pmc, PMC's OA service) against the stand-in."""

import time

import pytest

from review import pubmed
from review.pubmed import PubMedError, pmc_links, pmc_pdf
from tests import eutils_server as stand_in
from tests.eutils_server import Fault

eutils_server = stand_in.eutils_server

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture(autouse=True)
def quick(settings):
    settings.NCBI_CONNECT_TIMEOUT = 2
    settings.NCBI_READ_TIMEOUT = 2
    settings.NCBI_MAX_TRIES = 3
    settings.NCBI_BACKOFF = 0.05
    settings.NCBI_RETRY_TOTAL = 5
    settings.NCBI_API_KEY = "alices-key"


def test_elink_maps_each_pmid_to_its_pmc_article_in_batches(eutils_server, monkeypatch):
    monkeypatch.setattr(pubmed, "ELINK_BATCH", 2)
    eutils_server.pmc_links = {"111": "PMC900", "333": "PMC902"}
    calls = []
    found = pmc_links(["111", "222", "333", "111", "not-a-pmid"], progress=lambda d, t: calls.append((d, t)))
    assert found == {"111": "PMC900", "333": "PMC902"}
    elinks = eutils_server.requests("elink")
    # Three distinct PMIDs, two a request; each PMID its own id= parameter (one-to-one answer).
    assert [e.params["id_list"] for e in elinks] == [["111", "222"], ["333"]]
    assert {(e.params["dbfrom"], e.params["db"], e.params["linkname"]) for e in elinks} == {
        ("pubmed", "pmc", "pubmed_pmc")
    }
    assert calls == [(2, 3), (3, 3)]


def test_elink_retries_a_server_error_then_succeeds(eutils_server):
    eutils_server.pmc_links = {"111": "PMC900"}
    eutils_server.plan("elink", [Fault(status=503)])
    assert pmc_links(["111"]) == {"111": "PMC900"}
    assert [s.status for s in eutils_server.requests("elink")] == [503, 200]


def test_elink_that_keeps_failing_says_so(eutils_server):
    eutils_server.plan("elink", [Fault(status=500)], forever=True)
    with pytest.raises(PubMedError, match=r"kept failing on the PubMed Central links of 1 PMID .*HTTP 500"):
        pmc_links(["111"])


def test_oa_service_pdf_is_fetched(eutils_server):
    eutils_server.pmc_oa = {"PMC900": PDF}
    got = pmc_pdf("PMC900", max_size=1000)
    assert got.content == PDF and got.note == "" and got.license == "CC BY"
    assert eutils_server.requests("oa")[0].params == {"id": "PMC900", "format": "pdf", "id_list": ["PMC900"]}
    assert len(eutils_server.requests("PMC900")) == 1


@pytest.mark.parametrize(
    ("offer", "links", "note"),
    [
        (None, {"1": "PMC900"}, "not in PMC's open-access subset"),
        ("tgz", {}, "offers no PDF"),
        (b"<html>challenge</html>", {}, "is not a PDF"),
        (PDF * 100, {}, "larger than"),
    ],
)
def test_oa_service_without_a_usable_pdf_says_why(eutils_server, offer, links, note):
    eutils_server.pmc_links = links
    if offer is not None:
        eutils_server.pmc_oa = {"PMC900": offer}
    got = pmc_pdf("PMC900", max_size=1000)
    assert got.content == b"" and note in got.note


def test_a_pdf_link_away_from_ncbi_is_not_followed(eutils_server, settings):
    eutils_server.pmc_oa = {"PMC900": PDF}
    # The stand-in's links name its own host; seen from another OA service host they lead away.
    settings.NCBI_PMC_OA_URL = eutils_server.url.replace("127.0.0.1", "localhost") + "oa.fcgi"
    assert "outside NCBI" in pmc_pdf("PMC900", max_size=1000).note
    assert eutils_server.requests("PMC900") == []
    assert pubmed._pdf_url("https://evil.example/x.pdf", pubmed.PMC_OA_URL) is None
    assert pubmed._pdf_url("ftp://ftp.ncbi.nlm.nih.gov/pub/pmc/a.pdf", pubmed.PMC_OA_URL) == (
        "https://ftp.ncbi.nlm.nih.gov/pub/pmc/a.pdf"
    )


def test_a_pdf_download_that_keeps_failing_raises(eutils_server):
    eutils_server.pmc_oa = {"PMC900": PDF}
    eutils_server.plan("PMC900", [Fault(status=502)], forever=True)
    with pytest.raises(PubMedError, match="the PDF of PMC900"):
        pmc_pdf("PMC900", max_size=1000)


def test_garbled_oa_answer_is_a_clear_error(eutils_server):
    eutils_server.plan("oa", [Fault(truncate=True)], forever=True)
    eutils_server.pmc_oa = {"PMC900": PDF}
    with pytest.raises(PubMedError, match="PMC's open-access service sent an answer that could not be read"):
        pmc_pdf("PMC900", max_size=1000)


def test_not_a_pmcid_is_refused():
    with pytest.raises(PubMedError, match="not a PubMed Central id"):
        pmc_pdf("../etc/passwd", max_size=1000)


def test_offline_fails_fast(settings):
    settings.NCBI_EUTILS_URL = "http://eutils.invalid/entrez/eutils/"
    settings.NCBI_PMC_OA_URL = "http://eutils.invalid/oa.fcgi"
    settings.NCBI_RATE_LIMITER = ""
    settings.NCBI_EMAIL = "alice@example.org"
    started = time.monotonic()
    with pytest.raises(PubMedError, match="could not be reached"):
        pmc_links(["111"])
    with pytest.raises(PubMedError, match="could not be reached"):
        pmc_pdf("PMC900", max_size=1000)
    assert time.monotonic() - started < 2


def test_a_long_list_goes_200_pmids_a_request_by_post(eutils_server):
    pmids = [str(30000000 + i) for i in range(450)]
    eutils_server.pmc_links = {pmids[0]: "PMC1", pmids[449]: "PMC2"}
    assert pmc_links(pmids) == {pmids[0]: "PMC1", pmids[449]: "PMC2"}
    assert [len(e.params["id_list"]) for e in eutils_server.requests("elink")] == [200, 200, 50]
