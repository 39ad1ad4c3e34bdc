"""What a review team does, in a real browser, against Sieve run as it is deployed (conftest.py):
each journey clicks and types as a person would and checks what the pages show, and the
database where the page cannot show it."""

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.journeys.conftest import person
from tests.shared import shared

pytestmark = pytest.mark.browser

PEOPLE = """
from django.contrib.auth import get_user_model
for name in {names!r}:
    get_user_model().objects.create_user(name, name + "@example.org", "pw-" + name)
"""

REVIEW_WITH_RECORDS = """
from django.contrib.auth import get_user_model
from review.importing import import_file
from review.models import Membership, Review, Role
users = {{u.username: u for u in get_user_model().objects.all()}}
review = Review.objects.create(slug="kratom", title="Kratom for PTSD symptoms", created_by=users["alice"])
for name, role in {roles!r}.items():
    Membership.objects.create(review=review, user=users[name], role=role)
import_file(review=review, path={path!r}, source="Embase", user=users["alice"])
print(review.records.count())
"""


COUNTS = """
import json
from review.models import Review
r = Review.objects.get(slug={slug!r})
print(json.dumps({{"records": r.records.count(), "duplicates": r.records.filter(duplicate_of__isnull=False).count()}}))
"""


def _counts(site, slug):
    return json.loads(site.python(COUNTS.format(slug=slug)).strip().splitlines()[-1])


def _import(page, path, source):
    page.get_by_role("link", name="Import file").first.click()
    page.set_input_files("input[type=file][name=file]", str(path))
    page.fill("input[name=source]", source)
    page.get_by_role("button", name="Import", exact=True).click()
    # The form answers at once with the job's page, which follows the worker to the end.
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    expect(page.locator("#job-progress")).to_contain_text("Done", timeout=60_000)
    return page.locator("#job-progress").inner_text()


def test_journey_1_an_owner_creates_a_review_imports_two_exports_sees_the_duplicates_and_undoes_one(browser, site):
    site.python(PEOPLE.format(names=["alice"]))
    alice = person(browser, site, "alice")

    alice.get_by_role("link", name="New review").click()
    alice.fill("input[name=title]", "Kratom for PTSD symptoms")
    alice.fill("input[name=slug]", "kratom")
    alice.get_by_role("button", name="Create review").click()
    expect(alice.locator("h1")).to_contain_text("Kratom for PTSD symptoms")
    expect(alice.locator("main")).to_contain_text("No records yet")

    first = _import(alice, shared("fixtures", "exports", "baseline_endnote.ris"), "EndNote library")
    assert "100" in first
    alice.get_by_role("link", name="Back to the review").click()
    second = _import(alice, shared("fixtures", "exports", "baseline_zotero.ris"), "Zotero library")
    counts = _counts(site, "kratom")
    assert counts["records"] == 200 and counts["duplicates"] >= 90, counts
    assert str(counts["duplicates"]) in second  # the job says how many it found

    alice.get_by_role("link", name="Back to the review").click()
    alice.goto(site.url + "/r/kratom/duplicates/")
    expect(alice.locator("main")).to_contain_text(f"{counts['duplicates']} records found twice or more")
    first_row = alice.locator("tbody.dup-group tr:not(.group-head)").first
    unmerged = first_row.locator("a").first.get_attribute("href")
    first_row.get_by_role("button", name="Not a duplicate").click()
    # The row goes (htmx swaps it out), the page stays.
    expect(alice.locator(f'tbody.dup-group tr:not(.group-head) a[href="{unmerged}"]')).to_have_count(0)
    assert _counts(site, "kratom")["duplicates"] == counts["duplicates"] - 1
    alice.reload()
    expect(alice.locator("main")).to_contain_text(f"{counts['duplicates'] - 1} records found twice or more")


def test_journey_5_a_stranger_and_a_viewer_are_refused_where_they_should_be(browser, site):
    site.python(PEOPLE.format(names=["alice", "erin", "dave"]))
    embase = shared("fixtures", "exports", "embase.ris")
    site.python(REVIEW_WITH_RECORDS.format(roles={"alice": "owner", "erin": "viewer"}, path=str(embase)))
    record = site.python("from review.models import Record; print(Record.objects.order_by('pk').first().pk)").split()[
        -1
    ]
    pages = [
        "",
        "records/",
        "screen/title_abstract/",
        "screen/full_text/",
        "conflicts/title_abstract/",
        "prisma/",
        "extraction/",
        "settings/",
        "members/",
        "searches/",
        "search/",
        "import/",
        "duplicates/",
        "jobs/",
        f"records/{record}/",
        "tags/",
        "audit.csv",
        "prisma/download.svg",
    ]

    dave = person(browser, site, "dave")
    for path in pages:
        response = dave.goto(f"{site.url}/r/kratom/{path}")
        assert response.status == 404, path
        assert "Kratom" not in dave.content(), path  # nothing of the review shows, not even its title
    expect(dave.locator("main")).to_be_visible()  # the refusal keeps the site's layout

    erin = person(browser, site, "erin")
    response = erin.goto(f"{site.url}/r/kratom/")
    assert response.status == 200
    for path in ("settings/", "search/", "import/"):
        response = erin.goto(f"{site.url}/r/kratom/{path}")
        assert response.status in (403, 404), path
    # What a viewer may read, they read; a forged vote is refused and changes nothing.
    assert erin.goto(f"{site.url}/r/kratom/records/").status == 200
    assert erin.goto(f"{site.url}/r/kratom/prisma/").status == 200
    token = erin.context.cookies()
    csrf = next(c["value"] for c in token if c["name"] == "csrftoken")
    forged = erin.request.post(
        f"{site.url}/r/kratom/screen/title_abstract/{record}/decide/",
        form={"outcome": "include", "csrfmiddlewaretoken": csrf},
        headers={"X-CSRFToken": csrf, "Referer": site.url + "/r/kratom/"},
    )
    assert forged.status in (403, 404)
    votes = site.python("from screening.models import Decision; print(Decision.objects.count())").split()[-1]
    assert votes == "0"


def test_journey_6_a_background_import_is_followed_to_its_end_from_the_dashboard(browser, site, tmp_path):
    from bench.pubmed_xml import make_file

    big = tmp_path / "big-search.xml"
    make_file(big, 6000)
    site.python(PEOPLE.format(names=["alice"]))
    site.python(
        REVIEW_WITH_RECORDS.format(roles={"alice": "owner"}, path=str(shared("fixtures", "exports", "embase.ris")))
    )
    alice = person(browser, site, "alice")
    alice.goto(site.url + "/r/kratom/")

    alice.get_by_role("link", name="Import file").first.click()
    alice.set_input_files("input[type=file][name=file]", str(big))
    alice.fill("input[name=source]", "PubMed")
    alice.get_by_role("button", name="Import", exact=True).click()
    expect(alice).to_have_url(re.compile(r"/jobs/\d+/$"))

    # Away from the job's page: the dashboard shows the import's bar and follows it by itself.
    alice.get_by_role("link", name="Kratom for PTSD symptoms").first.click()
    jobs = alice.locator("#dashboard-jobs")
    expect(jobs.locator("progress")).to_be_visible()
    url = alice.url
    expect(jobs).to_contain_text("Done", timeout=120_000)
    expect(jobs.locator("progress")).to_have_count(0)
    assert alice.url == url  # no reload: the box polled
    added = _counts(site, "kratom")["records"]
    assert added > 6000


DUAL_REVIEW = """
from django.contrib.auth import get_user_model
from review.importing import import_file
from review.models import Membership, Review, Role
users = {{u.username: u for u in get_user_model().objects.all()}}
review = Review.objects.create(
    slug="ptsd", title="Trajectories of PTSD", created_by=users["alice"], title_abstract_reviewers=2,
    exclusion_reasons="Wrong population\\nNot about trajectories\\nNot a study",
)
for name, role in (("alice", "owner"), ("bob", "reviewer"), ("carol", "reviewer")):
    Membership.objects.create(review=review, user=users[name], role=role)
import_file(review=review, path={path!r}, source="OpenAlex", user=users["alice"])
print(review.records.count())
"""

VOTES = """
import json
from screening.models import Decision
votes = Decision.objects.filter(record__review__slug="ptsd", is_current=True)
print(json.dumps({name: sorted(votes.filter(reviewer__username=name).values_list("record_id", flat=True)) for name in ("bob", "carol")}))
"""


def _synergy_subset(tmp_path, rows):
    """The first ``rows`` records of the PTSD review's dataset, with every included one, as a
    plain CSV export (no labels: the reviewers' keys decide), and the included titles."""
    import csv

    with shared("datasets", "van_de_Schoot_2018.csv").open(newline="", encoding="utf-8") as f:
        records = list(csv.DictReader(f))
    chosen = [r for r in records if r["label_included"] == "1"] + [r for r in records if r["label_included"] != "1"]
    chosen = chosen[:rows]
    path = tmp_path / "ptsd-export.csv"
    columns = ["title", "abstract", "year", "authors", "journal", "doi", "pmid"]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(chosen)
    return path, {r["title"].strip() for r in chosen if r["label_included"] == "1"}


def _vote_answer(record):
    """The server's answer to the vote on ``record`` (the next card may show before it)."""
    return lambda response: response.request.method == "POST" and response.url.endswith(f"/{record}/decide/")


def _screen_one(page, included, n):
    """Read the card, decide by one key (include, exclude, or exclude with reason 1-3), and wait
    for the next card. Returns (record id, whether the card showed a model's ranking)."""
    page.wait_for_selector("#card[data-ready][data-record]")
    record = page.locator("#card").get_attribute("data-record")
    title = page.locator("#card .record-title").inner_text().strip()
    ranked = page.locator("#card .record-ranking .band").count() > 0
    # The prefetched next card shows before the server answers: the vote's answer is waited for too.
    with page.expect_response(_vote_answer(record)):
        page.keyboard.press("i" if title in included else ("e", "1", "2", "3")[n % 4])
    page.wait_for_function(
        "r => { const c = document.querySelector('#card'); return !c || c.dataset.record !== r; }", arg=record
    )
    return record, ranked


def test_journey_2_two_reviewers_screen_by_keyboard_blinded_with_prioritisation(browser, site, tmp_path):
    export, included = _synergy_subset(tmp_path, 150)
    site.python(PEOPLE.format(names=["alice", "bob", "carol"]))
    assert site.python(DUAL_REVIEW.format(path=str(export))).split()[-1] == "150"
    bob, carol = person(browser, site, "bob"), person(browser, site, "carol")
    for page in (bob, carol):
        page.goto(site.url + "/r/ptsd/")
        page.get_by_role("link", name="Title/abstract").first.click()

    seen = {"bob": [], "carol": []}
    ranked = {"bob": False, "carol": False}
    for n in range(20):  # turn about, as two people working at the same time
        for name, page in (("bob", bob), ("carol", carol)):
            record, shown_ranked = _screen_one(page, included, n)
            seen[name].append(record)
            ranked[name] |= shown_ranked
            other = "carol" if name == "bob" else "bob"
            text = page.locator("main").inner_text()
            # Blinded: nothing on the card tells who else voted, or how.
            assert other not in text.lower(), f"{name} sees {other} on record {record}"
            assert "1 of 2 votes" not in text and "other reviewer" not in text.lower()

    # Every keystroke was one vote, none lost or doubled, under the reviewer who pressed it.
    votes = json.loads(site.python(VOTES).strip().splitlines()[-1])
    for name in ("bob", "carol"):
        assert len(seen[name]) == len(set(seen[name])) == 20
        assert votes[name] == sorted(int(r) for r in seen[name])
    # Prioritisation was on: the worker retrained as votes came in and the cards showed its ranking.
    assert ranked["bob"] and ranked["carol"]
    # Both reviewers voted on the records the model put first (dual screening): their cards overlap.
    assert set(seen["bob"]) & set(seen["carol"])


CONFLICTS = """
from django.contrib.auth import get_user_model
from review.importing import import_file
from review.models import Membership, Review, Role
from screening.decisions import record_decision
users = {{u.username: u for u in get_user_model().objects.all()}}
review = Review.objects.create(
    slug="kratom", title="Kratom for PTSD symptoms", created_by=users["alice"], title_abstract_reviewers=2,
    exclusion_reasons="Wrong population\\nWrong intervention\\nNot a study",
)
for name, role in (("alice", "owner"), ("bob", "reviewer"), ("carol", "reviewer")):
    Membership.objects.create(review=review, user=users[name], role=role)
import_file(review=review, path={path!r}, source="Embase", user=users["alice"])
records = list(review.records.filter(duplicate_of__isnull=True).order_by("pk")[:{n}])
for record in records:  # bob and carol disagree on each
    record_decision(record=record, reviewer=users["bob"], stage="title_abstract", decision="include")
    record_decision(record=record, reviewer=users["carol"], stage="title_abstract", decision="exclude", reason="Not a study")
print(" ".join(str(r.pk) for r in records))
"""

OUTCOMES = """
import json
from review.models import Record
print(json.dumps({{r.pk: [r.ta_outcome, r.ft_outcome] for r in Record.objects.filter(pk__in={pks!r})}}))
"""

FULLTEXT = """
import json
from review.models import FullText
from screening.models import Decision
ft = FullText.objects.filter(record_id={pk}).first()
votes = list(Decision.objects.filter(record_id={pk}, stage="full_text", is_current=True).values_list("decision", "reason"))
print(json.dumps({{"pdf": bool(ft and ft.file), "votes": votes}}))
"""

# A one-page PDF written for these journeys.
PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >>"
    b" endobj\n3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 300 144] /Contents 4 0 R /Resources << /Font"
    b" << /F1 5 0 R >> >> >> endobj\n4 0 obj << /Length 52 >> stream\nBT /F1 18 Tf 20 70 Td (Kratom full text) Tj ET"
    b"\nendstream endobj\n5 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj\n"
    b"trailer << /Root 1 0 R >>\n%%EOF\n"
)


def test_journey_3_the_owner_resolves_conflicts_by_keyboard_then_screens_full_texts_with_pdfs(browser, site, tmp_path):
    site.python(PEOPLE.format(names=["alice", "bob", "carol"]))
    embase = shared("fixtures", "exports", "embase.ris")
    pks = [int(p) for p in site.python(CONFLICTS.format(path=str(embase), n=3)).split()[-3:]]
    alice = person(browser, site, "alice")

    # The queue shows each conflict's title, abstract and both votes with reasons, on one page.
    alice.goto(site.url + "/r/kratom/")
    alice.get_by_role("link", name=re.compile("Conflicts")).first.click()
    conflicts = alice.locator("section[data-conflict]")
    expect(conflicts).to_have_count(3)
    first = conflicts.first
    expect(first).to_contain_text("bob")
    expect(first).to_contain_text("carol")
    expect(first).to_contain_text("Not a study")
    expect(first.locator(".conflict-abstract")).not_to_be_empty()

    # Keys alone: the first is highlighted on arrival; j and k move; i includes the highlighted one,
    # i again the next, and 3 excludes the last with the third reason.
    expect(first).to_have_class(re.compile("current"))
    alice.keyboard.press("j")
    expect(conflicts.nth(1)).to_have_class(re.compile("current"))
    alice.keyboard.press("k")
    expect(first).to_have_class(re.compile("current"))
    alice.keyboard.press("i")
    expect(conflicts).to_have_count(2)
    expect(alice.locator("section[data-conflict].current")).to_have_count(1)
    alice.keyboard.press("i")
    expect(conflicts).to_have_count(1)
    alice.keyboard.press("3")
    expect(alice.locator("main")).to_contain_text("No", timeout=15_000)  # the page comes back empty
    outcomes = json.loads(site.python(OUTCOMES.format(pks=pks)).strip().splitlines()[-1])
    assert sorted(o[0] for o in outcomes.values()) == ["exclude", "include", "include"], outcomes

    # Full text: attach the PDF on the card, read it beside the buttons, decide with a reason key.
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(PDF)
    alice.get_by_role("link", name="Full text").first.click()
    alice.wait_for_selector("#card[data-ready][data-record]")
    record = int(alice.locator("#card").get_attribute("data-record"))
    assert record in pks and outcomes[str(record)][0] == "include"
    alice.set_input_files(".fulltext-actions input[name=pdf]", str(pdf))
    alice.locator(".fulltext-actions").get_by_role("button", name="Upload").click()
    viewer = alice.locator("iframe.fulltext-viewer")
    expect(viewer).to_be_visible()
    assert viewer.get_attribute("src") == f"/r/kratom/records/{record}/fulltext.pdf"
    alice.wait_for_function("() => performance.getEntriesByType('resource').some(e => e.name.includes('fulltext.pdf'))")
    alice.locator("#card h2.record-title").click()  # the keys go to the page, not the PDF
    with alice.expect_response(_vote_answer(record)):
        alice.keyboard.press("2")
    alice.wait_for_function(
        "r => { const c = document.querySelector('#card'); return !c || c.dataset.record !== r; }", arg=str(record)
    )
    done = json.loads(site.python(FULLTEXT.format(pk=record)).strip().splitlines()[-1])
    assert done == {"pdf": True, "votes": [["exclude", "Wrong intervention"]]}, done


INCLUDED = """
from django.contrib.auth import get_user_model
from review.importing import import_file
from review.models import Membership, Review, Role
from screening.decisions import record_decision
from screening.models import ExtractionField
alice = get_user_model().objects.get(username="alice")
review = Review.objects.create(slug="kratom", title="Kratom for PTSD symptoms", created_by=alice)
Membership.objects.create(review=review, user=alice, role=Role.OWNER)
import_file(review=review, path={path!r}, source="Embase", user=alice)
unique = list(review.records.filter(duplicate_of__isnull=True).order_by("pk"))
for record in unique[:3]:
    record_decision(record=record, reviewer=alice, stage="title_abstract", decision="include")
    record_decision(record=record, reviewer=alice, stage="full_text", decision="include")
for record in unique[3:6]:
    record_decision(record=record, reviewer=alice, stage="title_abstract", decision="exclude", reason="Not a study")
ExtractionField.objects.create(review=review, name="Sample size", kind="number", position=1)
ExtractionField.objects.create(review=review, name="Design", kind="choice", choices="RCT\\nCohort", position=2)
import json
print(json.dumps({{"included": [r.title for r in unique[:3]], "identified": review.records.count()}}))
"""


def _download(page, click):
    with page.expect_download() as info:
        click()
    return Path(info.value.path()).read_bytes(), info.value.suggested_filename


def test_journey_4_the_owner_extracts_data_and_downloads_the_table_prisma_and_included_records(browser, site, tmp_path):
    import io

    import openpyxl
    import pypdfium2
    import rispy
    from defusedxml import ElementTree

    site.python(PEOPLE.format(names=["alice"]))
    embase = shared("fixtures", "exports", "embase.ris")
    facts = json.loads(site.python(INCLUDED.format(path=str(embase))).strip().splitlines()[-1])
    alice = person(browser, site, "alice")
    alice.goto(site.url + "/r/kratom/")

    # The extraction form, filled for the first included study.
    alice.get_by_role("link", name="Extraction").first.click()
    alice.locator("table.extraction a[href*='/extraction/']").first.click()
    study = alice.locator("h1").inner_text()
    alice.get_by_label("Sample size").fill("120")
    alice.get_by_label("Design").select_option("RCT")
    alice.get_by_role("button", name="Save").click()
    expect(alice.locator("main")).not_to_contain_text("error")
    alice.get_by_role("link", name="Extraction").first.click()

    # The table as XLSX: opened and read back.
    xlsx, name = _download(alice, lambda: alice.get_by_role("link", name="Export XLSX").click())
    assert name.endswith(".xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx)).active
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    header = rows[0]
    row = next(r for r in rows[1:] if r[header.index("Study ID")] == study)
    assert row[header.index("Sample size")] == 120 and row[header.index("Design")] == "RCT"
    assert len(rows) == 1 + len(facts["included"])

    # PRISMA: the SVG and the PDF, the PDF rendered to an image and checked.
    alice.get_by_role("link", name="PRISMA").first.click()
    svg, _ = _download(alice, lambda: alice.get_by_role("link", name="SVG", exact=True).click())
    texts = " ".join(t.strip() for t in ElementTree.fromstring(svg).itertext() if t.strip())
    assert f"(n = {facts['identified']})" in texts.replace("n=", "n = ")
    pdf, name = _download(alice, lambda: alice.get_by_role("link", name="PDF", exact=True).click())
    assert name.endswith(".pdf") and pdf.startswith(b"%PDF-")
    document = pypdfium2.PdfDocument(pdf)
    assert len(document) == 1
    page = document[0]
    image = page.render(scale=1).to_pil().convert("L")
    image.save(tmp_path / "prisma.png")
    width, height = image.size
    assert height > width * 0.8  # the PRISMA flow is taller than wide
    inked = sum(image.histogram()[:128]) / (width * height)
    assert 0.01 < inked < 0.5, inked  # boxes and words drawn, not a blank or black page
    text = page.get_textpage().get_text_range()
    assert "Records" in text and str(facts["identified"]) in text

    # The included records as RIS, from the records table filtered on the full-text outcome.
    alice.get_by_role("link", name="Records").first.click()
    alice.get_by_label("FT outcome").select_option("include")
    alice.get_by_role("button", name="Filter", exact=True).click()
    ris, name = _download(alice, lambda: alice.locator("form.records-export").get_by_role("button", name="RIS").click())
    assert name.endswith(".ris")
    entries = rispy.loads(ris.decode("utf-8"))
    assert sorted(e.get("title") or e.get("primary_title") for e in entries) == sorted(facts["included"])
