"""The conflicts queue shows each record's title, abstract and both votes with reasons, and is
resolved by keyboard without opening each record (issue 10)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from review.models import Event, Record, Search
from screening.decisions import record_decision
from screening.models import Resolution
from tests.browser import log_in

TA = "title_abstract"
REASONS = ["Wrong population", "Animal study"]


def conflicts_among(review, bob, carol, n):
    """``n`` title/abstract conflicts: bob includes, carol excludes with a reason."""
    review.title_abstract_reviewers = 2
    review.exclusion_reasons = "\n".join(REASONS)
    review.save()
    search = Search.objects.create(review=review, kind="file", source="Embase")
    Record.objects.bulk_create(
        Record(
            review=review,
            search=search,
            source="Embase",
            title=f"Kratom withdrawal, cohort {i}",
            abstract=f"Abstract of cohort {i}: <b>kratom</b> users followed for a year.",
        )
        for i in range(n)
    )
    records = list(Record.objects.filter(review=review).order_by("pk"))
    for record in records:
        record_decision(record=record, reviewer=bob, stage=TA, decision="include", note="bob thinks so")
        record_decision(record=record, reviewer=carol, stage=TA, decision="exclude", reason="Animal study")
    return records


def conflicts_url(review):
    return reverse("screening:conflicts", args=[review.slug, TA])


def test_alice_reads_title_abstract_and_both_votes_with_reasons_on_the_queue(client, review, alice, bob, carol):
    (record,) = conflicts_among(review, bob, carol, 1)
    client.force_login(alice)
    html = client.get(conflicts_url(review)).content.decode()
    assert "Kratom withdrawal, cohort 0" in html
    # The abstract is there, escaped.
    assert "Abstract of cohort 0: &lt;b&gt;kratom&lt;/b&gt; users followed for a year." in html
    section = html.split(f'id="conflict-{record.pk}"')[1]
    assert "<td>bob</td>" in section and "<td>carol</td>" in section
    assert "Animal study" in section and "bob thinks so" in section
    # Keys on the buttons: the decisions and each reason.
    assert 'data-conflict-key="i"' in section and 'data-conflict-key="e"' in section
    assert 'value="Animal study" class="btn btn-small btn-exclude" data-conflict-key="2"' in section


def test_a_blinded_reviewer_still_cannot_open_the_queue(client, review, bob, carol):
    conflicts_among(review, bob, carol, 1)
    client.force_login(bob)
    assert client.get(conflicts_url(review)).status_code == 403


def test_alice_resolves_with_a_reason_key_and_the_history_is_kept(client, review, alice, bob, carol):
    (record,) = conflicts_among(review, bob, carol, 1)
    client.force_login(alice)
    response = client.post(
        reverse("screening:resolve", args=[review.slug, TA, record.pk]),
        {"tab": "open", "exclude_reason": "Wrong population"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    resolution = Resolution.objects.get(record=record, stage=TA, is_current=True)
    assert (resolution.decision, resolution.reason, resolution.resolved_by) == ("exclude", "Wrong population", alice)
    assert Event.objects.filter(record=record, kind=Event.Kind.RESOLUTION).count() == 1
    assert Record.objects.get(pk=record.pk).ta_outcome == "exclude"


def test_a_reason_from_another_review_does_not_resolve(client, review, other_review, alice, bob, carol):
    other_review.exclusion_reasons = "Conference abstract only"
    other_review.save()
    (record,) = conflicts_among(review, bob, carol, 1)
    client.force_login(alice)
    response = client.post(
        reverse("screening:resolve", args=[review.slug, TA, record.pk]),
        {"tab": "open", "exclude_reason": "Conference abstract only"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 400
    assert not Resolution.objects.filter(record=record).exists()


def queries_for_the_queue(client, review):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(conflicts_url(review)).status_code == 200
    return len(queries)


def test_the_queue_page_reads_the_same_number_of_queries_for_2_or_20_conflicts(client, review, alice, bob, carol):
    conflicts_among(review, bob, carol, 2)
    client.force_login(alice)
    client.get(conflicts_url(review))  # warm the session and the content types
    few = queries_for_the_queue(client, review)
    records = Record.objects.filter(review=review)
    search = records.first().search
    Record.objects.bulk_create(
        Record(review=review, search=search, source="Embase", title=f"More {i}", abstract="More.") for i in range(18)
    )
    for record in Record.objects.filter(review=review, title__startswith="More"):
        record_decision(record=record, reviewer=bob, stage=TA, decision="include")
        record_decision(record=record, reviewer=carol, stage=TA, decision="exclude", reason="Wrong population")
    many = queries_for_the_queue(client, review)
    assert Record.objects.filter(review=review, ta_outcome="conflict").count() == 20
    assert many == few


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_alice_resolves_three_conflicts_by_keyboard_only(review, alice, bob, carol, live_server, browser_page):
    first, second, third = conflicts_among(review, bob, carol, 3)
    page = browser_page
    log_in(page, live_server, "alice")
    page.goto(live_server.url + conflicts_url(review))
    page.wait_for_selector(f"#conflict-{first.pk}.current")
    # j and k move the highlight; the keys act on the highlighted conflict only.
    page.keyboard.press("j")
    page.wait_for_selector(f"#conflict-{second.pk}.current")
    page.keyboard.press("k")
    page.wait_for_selector(f"#conflict-{first.pk}.current")
    page.keyboard.press("i")
    page.wait_for_selector(f"#conflict-{first.pk}", state="detached")
    page.wait_for_selector(f"#conflict-{second.pk}.current")
    page.keyboard.press("1")
    page.wait_for_selector(f"#conflict-{second.pk}", state="detached")
    page.wait_for_selector(f"#conflict-{third.pk}.current")
    # Typing in the note box types; Esc leaves it and the keys work again.
    page.focus(f"#conflict-{third.pk} [name=note]")
    page.keyboard.type("ie1")
    page.keyboard.press("Escape")
    page.keyboard.press("e")
    # The last one resolved: the page comes back from the server and says none are left.
    page.wait_for_selector("#conflicts-empty")
    resolved = {
        r.record_id: (r.decision, r.reason, r.note) for r in Resolution.objects.filter(stage=TA, is_current=True)
    }
    assert resolved == {
        first.pk: ("include", "", ""),
        second.pk: ("exclude", "Wrong population", ""),
        third.pk: ("exclude", "", "ie1"),
    }


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_queue_opens_at_its_top_with_the_first_conflict_highlighted(
    review, alice, bob, carol, live_server, browser_page
):
    """On a short screen the first conflict (abstract, votes, buttons) is taller than what is left
    under the heading: highlighting it on load must not scroll the heading and key help away."""
    first, _ = conflicts_among(review, bob, carol, 2)
    page = browser_page
    page.set_viewport_size({"width": 1024, "height": 420})
    log_in(page, live_server, "alice")
    page.goto(live_server.url + conflicts_url(review))
    page.wait_for_selector(f"#conflict-{first.pk}.current")
    assert page.evaluate("window.scrollY") == 0
    # j still brings the next one into view.
    page.keyboard.press("j")
    page.wait_for_function("() => window.scrollY > 0")
