"""Pure functions for duplicate detection: normalised keys and similarity (no ORM here).

Two records are the same work when an identifier says so (PMID, DOI: the import workflow looks
those up first), or when ``difference`` finds nothing that separates them. Each rule below is
named after what it looks at, and ``bench/dedup.py`` lists it with the real pair that motivates
it; see bench/README.md, "Deduplication".
"""

import re
import unicodedata
from urllib.parse import unquote

from rapidfuzz import fuzz

_DOI_PREFIX = re.compile(r"^(?:https?://)?(?:dx\.)?(?:doi\.org/)?(?:doi:\s*)?", re.I)
# Registrant codes are four or more digits in practice; shorter ones ("10.3") still name the same
# thing in two records of one file, so they are kept.
_DOI_SHAPE = re.compile(r"^10\.\d+(?:/\S+)?$")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_TAG = re.compile(r"<[^>]+>")
_NON_DIGIT = re.compile(r"\D")
_DIGITS = re.compile(r"\d+")
_PARENTHESISED = re.compile(r"\([^)]*\)")
AUTHOR_THRESHOLD = 80
TITLE_THRESHOLD = 95
# Online-first and print years differ by one as a rule, by two or three when a journal's backlog
# is long; beyond one year the journal (and volume/pages) must say it is the same article.
YEAR_SLACK = 1
ONLINE_FIRST_SLACK = 3
# A title this short ("Poster Presentations", "Letter to the editor") names a topic, not a
# report: without authors it needs the same year and journal as well.
SHORT_TITLE_WORDS = 4

# Rules, in the order ``difference`` applies them (the name is what it returns).
DIFFERENT_DOI = "different DOIs"
NO_TITLE = "no title"
TITLE = "titles differ"
TITLE_MARKERS = "title differs in a number, sex, age group, part/phase/wave or report kind"
AUTHOR = "first authors differ"
SHORT_TITLE = "short title without authors, in another year or journal"
YEAR = "years too far apart"
VOLUME = "different volume"
ISSUE = "same volume, different issue"
PAGES = "different first page"


def normalise_doi(doi: str) -> str:
    """'https://doi.org/10.1000/ABC.' -> '10.1000/abc'; '' when it is not a DOI."""
    if not doi:
        return ""
    value = unquote(doi.strip())
    value = _DOI_PREFIX.sub("", value).strip().rstrip(".,;").lower()
    return value if _DOI_SHAPE.match(value) else ""


def _fold(text: str) -> str:
    if text.isascii():  # most titles and names: nothing to fold (a third of an import's dedup time)
        return text.lower()
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c)).lower()


def normalise_title(title: str) -> str:
    """Lower case, accents folded, HTML tags and punctuation dropped, spaces collapsed."""
    if not title:
        return ""
    text = _fold(_TAG.sub(" ", title) if "<" in title else title)
    text = _NON_WORD.sub(" ", text).strip()
    return text[:500]


def normalise_pmid(pmid: str) -> str:
    text = str(pmid or "")
    digits = text if text.isdigit() and text.isascii() else _NON_DIGIT.sub("", text)
    return digits.lstrip("0")


def _is_initials(token: str) -> bool:
    letters = token.replace(".", "").replace("-", "")
    return 0 < len(letters) <= 4 and letters.isalpha() and letters.isupper()


# Degrees and titles some sources put around a name ('F.A.C.P. Stephen D. Silberstein M.D.').
_NAME_NOISE = frozenset(
    [
        "md",
        "phd",
        "ms",
        "msc",
        "bsc",
        "mph",
        "rn",
        "facp",
        "frcp",
        "frcpc",
        "otr",
        "dr",
        "prof",
        "mr",
        "mrs",
        "jr",
        "sr",
    ]
)


def author_key(authors) -> str:
    """The first author's surname, normalised, for fuzzy comparison.

    'van de Schoot, Rens', 'Rens van de Schoot', 'van de Schoot R' and 'R. van de Schoot' all
    give 'schoot' (the surname's last word: particles are written apart or together by tools).
    """
    if not authors:
        return ""
    first = authors[0].strip()
    if "," in first:
        surname = first.split(",")[0]
    else:
        tokens = [t for t in first.split() if re.sub(r"[^a-z]", "", t.lower()) not in _NAME_NOISE]
        while len(tokens) > 1 and _is_initials(tokens[-1]):
            tokens.pop()  # 'Smith JA' (MEDLINE): the initials follow the surname
        surname = tokens[-1] if tokens else ""
    words = normalise_title(surname).split()
    return words[-1] if words else ""


# -- Title markers: words that tell two reports of one study apart ------------------------------

_NUMBER_WORDS = {
    word: n
    for n, words in enumerate(
        [
            (),
            ("one", "first", "single"),
            ("two", "second", "twice", "double"),
            ("three", "third"),
            ("four", "fourth"),
            ("five", "fifth"),
            ("six", "sixth"),
            ("seven", "seventh"),
            ("eight", "eighth"),
            ("nine", "ninth"),
            ("ten", "tenth"),
            ("eleven", "eleventh"),
            ("twelve", "twelfth"),
        ]
    )
    for word in words
}
_NUMBER_WORDS.update({"fifteen": 15, "eighteen": 18, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50})
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "x": 10}
# Words after which a roman numeral or a single letter numbers a report ('Part II', 'Study B').
_SERIES = frozenset(
    [
        "part",
        "parts",
        "phase",
        "wave",
        "stage",
        "study",
        "studies",
        "trial",
        "type",
        "grade",
        "class",
        "cycle",
        "round",
        "paper",
        "section",
        "volume",
        "series",
        "report",
        "experiment",
        "cohort",
        "arm",
        "level",
        "step",
        "period",
        "book",
        "chapter",
        "session",
        "visit",
    ]
)
_GROUPS = {
    "sex:female": ["women", "woman", "female", "females", "wives"],
    "sex:male": ["men", "man", "male", "males", "husbands"],
    "sex:girl": ["girls", "girl"],
    "sex:boy": ["boys", "boy"],
    "parent:mother": ["mothers", "mother", "maternal"],
    "parent:father": ["fathers", "father", "paternal"],
    "age:child": ["children", "child", "childhood", "paediatric", "pediatric", "kids", "school", "schoolchildren"],
    "age:adolescent": ["adolescents", "adolescent", "adolescence", "youth", "teenagers", "teens"],
    "age:infant": ["infants", "infant", "neonates", "neonatal", "newborn", "newborns", "preterm", "toddlers"],
    "age:adult": ["adults", "adult"],
    "age:older": ["elderly", "older", "aged", "geriatric"],
    "kind:protocol": ["protocol", "rationale"],
    "kind:design": ["design"],
    "kind:plan": ["plan"],
    "kind:baseline": ["baseline"],
    "kind:interim": ["interim", "preliminary"],
    "kind:final": ["final"],
    "kind:pilot": ["pilot", "feasibility"],
    "kind:extension": ["extension"],
    "kind:update": ["update", "updated"],
    "kind:secondary": ["secondary"],
    "kind:posthoc": ["hoc"],
    "kind:long": ["long"],
    "kind:short": ["short"],
    "kind:erratum": ["erratum", "errata", "corrigendum", "correction", "corrections"],
    "kind:retraction": ["retraction", "retracted", "withdrawn"],
    "kind:comment": ["comment", "comments", "commentary", "reply", "response", "letter", "editorial"],
    "kind:abstract": ["abstract", "abstracts"],
    "kind:without": ["without"],
}
# 'Cardiovascular' vs 'Noncardiovascular disease outcomes during 6.8 years of hormone therapy'
# (Hulley 2002, two JAMA papers): a negated word makes another report.
# 'Non-randomised' and 'nonrandomised' (hyphen kept or dropped by the tool) give the same marker;
# 'in' is left out: it is a preposition far more often than a negation.
_NEGATIONS = ("non", "un", "anti")


_NEGATION_INITIALS = frozenset(prefix[0] for prefix in _NEGATIONS)
# A word starting like a negation, searched in C: most titles have none, and skip the word loop.
_NEGATION_START = re.compile(r"(?<!\S)(?:" + "|".join(_NEGATIONS) + ")")


def _negations(tokens):
    for position, token in enumerate(tokens):
        if token[:1] not in _NEGATION_INITIALS:
            continue  # most words: no prefix can match
        for prefix in _NEGATIONS:
            if token == prefix and position + 1 < len(tokens):
                yield f"not:{tokens[position + 1]}"
            elif token.startswith(prefix) and len(token) > len(prefix) + 3:
                yield f"not:{token[len(prefix) :]}"


_GROUP_OF = {word: group for group, words in _GROUPS.items() for word in words}
# Every word that is a marker whatever precedes it: any other alphabetic word is one only as a
# single letter after a series word ('Study B'), so ``title_markers`` passes it by.
_MARKER_WORDS = frozenset(_NUMBER_WORDS) | frozenset(_ROMAN) | frozenset(_GROUP_OF)


def title_markers(title_norm: str) -> tuple:
    """What in a (normalised) title tells one report of a study from another, as sorted tokens.

    'A 12-month follow-up of X in women, part II' -> ('n:12', 'n:2', 'sex:female'). Digits,
    number words and ordinals, roman numerals and letters after 'part'/'phase'/'wave'..., sex and
    age groups, and report kinds (protocol, design, interim/final, erratum, comment, reply, ...).
    """
    tokens = title_norm.split()
    found = []
    for position, token in enumerate(tokens):
        if token.isalpha() and token not in _MARKER_WORDS and (len(token) > 1 or position == 0):
            continue  # most words (a single letter is a marker only after a series word)
        after_series = position > 0 and tokens[position - 1] in _SERIES
        # An alphabetic token holds no digit: only the others are searched for numbers.
        if not token.isalpha() and (token.isdigit() or any(c.isdigit() for c in token)):
            found.extend(f"n:{int(digits)}" for digits in _DIGITS.findall(token))
        elif token in _NUMBER_WORDS:
            found.append(f"n:{_NUMBER_WORDS[token]}")
        elif token in _ROMAN and (after_series or len(token) > 1):  # 'i', 'v', 'x' alone are letters
            found.append(f"n:{_ROMAN[token]}")
        elif after_series and len(token) == 1:
            found.append(f"id:{token}")
        elif token in _GROUP_OF:
            found.append(_GROUP_OF[token])
    if title_norm.startswith("review of "):
        found.append("kind:bookreview")
    if _NEGATION_START.search(title_norm):
        found.extend(_negations(tokens))
    # Counted, not a set: 'HAVEN 1 ... phase I' and 'HAVEN 1 ... phase II' both hold a 1 and a 2.
    return tuple(sorted(found))


# -- Journal, volume, issue, pages --------------------------------------------------------------

_JOURNAL_STOP = frozenset(["the", "of", "and", "for", "in", "on", "de", "la"])


def journal_key(journal: str) -> tuple:
    """'The British Journal of Psychiatry', 'Br J Psychiatry' -> word tuples compared by
    ``journals_match``; a parenthesised place or edition ('BMJ (Clinical research ed.)') and a
    subtitle after ':' are dropped."""
    if not journal:
        return ()
    text = (_PARENTHESISED.sub(" ", journal) if "(" in journal else journal).split(":")[0]
    return tuple(word for word in normalise_title(text).split() if word not in _JOURNAL_STOP)


def _abbreviates(short: str, word: str) -> bool:
    """'natl' abbreviates 'national', 'psychol' 'psychology': same first letter, in order."""
    if short == word:
        return True
    if not short or not word or short[0] != word[0] or len(short) > len(word):
        return False
    rest = iter(word)
    return all(letter in rest for letter in short)


def journals_match(a: tuple, b: tuple):
    """True when two journal keys name the same journal (full name, ISO abbreviation, acronym, or
    without its subtitle), False when they clearly differ, None when either is unknown."""
    if not a or not b:
        return None
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    if len(short) == 1 and len(long) > 1 and short[0] == "".join(word[0] for word in long):
        return True  # 'JAMA', 'BMJ'
    return _abbreviates_name(short, long)


def _abbreviates_name(short, long):
    """Each word of ``short`` abbreviates the next words of ``long`` in order, at most one word
    of ``long`` left out on the way ('Am J Health Syst Pharm' for 'American Journal of
    Health-System Pharmacy'); the words after the last match are a subtitle ('Seizure' for
    'Seizure: European Journal of Epilepsy')."""
    skipped, position = 0, 0
    for word in short:
        while position < len(long) and not (_abbreviates(word, long[position]) or _abbreviates(long[position], word)):
            position += 1
            skipped += 1
        if position == len(long):
            return False
        position += 1
    return skipped <= 1


def _first_number(value: str) -> str:
    match = _DIGITS.search(value or "")
    return match.group().lstrip("0") if match else ""


def volume_key(volume: str) -> str:
    return _first_number(volume)


def page_key(pages: str) -> str:
    """The first page's number: '97-105' -> '97', 'S105' -> '105', 'e0086394' and 'e86394' ->
    '86394' (tools drop the 'S' of a supplement page or an e-locator's zeros, not its digits)."""
    return _first_number(pages)


def candidate(*, pmid="", doi_norm="", title_norm="", year=None, authors=(), journal="", volume="", issue="", pages=""):
    """What deduplication compares of one record, computed once per record."""
    return {
        "pmid": pmid,
        "doi_norm": doi_norm,
        "title_norm": title_norm,
        "year": year,
        "author": author_key(authors),
        "markers": title_markers(title_norm),
        "journal": journal_key(journal),
        "volume": volume_key(volume),
        "issue": _first_number(issue),
        "pages": page_key(pages),
    }


def _publication_difference(a: dict, b: dict) -> str:
    """Volume, issue and first page, compared when both records have them. Also across journal
    names that do not match: tools spell one journal in ways no rule foresees, and the volume
    and pages still agree; an article and its conference abstract (same title, authors and year)
    do not."""
    if a["volume"] and b["volume"] and a["volume"] != b["volume"]:
        return VOLUME
    if a["volume"] == b["volume"] and a["issue"] and b["issue"] and a["issue"] != b["issue"]:
        return ISSUE
    if a["pages"] and b["pages"] and a["pages"] != b["pages"]:
        return PAGES
    return ""


def _online_first(a: dict, b: dict) -> bool:
    """Years two or three apart are one article when the journal is the same and one record has no
    volume or pages yet (online ahead of print), or both have the same volume and first page."""
    if not journals_match(a["journal"], b["journal"]) or not (a["author"] and b["author"]):
        return False
    ahead_of_print = not (a["volume"] or a["pages"]) or not (b["volume"] or b["pages"])
    same_place = a["volume"] == b["volume"] and a["pages"] == b["pages"]
    return ahead_of_print or same_place


def _year_difference(a: dict, b: dict) -> str:
    if a["year"] is None or b["year"] is None:
        return ""
    gap = abs(int(a["year"]) - int(b["year"]))
    if gap <= YEAR_SLACK or (gap <= ONLINE_FIRST_SLACK and _online_first(a, b)):
        return ""
    return YEAR


def _not_one_issue(a: dict, b: dict) -> bool:
    """For a short title without authors ('Poster Presentations' in Haemophilia 2018 and 2019;
    four records titled 'Post-traumatic stress disorder' with neither year nor journal): only the
    same known year, in a journal that does not differ, lets the title speak for itself."""
    if a["year"] is None or a["year"] != b["year"]:
        return True
    return journals_match(a["journal"], b["journal"]) is False


def difference(a: dict, b: dict) -> str:
    """Why two candidates (from ``candidate``) are different reports, or '' when they are the
    same work by title, year, first author and publication details."""
    if a["doi_norm"] and b["doi_norm"] and a["doi_norm"] != b["doi_norm"]:
        # Equal titles with different DOIs: a conference abstract and the article, a letter and
        # its correction.
        return DIFFERENT_DOI
    if not a["title_norm"] or not b["title_norm"]:
        return NO_TITLE
    if a["title_norm"] != b["title_norm"] and fuzz.ratio(a["title_norm"], b["title_norm"]) < TITLE_THRESHOLD:
        return TITLE
    if a["markers"] != b["markers"]:
        return TITLE_MARKERS
    authors_known = a["author"] and b["author"]
    if authors_known and fuzz.ratio(a["author"], b["author"]) < AUTHOR_THRESHOLD:
        return AUTHOR
    if not authors_known and len(a["title_norm"].split()) <= SHORT_TITLE_WORDS and _not_one_issue(a, b):
        return SHORT_TITLE
    return _year_difference(a, b) or _publication_difference(a, b)


def same_work(a: dict, b: dict) -> bool:
    """Title+year+first-author match between two candidates, with nothing that tells them apart."""
    return not difference(a, b)
