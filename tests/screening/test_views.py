import csv
import io
import json

import pytest
from django.urls import reverse

from review.models import Record, Stage
from screening.decisions import record_decision
from screening.models import Decision, ExtractionField, ExtractionValue
from tests.browser import log_in
from tests.screening.test_queue import import_ris, unique_pks

TA, FT = Stage.TITLE_ABSTRACT, Stage.FULL_TEXT
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def imported(review):
    import_ris(review, "baseline_endnote.ris", "EndNote")
    import_ris(review, "baseline_zotero.ris", "Zotero")
    return review


def first_unique(review, n=0):
    return Record.objects.get(pk=unique_pks(review)[n])


def vote(record, user, decision, stage=TA, reason=""):
    record_decision(record=record, reviewer=user, stage=stage, decision=decision, reason=reason)


def url(name, review, *args):
    return reverse(f"screening:{name}", args=[review.slug, *args])


# Access -----------------------------------------------------------------------------------------

READ_PAGES = [
    ("records", ()),
    ("prisma", ()),
    ("prisma_download", ("json",)),
    ("extraction", ()),
    ("extraction_fields", ()),
    ("extraction_export", ("csv",)),
]


@pytest.mark.parametrize("name,args", READ_PAGES + [("screen", (TA,)), ("screen", (FT,))])
def test_dave_the_outsider_gets_404_everywhere(client, imported, dave, name, args):
    client.force_login(dave)
    assert client.get(url(name, imported, *args)).status_code == 404


def test_dave_cannot_decide_or_extract(client, imported, dave):
    record = first_unique(imported)
    client.force_login(dave)
    assert client.post(url("decide", imported, TA, record.pk), {"decision": "include"}).status_code == 404
    assert client.get(url("extraction_entry", imported, record.pk)).status_code == 404
    assert client.post(url("extraction_fields", imported), {"name": "n", "kind": "text"}).status_code == 404
    assert not Decision.objects.exists()


@pytest.mark.parametrize("name,args", READ_PAGES)
def test_erin_the_viewer_reads_the_pages(client, imported, erin, name, args):
    client.force_login(erin)
    assert client.get(url(name, imported, *args)).status_code == 200


def test_erin_the_viewer_cannot_screen(client, imported, erin):
    record = first_unique(imported)
    client.force_login(erin)
    assert client.get(url("screen", imported, TA)).status_code == 403
    assert client.post(url("decide", imported, TA, record.pk), {"decision": "include"}).status_code == 403
    assert not Decision.objects.exists()


def test_anonymous_visitors_are_sent_to_log_in(client, imported):
    response = client.get(url("screen", imported, TA))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_an_unknown_stage_is_404(client, imported, bob):
    client.force_login(bob)
    assert client.get(url("screen", imported, "abstracts")).status_code == 404


# Screening page ---------------------------------------------------------------------------------


def test_bob_sees_the_first_unique_record_with_links_and_buttons(client, imported, bob):
    record = first_unique(imported)
    client.force_login(bob)
    page = client.get(url("screen", imported, TA)).content.decode()
    assert record.abstract[:60] in page
    assert f"https://doi.org/{record.doi}" in page
    for value in ("include", "exclude", "maybe"):
        assert f'value="{value}"' in page
    assert 'value="not_retrieved"' not in page
    assert url("decide", imported, TA, record.pk) in page
    assert 'class="progress"' in page


def test_keywords_are_highlighted_in_title_and_abstract(client, imported, bob):
    record = first_unique(imported)
    include_word = record.title.split()[1]  # a real word of the title
    imported.include_keywords = include_word
    imported.exclude_keywords = "meta-analysis"
    imported.save()
    client.force_login(bob)
    page = client.get(url("screen", imported, TA)).content.decode()
    assert f'<mark class="kw-include">{include_word}</mark>' in page
    assert "meta-analysis" in record.abstract.lower()
    assert '<mark class="kw-exclude">' in page


def test_a_decision_without_htmx_redirects_to_the_next_record(client, imported, bob):
    record, following = first_unique(imported), first_unique(imported, 1)
    client.force_login(bob)
    response = client.post(
        url("decide", imported, TA, record.pk),
        {"decision": "exclude", "reason": "Wrong population", "note": "animal study"},
    )
    assert response.status_code == 302 and response["Location"] == url("screen", imported, TA)
    made = Decision.objects.get(record=record, reviewer=bob)
    assert (made.decision, made.reason, made.note) == ("exclude", "Wrong population", "animal study")
    assert following.abstract[:60] in client.get(response["Location"]).content.decode()


def test_a_decision_through_htmx_returns_the_next_card_only(client, imported, bob):
    record, following = first_unique(imported), first_unique(imported, 1)
    client.force_login(bob)
    response = client.post(url("decide", imported, TA, record.pk), {"decision": "include"}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="card"') and "<html" not in body
    assert url("decide", imported, TA, following.pk) in body
    assert response["HX-Replace-Url"] == url("screen", imported, TA)
    Record.objects.get(pk=record.pk, ta_outcome="include")


def test_a_full_text_exclusion_needs_a_reason(client, imported, bob):
    record = first_unique(imported)
    vote(record, bob, "include")
    client.force_login(bob)
    page = client.get(url("screen", imported, FT)).content.decode()
    assert 'value="not_retrieved"' in page and "data-needs-reason" in page
    response = client.post(url("decide", imported, FT, record.pk), {"decision": "exclude"}, **HTMX)
    assert response.status_code == 400
    assert "needs a reason" in response.content.decode()
    assert not Decision.objects.filter(stage=FT).exists()
    response = client.post(
        url("decide", imported, FT, record.pk), {"decision": "exclude", "other_reason": "Conference abstract only"}
    )
    assert response.status_code == 302
    assert Record.objects.get(pk=record.pk).ft_reason == "Conference abstract only"


def test_full_text_refuses_a_record_not_included_at_title_abstract(client, imported, bob):
    record = first_unique(imported)
    client.force_login(bob)
    response = client.post(url("decide", imported, FT, record.pk), {"decision": "include"})
    assert response.status_code == 400
    assert "Only records included at title/abstract" in response.content.decode()


def test_a_duplicate_cannot_be_screened(client, imported, bob):
    duplicate = Record.objects.for_review(imported).duplicates().first()
    client.force_login(bob)
    response = client.post(url("decide", imported, TA, duplicate.pk), {"decision": "include"}, **HTMX)
    assert response.status_code == 400
    assert f"duplicate of record {duplicate.duplicate_of_id}" in response.content.decode()


def test_bob_goes_back_and_changes_his_last_decision(client, imported, bob):
    record = first_unique(imported)
    client.force_login(bob)
    client.post(url("decide", imported, TA, record.pk), {"decision": "include"})
    page = client.get(url("screen", imported, TA)).content.decode()
    back = f"{url('screen', imported, TA)}?record={record.pk}"
    assert back in page
    revisit = client.get(back).content.decode()
    assert "You decided <strong>Include</strong>" in revisit
    client.post(url("decide", imported, TA, record.pk), {"decision": "exclude"})
    history = list(Decision.objects.filter(record=record, reviewer=bob).values_list("decision", "is_current"))
    assert history == [("include", False), ("exclude", True)]
    assert Record.objects.get(pk=record.pk).ta_outcome == "exclude"


def test_it_hides_bobs_vote_from_carol(client, imported, bob, carol):
    imported.title_abstract_reviewers = 2
    imported.save()
    record = first_unique(imported)
    vote(record, bob, "exclude", reason="Wrong outcome")
    client.force_login(carol)
    page = client.get(url("screen", imported, TA)).content.decode()
    assert url("decide", imported, TA, record.pk) in page
    # The review lists "Wrong outcome" (its reason buttons and list); nowhere before them.
    assert "Wrong outcome" not in page.split('class="reason-buttons"')[0]
    assert "You decided" not in page and "bob" not in page


def test_carol_cannot_revisit_a_record_bob_alone_settled(client, imported, bob, carol):
    record = first_unique(imported)
    vote(record, bob, "include")
    client.force_login(carol)
    assert client.get(f"{url('screen', imported, TA)}?record={record.pk}").status_code == 404


def test_all_done_when_nothing_is_left(client, imported, bob):
    uniques = unique_pks(imported)
    for pk in uniques:
        vote(Record.objects.get(pk=pk), bob, "exclude")
    client.force_login(bob)
    page = client.get(url("screen", imported, TA)).content.decode()
    assert "All done at this stage" in page
    assert f"You have screened {len(uniques)} records" in page


# Records table ----------------------------------------------------------------------------------


def records_page(client, review, **params):
    response = client.get(url("records", review), params)
    assert response.status_code == 200
    return response


def listed(response):
    return [row.record.pk for row in response.context["table"].paginated_rows]


def test_records_table_pages_by_fifty_without_n_plus_one(client, imported, bob, django_assert_max_num_queries):
    client.force_login(bob)
    total = Record.objects.for_review(imported).count()
    with django_assert_max_num_queries(12):
        response = records_page(client, imported)
    assert len(listed(response)) == 50
    assert response.context["table"].paginator.count == total
    page = response.content.decode()
    record = Record.objects.for_review(imported).order_by("pk").first()
    assert reverse("review:record", args=[imported.slug, record.pk]) in page


def test_records_filter_by_outcome_duplicates_source_year_and_text(client, imported, bob):
    first, second = first_unique(imported), first_unique(imported, 1)
    vote(first, bob, "include")
    vote(second, bob, "exclude")
    client.force_login(bob)
    assert listed(records_page(client, imported, ta="include")) == [first.pk]
    pending = records_page(client, imported, ta="pending", duplicates="unique")
    assert pending.context["table"].paginator.count == len(unique_pks(imported)) - 2
    dups = Record.objects.for_review(imported).duplicates()
    assert records_page(client, imported, duplicates="duplicate").context["table"].paginator.count == dups.count()
    zotero = Record.objects.for_review(imported).filter(source="Zotero").count()
    assert records_page(client, imported, source="Zotero").context["table"].paginator.count == zotero
    year = first.year
    in_year = Record.objects.for_review(imported).filter(year=year).count()
    assert records_page(client, imported, year_min=year, year_max=year).context["table"].paginator.count == in_year
    word = "hyperinsulinism"
    expected = {
        r.pk for r in Record.objects.for_review(imported) if word in r.title.lower() or word in r.abstract.lower()
    }
    assert expected and set(listed(records_page(client, imported, q=word.upper()))) == expected


def test_records_sort_by_year(client, imported, bob):
    client.force_login(bob)
    years = [Record.objects.get(pk=pk).year for pk in listed(records_page(client, imported, sort="-year"))]
    assert years == sorted(years, reverse=True)
    assert years[0] == max(Record.objects.for_review(imported).values_list("year", flat=True))


def test_carol_can_filter_by_her_own_votes_but_not_by_bobs(client, imported, bob, carol):
    imported.title_abstract_reviewers = 2
    imported.save()
    first, second = first_unique(imported), first_unique(imported, 1)
    vote(first, bob, "include")
    vote(second, carol, "include")
    client.force_login(carol)
    response = records_page(client, imported, decision="include", reviewer=bob.pk)
    assert listed(response) == [second.pk]
    options = response.context["filter"].form.fields["reviewer"].queryset
    assert list(options) == [carol]


def test_alice_the_owner_filters_by_bobs_votes(client, imported, alice, bob, carol):
    first, second = first_unique(imported), first_unique(imported, 1)
    vote(first, bob, "include")
    vote(second, carol, "include")
    client.force_login(alice)
    assert listed(records_page(client, imported, decision="include", reviewer=bob.pk)) == [first.pk]
    assert listed(records_page(client, imported, reviewer=carol.pk)) == [second.pk]
    assert set(listed(records_page(client, imported, decision="include"))) == {first.pk, second.pk}


# PRISMA -----------------------------------------------------------------------------------------


def test_prisma_page_shows_the_diagram_and_downloads(client, imported, bob):
    vote(first_unique(imported), bob, "exclude")
    client.force_login(bob)
    page = client.get(url("prisma", imported)).content.decode()
    assert "<svg" in page
    for fmt in ("svg", "png", "pdf", "json", "csv"):
        assert url("prisma_download", imported, fmt) in page


@pytest.mark.parametrize(
    "fmt,content_type,magic",
    [
        ("svg", "image/svg+xml", b"<svg"),
        ("png", "image/png", b"\x89PNG"),
        ("pdf", "application/pdf", b"%PDF"),
    ],
)
def test_prisma_downloads_are_real_files(client, imported, bob, fmt, content_type, magic):
    client.force_login(bob)
    response = client.get(url("prisma_download", imported, fmt))
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == f'attachment; filename="kratom-ptsd-prisma.{fmt}"'
    assert magic in response.content[:200]


def test_prisma_json_and_csv_carry_the_counts(client, imported, bob):
    uniques = unique_pks(imported)
    vote(Record.objects.get(pk=uniques[0]), bob, "exclude")
    client.force_login(bob)
    data = json.loads(client.get(url("prisma_download", imported, "json")).content)
    duplicates = Record.objects.for_review(imported).duplicates().count()
    assert data["duplicates_removed"] == duplicates
    assert data["records_excluded"] == 1
    response = client.get(url("prisma_download", imported, "csv"))
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="kratom-ptsd-prisma2020.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert len(rows) > 5
    assert client.get(url("prisma_download", imported, "gif")).status_code == 404


# Extraction -------------------------------------------------------------------------------------


@pytest.fixture
def included(imported, bob):
    record = first_unique(imported)
    vote(record, bob, "include")
    vote(record, bob, "include", stage=FT)
    return record


def add_field(client, review, **data):
    return client.post(url("extraction_fields", review), {"action": "save", **data})


def test_alice_defines_reorders_edits_and_deletes_fields(client, imported, alice):
    client.force_login(alice)
    assert add_field(client, imported, name="Sample size", kind="number").status_code == 302
    assert add_field(client, imported, name="Design", kind="choice", choices="RCT\nCohort\n\n").status_code == 302
    assert add_field(client, imported, name="Blinded", kind="yesno").status_code == 302
    names = lambda: list(ExtractionField.objects.filter(review=imported).values_list("name", flat=True))  # noqa: E731
    assert names() == ["Sample size", "Design", "Blinded"]
    design = ExtractionField.objects.get(name="Design")
    assert design.choices_list() == ["RCT", "Cohort"]
    client.post(url("extraction_fields", imported), {"action": "up", "field": design.pk})
    assert names() == ["Design", "Sample size", "Blinded"]
    client.post(
        url("extraction_fields", imported),
        {
            "action": "save",
            "field": design.pk,
            "name": "Study design",
            "kind": "choice",
            "choices": "RCT\nCohort\nCase series",
        },
    )
    assert names() == ["Study design", "Sample size", "Blinded"]
    client.post(url("extraction_fields", imported), {"action": "delete", "field": design.pk})
    assert names() == ["Sample size", "Blinded"]


def test_field_definitions_are_validated(client, imported, alice):
    client.force_login(alice)
    add_field(client, imported, name="Design", kind="text")
    response = add_field(client, imported, name="design", kind="text")
    assert response.status_code == 400 and "already has a field" in response.content.decode()
    response = add_field(client, imported, name="Arm", kind="choice", choices="Only one")
    assert response.status_code == 400 and "at least two options" in response.content.decode()
    assert ExtractionField.objects.filter(review=imported).count() == 1


def test_only_alice_may_change_fields(client, imported, bob, erin):
    for user in (bob, erin):
        client.force_login(user)
        assert add_field(client, imported, name="Country", kind="text").status_code == 403
    assert not ExtractionField.objects.exists()


def test_bob_extracts_data_for_an_included_study(client, imported, bob, included):
    size = ExtractionField.objects.create(review=imported, name="Sample size", kind="number", position=1)
    blinded = ExtractionField.objects.create(review=imported, name="Blinded", kind="yesno", position=2)
    client.force_login(bob)
    entry = url("extraction_entry", imported, included.pk)
    page = client.get(entry).content.decode()
    assert 'type="number"' in page and '<option value="yes">Yes</option>' in page
    response = client.post(entry, {f"field_{size.pk}": "120", f"field_{blinded.pk}": "yes"})
    assert response.status_code == 302
    stored = dict(ExtractionValue.objects.filter(record=included).values_list("field__name", "value"))
    assert stored == {"Sample size": "120", "Blinded": "yes"}
    table = client.get(url("extraction", imported)).content.decode()
    assert entry in table and "120" in table
    export = client.get(url("extraction_export", imported, "csv"))
    assert export["Content-Disposition"] == 'attachment; filename="kratom-ptsd-extraction.csv"'
    assert "120" in export.content.decode("utf-8")
    xlsx = client.get(url("extraction_export", imported, "xlsx"))
    assert xlsx.content[:2] == b"PK"


def test_a_bad_number_is_refused_and_nothing_is_saved(client, imported, bob, included):
    size = ExtractionField.objects.create(review=imported, name="Sample size", kind="number", position=1)
    country = ExtractionField.objects.create(review=imported, name="Country", kind="text", position=2)
    client.force_login(bob)
    response = client.post(
        url("extraction_entry", imported, included.pk),
        {f"field_{size.pk}": "about 40", f"field_{country.pk}": "Norway"},
    )
    assert response.status_code == 400
    assert "is not a number" in response.content.decode()
    assert not ExtractionValue.objects.exists()


def test_only_included_studies_can_be_extracted(client, imported, bob, included):
    other = first_unique(imported, 1)
    client.force_login(bob)
    assert client.get(url("extraction_entry", imported, other.pk)).status_code == 404


def test_erin_the_viewer_reads_an_entry_but_cannot_save(client, imported, erin, included):
    field = ExtractionField.objects.create(review=imported, name="Country", kind="text")
    client.force_login(erin)
    entry = url("extraction_entry", imported, included.pk)
    page = client.get(entry).content.decode()
    assert "disabled" in page and ">Save<" not in page
    assert client.post(entry, {f"field_{field.pk}": "Norway"}).status_code == 403
    assert not ExtractionValue.objects.exists()


# In a real browser -------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_bob_screens_with_the_keyboard_without_page_reloads(imported, bob, live_server, browser_page):
    page = browser_page
    first, second, third, fourth = (first_unique(imported, i) for i in range(4))
    log_in(page, live_server, "bob")
    page.goto(live_server.url + url("screen", imported, TA))
    page.wait_for_selector(f"#card[data-ready] form[action='{url('decide', imported, TA, first.pk)}']")
    page.evaluate("window.stillTheSamePage = true")
    sent = []

    def note(request):
        # The progress bar of each new card follows in its own small request (not a reload).
        if "/static/" not in request.url and "/progress/" not in request.url:
            sent.append((request.method, request.headers.get("hx-request")))

    page.on("request", note)

    page.keyboard.press("i")
    page.wait_for_selector(f"#card[data-ready] form[action='{url('decide', imported, TA, second.pk)}']")
    # Keys typed into the note are text, not shortcuts.
    page.click("textarea[name=note]")
    page.keyboard.type("e")
    page.keyboard.press("Escape")
    page.keyboard.press("e")
    page.wait_for_selector(f"#card[data-ready] form[action='{url('decide', imported, TA, third.pk)}']")
    page.keyboard.press("m")
    page.wait_for_selector(f"#card[data-ready] form[action='{url('decide', imported, TA, fourth.pk)}']")
    # The fourth card is the prefetched one, shown as the third vote was sent; its progress bar
    # follows the answer.
    page.wait_for_selector("#card .screen-progress progress[value]")
    assert sent == [("POST", "true")] * 3
    assert page.evaluate("window.stillTheSamePage") is True
    assert "You: 3 screened" in page.inner_text("#card .screen-progress")

    page.keyboard.press("?")
    assert page.is_visible("#shortcut-help")
    page.keyboard.press("Escape")
    page.keyboard.press("u")
    page.wait_for_selector("text=You decided")
    assert f"record={third.pk}" in page.url

    votes = list(Decision.objects.filter(reviewer=bob).order_by("pk").values_list("record_id", "decision", "note"))
    assert votes == [(first.pk, "include", ""), (second.pk, "exclude", "e"), (third.pk, "maybe", "")]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_full_text_exclude_by_key_asks_for_a_reason_first(imported, bob, live_server, browser_page):
    page = browser_page
    first, second = first_unique(imported), first_unique(imported, 1)
    vote(first, bob, "include")
    vote(second, bob, "include")
    log_in(page, live_server, "bob")
    page.goto(live_server.url + url("screen", imported, FT))
    page.wait_for_selector("#card[data-ready]")
    page.keyboard.press("e")
    # No request: the reason select takes the focus instead.
    assert page.evaluate("document.activeElement.name") == "reason"
    page.select_option("select[name=reason]", "Wrong outcome")
    page.keyboard.press("Escape")
    page.keyboard.press("e")
    page.wait_for_selector(f"#card[data-ready] form[action='{url('decide', imported, FT, second.pk)}']")
    page.keyboard.press("n")
    page.wait_for_selector("text=All done at this stage")
    outcomes = dict(Record.objects.filter(pk__in=[first.pk, second.pk]).values_list("pk", "ft_outcome"))
    assert outcomes == {first.pk: "exclude", second.pk: "not_retrieved"}
    assert Record.objects.get(pk=first.pk).ft_reason == "Wrong outcome"


def test_highlighting_escapes_html_and_marks_whole_words_and_plurals():
    from screening.templatetags.highlight import highlight_text

    marked = highlight_text("Rats & <b>mice</b>: rating randomised", include=["random*"], exclude=["rat", "mice"])
    assert marked == (
        '<mark class="kw-exclude">Rats</mark> &amp; &lt;b&gt;<mark class="kw-exclude">mice</mark>'
        '&lt;/b&gt;: rating <mark class="kw-include">randomised</mark>'
    )
