"""A stand-in for NCBI's E-utilities on 127.0.0.1, serving the real responses in ../shared.

It answers esearch (with usehistory: Count, QueryKey, WebEnv, publication-date limits),
efetch from the history server (the PubmedArticle records of fixtures/entrez/pubmed*.xml,
byte for byte, sliced by retstart/retmax), einfo and epost, and can be told to misbehave:
``server.plan("efetch", [Fault(status=500)], after=1, forever=True)``, or forget its history
sessions after a few fetches as NCBI's history server does: ``server.expire_sessions(after=2)``.
Every request is
logged in ``server.seen`` with its arrival time, for tests of retries and rate limits.

Use the ``eutils_server`` fixture: it starts a server on a free port and points
NCBI_EUTILS_URL at it.
"""

import datetime
import itertools
import json
import re
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.shared import shared

ENTREZ = ("fixtures", "entrez")
ARTICLE = re.compile(rb"<PubmedArticle>.*?</PubmedArticle>", re.DOTALL)
MONTHS = {
    m: i for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)
}
# NCBI serves at most the first 10,000 records of a result set (retstart 0-9,998 for esearch).
PAGING_LIMIT = 10000


@dataclass
class Fault:
    status: int = 0  # answer with this HTTP status (and NCBI's kind of error body)
    retry_after: str = ""  # with this Retry-After header
    delay: float = 0.0  # wait this long before answering
    truncate: bool = False  # send only the first half of the body (a well-formed 200)


@dataclass
class Seen:
    endpoint: str  # "esearch", "efetch", ...
    params: dict
    at: float  # time.monotonic() on arrival
    status: int = 200


@dataclass
class Record:
    pmid: str
    dates: list  # publication dates PubMed's [pdat] matches: print and electronic
    xml: bytes = b""  # the PubmedArticle element as served; empty = rendered from a template


@dataclass
class _Plan:
    faults: list
    after: int = 0
    forever: bool = False
    count: int = 0


@dataclass
class _History:
    sets: dict = field(default_factory=dict)  # query_key -> list of Record
    keys: itertools.count = field(default_factory=lambda: itertools.count(1))
    fetches: int = 0  # efetches served from this session


def fixture_records():
    """The PubmedArticle records of fixtures/entrez/pubmed*.xml, as served."""
    records = []
    for path in sorted(shared(*ENTREZ).glob("pubmed*.xml")):
        for raw in ARTICLE.findall(path.read_bytes()):
            elem = ET.fromstring(raw)
            records.append(Record(pmid=elem.findtext("MedlineCitation/PMID"), dates=_dates(elem), xml=raw))
    return records


def _dates(elem):
    dates = []
    pub = elem.find("MedlineCitation/Article/Journal/JournalIssue/PubDate")
    if pub is not None:
        year = pub.findtext("Year") or (pub.findtext("MedlineDate") or "")[:4]
        month = (pub.findtext("Month") or "1").strip()
        month = int(month) if month.isdigit() else MONTHS.get(month[:3].lower(), 1)
        dates.append(datetime.date(int(year), month, int(pub.findtext("Day") or 1)))
    for when in elem.findall("MedlineCitation/Article/ArticleDate"):
        dates.append(datetime.date(int(when.findtext("Year")), int(when.findtext("Month")), int(when.findtext("Day"))))
    return dates


class EutilsServer:
    def __init__(self):
        self.records = fixture_records()
        self.terms = {}  # term -> list of Record; any other term finds self.records
        self.template = min(self.records, key=lambda r: len(r.xml)).xml
        self.seen = []
        self.histories = {}
        self.sessions = itertools.count(1)  # WebEnv numbers, never reused
        self.plans = {}
        self.expire_after = None  # efetches a history session serves before it is forgotten
        self.on_expire = None
        self.expired = []  # the WebEnvs forgotten so far
        # PMIDs esearch still finds but efetch leaves out, as for a record deleted in between.
        self.withdrawn = set()
        # PubMed Central: PMID -> PMCID links (elink pubmed_pmc), and what PMC's OA service says of
        # each PMCID: bytes (its PDF), "tgz" (a package and no PDF), or absent (not open access).
        self.pmc_links = {}
        self.pmc_oa = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.httpd = None
        envelope = shared(*ENTREZ, "pubmed1.xml").read_bytes()
        self.set_head = envelope[: envelope.index(b"<PubmedArticleSet>") + len(b"<PubmedArticleSet>")] + b"\n"
        search = shared(*ENTREZ, "esearch2.xml").read_text()
        self.search_head = search[: search.index("<eSearchResult>")]

    # --- set-up from tests ---

    @property
    def url(self):
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/entrez/eutils/"

    def plan(self, endpoint, faults, *, after=0, forever=False):
        """Misbehave on requests to ``endpoint`` after the first ``after`` ones."""
        self.plans[endpoint] = _Plan(list(faults), after, forever)

    def expire_sessions(self, *, after, then=None):
        """Forget each history session (WebEnv) once it has served ``after`` efetches: the next
        efetch on it gets NCBI's ``<ERROR>Unable to obtain query #1</ERROR>``. ``then()`` runs
        as a session is forgotten (to change what PubMed holds while a search runs)."""
        self.expire_after, self.on_expire = after, then

    def add_synthetic(self, term, dates, first_pmid=90000000):
        """Let ``term`` find one record per entry of ``dates`` (a date, or a list of dates)."""
        self.terms[term] = [
            Record(pmid=str(first_pmid + i), dates=d if isinstance(d, list) else [d]) for i, d in enumerate(dates)
        ]
        return self.terms[term]

    def requests(self, endpoint):
        with self.lock:
            return [s for s in self.seen if s.endpoint == endpoint]

    # --- running ---

    def start(self):
        server = self

        class Handler(_Handler):
            eutils = server

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _fault(self, endpoint):
        with self.lock:
            plan = self.plans.get(endpoint)
            if plan is None:
                return None
            index = plan.count - plan.after
            plan.count += 1
            if index < 0 or not plan.faults:
                return None
            if index < len(plan.faults):
                return plan.faults[index]
            return plan.faults[-1] if plan.forever else None

    # --- answers ---

    def answer(self, endpoint, params):
        if endpoint.startswith("PMC"):
            return self._pmc_pdf(endpoint)
        handler = getattr(self, f"_{endpoint}", None)
        if handler is None:
            return 404, "text/plain", b"Unknown E-utility"
        return handler(params)

    def _einfo(self, params):
        return 200, "text/xml", shared(*ENTREZ, "einfo1.xml").read_bytes()

    def _epost(self, params):
        return 200, "text/xml", shared(*ENTREZ, "epost1.xml").read_bytes()

    def _esearch(self, params):
        term = params.get("term", "")
        if term == "abcXYZ":
            # The real answer NCBI gave for a phrase it does not know.
            return 200, "text/xml", shared(*ENTREZ, "esearch8.xml").read_bytes()
        found = self.terms.get(term, self.records)
        translation = f'"{term}"[All Fields]'
        if params.get("mindate") or params.get("maxdate"):
            if params.get("datetype") != "pdat" or not (params.get("mindate") and params.get("maxdate")):
                return 400, "application/json", b'{"error":"mindate and maxdate must be given together"}'
            low, high = _date(params["mindate"]), _date(params["maxdate"])
            found = [r for r in found if any(low <= d <= high for d in r.dates)]
            translation += f" AND {params['mindate']}:{params['maxdate']}[Date - Publication]"
        found = sorted(found, key=lambda r: -int(r.pmid))
        retstart, retmax = int(params.get("retstart", 0)), int(params.get("retmax", 20))
        if retstart >= PAGING_LIMIT - 1:
            return 400, "application/json", _error(f"'retstart' cannot be larger than {PAGING_LIMIT - 2}.")
        history = ""
        if params.get("usehistory") == "y":
            with self.lock:
                webenv = params.get("WebEnv") or f"MCID_{next(self.sessions):024x}"
                env = self.histories.setdefault(webenv, _History())
                key = next(env.keys)
                env.sets[str(key)] = found
            history = f"<QueryKey>{key}</QueryKey><WebEnv>{webenv}</WebEnv>"
        ids = "".join(f"<Id>{r.pmid}</Id>\n" for r in found[retstart : retstart + retmax])
        body = (
            f"{self.search_head}<eSearchResult><Count>{len(found)}</Count><RetMax>{min(retmax, len(found))}"
            f"</RetMax><RetStart>{retstart}</RetStart>{history}<IdList>\n{ids}</IdList><TranslationSet/>"
            f"<QueryTranslation>{_escape(translation)}</QueryTranslation></eSearchResult>\n"
        )
        return 200, "text/xml", body.encode()

    def _efetch(self, params):
        if params.get("id"):
            wanted = set(params["id"].split(","))
            found = [r for r in self.records if r.pmid in wanted]
        else:
            env = self._session(params.get("WebEnv", ""))
            found = env.sets.get(params.get("query_key", "")) if env else None
            if found is None:
                body = b"<eFetchResult>\n\t<ERROR>Unable to obtain query #1</ERROR>\n</eFetchResult>\n"
                return 200, "text/xml", b'<?xml version="1.0" encoding="UTF-8" ?>\n' + body
            retstart, retmax = int(params.get("retstart", 0)), int(params.get("retmax", 20))
            if retstart + retmax > PAGING_LIMIT:
                return 400, "application/json", _error(f"Cannot fetch past record {PAGING_LIMIT}.")
            found = [r for r in found[retstart : retstart + retmax] if r.pmid not in self.withdrawn]
        body = [self.set_head] + [r.xml or self._render(r) for r in found] + [b"\n</PubmedArticleSet>\n"]
        return 200, "text/xml", b"\n".join(body)

    def _elink(self, params):
        # NCBI's answer shape for dbfrom=pubmed&linkname=pubmed_pmc with one id= per PMID: one
        # LinkSet per PMID, a LinkSetDb only for those with a PMC article.
        if params.get("dbfrom") != "pubmed" or params.get("linkname") != "pubmed_pmc":
            return 400, "text/plain", b"unexpected elink parameters"
        sets = []
        for pmid in params.get("id_list", []):
            links = ""
            if pmid in self.pmc_links:
                pmc = self.pmc_links[pmid].removeprefix("PMC")
                links = (
                    "\t\t<LinkSetDb>\n\t\t\t<DbTo>pmc</DbTo>\n\t\t\t<LinkName>pubmed_pmc</LinkName>\n"
                    f"\t\t\t<Link>\n\t\t\t\t<Id>{pmc}</Id>\n\t\t\t</Link>\n\t\t</LinkSetDb>\n"
                )
            sets.append(
                f"\t<LinkSet>\n\t\t<DbFrom>pubmed</DbFrom>\n\t\t<IdList>\n\t\t\t<Id>{pmid}</Id>\n"
                f"\t\t</IdList>\n{links}\t</LinkSet>\n"
            )
        body = (
            '<?xml version="1.0" encoding="UTF-8" ?>\n'
            '<!DOCTYPE eLinkResult PUBLIC "-//NLM//DTD elink 20101123//EN" '
            '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20101123/elink.dtd">\n'
            f"<eLinkResult>\n{''.join(sets)}</eLinkResult>\n"
        )
        return 200, "text/xml", body.encode()

    def _oa(self, params):
        # PMC's OA web service (oa.fcgi): a record with its links, or an error element.
        pmcid = params.get("id", "")
        head = f'<?xml version="1.0"?>\n<OA><responseDate>2026-12-07 06:00:00</responseDate><request id="{pmcid}">'
        head += f"{self.url}oa.fcgi?id={pmcid}</request>"
        offer = self.pmc_oa.get(pmcid)
        if offer is None:
            code = "idIsNotOpenAccess" if pmcid in self.pmc_links.values() else "idDoesNotExist"
            return (
                200,
                "text/xml",
                f"{head}<error code=\"{code}\">identifier '{pmcid}' is not Open Access</error></OA>".encode(),
            )
        links = f'<link format="tgz" updated="2026-01-01 00:00:00" href="ftp://ftp.ncbi.nlm.nih.gov/pub/pmc/{pmcid}.tar.gz" />'
        if offer != "tgz":
            links += f'<link format="pdf" updated="2026-01-01 00:00:00" href="{self.url}pdf/{pmcid}.pdf" />'
        record = f'<record id="{pmcid}" citation="J Test. 2026" license="CC BY" retracted="no">{links}</record>'
        return 200, "text/xml", f'{head}<records returned-count="1" total-count="1">{record}</records></OA>'.encode()

    def _pmc_pdf(self, pmcid):
        offer = self.pmc_oa.get(pmcid)
        if not isinstance(offer, bytes):
            return 404, "text/plain", b"Not Found"
        return 200, "application/pdf", offer

    def _session(self, webenv):
        """The history session ``webenv``, counting this efetch; None once it has expired."""
        with self.lock:
            env = self.histories.get(webenv)
            if env is None or self.expire_after is None:
                return env
            env.fetches += 1
            if env.fetches <= self.expire_after:
                return env
            del self.histories[webenv]
            self.expired.append(webenv)
        if self.on_expire:
            self.on_expire()
        return None

    def _render(self, record):
        day = min(record.dates)
        pmid = f'<PMID Version="1">{record.pmid}</PMID>'.encode()
        xml = re.sub(rb'<PMID Version="1">\d+</PMID>', pmid, self.template, count=1)
        date = f"<PubDate><Year>{day.year}</Year><Month>{day.month:02d}</Month><Day>{day.day:02d}</Day></PubDate>"
        return re.sub(rb"<PubDate>.*?</PubDate>", date.encode(), xml, count=1, flags=re.DOTALL)


class _Handler(BaseHTTPRequestHandler):
    eutils = None  # set by EutilsServer.start
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self._handle(urlsplit(self.path).query)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self._handle(self.rfile.read(length).decode())

    def _handle(self, query):
        server = self.eutils
        endpoint = urlsplit(self.path).path.rstrip("/").rsplit("/", 1)[-1].split(".")[0]
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        params["id_list"] = parse_qs(query).get("id", [])  # elink sends one id= per PMID
        seen = Seen(endpoint, params, time.monotonic())
        with server.lock:
            server.seen.append(seen)
        fault = server._fault(endpoint) or Fault()
        if fault.delay and server.stopping.wait(fault.delay):
            return
        if fault.status:
            status, kind, body = fault.status, "application/json", _error(f"HTTP {fault.status} from the stand-in")
            if fault.status == 429:
                body = b'{"error":"API rate limit exceeded","count":"4","limit":"3"}'
        else:
            status, kind, body = server.answer(endpoint, params)
        if fault.truncate:
            body = body[: len(body) // 2]
        seen.status = status
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            if fault.retry_after:
                self.send_header("Retry-After", fault.retry_after)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up waiting (a timeout test)
        self.close_connection = True

    def log_message(self, format, *args):
        pass


def _date(text):
    parts = [int(p) for p in text.split("/")] + [1, 1]
    return datetime.date(*parts[:3])


def _escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _error(message):
    return json.dumps({"error": message}).encode()


@pytest.fixture
def eutils_server(settings):
    """A running stand-in E-utilities server; NCBI_EUTILS_URL points at it."""
    server = EutilsServer().start()
    settings.NCBI_EUTILS_URL = server.url
    settings.NCBI_PMC_OA_URL = server.url + "oa.fcgi"
    settings.NCBI_EMAIL = "alice@example.org"
    # The client's tests need no database: each process spaces its own requests. The shared
    # limiter (review/ratelimit.py) has its own tests, tests/review/test_rate_limit.py.
    settings.NCBI_RATE_LIMITER = ""
    yield server
    server.stop()
