"""Which database and which platform an export came from, told from the file's own content.

PRISMA's "Records identified from" names databases (APA PsycInfo, MEDLINE, EconLit...) and
PRISMA-S item 1 the platform that was searched (Ovid, EBSCOhost...). Exports name them in
their own codes: EBSCOhost writes ``DB  - psyh``, Ovid links carry ``D=medp``, Dimensions and
Lens name neither and only link to their own sites. Pure functions over the first bytes.
"""

import re
from collections import Counter
from urllib.parse import parse_qs, urlsplit

CENTRAL = "Cochrane Central Register of Controlled Trials"
# EBSCOhost's database codes ("DB  - psyh", "...login.aspx?direct=true&db=psyh&AN=...").
EBSCO_DATABASES = {
    "psyh": "APA PsycInfo",
    "pdh": "APA PsycArticles",
    "pzh": "APA PsycBooks",
    "pxh": "APA PsycExtra",
    "i3h": "Criminal Justice Abstracts",
    "cja": "Criminal Justice Abstracts",
    "ecn": "EconLit",
    "eoh": "EconLit with Full Text",
    "cmedm": "MEDLINE",
    "mdc": "MEDLINE Complete",
    "mnh": "MEDLINE with Full Text",
    "rzh": "CINAHL",
    "jlh": "CINAHL Plus with Full Text",
    "eric": "ERIC",
    "ehh": "Education Research Complete",
    "a9h": "Academic Search Complete",
    "aph": "Academic Search Premier",
    "asn": "Academic Search Ultimate",
    "bth": "Business Source Premier",
    "buh": "Business Source Complete",
    "sih": "SocINDEX",
    "sxi": "SocINDEX with Full Text",
    "sph": "SPORTDiscus",
    "s3h": "SPORTDiscus with Full Text",
    "lxh": "Library, Information Science & Technology Abstracts",
    "8gh": "GreenFILE",
    "amed": "AMED",
    "hch": "Health Source: Nursing/Academic Edition",
    "mth": "MasterFILE Premier",
    "e000xna": "eBook Collection (EBSCOhost)",
    "nlebk": "eBook Collection (EBSCOhost)",
}
# Ovid's database codes, matched as prefixes of the link's D= value ("psyc16", "medp", "emed18").
OVID_DATABASES = [
    ("medall", "MEDLINE"),
    ("medp", "MEDLINE"),
    ("medl", "MEDLINE"),
    ("med", "MEDLINE"),
    ("prem", "MEDLINE"),
    ("mesz", "MEDLINE"),
    ("ppez", "MEDLINE"),
    ("oemezd", "Embase"),
    ("emed", "Embase"),
    ("emez", "Embase"),
    ("emex", "Embase"),
    ("psyc", "APA PsycInfo"),
    ("coch", "Cochrane Database of Systematic Reviews"),
    ("cctr", "Cochrane Central Register of Controlled Trials"),
    ("clcmr", "Cochrane Methodology Register"),
    ("clhta", "Health Technology Assessment Database"),
    ("cleed", "NHS Economic Evaluation Database"),
    ("dare", "Database of Abstracts of Reviews of Effects"),
    ("amed", "AMED"),
    ("hmic", "HMIC"),
    ("cagh", "Global Health"),
    ("econ", "EconLit"),
    ("eric", "ERIC"),
]
# Database names as exports spell them (DB/DP tags, Ovid's "DB  - Ovid MEDLINE(R) ALL"), by keyword.
NAMED_DATABASES = [
    (re.compile(r"\bmedline\b", re.I), "MEDLINE"),
    (re.compile(r"\bembase\b", re.I), "Embase"),
    (re.compile(r"\bpsyc ?info\b", re.I), "APA PsycInfo"),
    (re.compile(r"\bcinahl\b", re.I), "CINAHL"),
    (re.compile(r"\beconlit\b", re.I), "EconLit"),
    (re.compile(r"^eric$", re.I), "ERIC"),
    (re.compile(r"\bcochrane central\b|^central$", re.I), CENTRAL),
    (re.compile(r"\bscopus\b", re.I), "Scopus"),
    (re.compile(r"\bweb of science\b|\bwos\b", re.I), "Web of Science"),
    (re.compile(r"^(?:nlm|pubmed)$", re.I), "PubMed"),
    (re.compile(r"\bdimensions\b", re.I), "Dimensions"),
    (re.compile(r"\blens(?:\.org)?\b", re.I), "Lens"),
]
# Platforms by the hosts of the records' links, and by the DP/DB names.
PLATFORM_HOSTS = [
    ("ovidsp.", "Ovid"),
    ("ovid.com", "Ovid"),
    ("ebscohost.com", "EBSCOhost"),
    ("lens.org", "Lens"),
    ("dimensions.ai", "Dimensions"),
    ("pubmed.ncbi.nlm.nih.gov", "PubMed"),
    ("ncbi.nlm.nih.gov/pubmed", "PubMed"),
    ("scopus.com", "Scopus"),
    ("webofscience", "Web of Science"),
    ("webofknowledge", "Web of Science"),
    ("isiknowledge", "Web of Science"),
    ("proquest.com", "ProQuest"),
    ("sid=proq", "ProQuest"),
    ("embase.com", "Embase.com"),
    ("cochranelibrary.com", "Cochrane Library"),
]
PLATFORM_NAMES = [
    (re.compile(r"^ovid\b", re.I), "Ovid"),
    (re.compile(r"\bebsco", re.I), "EBSCOhost"),
    (re.compile(r"\bproquest\b", re.I), "ProQuest"),
    (re.compile(r"^(?:nlm|pubmed)$", re.I), "PubMed"),
    (re.compile(r"^scopus$", re.I), "Scopus"),
    (re.compile(r"^dimensions$", re.I), "Dimensions"),
    (re.compile(r"^(?:the )?lens(?:\.org)?$", re.I), "Lens"),
]
# Platforms that serve one database of their own name: the database is the platform.
SINGLE_DATABASE = {"PubMed", "Scopus", "Web of Science", "Dimensions", "Lens"}
# Hosts of many databases: the label names both ("APA PsycInfo (Ovid)").
HOSTS = {"Ovid", "EBSCOhost", "ProQuest"}

_RIS_LINE = re.compile(r"^([A-Z][A-Z0-9])  - ?(.*?)\s*$", re.M)
_RECORD_START = re.compile(r"^TY  -", re.M)


def label(database: str, platform: str) -> str:
    """The one-line source name: 'APA PsycInfo (Ovid)', 'Embase', 'Lens'."""
    if database and platform in HOSTS and platform not in database:
        return f"{database} ({platform})"
    return database or platform


def ebsco_database(code: str) -> str:
    return EBSCO_DATABASES.get(code.strip().lower(), code.strip())


def ovid_database(code: str) -> str:
    code = code.strip().lower()
    return next((name for prefix, name in OVID_DATABASES if code.startswith(prefix)), "")


def named_database(text: str) -> str:
    text = text.strip()
    return next((name for pattern, name in NAMED_DATABASES if pattern.search(text)), "")


def platform_of(*texts) -> str:
    """The platform a DP/DB name or a link names, or ''."""
    for text in texts:
        text = (text or "").strip()
        name = next((n for pattern, n in PLATFORM_NAMES if pattern.search(text)), "")
        lowered = text.lower()
        name = name or next((n for host, n in PLATFORM_HOSTS if host in lowered), "")
        if name:
            return name
    return ""


def ris_source(text: str) -> tuple[str, str]:
    """(database, platform) of an RIS export, judged record by record over its first records."""
    databases, platforms = Counter(), Counter()
    records = _RECORD_START.split(text)[1:] or [text]
    for record in records:
        database, platform = _record_source(record)
        if database:
            databases[database] += 1
        if platform:
            platforms[platform] += 1
    platform = _most(platforms, len(records))
    database = ", ".join(name for name, _ in databases.most_common(3)) if databases else ""
    if not database and platform in SINGLE_DATABASE:
        database = platform
    if "Embase" in databases:  # Embase.com writes "DB  - Medline" too, for records also in MEDLINE
        database = "Embase"
    return database, platform


def _most(counts, records):
    """The platform most records show, when at least half of them show it."""
    if not counts:
        return ""
    name, count = counts.most_common(1)[0]
    return name if count * 2 >= records else ""


def _record_source(record):
    tags = {}
    for tag, value in _RIS_LINE.findall(record):
        if value:
            tags.setdefault(tag, []).append(value)
    links = tags.get("UR", []) + tags.get("L2", []) + tags.get("L1", [])
    if any(a.startswith("WOS:") for a in tags.get("AN", [])):
        return "Web of Science", "Web of Science"
    if any(i.startswith("CN-") for i in tags.get("ID", [])):  # Cochrane Library's RIS of CENTRAL records
        return CENTRAL, "Cochrane Library"
    names = tags.get("DB", []) + tags.get("DP", [])
    platform = platform_of(*names) or platform_of(*links, *tags.get("N1", []))
    database = ""
    for link in links:
        database = database or _database_in_link(link)
    if platform == "EBSCOhost":
        database = database or next((ebsco_database(n) for n in tags.get("DB", []) if n.islower()), "")
    named = [n for n in (named_database(v) for v in names) if n]
    database = database or ("Embase" if "Embase" in named else (named[0] if named else ""))
    # A database we do not know ("DB  - PTSDpubs" from ProQuest) is named as written.
    unknown = [n for n in tags.get("DB", []) if not platform_of(n)]
    return database or (unknown[0] if unknown else ""), platform


def _database_in_link(link):
    """The database an Ovid (D=psyc16) or EBSCOhost (db=psyh) link names."""
    for url in re.findall(r"(?=(https?://\S+))", link):
        parts = urlsplit(url)
        query = {k.lower(): v for k, v in parse_qs(parts.query + "&" + parts.fragment).items()}
        host = parts.netloc.lower()
        if "ovid" in host and query.get("d"):
            return ovid_database(query["d"][0])
        if "ebscohost" in host and query.get("db"):
            return ebsco_database(query["db"][0])
    return ""


def table_source(keys: set[str]) -> tuple[str, str]:
    """(database, platform) of a table export, from its normalised column names."""
    if any(k.startswith("emtree") for k in keys):
        return "Embase", ""
    if "eid" in keys and "sourcetitle" in keys:
        return "Scopus", "Scopus"
    if "ut" in keys or "utuniquewosid" in keys:
        return "Web of Science", "Web of Science"
    if "lensid" in keys:
        return "Lens", "Lens"
    if "dimensionsurl" in keys or ("publicationid" in keys and "pubmedid" in keys):
        return "Dimensions", "Dimensions"
    if {"pmid", "citation", "createdate"} <= keys:
        return "PubMed", "PubMed"
    return "", ""
