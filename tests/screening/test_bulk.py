"""Bulk actions on the records table: tag, exclude, assign (screening/bulk.py)."""

import pytest
from django.db import connection
from django.urls import reverse

from review.models import Event, Membership, Record, RecordTag, Role, Search, Stage, Tag
from screening import bulk, queue
from screening.decisions import record_decision
from screening.models import Assignment, Decision
from screening.visibility import visible_events
from tests.concurrent import at_once

TA, FT = Stage.TITLE_ABSTRACT, Stage.FULL_TEXT


def add(review, n, title="Kratom in veterans"):
    search = Search.objects.filter(review=review).first() or Search.objects.create(
        review=review, kind="file", source="Embase"
    )
    return Record.objects.bulk_create(
        Record(review=review, search=search, source="Embase", title=f"{title} {i}") for i in range(n)
    )


def post(client, review, data, **filters):
    return client.post(reverse("screening:records_bulk", args=[review.slug]), {**filters, **data})


def confirmed(client, review, data, **filters):
    """The two steps: the confirmation page, then its Yes (with the count it stated)."""
    first = post(client, review, data, **filters)
    assert first.status_code == 200, first.content
    count = first.context["counts"].selected
    return post(client, review, {**data, "bulk-confirm": "on", "bulk-count": count}, **filters)


def snapshot():
    return [
        list(Decision.objects.order_by("pk").values_list("pk", "record_id", "reviewer_id", "decision", "is_current")),
        RecordTag.objects.count(),
        Event.objects.count(),
        Assignment.objects.count(),
        list(Record.objects.order_by("pk").values_list("ta_outcome", "ft_outcome")),
    ]


# Tag ----------------------------------------------------------------------------------------------


def test_bob_tags_the_ticked_records_once_he_confirms_how_many(client, review, bob):
    a, b, c = add(review, 3)
    client.force_login(bob)
    data = {"bulk-action": "tag", "bulk-scope": "selected", "bulk-records": [a.pk, b.pk], "bulk-tag": "animal study"}
    page = post(client, review, data)
    assert "You are about to tag with “animal study” <strong>2 records</strong>" in page.content.decode()
    assert RecordTag.objects.count() == 0  # asking is not doing
    done = confirmed(client, review, data)
    assert done.status_code == 302
    tag = Tag.objects.get(review=review)
    assert set(RecordTag.objects.filter(tag=tag).values_list("record_id", flat=True)) == {a.pk, b.pk}
    events = Event.objects.filter(kind=Event.Kind.TAG)
    assert sorted(events.values_list("record_id", flat=True)) == sorted([a.pk, b.pk])
    assert set(events.values_list("actor", flat=True)) == {bob.pk}
    # Again: nothing doubles.
    confirmed(client, review, data)
    assert RecordTag.objects.count() == 2 and events.count() == 2


def test_all_matching_the_filter_means_every_page_of_it(client, review, bob):
    rats = add(review, 70, title="Rats given kratom")
    others = add(review, 5, title="Veterans")
    client.force_login(bob)
    data = {"bulk-action": "tag", "bulk-scope": "filter", "bulk-tag": "animal"}
    assert confirmed(client, review, data, q="Rats", page="2").status_code == 302
    tagged = set(RecordTag.objects.values_list("record_id", flat=True))
    assert tagged == {r.pk for r in rats} and not tagged & {r.pk for r in others}


def test_the_records_page_offers_checkboxes_to_screeners_and_none_to_viewers(client, review, bob, erin):
    (record,) = add(review, 1)
    box = f'name="bulk-records" value="{record.pk}" form="bulk-form"'
    client.force_login(bob)
    page = client.get(reverse("screening:records", args=[review.slug]), {"q": "Kratom"}).content.decode()
    assert box in page and 'id="bulk-form"' in page and "Apply to all 1 record matching the filter" in page
    assert '<input type="hidden" name="q" value="Kratom">' in page  # the filter travels with the action
    client.force_login(erin)
    page = client.get(reverse("screening:records", args=[review.slug])).content.decode()
    assert box not in page and 'id="bulk-form"' not in page


# Exclude ------------------------------------------------------------------------------------------


def test_a_bulk_exclusion_is_bobs_own_vote_with_history_and_never_touches_carols(client, review, bob, carol):
    review.title_abstract_reviewers = 2
    review.save()
    mine, carols, fresh = add(review, 3)
    record_decision(record=mine, reviewer=bob, stage=TA, decision="include")
    record_decision(record=carols, reviewer=carol, stage=TA, decision="include", note="carol's own")
    client.force_login(bob)
    data = {
        "bulk-action": "exclude",
        "bulk-scope": "selected",
        "bulk-records": [mine.pk, carols.pk, fresh.pk],
        "bulk-stage": TA,
        "bulk-reason": "Animal study",
    }
    assert confirmed(client, review, data).status_code == 302
    # Bob's earlier include is kept as history, superseded by his exclusion.
    assert list(
        Decision.objects.filter(record=mine, reviewer=bob).order_by("pk").values_list("decision", "is_current")
    ) == [("include", False), ("exclude", True)]
    # Carol's vote is as she left it; bob's sits beside it.
    assert Decision.objects.get(record=carols, reviewer=carol).is_current
    assert Decision.objects.get(record=carols, reviewer=carol).note == "carol's own"
    assert Decision.objects.get(record=carols, reviewer=bob, is_current=True).reason == "Animal study"
    carols.refresh_from_db()
    assert carols.ta_outcome == Record.Outcome.CONFLICT
    # One audit event per vote, like a keyboard decision, marked as bulk.
    events = Event.objects.filter(kind=Event.Kind.DECISION, actor=bob, detail__bulk=True)
    assert sorted(events.values_list("record_id", flat=True)) == sorted([mine.pk, carols.pk, fresh.pk])


def test_a_record_whose_votes_are_all_cast_by_others_is_left_alone(client, review, bob, carol):
    done, open_ = add(review, 2)
    record_decision(record=done, reviewer=carol, stage=TA, decision="include")
    client.force_login(bob)
    data = {"bulk-action": "exclude", "bulk-scope": "filter", "bulk-stage": TA, "bulk-reason": "Wrong population"}
    page = post(client, review, data)
    assert (page.context["counts"].changed, page.context["counts"].left_out) == (1, 1)
    assert confirmed(client, review, data).status_code == 302
    assert list(Decision.objects.filter(record=done).values_list("reviewer", "decision")) == [(carol.pk, "include")]
    assert Decision.objects.get(record=open_).reviewer == bob


def test_a_bulk_exclusion_needs_a_reason_and_a_stage(client, review, bob):
    (record,) = add(review, 1)
    client.force_login(bob)
    data = {"bulk-action": "exclude", "bulk-scope": "selected", "bulk-records": [record.pk], "bulk-stage": TA}
    response = post(client, review, data)
    assert response.status_code == 400 and "needs a reason" in response.content.decode()
    response = post(client, review, {**data, "bulk-stage": "", "bulk-reason": "x"})
    assert response.status_code == 400 and "Pick a stage" in response.content.decode()
    assert not Decision.objects.exists()


def test_a_failure_half_way_leaves_nothing_written(review, bob, monkeypatch):
    add(review, 9)
    monkeypatch.setattr(bulk, "CHUNK", 3)
    calls = []
    real = bulk.record_decisions

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(bulk, "record_decisions", failing)
    membership = Membership.objects.get(review=review, user=bob)
    action = bulk.Action("exclude", stage=TA, reason="Animal study")
    with pytest.raises(RuntimeError):
        bulk.apply(review, membership, Record.objects.for_review(review), action)
    assert not Decision.objects.exists() and not Event.objects.filter(kind=Event.Kind.DECISION).exists()


def test_the_selection_changed_since_the_confirmation_changes_nothing(client, review, bob):
    add(review, 4)
    client.force_login(bob)
    data = {"bulk-action": "exclude", "bulk-scope": "filter", "bulk-stage": TA, "bulk-reason": "Animal study"}
    response = post(client, review, {**data, "bulk-confirm": "on", "bulk-count": 3})
    assert response.status_code == 409
    assert "now holds 4 records, not 3" in response.content.decode()
    assert response.context["counts"].selected == 4  # asked again with today's number
    assert not Decision.objects.exists()


# Refusals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["tag", "exclude", "assign"])
def test_erin_the_viewer_is_refused_and_dave_the_outsider_gets_404(client, review, erin, dave, action):
    records = add(review, 2)
    data = {
        "bulk-action": action,
        "bulk-scope": "selected",
        "bulk-records": [r.pk for r in records],
        "bulk-tag": "x",
        "bulk-stage": TA,
        "bulk-reason": "x",
        "bulk-reviewer": erin.pk,
        "bulk-confirm": "on",
        "bulk-count": 2,
    }
    before = snapshot()
    client.force_login(erin)
    assert post(client, review, data).status_code == 403
    client.force_login(dave)
    assert post(client, review, data).status_code == 404
    client.logout()
    assert post(client, review, data).status_code == 302
    assert snapshot() == before


def test_records_of_another_review_cannot_be_ticked(client, review, other_review, bob):
    (theirs,) = add(other_review, 1)
    client.force_login(bob)
    data = {"bulk-action": "tag", "bulk-scope": "selected", "bulk-records": [theirs.pk], "bulk-tag": "x"}
    assert post(client, review, data).status_code == 400
    assert not RecordTag.objects.exists()


def test_bob_a_reviewer_may_not_assign(client, review, bob, carol):
    records = add(review, 2)
    client.force_login(bob)
    data = {"bulk-action": "assign", "bulk-scope": "selected", "bulk-records": [r.pk for r in records]}
    response = post(client, review, {**data, "bulk-stage": TA, "bulk-reviewer": carol.pk})
    assert response.status_code == 400
    assert not Assignment.objects.exists()
    membership = Membership.objects.get(review=review, user=bob)
    with pytest.raises(bulk.BulkError, match="Only the owner assigns"):
        bulk.check(review, membership, bulk.Action("assign", stage=TA, reviewer=carol))


# Assign -------------------------------------------------------------------------------------------


def test_records_alice_assigns_to_carol_come_first_in_carols_queue(client, review, alice, carol, bob):
    records = add(review, 10)
    late = [records[7], records[9]]
    client.force_login(alice)
    data = {
        "bulk-action": "assign",
        "bulk-scope": "selected",
        "bulk-records": [r.pk for r in late],
        "bulk-stage": TA,
        "bulk-reviewer": carol.pk,
    }
    assert confirmed(client, review, data).status_code == 302
    assert set(Assignment.objects.values_list("record_id", "reviewer_id", "stage", "assigned_by")) == {
        (r.pk, carol.pk, TA, alice.pk) for r in late
    }
    events = Event.objects.filter(kind=Event.Kind.ASSIGNMENT)
    assert sorted(events.values_list("record_id", flat=True)) == sorted(r.pk for r in late)
    # In import order carol would get records 0 and 1; she gets the two assigned to her.
    assert {r.pk for r in queue.next_records(review, carol, TA)} == {r.pk for r in late}
    # Bob's queue is as before: import order.
    assert [r.pk for r in queue.next_records(review, bob, TA)] == [records[0].pk, records[1].pk]
    # An assigned record voted on is done: the next hand-out goes back to the usual order.
    queue.release_held(review, bob, TA)
    for record in late:
        record_decision(record=record, reviewer=carol, stage=TA, decision="exclude")
    assert [r.pk for r in queue.next_records(review, carol, TA)] == [records[0].pk, records[1].pk]


def test_bob_blinded_does_not_see_carols_assignments_in_the_audit_trail(client, review, alice, bob, carol):
    records = add(review, 2)
    owner = Membership.objects.get(review=review, user=alice)
    bulk.apply(review, owner, Record.objects.filter(pk=records[0].pk), bulk.Action("assign", stage=TA, reviewer=carol))
    bulk.apply(review, owner, Record.objects.filter(pk=records[1].pk), bulk.Action("assign", stage=TA, reviewer=bob))
    assigned = Event.objects.filter(kind=Event.Kind.ASSIGNMENT)
    seen = {
        who.username: set(
            visible_events(assigned, Membership.objects.get(review=review, user=who)).values_list(
                "record_id", flat=True
            )
        )
        for who in (alice, bob, carol)
    }
    assert seen == {
        "alice": {records[0].pk, records[1].pk},
        "bob": {records[1].pk},
        "carol": {records[0].pk},
    }


def test_a_record_can_only_be_assigned_to_someone_who_screens(review, alice, erin):
    records = add(review, 1)
    owner = Membership.objects.get(review=review, user=alice)
    with pytest.raises(bulk.BulkError, match="only be assigned to a reviewer"):
        bulk.apply(
            review, owner, Record.objects.filter(pk=records[0].pk), bulk.Action("assign", stage=TA, reviewer=erin)
        )
    assert Membership.objects.get(review=review, user=erin).role == Role.VIEWER


def test_alice_takes_back_carols_assignments_and_the_queue_forgets_them(client, review, alice, carol, bob):
    records = add(review, 10)
    late = [records[7], records[8], records[9]]
    owner = Membership.objects.get(review=review, user=alice)
    bulk.apply(
        review,
        owner,
        Record.objects.filter(pk__in=[r.pk for r in late]),
        bulk.Action("assign", stage=TA, reviewer=carol),
    )
    bulk.apply(review, owner, Record.objects.filter(pk=late[0].pk), bulk.Action("assign", stage=TA, reviewer=bob))
    client.force_login(alice)
    data = {
        "bulk-action": "unassign",
        "bulk-scope": "selected",
        # records[0] was never assigned to carol: left out, said so.
        "bulk-records": [records[0].pk, late[0].pk, late[1].pk],
        "bulk-stage": TA,
        "bulk-reviewer": carol.pk,
    }
    page = post(client, review, data)
    assert page.status_code == 200
    assert "2 will change." in page.content.decode()
    assert "1 is not assigned to them at this stage and will be left alone." in page.content.decode()
    assert Assignment.objects.filter(reviewer=carol).count() == 3  # nothing before the confirmation
    done = client.get(confirmed(client, review, data).url).content.decode()
    assert "unassign from carol at title/abstract: 2 of 3 records changed; 1 not assigned to them" in done
    # Only carol's two go; bob's assignment of the same record and carol's third stay.
    assert set(Assignment.objects.values_list("record_id", "reviewer_id")) == {
        (late[0].pk, bob.pk),
        (late[2].pk, carol.pk),
    }
    removed = Event.objects.filter(kind=Event.Kind.ASSIGNMENT, detail__removed=True)
    assert sorted(removed.values_list("record_id", flat=True)) == [late[0].pk, late[1].pk]
    assert set(removed.values_list("actor", flat=True)) == {alice.pk}
    # Her one assignment left comes first, alone (as an assigned batch does); the two taken back
    # are no longer pushed to her.
    assert [r.pk for r in queue.next_records(review, carol, TA)] == [late[2].pk]
    history = client.get(reverse("review:record", args=[review.slug, late[0].pk])).content.decode()
    assert "no longer assigned to carol" in history


def test_only_the_owner_takes_assignments_back(client, review, alice, bob, carol):
    records = add(review, 1)
    owner = Membership.objects.get(review=review, user=alice)
    bulk.apply(review, owner, Record.objects.filter(pk=records[0].pk), bulk.Action("assign", stage=TA, reviewer=carol))
    reviewer = Membership.objects.get(review=review, user=bob)
    with pytest.raises(bulk.BulkError, match="Only the owner"):
        bulk.apply(review, reviewer, Record.objects.all(), bulk.Action("unassign", stage=TA, reviewer=carol))
    client.force_login(bob)
    data = {"bulk-action": "unassign", "bulk-scope": "selected", "bulk-records": [records[0].pk], "bulk-stage": TA}
    assert post(client, review, data).status_code == 400
    assert Assignment.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_bulk_exclusions_racing_leave_one_vote_per_record_and_no_error(review, bob, carol, monkeypatch):
    """bob and carol exclude the same records at the same instant, one vote needed per record: the
    records' row locks (as for single votes) make each record go to whoever locked it first; the
    other is told it was left out, and nothing is over-voted."""
    if connection.vendor != "postgresql":
        pytest.skip("the concurrency proof runs in the PostgreSQL pass of `make test` (DATABASE_URL=postgres://...)")
    monkeypatch.setattr(bulk, "CHUNK", 7)
    add(review, 40)
    action = bulk.Action("exclude", stage=TA, reason="Animal study")

    def exclude_all(user):
        membership = Membership.objects.select_related("review").get(review=review, user=user)
        return bulk.apply(review, membership, Record.objects.for_review(review), action)

    results = at_once(lambda: exclude_all(bob), lambda: exclude_all(carol))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r.changed for r in results) == 40
    assert sum(r.left_out for r in results) == 40
    votes = Decision.objects.filter(record__review=review, stage=TA, is_current=True)
    assert votes.count() == 40 and votes.values("record").distinct().count() == 40
    assert set(Record.objects.for_review(review).values_list("ta_outcome", flat=True)) == {"exclude"}


def test_bob_blinded_does_not_see_that_carols_assignments_were_taken_back(review, alice, bob, carol):
    records = add(review, 2)
    owner = Membership.objects.get(review=review, user=alice)
    for record, who in ((records[0], carol), (records[1], bob)):
        chosen = Record.objects.filter(pk=record.pk)
        bulk.apply(review, owner, chosen, bulk.Action("assign", stage=TA, reviewer=who))
        bulk.apply(review, owner, chosen, bulk.Action("unassign", stage=TA, reviewer=who))
    removed = Event.objects.filter(kind=Event.Kind.ASSIGNMENT, detail__removed=True)
    seen = {
        who.username: set(
            visible_events(removed, Membership.objects.get(review=review, user=who)).values_list("record_id", flat=True)
        )
        for who in (alice, bob, carol)
    }
    assert seen == {"alice": {records[0].pk, records[1].pk}, "bob": {records[1].pk}, "carol": {records[0].pk}}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_alice_unassigning_from_two_tabs_at_once_logs_each_record_once(review, alice, carol, monkeypatch):
    """The records' row locks serialise the two: the second finds nothing left to take back."""
    if connection.vendor != "postgresql":
        pytest.skip("the concurrency proof runs in the PostgreSQL pass of `make test` (DATABASE_URL=postgres://...)")
    monkeypatch.setattr(bulk, "CHUNK", 7)
    add(review, 30)
    owner = Membership.objects.select_related("review").get(review=review, user=alice)
    bulk.apply(review, owner, Record.objects.for_review(review), bulk.Action("assign", stage=TA, reviewer=carol))

    def unassign_all():
        membership = Membership.objects.select_related("review").get(review=review, user=alice)
        action = bulk.Action("unassign", stage=TA, reviewer=carol)
        return bulk.apply(review, membership, Record.objects.for_review(review), action)

    results = at_once(unassign_all, unassign_all)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r.changed for r in results) == 30
    assert not Assignment.objects.exists()
    removed = Event.objects.filter(kind=Event.Kind.ASSIGNMENT, detail__removed=True)
    assert removed.count() == removed.values("record").distinct().count() == 30


def test_a_typed_tag_name_is_escaped_on_the_confirmation_and_a_blank_one_refused(client, review, bob):
    (record,) = add(review, 1)
    client.force_login(bob)
    data = {"bulk-action": "tag", "bulk-scope": "selected", "bulk-records": [record.pk], "bulk-tag": "<b>x</b>"}
    page = post(client, review, data).content.decode()
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    response = post(client, review, {**data, "bulk-tag": "   "})
    assert response.status_code == 400 and "A tag needs a name." in response.content.decode()
