"""Changing how votes combine asks first and logs what moved (issue #6)."""

import pytest
from django.urls import reverse

from review.models import Event, Record, Review, Search, Stage
from screening import review_settings
from screening.decisions import record_decision, record_decisions, refresh_outcomes
from screening.models import Decision
from screening.review_settings import update_review

TA, FT = Stage.TITLE_ABSTRACT, Stage.FULL_TEXT


@pytest.fixture
def screened(review, bob, carol):
    """Five records bob alone screened at title/abstract: four includes, one exclusion; carol also
    voted include on the first, and bob voted include at full text on the first two."""
    search = Search.objects.create(review=review, kind=Search.Kind.FILE, source="Embase")
    records = [
        Record.objects.create(review=review, search=search, source="Embase", title=f"Kratom and trauma, cohort {i}")
        for i in range(5)
    ]
    for record in records[:4]:
        record_decision(record=record, reviewer=bob, stage=TA, decision="include")
    record_decision(record=records[4], reviewer=bob, stage=TA, decision="exclude")
    # Carol's vote is from when the review was dual-screened (reviewers per record lowered to 1
    # since): no record takes more votes than it needs, on screen or in an import.
    review.title_abstract_reviewers = 2
    record_decisions(review, TA, [Decision(record=records[0], reviewer=carol, decision="include")])
    review.title_abstract_reviewers = 1
    refresh_outcomes(review, [records[0].pk], TA)
    for record in records[:2]:
        record_decision(record=record, reviewer=bob, stage=FT, decision="include")
    return records


def _form(review, **changes):
    form = {
        "title": review.title,
        "exclusion_reasons": review.exclusion_reasons,
        "include_keywords": review.include_keywords,
        "exclude_keywords": review.exclude_keywords,
        "title_abstract_reviewers": review.title_abstract_reviewers,
        "full_text_reviewers": review.full_text_reviewers,
    }
    if review.maybe_counts_as_include:
        form["maybe_counts_as_include"] = "on"
    form.update(changes)
    return form


def _outcomes(records, stage):
    field = "ta_outcome" if stage == TA else "ft_outcome"
    return [getattr(Record.objects.get(pk=r.pk), field) for r in records]


def test_the_preview_says_which_outcomes_would_move_and_writes_nothing(review, screened):
    from screening.review_settings import preview_update

    preview = preview_update(review, title_abstract_reviewers=2, full_text_reviewers=2)
    a, b, c, d, e = (r.pk for r in screened)
    assert preview.changed == {"full_text_reviewers": (1, 2), "title_abstract_reviewers": (1, 2)}
    assert preview.outcomes == {
        TA: {("include", ""): [b, c, d], ("exclude", ""): [e]},
        FT: {("include", ""): [a, b]},
    }
    assert preview.needs_confirmation
    assert sorted(preview.transitions()) == [
        ("Full text", "Include", "Pending", 2),
        ("Title/abstract", "Exclude", "Pending", 1),
        ("Title/abstract", "Include", "Pending", 3),
    ]
    review.refresh_from_db()
    assert (review.title_abstract_reviewers, review.full_text_reviewers) == (1, 1)
    assert _outcomes(screened, TA) == ["include"] * 4 + ["exclude"]
    assert not Event.objects.filter(kind=Event.Kind.SETTINGS).exists()


def test_alice_sees_what_a_second_reviewer_would_reopen_before_it_is_saved(client, review, screened, alice):
    client.force_login(alice)
    url = reverse("review:settings", args=[review.slug])
    asked = client.post(url, _form(review, title_abstract_reviewers=2))
    assert asked.status_code == 200
    page = asked.content.decode()
    assert "Confirm the new settings" in page and 'name="confirm"' in page
    assert '<td>Title/abstract</td><td>Include</td><td>Pending</td><td class="num">3</td>' in page
    review.refresh_from_db()
    assert review.title_abstract_reviewers == 1
    assert _outcomes(screened, TA) == ["include"] * 4 + ["exclude"]
    assert not Event.objects.filter(kind=Event.Kind.SETTINGS).exists()


def test_confirming_saves_and_logs_old_and_new_values_and_the_outcomes_that_moved(client, review, screened, alice):
    client.force_login(alice)
    url = reverse("review:settings", args=[review.slug])
    done = client.post(url, {**_form(review, title_abstract_reviewers=2), "confirm": "1"})
    assert done.status_code == 302
    review.refresh_from_db()
    assert review.title_abstract_reviewers == 2
    assert _outcomes(screened, TA) == ["include", "", "", "", ""]
    event = Event.objects.get(kind=Event.Kind.SETTINGS)
    a, b, c, d, e = (r.pk for r in screened)
    assert event.actor == alice
    assert event.detail == {
        "changed": ["title_abstract_reviewers"],
        "old": {"title_abstract_reviewers": 1},
        "new": {"title_abstract_reviewers": 2},
        "outcomes": {
            TA: [
                {"from": "exclude", "to": "", "count": 1, "records": [e]},
                {"from": "include", "to": "", "count": 3, "records": [b, c, d]},
            ]
        },
    }


def test_maybe_no_longer_counting_as_include_asks_and_logs_the_new_conflict(client, review, screened, alice, carol):
    update_review(review, user=alice, title_abstract_reviewers=2)
    record_decision(record=screened[1], reviewer=carol, stage=TA, decision="maybe")
    assert _outcomes(screened[1:2], TA) == ["include"]
    client.force_login(alice)
    url = reverse("review:settings", args=[review.slug])
    form = _form(review)
    del form["maybe_counts_as_include"]
    asked = client.post(url, form)
    assert '<td>Title/abstract</td><td>Include</td><td>Conflict</td><td class="num">1</td>' in asked.content.decode()
    review.refresh_from_db()
    assert review.maybe_counts_as_include
    client.post(url, {**form, "confirm": "1"})
    review.refresh_from_db()
    assert not review.maybe_counts_as_include
    event = Event.objects.filter(kind=Event.Kind.SETTINGS).latest("pk")
    assert event.detail["old"] == {"maybe_counts_as_include": True}
    assert event.detail["new"] == {"maybe_counts_as_include": False}
    assert event.detail["outcomes"] == {
        TA: [{"from": "include", "to": "conflict", "count": 1, "records": [screened[1].pk]}]
    }


def test_settings_that_do_not_touch_outcomes_save_at_once_with_old_and_new_values(client, review, screened, alice):
    client.force_login(alice)
    url = reverse("review:settings", args=[review.slug])
    done = client.post(url, _form(review, title="Kratom and PTSD"))
    assert done.status_code == 302
    event = Event.objects.get(kind=Event.Kind.SETTINGS)
    assert event.detail == {
        "changed": ["title"],
        "old": {"title": "Kratom for PTSD symptoms"},
        "new": {"title": "Kratom and PTSD"},
    }


def test_line_breaks_sent_as_crlf_by_the_browser_are_not_a_change(client, review, alice):
    review.exclusion_reasons = "Wrong population\nAnimal study"
    review.save()
    client.force_login(alice)
    form = _form(review, title="Kratom and PTSD", exclusion_reasons="Wrong population\r\nAnimal study")
    client.post(reverse("review:settings", args=[review.slug]), form)
    assert Event.objects.get(kind=Event.Kind.SETTINGS).detail["changed"] == ["title"]
    review.refresh_from_db()
    assert review.exclusion_reasons == "Wrong population\nAnimal study"


def test_a_review_without_votes_changes_its_reviewers_without_asking(client, review, alice):
    client.force_login(alice)
    done = client.post(reverse("review:settings", args=[review.slug]), _form(review, title_abstract_reviewers=2))
    assert done.status_code == 302
    review.refresh_from_db()
    assert review.title_abstract_reviewers == 2
    assert Event.objects.get(kind=Event.Kind.SETTINGS).detail["outcomes"] == {}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_alice_confirms_in_a_browser_and_only_the_reviewer_count_changes(
    review, screened, alice, live_server, browser_page
):
    from tests.browser import log_in

    review.exclusion_reasons = "Wrong population\nWrong outcome\nAnimal study"
    review.inclusion_criteria = "Adults\nwith PTSD"
    review.save()
    page = browser_page
    log_in(page, live_server, "alice")
    page.goto(live_server.url + reverse("review:settings", args=[review.slug]))
    page.fill("input[name=title_abstract_reviewers]", "2")
    page.click("button:has-text('Save settings')")
    page.wait_for_selector("text=Confirm the new settings")
    review.refresh_from_db()
    assert review.title_abstract_reviewers == 1
    page.click("button:has-text('Confirm and save')")
    page.wait_for_selector("text=Settings saved.")
    review.refresh_from_db()
    assert review.title_abstract_reviewers == 2
    # The confirmation re-sent every other value as it was, line breaks included.
    assert review.exclusion_reasons.splitlines() == ["Wrong population", "Wrong outcome", "Animal study"]
    assert review.inclusion_criteria.splitlines() == ["Adults", "with PTSD"]
    assert Event.objects.get(kind=Event.Kind.SETTINGS).detail["changed"] == ["title_abstract_reviewers"]


def test_a_settings_change_landing_while_alice_saves_is_refused_not_recomputed_out_of_lock_order(
    review, screened, alice, monkeypatch
):
    # Alice's form asks for 2 reviewers, which the review already has, so her save takes no record
    # locks; then another owner sets 1 before she locks the review. Recomputing now would take the
    # records' locks after the review's (the reverse of a vote's order): refuse, write nothing.
    Review.objects.filter(pk=review.pk).update(title_abstract_reviewers=2)
    real = review_settings._clean_update
    calls = []

    def other_owner_saves_in_between(*args):
        found = real(*args)
        if not calls:
            Review.objects.filter(pk=review.pk).update(title_abstract_reviewers=1)
        calls.append(found)
        return found

    monkeypatch.setattr(review_settings, "_clean_update", other_owner_saves_in_between)
    events = Event.objects.filter(kind=Event.Kind.SETTINGS).count()

    with pytest.raises(ValueError, match="Another owner changed"):
        update_review(review, user=alice, title_abstract_reviewers=2, question="Kratom and PTSD?")

    # (The other owner's write shares this test's connection, so it is rolled back with Alice's.)
    review.refresh_from_db()
    assert review.question == ""
    assert Event.objects.filter(kind=Event.Kind.SETTINGS).count() == events
