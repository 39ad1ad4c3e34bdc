"""PubMed through NCBI's E-utilities: the only module that imports Bio.Entrez.

A pure client: ``search()`` runs esearch on the history server and returns a SearchResult
whose ``batches()`` fetches the records with efetch, one batch of Article objects at a time,
parsed as they stream in by review.importers.pubmed_xml. Nothing here touches the database:
review.importing.run_search stores what the batches bring.

Biopython sends the requests; this module adds what it lacks for a web application: a
rate limit (3 requests/s, 10 with an API key; across every process through the limiter the
NCBI_RATE_LIMITER setting names, review.ratelimit's by default), connect and read timeouts,
exponential back-off that honours Retry-After, a bounded total retry time, a configurable
base URL (NCBI_EUTILS_URL, for tests against a local stand-in), a new history session when
NCBI has forgotten the search's, and date splitting for result sets above the 9,999 records
esearch and efetch can page through.
"""

import calendar
import contextlib
import datetime
import email.utils
import errno
import functools
import http.client
import logging
import re
import socket
import threading
import time
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass, field
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from Bio import Entrez
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as ET
from django.conf import settings
from django.utils.module_loading import import_string

from review.article import ImportFileError
from review.importers import pubmed_xml

NCBI_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
# Requests are spaced 10% wider than NCBI's limit asks: network and scheduling delays shift when
# each one arrives, and NCBI counts arrivals.
RATE_HEADROOM = 0.9
logger = logging.getLogger(__name__)
# Biopython prints a 12-line warning on every request without an e-mail address; one log line
# per search (below) says the same.
warnings.filterwarnings("ignore", message=r"\s*Email address is not specified", module=r"Bio\.Entrez")
# PubMed's esearch and efetch stop at the 10,000th record of a result set (retstart 9,998 + 1).
MAX_PER_QUERY = 9999
# Date splitting starts from these when the search has no date limits of its own. PubMed's
# oldest records (via PMC) date from the 1600s; publishers date some issues years ahead.
EARLIEST = datetime.date(1600, 1, 1)
FUTURE_YEARS = 5
DATE = re.compile(r"^(\d{4})(?:[/-](\d{1,2})(?:[/-](\d{1,2}))?)?$")
# What efetch answers once the history server has forgotten a search (after some idle minutes,
# or at NCBI's whim): <eFetchResult><ERROR>Unable to obtain query #1</ERROR></eFetchResult>.
SESSION_LOST = re.compile(r"unable to obtain query", re.IGNORECASE)


class PubMedError(Exception):
    """PubMed could not be searched: network, NCBI or query trouble, in words for the user."""


class _SessionLost(Exception):
    """efetch says the history session is gone: search again rather than retry the same request."""


@dataclass
class SearchResult:
    """What esearch found; ``batches()`` fetches the records."""

    query: str
    query_translation: str = ""
    count: int = 0  # PubMed's Count for the whole query
    mindate: str = ""
    maxdate: str = ""
    max_records: int | None = None
    parts: int = 1  # date ranges the search was split into
    warnings: list = field(default_factory=list)  # NCBI's ErrorList / WarningList messages
    fetched: int = 0  # records yielded so far (each PMID once)
    renewals: int = 0  # times the history session was lost and the search run again
    _parts: list = field(default_factory=list, repr=False)  # one esearch answer per date range

    @property
    def wanted(self):
        """How many records the batches should bring: every one found, or ``max_records``."""
        return self.count if self.max_records is None else min(self.max_records, self.count)

    def batches(self, progress=None):
        """Yield lists of Article (one per efetch, each PMID once, in PubMed's order) until
        ``wanted`` records have come. ``progress(fetched, hits)`` is called after each batch.
        Raises PubMedError."""
        return _batches(self, progress)

    def stopped_reason(self):
        """Why fewer records were fetched than PubMed found ("" when every one was), in words
        for the search log. Meaningful once ``batches()`` is exhausted."""
        if self.fetched >= self.count:
            return ""
        if self.max_records is not None and self.fetched >= self.max_records:
            return f"stopped at the maximum of {self.max_records:,} records asked for"
        return f"PubMed sent {self.fetched:,} of the {self.count:,} records it found"


@dataclass(frozen=True)
class _Config:
    base_url: str
    email: str
    tool: str
    api_key: str
    connect_timeout: float
    read_timeout: float
    max_tries: int
    backoff: float
    backoff_max: float
    retry_total: float
    batch_size: int

    @property
    def rate(self):
        return 10 if self.api_key else 3

    @property
    def host(self):
        return urlsplit(self.base_url).netloc or self.base_url


def _config():
    """The E-utilities settings, read on every call (never at import). All are optional.

    NCBI_EUTILS_URL, NCBI_EMAIL, NCBI_TOOL, NCBI_API_KEY; NCBI_CONNECT_TIMEOUT and
    NCBI_READ_TIMEOUT (seconds per connection attempt and per read); NCBI_MAX_TRIES,
    NCBI_BACKOFF (first wait, doubled each retry, at most NCBI_BACKOFF_MAX) and
    NCBI_RETRY_TOTAL (seconds after which a failing request is given up); NCBI_BATCH_SIZE
    (records per efetch). With the defaults an unreachable server is given up within 30 s.
    """

    def get(name, default):
        value = getattr(settings, name, None)
        return default if value in (None, "") else value

    base = get("NCBI_EUTILS_URL", NCBI_URL)
    return _Config(
        base_url=base if base.endswith("/") else base + "/",
        email=get("NCBI_EMAIL", ""),
        tool=get("NCBI_TOOL", "sieve"),
        api_key=get("NCBI_API_KEY", ""),
        connect_timeout=float(get("NCBI_CONNECT_TIMEOUT", 5)),
        read_timeout=float(get("NCBI_READ_TIMEOUT", 60)),
        max_tries=int(get("NCBI_MAX_TRIES", 4)),
        backoff=float(get("NCBI_BACKOFF", 1.0)),
        backoff_max=float(get("NCBI_BACKOFF_MAX", 30)),
        retry_total=float(get("NCBI_RETRY_TOTAL", 30)),
        batch_size=int(get("NCBI_BATCH_SIZE", 500)),
    )


# --- Searching ------------------------------------------------------------------------------


def search(query, *, mindate=None, maxdate=None, max_records=None):
    """Search PubMed: a SearchResult with the count and translation, whose ``batches()``
    fetches the records.

    ``mindate``/``maxdate`` limit the publication date (YYYY, YYYY/MM or YYYY/MM/DD);
    ``max_records`` stops after that many. Result sets above 9,999 records are split by
    publication date until each part can be paged through (the parts are searched here, the
    records fetched by the batches), and PMIDs found in two parts (print and electronic dates
    differ) come once. Raises PubMedError.
    """
    query = (query or "").strip()
    if not query:
        raise PubMedError("The PubMed query is empty.")
    if max_records is not None and max_records < 1:
        raise PubMedError("The maximum number of records must be at least 1.")
    low, high = _date_range(mindate, maxdate)
    config = _config()
    if not config.email:
        logger.warning("NCBI_EMAIL is not set: NCBI asks every E-utilities client for a contact e-mail address.")
    first = _esearch(config, query, low, high)
    result = SearchResult(
        query=query,
        query_translation=first["translation"],
        count=first["count"],
        mindate=_format(low, mindate),
        maxdate=_format(high, maxdate),
        max_records=max_records,
        warnings=first["warnings"],
    )
    if first["count"] <= MAX_PER_QUERY or result.wanted <= MAX_PER_QUERY:
        result._parts = [first] if first["count"] else []
    else:
        result._parts = _split(config, query, low or EARLIEST, high or _latest())
    result.parts = max(len(result._parts), 1)
    return result


def _batches(result, progress):
    config = _config()
    result.fetched = 0
    seen = set()  # PMIDs already yielded: a record dated in two parts is found by both
    for part in result._parts:
        start = 0
        while start < min(part["count"], MAX_PER_QUERY) and result.fetched < result.wanted:
            size = min(config.batch_size, min(part["count"], MAX_PER_QUERY) - start, result.wanted - result.fetched)
            try:
                articles = _efetch(config, part, start, size)
            except _SessionLost as lost:
                start = _renew(config, result, part, start, lost)
                continue
            part["renewed_at"] = None
            batch = []
            for article in articles:
                if article.pmid and article.pmid in seen:
                    continue
                seen.add(article.pmid)
                batch.append(article)
            batch = batch[: result.wanted - result.fetched]
            result.fetched += len(batch)
            start += size
            if batch:
                yield batch
            if progress:
                progress(result.fetched, result.count)


def _renew(config, result, part, start, lost):
    """Run the part's esearch again for a new history session; the offset to go on from.

    PubMed may have added or removed records meanwhile. Added ones only push the records not
    yet fetched further down; removed ones may pull them up by as many places, so the fetch goes
    back by that much (the PMIDs fetched twice are dropped by the caller).
    """
    if part.get("renewed_at") == start:
        raise PubMedError(
            f"PubMed's history server lost the search again right after it was run anew, at {lost}. "
            "NCBI may be having trouble; try again later."
        )
    logger.info("PubMed's history server lost the search at %s; searching again.", lost)
    fresh = _esearch(config, result.query, part["low"], part["high"])
    gone = max(part["count"] - fresh["count"], 0)
    if fresh["count"] != part["count"]:
        result.warnings.append(
            f"PubMed's count changed from {part['count']:,} to {fresh['count']:,} while the records were fetched."
        )
    part.update(fresh, renewed_at=max(start - gone, 0))
    result.renewals += 1
    return part["renewed_at"]


def _date_range(mindate, maxdate):
    low = _parse_date(mindate, "start date", first=True)
    high = _parse_date(maxdate, "end date", first=False)
    if low and high and low > high:
        raise PubMedError(f"The start date {mindate} is after the end date {maxdate}.")
    return low, high


def _parse_date(value, what, *, first):
    value = (value or "").strip() if isinstance(value, str) else value
    if not value:
        return None
    if isinstance(value, datetime.date):
        return value
    match = DATE.match(value)
    try:
        if not match:
            raise ValueError
        year, month, day = (int(g) if g else None for g in match.groups())
        if month is None:
            month = 1 if first else 12
        if day is None:
            day = 1 if first else calendar.monthrange(year, month)[1]
        return datetime.date(year, month, day)
    except ValueError:
        raise PubMedError(f"The {what} {value!r} is not a date: use YYYY, YYYY/MM or YYYY/MM/DD.") from None


def _format(day, given):
    # Keep the precision the user gave ("2020" stays "2020"); an empty limit stays empty.
    if not given:
        return ""
    if isinstance(given, str) and DATE.match(given.strip()):
        return given.strip().replace("-", "/")
    return day.strftime("%Y/%m/%d")


def _latest():
    return datetime.date(datetime.date.today().year + FUTURE_YEARS, 12, 31)


def _split(config, query, low, high):
    """esearch parts of [low, high], halved until each holds at most MAX_PER_QUERY records."""
    if low == high:
        raise PubMedError(
            f"PubMed has more than {MAX_PER_QUERY:,} records for this query published on "
            f"{low:%Y/%m/%d} alone, which E-utilities cannot page through. Narrow the query."
        )
    middle = low + (high - low) // 2
    parts = []
    for start, end in ((low, middle), (middle + datetime.timedelta(days=1), high)):
        part = _esearch(config, query, start, end)
        if part["count"] > MAX_PER_QUERY:
            parts.extend(_split(config, query, start, end))
        elif part["count"]:
            parts.append(part)
    return parts


def _esearch(config, query, low, high):
    params = {"db": "pubmed", "term": query, "usehistory": "y", "retmax": 0}
    if low or high:
        params.update(
            datetype="pdat",
            mindate=(low or EARLIEST).strftime("%Y/%m/%d"),
            maxdate=(high or _latest()).strftime("%Y/%m/%d"),
        )
    what = "the search" + (f" ({params['mindate']}-{params['maxdate']})" if low or high else "")

    def call():
        with _entrez(config, Entrez.esearch, **params) as handle:
            return Entrez.read(handle)

    answer = _with_retries(config, what, call)
    warnings = []
    for key in ("ErrorList", "WarningList"):
        for kind, values in (answer.get(key) or {}).items():
            warnings.extend(f"{kind}: {v}" for v in values)
    return {
        "low": low,
        "high": high,
        "count": int(answer["Count"]),
        "webenv": answer.get("WebEnv", ""),
        "query_key": answer.get("QueryKey", ""),
        "translation": answer.get("QueryTranslation", ""),
        "warnings": warnings,
    }


def _efetch(config, part, start, size):
    """The Articles of records start+1 .. start+size of an esearch history set."""
    what = f"records {start + 1}-{start + size}"
    params = {
        "db": "pubmed",
        "WebEnv": part["webenv"],
        "query_key": part["query_key"],
        "retstart": start,
        "retmax": size,
        "retmode": "xml",
    }

    def call():
        # The whole batch is read inside the retry: a connection dropped half-way
        # through the answer is retried like one that failed at once.
        with _entrez(config, Entrez.efetch, **params) as handle:
            try:
                return list(pubmed_xml.parse(handle, name=f"PubMed's answer for {what}"))
            except pubmed_xml.NcbiErrorAnswer as exc:
                if SESSION_LOST.search(exc.error):
                    raise _SessionLost(what) from None
                raise

    return _with_retries(config, what, call)


# --- Requests: rate limit, timeouts, retries ------------------------------------------------


class RateLimiter:
    """At most ``rate`` requests a second across all threads of this process."""

    def __init__(self):
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self, rate):
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + 1.0 / rate
        if slot > now:
            time.sleep(slot - now)


_process_limiter = RateLimiter()


def _limiter():
    """The limiter named by the NCBI_RATE_LIMITER setting (a dotted path to a class whose
    ``wait(rate)`` returns when a request may go), or this process's own RateLimiter. Injected,
    so that this module stays a client that never touches the database."""
    return _limiter_named(getattr(settings, "NCBI_RATE_LIMITER", "") or "")


@functools.lru_cache(maxsize=8)
def _limiter_named(path):
    return import_string(path)() if path else _process_limiter


def _entrez(config, function, **params):
    """Call a Bio.Entrez function against the configured server, once: retries are ours."""
    _install()
    if config.api_key:
        params["api_key"] = config.api_key
    # Passed with each call rather than set on the module: two threads may search at once.
    params.update(email=config.email or None, tool=config.tool)
    # Biopython keeps its own, process-global and unlocked, request spacing; ours governs.
    Entrez._open.previous = 0
    return contextlib.closing(function(**params))


def _install():
    # Biopython retries failures itself, instantly or after 15 s, and hard-codes NCBI's URL
    # with no timeout. One try each, and our urlopen to redirect and time out.
    Entrez.max_tries = 1
    Entrez.sleep_between_tries = 0
    Entrez.urlopen = _urlopen


def _urlopen(request, *args, **kwargs):
    config = _config()
    if request.full_url.startswith(NCBI_URL):
        request.full_url = config.base_url + request.full_url[len(NCBI_URL) :]
    return _opener(config.read_timeout).open(request, timeout=config.connect_timeout)


@functools.lru_cache(maxsize=8)
def _opener(read_timeout):
    return urllib.request.build_opener(_HTTPHandler(read_timeout), _HTTPSHandler(read_timeout))


def _with_read_timeout(connection_class):
    class Connection(connection_class):
        # urllib has one timeout; connect with it, then wait this long for each read.
        def __init__(self, *args, read_timeout, **kwargs):
            super().__init__(*args, **kwargs)
            self.read_timeout = read_timeout

        def connect(self):
            super().connect()
            self.sock.settimeout(self.read_timeout)

    return Connection


_HTTPConnection = _with_read_timeout(http.client.HTTPConnection)
_HTTPSConnection = _with_read_timeout(http.client.HTTPSConnection)


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, read_timeout):
        super().__init__()
        self.read_timeout = read_timeout

    def http_open(self, req):
        return self.do_open(functools.partial(_HTTPConnection, read_timeout=self.read_timeout), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, read_timeout):
        super().__init__()
        self.read_timeout = read_timeout

    def https_open(self, req):
        connection = functools.partial(_HTTPSConnection, read_timeout=self.read_timeout)
        return self.do_open(connection, req, context=self._context)


RETRY_STATUS = {429, 500, 502, 503, 504}


def _with_retries(config, what, call):
    """Run ``call`` (one request and reading its answer), retrying what may pass.

    429 and 5xx answers, timeouts, dropped connections and garbled answers are retried with
    exponential back-off (or the server's Retry-After, if longer) until ``max_tries`` or
    ``retry_total`` seconds run out. An unknown host fails at once: that is being offline.
    """
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        _limiter().wait(config.rate * RATE_HEADROOM)
        retry_after = 0.0
        try:
            return call()
        except HTTPError as exc:
            if exc.code not in RETRY_STATUS:
                message = _refused(config, what, exc)
                exc.close()
                raise PubMedError(message) from exc
            exc.close()
            retry_after = _retry_after(exc.headers)
            failure = f"PubMed at {config.host} kept failing on {what}: HTTP {exc.code} {exc.reason}"
            if retry_after:
                failure += f" (asked to wait {retry_after:.0f} s)"
            advice = "NCBI may be busy or down; try again later."
        except (URLError, OSError, http.client.HTTPException) as exc:
            failure = f"PubMed could not be reached at {config.host}: {_reason(exc)}"
            advice = "Check the network connection and try again."
            if _unreachable(exc):
                raise PubMedError(f"{failure}. {advice}") from exc
        except (ImportFileError, RuntimeError, ValueError) as exc:
            # Bio.Entrez raises RuntimeError for NCBI's <ERROR> answers ("Search Backend failed")
            # and ValueError subclasses for answers that are not (complete) XML.
            failure = f"PubMed sent an answer that could not be read for {what}: {exc}"
            advice = "NCBI may be having trouble; try again later."
        delay = max(min(config.backoff * 2 ** (attempt - 1), config.backoff_max), retry_after)
        elapsed = time.monotonic() - started
        if attempt >= config.max_tries or elapsed + delay > config.retry_total:
            tries = f"{attempt} attempt{'s' if attempt > 1 else ''} in {elapsed:.1f} s"
            raise PubMedError(f"{failure} ({tries}). {advice}")
        time.sleep(delay)


def _refused(config, what, exc):
    try:
        body = exc.read(500).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):  # the body is only a hint for the message
        body = ""
    body = " ".join(body.split())
    return f"PubMed at {config.host} refused {what}: HTTP {exc.code} {exc.reason}" + (f" ({body})." if body else ".")


def _retry_after(headers):
    value = (headers or {}).get("Retry-After")
    if not value:
        return 0.0
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max((when - datetime.datetime.now(datetime.UTC)).total_seconds(), 0.0)


def _reason(exc):
    while isinstance(exc, URLError) and not isinstance(exc, HTTPError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    if isinstance(exc, URLError):
        return str(exc.reason)
    if isinstance(exc, TimeoutError):  # socket.timeout too
        return "timed out"
    return str(exc) or exc.__class__.__name__


def _unreachable(exc):
    reason = exc.reason if isinstance(exc, URLError) else exc
    if isinstance(reason, socket.gaierror):
        return True  # no DNS: offline, or a mistyped NCBI_EUTILS_URL
    return isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)


# --- PubMed Central: open-access full texts -------------------------------------------------

# PMIDs per elink request: each goes as its own id= parameter, so that the answer maps every
# PMID to its own links (a comma-joined list would mix them); Biopython POSTs a long list.
ELINK_BATCH = 200
PMC_OA_URL = "https://www.ncbi.nlm.nih.gov/pmc/utils/oa/oa.fcgi"
# Where PMC's OA service may send us for a PDF (its links name NCBI's FTP server, by ftp://).
PMC_PDF_HOSTS = ("ftp.ncbi.nlm.nih.gov", "www.ncbi.nlm.nih.gov", "pmc.ncbi.nlm.nih.gov")
PMCID = re.compile(r"^PMC\d{1,12}$")
PDF_MAGIC = b"%PDF-"


@dataclass
class PmcPdf:
    """What PMC's OA service gave for one article: the PDF's bytes, or why there are none."""

    pmcid: str
    content: bytes = b""
    note: str = ""  # why there is no PDF, in words for the user
    license: str = ""


def pmc_links(pmids, *, progress=None):
    """``{pmid: "PMC…"}`` for the PMIDs PubMed links to a PubMed Central article (elink
    pubmed -> pmc, linkname pubmed_pmc), ELINK_BATCH PMIDs a request; PMIDs without a PMC
    article are left out. ``progress(done, total)`` after each request. Raises PubMedError."""
    wanted = list(dict.fromkeys(str(p).strip() for p in pmids if str(p).strip().isdigit()))
    config = _config()
    found = {}
    for start in range(0, len(wanted), ELINK_BATCH):
        chunk = wanted[start : start + ELINK_BATCH]
        what = f"the PubMed Central links of {len(chunk)} PMID{'s' if len(chunk) > 1 else ''} (from {chunk[0]})"

        def call(chunk=chunk):
            params = {"dbfrom": "pubmed", "db": "pmc", "linkname": "pubmed_pmc", "id": chunk}
            with _entrez(config, Entrez.elink, **params) as handle:
                return Entrez.read(handle)

        for linkset in _with_retries(config, what, call):
            ids = [str(i) for i in linkset.get("IdList") or []]
            if len(ids) != 1 or ids[0] not in chunk:
                continue  # not a one-to-one answer: nothing can be told apart
            for db in linkset.get("LinkSetDb") or []:
                links = [str(link["Id"]) for link in db.get("Link") or []]
                if db.get("LinkName") == "pubmed_pmc" and links:
                    found[ids[0]] = "PMC" + links[0].removeprefix("PMC")
        if progress:
            progress(min(start + ELINK_BATCH, len(wanted)), len(wanted))
    return found


def pmc_pdf(pmcid, *, max_size):
    """The PDF PubMed Central's OA web service offers for ``pmcid`` (a PmcPdf whose ``note`` says
    why there is none: not in the open-access subset, no PDF, too big, not a PDF). Raises
    PubMedError when PMC cannot be reached or keeps failing."""
    if not PMCID.match(pmcid or ""):
        raise PubMedError(f"{pmcid!r} is not a PubMed Central id (PMC followed by digits).")
    config = _config()
    oa_url = getattr(settings, "NCBI_PMC_OA_URL", "") or PMC_OA_URL
    query = urllib.parse.urlencode({"id": pmcid, "format": "pdf"})

    def ask():
        with _open(config, f"{oa_url}?{query}") as answer:
            return answer.read(1024 * 1024)

    body = _with_retries(config, f"PMC's open-access service for {pmcid}", ask)
    try:
        root = ET.fromstring(body)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise PubMedError(
            f"PMC's open-access service sent an answer that could not be read for {pmcid}: {exc}"
        ) from None
    error = root.find("error")
    if error is not None:
        code = error.get("code", "")
        if code == "idIsNotOpenAccess":
            return PmcPdf(pmcid, note="not in PMC's open-access subset: read it on PMC")
        return PmcPdf(pmcid, note=f"PMC's open-access service: {(error.text or code).strip()}")
    record = root.find("records/record")
    if record is None:
        return PmcPdf(pmcid, note="PMC's open-access service knows no such article")
    link = record.find("link[@format='pdf']")
    if link is None or not link.get("href"):
        return PmcPdf(
            pmcid, note="PMC offers no PDF of it (only its article package)", license=record.get("license", "")
        )
    href = _pdf_url(link.get("href"), oa_url)
    if href is None:
        return PmcPdf(pmcid, note=f"PMC's PDF link points outside NCBI ({link.get('href')[:100]})")

    def download():
        with _open(config, href) as answer:
            return answer.read(max_size + 1)

    content = _with_retries(config, f"the PDF of {pmcid}", download)
    license = record.get("license", "")
    if len(content) > max_size:
        return PmcPdf(pmcid, note=f"its PDF is larger than the {max_size // (1024 * 1024)} MB allowed", license=license)
    if not content.startswith(PDF_MAGIC):
        return PmcPdf(pmcid, note="what PMC sent as its PDF is not a PDF", license=license)
    return PmcPdf(pmcid, content=content, license=license)


def _pdf_url(href, oa_url):
    """The https URL to download ``href`` from, or None when it leads away from NCBI (or the
    configured OA service's host, for a stand-in)."""
    parts = urlsplit(href)
    allowed = {*PMC_PDF_HOSTS, urlsplit(oa_url).hostname}
    if parts.hostname not in allowed:
        return None
    if parts.scheme == "ftp":
        return urllib.parse.urlunsplit(("https", parts.netloc, parts.path, "", ""))
    if parts.scheme in ("http", "https"):
        return href
    return None


def _open(config, url):
    """One GET of ``url`` (not an E-utility: PMC's OA service or a PDF) with our timeouts."""
    request = urllib.request.Request(
        url, headers={"User-Agent": f"{config.tool} (urllib; {config.email or 'no e-mail'})"}
    )
    return contextlib.closing(_opener(config.read_timeout).open(request, timeout=config.connect_timeout))
