"""PRISMA outputs other tools read: registers apart from databases, the other-methods column,
an open review's diagram that says so and still adds up, short searches noted, and the
PRISMA2020 R package's current CSV template."""

import csv
import io
import json
import re
import struct
import xml.etree.ElementTree as ET
import zlib

import pytest
from PIL import Image

from review.models import Membership, Review, Role, Search, Stage
from screening.decisions import record_decision
from screening.prisma import compute, to_json, to_prisma2020_csv
from screening.prisma_svg import OPEN_FILL, render, render_svg
from tests.screening.test_prisma import add_record, dataset_rows

TA, FT = Stage.TITLE_ABSTRACT, Stage.FULL_TEXT

# Each planned record: search, title/abstract vote, full-text vote (decision or (decision, reason)).
# bob screens alone (one reviewer per record), so his vote is the outcome.
MIXED = [
    ("Embase", "include", "include"),
    ("Embase", "include", ("exclude", "Wrong population")),
    ("Embase", "exclude", None),
    ("Embase", "exclude", None),
    ("ClinicalTrials.gov", "include", ("exclude", "Wrong outcome")),
    ("ClinicalTrials.gov", "exclude", None),
    ("Citation searching", "include", "include"),
    ("Citation searching", "include", "not_retrieved"),
    ("Citation searching", "include", ("exclude", "Wrong population")),
    ("Citation searching", "exclude", None),
    ("Citation searching", None, None),  # open: nobody screened it yet
    ("Embase", None, None),  # open
    ("ClinicalTrials.gov", "include", None),  # open at full text
    ("Citation searching", "include", None),  # open at full text
]
OPEN = {10, 11, 12, 13}
SEARCHES = {
    "Embase": ("file", Search.SourceType.DATABASE),
    "ClinicalTrials.gov": ("file", Search.SourceType.REGISTER),
    "Citation searching": ("file", Search.SourceType.OTHER),
}


def build(review, bob, plan):
    searches = {
        name: Search.objects.create(review=review, kind=kind, source=name, source_type=source_type)
        for name, (kind, source_type) in SEARCHES.items()
    }
    # A website search that was only counted: 40 hits, nothing imported.
    Search.objects.create(
        review=review, kind=Search.Kind.COUNT, source="Google Scholar", source_type=Search.SourceType.OTHER, hits=40
    )
    rows = dataset_rows()
    records = []
    for i, (source, ta, ft) in enumerate(plan):
        record = add_record(review, searches[source], rows[i])
        records.append(record)
        if ta:
            record_decision(record=record, reviewer=bob, stage=TA, decision=ta)
        if ft:
            decision, reason = (ft, "") if isinstance(ft, str) else ft
            record_decision(record=record, reviewer=bob, stage=FT, decision=decision, reason=reason)
    # One duplicate in each column: an Embase copy of record 0, a citation-search copy of record 6.
    add_record(review, searches["Embase"], rows[len(plan)], duplicate_of=records[0])
    add_record(review, searches["Citation searching"], rows[len(plan) + 1], duplicate_of=records[6])
    return review


@pytest.fixture
def mixed(review, bob):
    """Databases, a register, citation searching and a counted website search; four records still open."""
    return build(review, bob, MIXED)


@pytest.fixture
def finished(alice, bob):
    """The same sources in a review of their own, every record decided."""
    review = Review.objects.create(slug="kratom-finished", title="Kratom, finished", created_by=alice)
    Membership.objects.create(review=review, user=alice, role=Role.OWNER)
    Membership.objects.create(review=review, user=bob, role=Role.REVIEWER)
    return build(review, bob, [row for i, row in enumerate(MIXED) if i not in OPEN])


def assert_every_box_adds_up(data):
    """Every sum the diagram implies, read from the JSON file alone."""
    assert data["records_identified"] == {**data["databases"], **data["registers"]}
    total = data["records_identified_total"]
    assert total == sum(data["records_identified"].values())
    assert total == sum(data["databases"].values()) + sum(data["registers"].values())
    assert total == (
        data["duplicates_removed"]
        + data["records_excluded_automation"]
        + data["records_removed_other"]
        + data["records_screened"]
        + data["records_not_yet_screened"]
    )
    assert data["records_screened"] == data["records_excluded"] + data["reports_sought"]
    assert data["reports_sought"] == (
        data["reports_not_retrieved"] + data["reports_not_yet_assessed"] + data["reports_assessed"]
    )
    assert data["reports_assessed"] == sum(data["reports_excluded"].values()) + data["reports_included"]
    other = data["other_methods"]
    other_included = 0
    if other:
        assert other["records_identified"] == sum(other["identified"].values())
        assert other["records_identified"] == sum(other["not_sought"].values()) + other["reports_sought"]
        assert other["reports_sought"] == (
            other["reports_not_retrieved"] + other["reports_not_yet_assessed"] + other["reports_assessed"]
        )
        assert other["reports_assessed"] == sum(other["reports_excluded"].values()) + other["studies_included"]
        other_included = other["studies_included"]
    assert data["studies_included"] == data["reports_included"] + other_included
    assert data["screening_open"] == any(data["open_work"].values())


def test_every_box_adds_up_in_the_json_of_an_open_review(mixed):
    data = to_json(compute(mixed))
    assert data["screening_open"] is True
    assert data["records_not_yet_screened"] == 1  # the unscreened Embase record
    assert data["reports_not_yet_assessed"] == 1  # the register record waiting at full text
    assert data["other_methods"]["not_sought"]["Not yet screened (screening still open)"] == 1
    assert data["other_methods"]["reports_not_yet_assessed"] == 1
    assert "Screening still open: 4 records" in data["open_note"]
    assert_every_box_adds_up(data)


def test_every_box_adds_up_in_the_json_of_a_finished_review(finished):
    data = to_json(compute(finished))
    assert data["screening_open"] is False and data["open_note"] is None
    assert data["records_not_yet_screened"] == data["reports_not_yet_assessed"] == 0
    assert_every_box_adds_up(data)


def test_databases_and_registers_are_counted_apart(mixed):
    data = to_json(compute(mixed))
    assert data["databases"] == {"Embase": 1 + sum(s == "Embase" for s, *_ in MIXED)}
    assert data["registers"] == {"ClinicalTrials.gov": sum(s == "ClinicalTrials.gov" for s, *_ in MIXED)}
    rows = {r["data"]: r["n"] for r in csv.DictReader(io.StringIO(to_prisma2020_csv(compute(mixed))))}
    assert rows["database_results"] == str(data["databases"]["Embase"])
    assert rows["database_specific_results"] == f"Embase, {data['databases']['Embase']}"
    assert rows["register_results"] == str(data["registers"]["ClinicalTrials.gov"])
    assert rows["register_specific_results"] == f"ClinicalTrials.gov, {data['registers']['ClinicalTrials.gov']}"
    text = svg_text(render_svg(compute(mixed)))
    assert f"Databases (n = {data['databases']['Embase']}):" in text
    assert f"Registers (n = {data['registers']['ClinicalTrials.gov']}):" in text


def test_other_methods_have_their_own_column_counted_by_their_own_outcomes(mixed):
    other = to_json(compute(mixed))["other_methods"]
    cites = [row for row in MIXED if row[0] == "Citation searching"]
    assert other["identified"] == {"Citation searching": len(cites) + 1, "Google Scholar": 40}
    assert other["not_sought"] == {
        "Duplicates of records already identified": 1,
        "Marked as ineligible by automation tools": 0,
        "Excluded at title/abstract screening": sum(ta == "exclude" for _, ta, _ in cites),
        "Not yet screened (screening still open)": sum(ta is None for _, ta, _ in cites),
        "Counted only, not imported": 40,
    }
    assert other["reports_sought"] == sum(ta == "include" for _, ta, _ in cites)
    assert other["reports_not_retrieved"] == 1
    assert other["reports_excluded"] == {"Wrong population": 1}
    assert other["studies_included"] == 1
    # ... and the main column counts none of them.
    data = to_json(compute(mixed))
    assert data["reports_excluded"] == {"Wrong population": 1, "Wrong outcome": 1}
    assert data["studies_included"] == 2 and data["reports_included"] == 1


def test_the_r_template_rows_of_the_other_column_are_filled(mixed):
    rows = {r["data"]: r["n"] for r in csv.DictReader(io.StringIO(to_prisma2020_csv(compute(mixed))))}
    other = to_json(compute(mixed))["other_methods"]
    assert rows["citations_results"] == str(other["identified"]["Citation searching"])
    assert rows["website_results"] == "40"  # Google Scholar
    assert rows["organisation_results"] == "0"
    assert rows["other_sought_reports"] == str(other["reports_sought"])
    assert rows["other_notretrieved_reports"] == "1"
    assert rows["other_assessed"] == str(other["reports_assessed"])
    assert rows["other_excluded"] == "Wrong population, 1"
    assert rows["new_studies"] == rows["total_studies"] == "2"


def svg_text(svg):
    root = ET.fromstring(svg.encode("utf-8"))
    return " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))


def test_the_other_column_is_drawn_only_when_such_a_source_exists(mixed, scripted_free_review):
    text = svg_text(render_svg(compute(mixed)))
    assert "Identification of new studies via other methods" in text
    assert "Records not sought for retrieval:" in text
    assert "Counted only, not imported (n = 40)" in text
    assert "Google Scholar (n = 40)" in text
    plain = svg_text(render_svg(compute(scripted_free_review)))
    assert "other methods" not in plain


@pytest.fixture
def scripted_free_review(db, alice):
    review = Review.objects.create(slug="plain", title="Plain review", created_by=alice)
    search = Search.objects.create(review=review, kind="file", source="Embase")
    add_record(review, search, dataset_rows()[0])
    return review


def _rects(svg):
    root = ET.fromstring(svg)
    out = []
    for r in list(root.iter("{http://www.w3.org/2000/svg}rect"))[1:]:  # all but the white page
        x, y, w, h = (float(r.get(k)) for k in ("x", "y", "width", "height"))
        out.append((x, y, x + w, y + h))
    return out


def test_the_wide_diagram_has_no_overlapping_boxes(mixed):
    svg = render_svg(compute(mixed), title="Kratom")
    boxes = _rects(svg)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    width = float(ET.fromstring(svg).get("width"))
    assert all(b[2] <= width for b in boxes)


def test_an_open_review_says_so_inside_the_svg(mixed, finished):
    svg = render_svg(compute(mixed))
    root = ET.fromstring(svg)
    note = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text") if t.get("class") == "open-note"]
    assert note and "Screening still open" in " ".join(note)
    text = svg_text(svg)
    assert "Not yet screened (screening still open) (n = 1)" in text
    assert "Not yet assessed (full-text screening still open) (n = 1)" in text
    done = render_svg(compute(finished))
    assert "open-note" not in done and "still open" not in svg_text(done)


def _colours(png):
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return {colour for _count, colour in image.getcolors(maxcolors=1 << 20)}


def _pdf_streams(pdf):
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        try:
            yield zlib.decompress(match.group(1))
        except zlib.error:
            yield match.group(1)


def test_an_open_review_says_so_inside_the_png_and_pdf(mixed, finished):
    banner = tuple(int(OPEN_FILL[i : i + 2], 16) for i in (1, 3, 5))
    assert banner in _colours(render(compute(mixed), "png"))
    assert banner not in _colours(render(compute(finished), "png"))
    # The PDF paints the banner in its colour (cairo writes it as an "r g b rg" fill).
    fill = " ".join(f"{c / 255:.6g}" for c in banner).encode()

    def paints_banner(pdf):
        return any(
            re.search(rb"(^|\s)" + re.escape(fill).replace(rb"\ ", rb"\d*\s+") + rb"\d*\s+rg", s)
            for s in _pdf_streams(pdf)
        )

    assert paints_banner(render(compute(mixed), "pdf"))
    assert not paints_banner(render(compute(finished), "pdf"))
    width, height = struct.unpack(">II", render(compute(mixed), "png")[16:24])
    assert width > 1000  # the other-methods column widens the figure


def test_a_search_that_fetched_fewer_records_than_it_found_is_noted_by_its_count(review, bob):
    search = Search.objects.create(
        review=review, kind=Search.Kind.PUBMED, source="PubMed", hits=1234, fetched=2, limits="--max 2"
    )
    for row in dataset_rows()[:2]:
        add_record(review, search, row)
    c = compute(review)
    assert c.source_notes == {"PubMed": "2 of 1,234 found; limited to --max 2"}
    assert "PubMed (n = 2) (2 of 1,234 found; limited to --max 2)" in svg_text(render_svg(c))
    assert to_json(c)["source_notes"] == {"PubMed": "2 of 1,234 found; limited to --max 2"}
    # A search that fetched all it found carries no note.
    Search.objects.filter(pk=search.pk).update(hits=2)
    assert compute(review).source_notes == {}


def test_a_short_search_without_typed_limits_still_says_not_all_were_fetched(review):
    search = Search.objects.create(review=review, kind=Search.Kind.PUBMED, source="PubMed", hits=10, fetched=1)
    add_record(review, search, dataset_rows()[0])
    assert compute(review).source_notes == {"PubMed": "1 of 10 found; not all records fetched"}


# The PRISMA2020 R package's template: inst/extdata/PRISMA.csv of github.com/prisma-flowdiagram/PRISMA2020
# (0.0.3, commit 696d35e) plus the rows total_studies_ma and total_reports_ma that its current
# R/PRISMA_data.R reads (commit c650850), in the order of the template; typed from reading them.
TEMPLATE_COLUMNS = ["data", "node", "box", "description", "boxtext", "tooltips", "url", "n"]
TEMPLATE_ROWS = [
    ("NA", "node4", "prevstud"),
    ("previous_studies", "node5", "box1"),
    ("previous_reports", "NA", "box1"),
    ("NA", "node6", "newstud"),
    ("database_results", "node7", "box2"),
    ("database_specific_results", "NA", "box2"),
    ("register_results", "NA", "box2"),
    ("register_specific_results", "NA", "box2"),
    ("NA", "node16", "othstud"),
    ("website_results", "node17", "box11"),
    ("organisation_results", "", "box11"),
    ("citations_results", "NA", "box11"),
    ("duplicates", "node8", "box3"),
    ("excluded_automatic", "NA", "box3"),
    ("excluded_other", "NA", "box3"),
    ("records_screened", "node9", "box4"),
    ("records_excluded", "node10", "box5"),
    ("dbr_sought_reports", "node11", "box6"),
    ("dbr_notretrieved_reports", "node12", "box7"),
    ("other_sought_reports", "node18", "box12"),
    ("other_notretrieved_reports", "node19", "box13"),
    ("dbr_assessed", "node13", "box8"),
    ("dbr_excluded", "node14", "box9"),
    ("other_assessed", "node20", "box14"),
    ("other_excluded", "node21", "box15"),
    ("new_studies", "node15", "box10"),
    ("new_reports", "NA", "box10"),
    ("total_studies", "node22", "box16"),
    ("total_reports", "NA", "box16"),
    ("identification", "node1", "identification"),
    ("screening", "node2", "screening"),
    ("included", "node3", "included"),
    ("total_studies_ma", "node23", "box17"),
    ("total_reports_ma", "NA", "box17"),
]
# Box texts PRISMA_data() reads by name for the rows added after 0.0.3.
TEMPLATE_TEXTS = {
    "total_studies_ma": "Total studies included in meta-analysis",
    "total_reports_ma": "Reports of total included studies in meta-analysis",
}


def test_the_prisma2020_csv_has_exactly_the_templates_rows_and_columns(mixed):
    reader = csv.reader(io.StringIO(to_prisma2020_csv(compute(mixed))))
    header, *rows = list(reader)
    assert header == TEMPLATE_COLUMNS
    assert [tuple(r[:3]) for r in rows] == TEMPLATE_ROWS
    assert all(len(r) == len(TEMPLATE_COLUMNS) for r in rows)
    boxtext = {r[0]: r[4] for r in rows}
    assert {k: boxtext[k] for k in TEMPLATE_TEXTS} == TEMPLATE_TEXTS
    # The package finds each figure with grep() on the data column: every name it reads matches.
    names = [r[0] for r in rows]
    for wanted in ("total_studies_ma", "total_reports_ma", "total_studies$", "total_reports$", "screening"):
        assert sum(bool(re.search(wanted, name)) for name in names) >= 1, wanted


def test_the_downloads_do_not_tell_a_conflict_from_a_record_awaiting_a_vote(mixed, bob):
    # A blinded reviewer may download the JSON: open work is one figure per stage.
    data = to_json(compute(mixed))
    assert data["open_work"] == {"awaiting_title_abstract": 2, "awaiting_full_text": 2}
    assert "conflict" not in json.dumps(data)
