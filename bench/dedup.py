"""Deduplication precision and recall on labelled records (issue 8).

Run from the project root:

    .venv/bin/python bench/dedup.py [--seed 1] [--write-series PATH.ris]

Every set is fed, record by record, through the import path's own matcher
(review.importing.DuplicateIndex and _candidate, the code import_articles runs; no database),
and each record either links to an earlier record or stays unique. Ground truth is a work id per
record. Printed per set:

- linked: records linked to an earlier record; false merges: linked to another work's record
  (each one is a report nobody would screen); missed: records whose work was seen before but that
  stayed unique. Precision = correct links / links, recall = correct links / records that should
  link.
- For the pair sets (each pair in an index of its own): sensitivity on true pairs, specificity on
  different-report pairs, as ASySD reports them (sensitivity 0.95-0.99, specificity > 0.99).

Sets (all built from real records; nothing is written to the project):

1. baseline: ../shared/fixtures/exports/baseline_endnote.ris then baseline_zotero.ris (the same
   100 records from two tools), as exported, and again with every DOI and URL dropped from the
   Zotero side.
2. variants: for each record with title, authors, year and journal in ../shared/datasets/*.csv,
   a copy as another tool exports it: title case or punctuation changed, accents dropped,
   authors as 'Surname, I.' or 'Surname I', no abstract, no DOI, journal abbreviated, and for one
   in five the online-first year (one or two years earlier, no volume/pages).
3. real look-alikes: pairs of different records in the datasets whose titles are near-identical
   (ratio >= 90; different DOIs, hand-checked list of exceptions below), compared with their
   DOIs dropped: series, errata, replies, sex-specific analyses, generic titles.
4. synthetic siblings: for each dataset record, a different report of the same team made by one
   rule (sex, age group, follow-up length, part, phase, wave, protocol/design prefix, erratum,
   reply, other volume/pages in the same journal), same first author, year 0-1 later, no DOI.
5. series file: 1,000 records, 200 real titles x 5 reports of one series each (as the issue
   describes: same author, years +-1, no DOIs); every link is a false merge.
6. everything at once: all dataset records + variants + siblings in one index.
"""

import argparse
import csv
import glob
import os
import random
import re
import sys
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Dataset pairs with different DOIs that are nevertheless one work in two versions (online and
# print DOI, a reprint, a conference abstract of the article): left out of the look-alike set.
SAME_WORK_DOI_PAIRS = {
    frozenset({"10.1136/ebmh1097", "10.1136/ebmh.13.4.119"}),
    frozenset({"10.1037/a0014044", "10.1037/1949-2715.s.1.35"}),
    frozenset({"10.1136/oemed-2011-100382.156", "10.1037/a0027664"}),
    frozenset({"10.1200/jco.2014.32.15_suppl.e20557", "10.1002/pon.3654"}),
    frozenset({"10.1182/blood-2019-123198", "10.1111/hae.13877"}),
    frozenset({"10.1176/ajp.2007.164.6.974", "10.1176/appi.ajp.164.6.974"}),
    frozenset({"10.1055/s-0039-1680182", "10.1055/s-0039-1680140"}),
}


@dataclass
class Item:
    work: str  # ground truth: records with the same work id are one report
    article: object


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sieve.settings")
    import django

    django.setup()


# -- Loading real records ----------------------------------------------------------------------


def dataset_articles():
    from review.article import Article
    from tests.shared import shared

    articles = []
    for path in sorted(glob.glob(str(shared("datasets") / "*.csv"))):
        name = Path(path).stem
        with open(path, encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                authors = [a.strip() for a in row["authors"].split(";") if a.strip()]
                articles.append(
                    Article(
                        title=row["title"],
                        abstract=row["abstract"],
                        authors=authors,
                        year=int(row["year"]) if row["year"].isdigit() else None,
                        journal=row["journal"],
                        doi=row["doi"],
                        pmid=row["pmid"],
                        source_key=f"{name}:{row['record_id']}",
                    )
                )
    return articles


def work_ids(articles):
    """Ground truth for dataset records: one work per record, except records that share a DOI
    (one paper in two datasets) or a DOI pair of SAME_WORK_DOI_PAIRS."""
    from review.dedup import normalise_doi

    alias = {}
    for pair in SAME_WORK_DOI_PAIRS:
        first, second = sorted(pair)
        alias[second] = first
    ids = []
    for i, article in enumerate(articles):
        doi = normalise_doi(article.doi)
        ids.append(alias.get(doi, doi) or f"d{i}")
    return ids


def baseline_items(strip_ids=False):
    from review.dedup import normalise_doi, normalise_title
    from review.importers import ris
    from tests.shared import shared

    def read(name):
        with shared("fixtures", "exports", name).open(encoding="utf-8-sig") as lines:
            return list(ris.parse(lines, name))

    endnote, zotero = read("baseline_endnote.ris"), read("baseline_zotero.ris")

    def key(article):
        # Two records share a title here (a PLoS ONE article and its JVIR abstract): the DOI
        # tells them apart in the ground truth.
        return normalise_title(article.title), normalise_doi(article.doi)

    work = {key(a): f"b{i}" for i, a in enumerate(endnote)}
    items = [Item(work[key(a)], a) for a in endnote]
    for a in zotero:
        truth = work.get(key(a), "zotero:" + a.title)
        items.append(Item(truth, replace(a, doi="", url="", pmid="") if strip_ids else a))
    return items


# -- True-duplicate variants, as tools export them ------------------------------------------------

_ABBREV = {
    "journal": "J",
    "american": "Am",
    "british": "Br",
    "international": "Int",
    "national": "Natl",
    "research": "Res",
    "clinical": "Clin",
    "psychiatry": "Psychiatry",
    "psychology": "Psychol",
    "medicine": "Med",
    "medical": "Med",
    "epidemiology": "Epidemiol",
    "european": "Eur",
    "association": "Assoc",
    "society": "Soc",
    "science": "Sci",
    "sciences": "Sci",
    "disorders": "Disord",
    "therapy": "Ther",
    "surgery": "Surg",
    "annals": "Ann",
    "archives": "Arch",
    "review": "Rev",
    "reviews": "Rev",
    "bulletin": "Bull",
}


def abbreviate_journal(journal):
    words = [w for w in re.split(r"[\s:-]+", journal) if w.lower() not in {"of", "the", "and", "&", "in", "for"}]
    out = []
    for word in words:
        low = word.lower().strip(".,")
        if low in _ABBREV:
            out.append(_ABBREV[low])
        elif len(low) > 8:
            out.append(word[:6].rstrip("aeiou").capitalize())
        else:
            out.append(word)
    return " ".join(out)


def strip_accents(text):
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


_SUFFIXES = {"Jr", "Sr", "Ms", "PhD", "MD"}
_PARTICLES = {"van", "von", "de", "den", "der", "da", "di", "du", "la", "le", "del", "dos"}


def inverted(name, style):
    """'Fiona M. McKevitt' -> 'McKevitt, F. M.' (RIS) or 'McKevitt FM' (MEDLINE); a name already
    written surname first ('Czop C', 'Ahmed, Faez') is left as it is."""
    parts = name.split()
    if "," in name or len(parts) < 2 or parts[-1].replace(".", "").isupper() or parts[-1].strip(".") in _SUFFIXES:
        return name
    cut = len(parts) - 1
    while cut > 1 and parts[cut - 1].lower() in _PARTICLES:
        cut -= 1
    surname, given = " ".join(parts[cut:]), parts[:cut]
    initials = [g[0].upper() for g in given if g[0].isalpha()]
    if style == "ris":
        return f"{surname}, {' '.join(i + '.' for i in initials)}"
    return f"{surname} {''.join(initials)}"


def tool_variant(article, rng):
    title = article.title
    choice = rng.random()
    if choice < 0.25:
        title = title.upper()
    elif choice < 0.5:
        title = title.rstrip(".") + "."
    elif choice < 0.75:
        title = title.replace(":", " -").replace("-", " ")
    title = strip_accents(title) if rng.random() < 0.5 else title
    style = rng.choice(["ris", "medline", "as is"])
    authors = article.authors if style == "as is" else [inverted(a, style) for a in article.authors]
    year = article.year
    if rng.random() < 0.2:
        year = article.year - rng.choice([1, 2])  # the online-first record, no volume/pages yet
    elif rng.random() < 0.2:
        year = article.year + 1
    return replace(
        article,
        title=title,
        authors=[strip_accents(a) for a in authors] if rng.random() < 0.5 else authors,
        abstract="" if rng.random() < 0.5 else article.abstract,
        doi="",
        pmid="",
        journal=abbreviate_journal(article.journal) if rng.random() < 0.5 else article.journal,
        year=year,
    )


# -- Different reports that look alike ------------------------------------------------------------


def _series(kind, n):
    """The n-th report (0-based) of a series of ``kind``: (prefix, suffix)."""
    roman = ["I", "II", "III", "IV", "V", "VI"]
    return {
        "sex": ("", [" in women", " in men", " in girls", " in boys", " in mothers"][n % 5]),
        "age": ("", [" in children", " in adults", " in adolescents", " in older adults", " in infants"][n % 5]),
        "followup": ("", f": {[6, 12, 24, 36, 60][n % 5]}-month follow-up"),
        "years": ("", f": {['one', 'two', 'three', 'five', 'ten'][n % 5]}-year follow-up"),
        "part": ("", f", part {n + 1}"),
        "part_roman": (f"Part {roman[n % 6]}: ", ""),
        "phase": ("", f": results of the phase {roman[n % 6]} trial"),
        "wave": ("", f": wave {n + 1}"),
        "protocol": (["", "Study protocol: ", "Rationale and design of ", "Trial design: ", "Erratum: "][n % 5], ""),
        "kind": (["", "Interim results: ", "Final results: ", "Baseline characteristics: ", "Reply: "][n % 5], ""),
    }[kind]


SERIES_KINDS = ["sex", "age", "followup", "years", "part", "part_roman", "phase", "wave", "protocol", "kind"]


def series_member(article, kind, n, year):
    prefix, suffix = _series(kind, n)
    title = article.title.rstrip(". ")
    if prefix:
        title = prefix + title
    return replace(article, title=title + suffix, doi="", pmid="", year=year)


def sibling(article, rng):
    """A different report of the same team, made by one rule from a real record."""
    kind = rng.choice(SERIES_KINDS + ["pages"])
    year = article.year + rng.choice([0, 1])
    if kind == "pages":
        # The same generic title in the same journal and volume, other pages (an editorial, a reply).
        first = replace(article, volume="12", pages="101-104", doi="", pmid="")
        return first, replace(article, volume="12", pages="187", doi="", pmid="", year=year), kind
    return series_member(article, kind, 0, article.year), series_member(article, kind, 1, year), kind


def real_lookalike_pairs(articles):
    """Different records of the datasets whose titles are near-identical (ratio >= 90)."""
    from rapidfuzz import fuzz

    from review.dedup import normalise_doi, normalise_title

    usable = [(normalise_title(a.title), a) for a in articles if len(normalise_title(a.title)) > 15]
    blocks = {}
    for i, (title, _) in enumerate(usable):
        blocks.setdefault("a" + title[:15], []).append(i)
        blocks.setdefault("z" + title[-15:], []).append(i)
    pairs, seen = [], set()
    for members in blocks.values():
        for x, i in enumerate(members):
            for j in members[x + 1 :]:
                (ti, a), (tj, b) = usable[i], usable[j]
                da, db = normalise_doi(a.doi), normalise_doi(b.doi)
                key = frozenset({da, db})
                if (i, j) in seen or not da or not db or da == db or key in SAME_WORK_DOI_PAIRS:
                    continue
                seen.add((i, j))
                if fuzz.ratio(ti, tj) >= 90:
                    pairs.append((replace(a, doi="", pmid=""), replace(b, doi="", pmid="")))
    return pairs


# -- The rules, each with the real pair that motivates it ----------------------------------------


def rule_pairs():
    """(rule, expected link?, a, b): each rule of review/dedup.py with the pair that motivates it.
    The titles, first authors, years and journals are the records' own (../shared/datasets,
    baseline_endnote.ris); a pair marked 'made' changes one thing of a real record by the rule."""
    from review import dedup
    from review.article import Article

    def art(title, author, year, journal="", volume="", pages=""):
        return Article(
            title=title, authors=[author] if author else [], year=year, journal=journal, volume=volume, pages=pages
        )

    bulimia = "A Naturalistic Study of Psychotherapy for Bulimia Nervosa, Part {}"
    eilat = "Progress report on new antiepileptic drugs: a summary of the {} Eilat Conference (EILAT {})"
    hers = "{} Disease Outcomes During 6.8 Years of Hormone Therapy"
    ebmh = "Transference-focused psychotherapy reduces treatment drop-out and suicide attempters"
    wu = "Posttraumatic stress after a motor vehicle accident: A six-month follow-up study utilizing latent growth modeling"
    topiramate = "Topiramate Treatment for Women With Borderline Personality Disorder"
    bohus = (
        "Dialectical Behaviour Therapy for Post-traumatic Stress Disorder after Childhood Sexual Abuse in Patients "
        "with and without Borderline Personality Disorder: A Randomised Controlled Trial"
    )
    hoven = "The effect of intra-arterial angiotensin II on the hepatic tumor to non-tumor blood flow ratio for radioembolization: a systematic review"
    carotid = "Effect of Treatment of Carotid Artery Stenosis on Blood Pressure"
    return [
        (
            dedup.TITLE_MARKERS + " (part)",
            False,
            art(bulimia.format(1), "Heather Thompson-Brenner", 2005),
            art(bulimia.format(2), "Heather Thompson-Brenner", 2005),
        ),
        (
            dedup.TITLE_MARKERS + " (ordinal, roman)",
            False,
            art(eilat.format("Fifth", "V"), "Meir Bialer", 2001),
            art(eilat.format("Sixth", "VI"), "Meir Bialer", 2002),
        ),
        (
            dedup.TITLE_MARKERS + " (negation)",
            False,
            art(hers.format("Cardiovascular"), "Stephen B. Hulley", 2002, "JAMA"),
            art(hers.format("Noncardiovascular"), "Stephen B. Hulley", 2002, "JAMA"),
        ),
        (
            dedup.TITLE_MARKERS + " (erratum)",
            False,
            art(wu, "Kitty K. Wu", 2007),
            art("Erratum for " + wu, "Kitty K. Wu", 2008),
        ),
        (
            dedup.TITLE_MARKERS + " (sex, made)",
            False,
            art(topiramate + ": 18-month follow-up", "Thomas H. Loew", 2006),
            art(topiramate.replace("Women", "Men") + ": 18-month follow-up", "Thomas H. Loew", 2006),
        ),
        (
            dedup.TITLE_MARKERS + " (protocol, made)",
            False,
            art(bohus, "Martin Bohus", 2013),
            art("Study protocol: " + bohus, "Martin Bohus", 2012),
        ),
        (
            dedup.PAGES,
            False,
            art(hoven, "van den Hoven, Andor F.", 2014, "PloS one", "9", "e86394"),
            art(hoven, "van den Hoven, null", 2014, "J Vasc Interv Radiol", "25", "S105"),
        ),
        (
            dedup.SHORT_TITLE,
            False,
            art("Poster Presentations", "", 2018, "Haemophilia"),
            art("Poster Presentations", "", 2019, "Haemophilia"),
        ),
        (
            "online first, years 2 apart, same journal (recall, made)",
            True,
            art(carotid, "Fiona M. McKevitt", 2003, "Stroke", "34", "2576-81"),
            art(carotid, "McKevitt FM", 2001, "Stroke"),
        ),
        (
            "author written 'Given Surname' (recall)",
            True,
            art(carotid, "Fiona M. McKevitt", 2003, "Stroke"),
            art(carotid.upper(), "McKevitt, F. M.", 2003, "Stroke"),
        ),
        (
            "degrees around the name (recall)",
            True,
            art("Migraine and Women", "F.A.C.P. Stephen D. Silberstein M.D.", 1993),
            art("Migraine and women", "Silberstein SD", 1993),
        ),
        (
            dedup.DIFFERENT_DOI + " (two DOIs of one commentary stay apart: known limit)",
            False,
            art(ebmh, "Kenneth N. Levy", 2010),
            art(ebmh, "Kenneth N. Levy", 2011),
        ),
    ]


def print_rules():
    print("rules, each with the pair that motivates it (linked = the import path links b to a):")
    for rule, expected, a, b in rule_pairs():
        if rule.startswith("different DOIs"):
            a, b = replace(a, doi="10.1136/ebmh1097"), replace(b, doi="10.1136/ebmh.13.4.119")
        counts, _ = run([Item("a", a), Item("a" if expected else "b", b)])
        verdict = "linked" if counts["linked"] else "kept apart"
        flag = "" if bool(counts["linked"]) == expected else "   <-- NOT AS EXPECTED"
        print(f"  {rule}\n      a: {a.title[:80]!r} {a.authors[:1]} {a.year} {a.journal}")
        print(f"      b: {b.title[:80]!r} {b.authors[:1]} {b.year} {b.journal}  -> {verdict}{flag}")


# -- Running the matcher -----------------------------------------------------------------------


def candidate_of(article):
    """The candidate the import path builds for an article (old and new _candidate signatures)."""
    from review import importing
    from review.models import Review, Search

    search = Search(review=Review(), source="bench")
    if hasattr(importing, "_record_row"):  # since the ingestion work of issue 9: a row, not a Record
        return importing._candidate(importing._record_row(article, search))
    record = importing._record_from(article, search)
    try:
        return importing._candidate(record)
    except TypeError:  # before issue 8: _candidate(pmid, doi_norm, title_norm, year, authors)
        return importing._candidate(record.pmid, record.doi_norm, record.title_norm, record.year, record.authors)


def run(items):
    """Feed items in order through one DuplicateIndex; count links, false merges and misses."""
    from review.importing import DuplicateIndex, Original

    index, seen, counts, wrong = DuplicateIndex(), set(), Counter(), []
    for item in items:
        cand = candidate_of(item.article)
        original, _ = index.find(cand)
        should = item.work in seen
        seen.add(item.work)
        if original is None:
            index.add(Original(record=item), cand)
            counts["missed"] += should
            continue
        counts["linked"] += 1
        if original.record.work == item.work:
            counts["correct"] += 1
        else:
            counts["false"] += 1
            counts["missed"] += should
            wrong.append((original.record.article, item.article))
    counts["should"] = sum(1 for _ in items) - len(seen)
    return counts, wrong


def run_pairs(pairs, same):
    """Each pair in an index of its own: how many pairs are linked."""
    linked = 0
    for a, b in pairs:
        counts, _ = run([Item("a", a), Item("a" if same else "b", b)])
        linked += counts["linked"]
    return linked


def ratio(a, b):
    return f"{a / b:.4f}" if b else "n/a"


def report(name, counts, wrong, show=3):
    precision = ratio(counts["correct"], counts["linked"])
    recall = ratio(counts["correct"], counts["should"])
    print(
        f"{name:<42} records {counts['records']:>6}  should link {counts['should']:>5}  linked {counts['linked']:>5}  "
        f"false merges {counts['false']:>4}  missed {counts['missed']:>4}  precision {precision}  recall {recall}"
    )
    for a, b in wrong[:show]:
        print(f"      false merge: {a.title[:90]!r} ({a.year}) <- {b.title[:90]!r} ({b.year})")


def main():
    from review.dedup import normalise_title

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write-series", help="also write the series file as RIS to this path")
    args = parser.parse_args()
    setup_django()
    rng = random.Random(args.seed)
    started = time.perf_counter()

    articles = dataset_articles()
    complete = [a for a in articles if a.title and a.authors and a.year and a.journal]
    print(f"{len(articles)} dataset records, {len(complete)} with title, authors, year and journal")

    def measure(name, items):
        counts, wrong = run(items)
        counts["records"] = len(items)
        report(name, counts, wrong)
        return counts

    measure("baseline EndNote + Zotero", baseline_items())
    measure("baseline, Zotero without DOI/URL", baseline_items(strip_ids=True))

    works = work_ids(complete)
    variants = [Item(w, a) for w, a in zip(works, complete)] + [
        Item(w, tool_variant(a, rng)) for w, a in zip(works, complete)
    ]
    measure("dataset records + tool variants (no DOI)", variants)

    lookalikes = real_lookalike_pairs(articles)
    linked = run_pairs(lookalikes, same=False)
    print(
        f"{'real look-alike pairs, DOIs dropped':<42} pairs {len(lookalikes):>5}  linked (false merges) {linked:>4}  "
        f"specificity {ratio(len(lookalikes) - linked, len(lookalikes))}"
    )

    siblings = [sibling(a, rng) for a in complete]
    linked_by_kind = Counter()
    for a, b, kind in siblings:
        linked_by_kind[kind] += run_pairs([(a, b)], same=False)
    total = sum(linked_by_kind.values())
    print(
        f"{'synthetic sibling pairs (one rule each)':<42} pairs {len(siblings):>5}  linked (false merges) {total:>4}  "
        f"specificity {ratio(len(siblings) - total, len(siblings))}  by rule: {dict(sorted(linked_by_kind.items()))}"
    )

    true_pairs = [(a, tool_variant(a, rng)) for a in complete]
    linked = run_pairs(true_pairs, same=True)
    print(
        f"{'true duplicate pairs (tool variants)':<42} pairs {len(true_pairs):>5}  linked {linked:>5}  "
        f"sensitivity {ratio(linked, len(true_pairs))}"
    )

    series = series_file(complete, rng)
    counts = measure("series file (1,000 different reports)", series)
    print(f"      {counts['false']} of {len(series)} records in the series file falsely linked")
    if args.write_series:
        write_ris(series, args.write_series)

    # A sibling left as the record itself (the series' first report without a prefix) is that
    # record; the 'pages' kind is left out (its first record is the dataset record with pages).
    everything = list(variants)
    for i, (a, b, kind) in enumerate(siblings):
        if kind != "pages":
            same = normalise_title(a.title) == normalise_title(complete[i].title)
            everything.append(Item(works[i] if same else f"s{i}a", a))
            everything.append(Item(f"s{i}b", b))
    measure("everything in one index", everything)
    print_rules()
    print(f"{time.perf_counter() - started:.1f} s")
    print(f"command: .venv/bin/python bench/dedup.py --seed {args.seed}")


def series_file(complete, rng, size=1000):
    """200 real records x 5 reports of one series each: different reports, none a duplicate."""
    bases = rng.sample(complete, size // 5)
    items = []
    for i, base in enumerate(bases):
        kind = SERIES_KINDS[i % len(SERIES_KINDS)]
        for n in range(5):
            items.append(Item(f"series{i}-{n}", series_member(base, kind, n, base.year + rng.choice([-1, 0, 1]))))
    rng.shuffle(items)
    return items


def write_ris(items, path):
    with open(path, "w", encoding="utf-8", newline="\r\n") as out:
        for item in items:
            a = item.article
            out.write("TY  - JOUR\n")
            for author in a.authors:
                out.write(f"AU  - {author}\n")
            out.write(f"TI  - {a.title}\nPY  - {a.year}\nJO  - {a.journal}\nER  - \n\n")


if __name__ == "__main__":
    main()
