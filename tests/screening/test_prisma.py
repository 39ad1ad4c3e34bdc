import csv
import io
import json
import struct
import xml.etree.ElementTree as ET

import pytest
from django.core.management import CommandError, call_command

from review.models import Record, Search, Stage
from screening.decisions import record_decision, resolve
from screening.prisma import JSON_KEYS, compute, to_json, to_prisma2020_csv
from screening.prisma_svg import render_pdf, render_png, render_svg
from tests.shared import shared

TA, FT = Stage.TITLE_ABSTRACT, Stage.FULL_TEXT


def dataset_rows(name="Donners_2021.csv"):
    """Real records (title, authors, year, PMID, DOI) from a SYNERGY dataset in ../shared."""
    with open(shared("datasets", name), encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def add_record(review, search, row, duplicate_of=None):
    # The dataset lists "Given Surname; ..." while records keep "Surname, Given".
    authors = []
    for name in filter(None, (a.strip() for a in row["authors"].split(";"))):
        *given, surname = name.split()
        authors.append(f"{surname}, {' '.join(given)}".strip(", "))
    return Record.objects.create(
        review=review,
        search=search,
        source=search.source,
        title=row["title"],
        authors=authors,
        year=int(row["year"]) if row["year"] else None,
        pmid=row["pmid"],
        doi=row["doi"],
        duplicate_of=duplicate_of,
    )


# Each planned record: source, title/abstract votes (bob, carol), full-text votes (bob, carol).
# A vote is a decision or (decision, reason); None = not voted. "resolve" entries are alice's word.
PLAN = [
    ("Embase", ("include", "include"), (("include", ""), ("include", ""))),
    ("Embase", ("include", "maybe"), (("exclude", "Wrong population"), ("exclude", "Wrong population"))),
    ("Embase", ("include", "include"), (("exclude", "Wrong population"), ("exclude", "Wrong population"))),
    ("Embase", ("maybe", "maybe"), (("exclude", "Wrong outcome"), ("exclude", "Wrong outcome"))),
    ("Embase", ("include", "include"), (("not_retrieved", ""), ("not_retrieved", ""))),
    ("Embase", ("include", "include"), (("include", ""), ("exclude", "Wrong outcome"))),  # full-text conflict
    ("Embase", ("include", "include"), (("include", ""), None)),  # awaiting carol at full text
    ("Embase", ("include", "exclude"), None),  # title/abstract conflict
    ("PubMed", ("include", "exclude"), None, "resolve include", (("include", ""), ("include", ""))),
    ("PubMed", ("exclude", "exclude"), None),
    ("PubMed", ("exclude", "exclude"), None),
    ("PubMed", ("exclude", None), None),  # awaiting carol
    ("PubMed", (None, None), None),  # nobody screened it yet
    ("PubMed", ("exclude", "exclude"), None),
]
DUPLICATES = [("PubMed", 0), ("PubMed", 1), ("Embase", 9)]  # (source, index in PLAN it duplicates)


def _vote(record, user, stage, vote):
    if vote is None:
        return
    decision, reason = (vote, "") if isinstance(vote, str) else vote
    record_decision(record=record, reviewer=user, stage=stage, decision=decision, reason=reason)


@pytest.fixture
def scripted(review, alice, bob, carol):
    """The kratom review dual-screened by bob and carol as PLAN says, with three duplicates."""
    review.title_abstract_reviewers = review.full_text_reviewers = 2
    review.save()
    searches = {
        "Embase": Search.objects.create(review=review, kind="file", source="Embase", filename="embase.ris"),
        "PubMed": Search.objects.create(review=review, kind="pubmed", source="PubMed", query="kratom AND ptsd"),
    }
    rows = dataset_rows()
    records = []
    for i, (source, ta, ft, *rest) in enumerate(PLAN):
        record = add_record(review, searches[source], rows[i])
        records.append(record)
        _vote(record, bob, TA, ta[0])
        _vote(record, carol, TA, ta[1])
        if rest:
            resolve(record=record, stage=TA, decision=rest[0].split()[1], user=alice)
            ft = rest[1]
        if ft:
            _vote(record, bob, FT, ft[0])
            _vote(record, carol, FT, ft[1])
    for j, (source, original) in enumerate(DUPLICATES):
        add_record(review, searches[source], rows[len(PLAN) + j], duplicate_of=records[original])
    return review


def plan_outcomes(plan, maybe_counts_as_include=True):
    """(title/abstract, full-text, reason) outcomes worked out from the plan by hand-written rules."""

    def side(d):
        return "include" if d == "maybe" and maybe_counts_as_include else d

    def final(votes):
        if votes is None or any(v is None for v in votes):
            return ""
        decisions = {side(v if isinstance(v, str) else v[0]) for v in votes}
        return decisions.pop() if len(decisions) == 1 else "conflict"

    outcomes = []
    for _source, ta, ft, *resolution in plan:
        ta_final = resolution[0].split()[1] if resolution else final(ta)
        ft = resolution[1] if resolution else ft
        ft_final = final(ft) if ta_final == "include" else ""
        outcomes.append((ta_final, ft_final, ft[0][1] if ft_final == "exclude" else ""))
    return outcomes


def expected_counts(plan, duplicates):
    identified = {}
    for source, *_ in plan:
        identified[source] = identified.get(source, 0) + 1
    for source, _ in duplicates:
        identified[source] = identified.get(source, 0) + 1
    outcomes = plan_outcomes(plan)
    reasons = {}
    for _ta, ft, reason in outcomes:
        if ft == "exclude":
            reasons[reason] = reasons.get(reason, 0) + 1
    sought = [ft for ta, ft, _ in outcomes if ta == "include"]
    return {
        "screening_open": True,
        "databases": identified,
        "registers": {},
        "records_identified": identified,
        "records_identified_total": sum(identified.values()),
        "duplicates_removed": len(duplicates),
        "records_excluded_automation": 0,
        "records_removed_other": 0,
        "records_screened": sum(ta in ("include", "exclude") for ta, _, _ in outcomes),
        "records_not_yet_screened": sum(ta in ("", "conflict") for ta, _, _ in outcomes),
        "records_excluded": sum(ta == "exclude" for ta, _, _ in outcomes),
        "reports_sought": len(sought),
        "reports_not_retrieved": sought.count("not_retrieved"),
        "reports_not_yet_assessed": sought.count("") + sought.count("conflict"),
        "reports_assessed": sought.count("include") + sought.count("exclude"),
        "reports_excluded": reasons,
        "reports_included": sought.count("include"),
        "other_methods": None,
        "studies_included": sought.count("include"),
        "source_notes": {},
        "footnotes": [],
    }


def test_counts_follow_the_reconciled_decisions(scripted):
    data = to_json(compute(scripted))
    expected = expected_counts(PLAN, DUPLICATES)
    assert {key: data[key] for key in expected} == expected


def test_the_json_has_exactly_the_diagram_keys(scripted):
    data = to_json(compute(scripted))
    assert tuple(data) == JSON_KEYS
    json.dumps(data)  # serialisable as it is


def test_boxes_add_up(scripted):
    c = compute(scripted)
    assert c.total_identified - c.duplicates_removed == (
        c.records_screened + c.awaiting_screening + c.screening_conflicts + c.undecided_maybe
    )
    assert c.records_screened == c.records_excluded + c.reports_sought
    assert c.reports_sought == (
        c.reports_not_retrieved + c.reports_assessed + c.awaiting_full_text + c.full_text_conflicts
    )
    assert c.reports_assessed == c.studies_included + c.total_reports_excluded


def test_conflicts_and_pending_work_stay_out_of_the_boxes(scripted):
    c = compute(scripted)
    outcomes = plan_outcomes(PLAN)
    assert c.screening_conflicts == sum(ta == "conflict" for ta, _, _ in outcomes) > 0
    assert c.awaiting_screening == sum(ta == "" for ta, _, _ in outcomes) > 0
    assert c.full_text_conflicts == sum(ta == "include" and ft == "conflict" for ta, ft, _ in outcomes) > 0
    assert c.awaiting_full_text == sum(ta == "include" and ft == "" for ta, ft, _ in outcomes) > 0
    assert not c.is_complete


def test_resolving_a_conflict_moves_the_record_into_the_counts(scripted, alice):
    before = compute(scripted)
    conflict = Record.objects.get(review=scripted, ta_outcome="conflict")
    resolve(record=conflict, stage=TA, decision="exclude", user=alice)
    after = compute(scripted)
    assert after.screening_conflicts == before.screening_conflicts - 1
    assert after.records_screened == before.records_screened + 1
    assert after.records_excluded == before.records_excluded + 1


def test_maybe_waits_for_a_decision_when_it_does_not_count_as_include(review, bob):
    review.maybe_counts_as_include = False
    review.save()
    search = Search.objects.create(review=review, kind="file", source="Embase")
    rows = dataset_rows()
    maybe, excluded = add_record(review, search, rows[0]), add_record(review, search, rows[1])
    record_decision(record=maybe, reviewer=bob, stage=TA, decision="maybe")
    record_decision(record=excluded, reviewer=bob, stage=TA, decision="exclude")
    c = compute(review)
    assert (c.records_screened, c.records_excluded, c.reports_sought, c.undecided_maybe) == (1, 1, 0, 1)


def test_a_record_merged_after_screening_counts_once_as_a_duplicate(review, bob):
    search = Search.objects.create(review=review, kind="file", source="Embase")
    rows = dataset_rows()
    first, second = add_record(review, search, rows[0]), add_record(review, search, rows[1])
    for record in (first, second):
        record_decision(record=record, reviewer=bob, stage=TA, decision="include")
    Record.objects.filter(pk=second.pk).update(duplicate_of=first)
    c = compute(review)
    assert (c.total_identified, c.duplicates_removed, c.records_screened, c.reports_sought) == (2, 1, 1, 1)


def test_counting_takes_four_queries_whatever_the_size(scripted, django_assert_num_queries):
    with django_assert_num_queries(4):
        compute(scripted)


def _svg_text(svg):
    root = ET.fromstring(svg.encode("utf-8"))  # well-formed XML, or this raises
    return " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))


def test_the_svg_carries_the_prisma_2020_wording_and_numbers(scripted):
    c = compute(scripted)
    text = _svg_text(render_svg(c, title=scripted.title))
    for phrase in [
        "Identification of new studies via databases and registers",
        "Records identified from:",
        f"Embase (n = {c.records_identified['Embase']})",
        f"PubMed (n = {c.records_identified['PubMed']})",
        "Records removed before screening:",
        f"Duplicate records removed (n = {c.duplicates_removed})",
        "Records screened",
        f"(n = {c.records_screened})",
        "Records excluded",
        f"(n = {c.records_excluded})",
        "Reports sought for retrieval",
        f"(n = {c.reports_sought})",
        "Reports not retrieved",
        f"(n = {c.reports_not_retrieved})",
        "Reports assessed for eligibility",
        f"(n = {c.reports_assessed})",
        "Reports excluded:",
        f"Wrong population (n = {c.reports_excluded['Wrong population']})",
        f"Wrong outcome (n = {c.reports_excluded['Wrong outcome']})",
        f"Studies included in review (n = {c.studies_included})",
        "Identification",
        "Screening",
        "Included",
        scripted.title,
    ]:
        assert phrase in text, phrase


def test_the_svg_escapes_names_and_wraps_long_ones(scripted):
    c = compute(scripted)
    c.databases_identified = {"R&D <register> " + "very long name " * 8: 3, "Embase\x01 export": 1}
    c.reports_excluded = {"Not <English> & no translation": 2}
    svg = render_svg(c)
    assert "R&amp;D &lt;register&gt;" in svg
    text = _svg_text(svg)
    assert "Not <English> & no translation (n = 2)" in text
    assert "Embase export (n = 1)" in text  # a control character XML cannot hold is dropped
    texts = ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")
    long_lines = [t for t in texts if "very long" in (t.text or "")]
    assert len(long_lines) > 1  # wrapped onto several lines


def test_boxes_grow_with_many_reasons_and_never_overlap(scripted):
    c = compute(scripted)
    few = render_svg(c)
    c.reports_excluded = {f"Reason number {i} for excluding a report": i for i in range(1, 16)}
    many = render_svg(c)

    def rects(svg):
        root = ET.fromstring(svg)
        out = []
        for r in list(root.iter("{http://www.w3.org/2000/svg}rect"))[1:]:  # all but the white page
            x, y, w, h = (float(r.get(k)) for k in ("x", "y", "width", "height"))
            out.append((x, y, x + w, y + h))
        return out

    assert float(ET.fromstring(many).get("height")) > float(ET.fromstring(few).get("height"))
    boxes = rects(many)
    # The title box, 9 boxes, 3 side bands; the review is still open: its banner and the two
    # dashed boxes of records not yet screened and reports not yet assessed.
    assert len(boxes) == 13 + 3
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    for t in ET.fromstring(many).iter("{http://www.w3.org/2000/svg}text"):
        if t.get("transform") or t.get("font-size"):  # the rotated band labels and the title
            continue
        x, y = float(t.get("x")), float(t.get("y"))
        assert any(b[0] < x < b[2] and b[1] < y < b[3] for b in boxes), t.text


def test_png_and_pdf_are_real_images_of_the_diagram(scripted):
    svg = render_svg(compute(scripted))
    png = render_png(svg)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    root = ET.fromstring(svg)
    assert (width, height) == (round(float(root.get("width")) * 2), round(float(root.get("height")) * 2))
    assert 20_000 < len(png) < 2_000_000
    pdf = render_pdf(svg)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert 5_000 < len(pdf) < 2_000_000


def test_the_prisma2020_csv_has_the_r_package_rows(scripted):
    c = compute(scripted)
    rows = list(csv.DictReader(io.StringIO(to_prisma2020_csv(c))))
    assert list(rows[0]) == ["data", "node", "box", "description", "boxtext", "tooltips", "url", "n"]
    by_data = {r["data"]: r for r in rows if r["data"] != "NA"}
    assert {
        k: by_data[k]["n"]
        for k in [
            "database_results",
            "duplicates",
            "records_screened",
            "records_excluded",
            "dbr_sought_reports",
            "dbr_notretrieved_reports",
            "dbr_assessed",
            "new_studies",
            "new_reports",
            "total_studies",
        ]
    } == {
        "database_results": str(c.total_identified),
        "duplicates": str(c.duplicates_removed),
        "records_screened": str(c.records_screened),
        "records_excluded": str(c.records_excluded),
        "dbr_sought_reports": str(c.reports_sought),
        "dbr_notretrieved_reports": str(c.reports_not_retrieved),
        "dbr_assessed": str(c.reports_assessed),
        "new_studies": str(c.studies_included),
        "new_reports": str(c.studies_included),
        "total_studies": str(c.studies_included),
    }
    assert by_data["dbr_excluded"]["n"] == "; ".join(f"{r}, {k}" for r, k in c.reports_excluded.items())
    assert by_data["database_specific_results"]["n"] == "; ".join(f"{s}, {k}" for s, k in c.records_identified.items())
    for name in ["register_results", "excluded_automatic", "excluded_other", "other_sought_reports"]:
        assert by_data[name]["n"] == "0"
    # No previous version, no other-methods source, no meta-analysis record: boxes the package leaves out.
    for name in ["previous_studies", "website_results", "citations_results", "total_studies_ma"]:
        assert by_data[name]["n"] == "NA"
    assert {r["box"] for r in rows} >= {"identification", "screening", "included", "newstud", "box2", "box10"}


def test_reasons_with_commas_do_not_break_the_r_package_list(scripted):
    c = compute(scripted)
    c.reports_excluded = {"Wrong population; adults, not children": 2}
    rows = {r["data"]: r["n"] for r in csv.DictReader(io.StringIO(to_prisma2020_csv(c)))}
    assert rows["dbr_excluded"] == "Wrong population adults not children, 2"


def test_the_command_writes_every_format(scripted, tmp_path):
    c = compute(scripted)
    out = tmp_path / "p.json"
    call_command("prisma", scripted.slug, "--format", "json", "-o", str(out))
    assert json.loads(out.read_text()) == to_json(c)
    for fmt, magic in [("svg", b"<?xml"), ("png", b"\x89PNG"), ("pdf", b"%PDF-")]:
        path = tmp_path / f"p.{fmt}"
        call_command("prisma", scripted.slug, "--format", fmt, "-o", str(path))
        assert path.read_bytes().startswith(magic)
    stdout = io.StringIO()
    call_command("prisma", scripted.slug, "--format", "prisma2020-csv", stdout=stdout)
    assert stdout.getvalue() == to_prisma2020_csv(c)


def test_the_command_names_an_unknown_review(db):
    with pytest.raises(CommandError, match="no-such-review"):
        call_command("prisma", "no-such-review", "--format", "json")
