"""Read-then-write paths racing each other: bulk vote imports, tags, extraction values.

Each race is proven with real concurrent connections on PostgreSQL (threads, each with its own
connection, released at the same instant); on SQLite those tests are skipped, as in
test_concurrency.py. The unit tests beside them pin the rule on any database.
"""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from review import invitations
from review.annotations import add_tag, delete_tag, rename_tag
from review.importing import merge
from review.models import Event, Membership, Record, RecordTag, Role, Search, Tag
from screening import queue
from screening.decision_import import DecisionImportError, import_decisions
from screening.decisions import RecordFull, record_decision, record_decisions
from screening.extraction import save_values, value_history
from screening.models import Claim, Decision, ExtractionField, ExtractionValue
from tests.concurrent import at_once

TA = "title_abstract"
PG_ONLY = "the concurrency proof runs in the PostgreSQL pass of `make test` (DATABASE_URL=postgres://...)"


@pytest.fixture
def frank(review):
    user = get_user_model().objects.create_user("frank", "frank@example.org", "pw-frank")
    Membership.objects.create(review=review, user=user, role=Role.REVIEWER)
    return user


@pytest.fixture
def dual(review):
    review.title_abstract_reviewers = 2
    review.save()
    return review


def _records(review, n):
    search = Search.objects.create(review=review, kind="file", source="Embase")
    Record.objects.bulk_create(
        Record(review=review, search=search, source="Embase", title=f"Kratom and trauma, cohort {i}", pmid=str(500 + i))
        for i in range(n)
    )
    return list(Record.objects.filter(review=review).order_by("pk"))


def _current_votes(record):
    return Decision.objects.filter(record=record, stage=TA, is_current=True).count()


# Bulk votes (import_decisions, the demo) ----------------------------------------------------------


def test_an_imported_vote_beyond_the_ones_needed_is_refused_and_nothing_is_stored(dual, bob, carol, frank):
    one, two = _records(dual, 2)
    record_decision(record=one, reviewer=bob, stage=TA, decision="include")
    record_decision(record=one, reviewer=carol, stage=TA, decision="include")
    frank_votes = [Decision(record=r, reviewer=frank, decision="exclude") for r in (two, one)]
    with pytest.raises(RecordFull, match=rf"takes 2 votes per record; .* 1 record would have more: #{one.pk} \(3"):
        record_decisions(dual, TA, frank_votes)
    assert not Decision.objects.filter(reviewer=frank).exists()
    # Those who voted may still change their votes in bulk, and an open record takes frank's.
    record_decisions(dual, TA, [Decision(record=one, reviewer=carol, decision="exclude")])
    record_decisions(dual, TA, [Decision(record=two, reviewer=frank, decision="exclude")])
    assert (_current_votes(one), _current_votes(two)) == (2, 1)


def test_the_decisions_csv_names_the_record_it_would_over_vote(tmp_path, dual, bob, carol, frank):
    (one,) = _records(dual, 1)
    record_decision(record=one, reviewer=bob, stage=TA, decision="include")
    path = tmp_path / "decisions.csv"
    path.write_text(
        f"pmid,reviewer,stage,decision,reason\n{one.pmid},carol,{TA},include,\n{one.pmid},frank,{TA},exclude,\n"
    )
    with pytest.raises(DecisionImportError, match=f"#{one.pk} \\(3 votes\\)"):
        import_decisions(review=dual, path=path)
    assert _current_votes(one) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_import_racing_on_screen_votes_never_over_votes_a_record(review, alice, bob, carol, frank):
    """Each record has bob's vote and needs one more: carol votes on screen while an import brings
    frank's vote on the same records, at the same instant. One of the two gets in, never both."""
    if connection.vendor != "postgresql":
        pytest.skip(PG_ONLY)
    review.title_abstract_reviewers = 2
    review.save()
    records = _records(review, 12)
    for record in records:
        record_decision(record=record, reviewer=bob, stage=TA, decision="include")

    def import_franks():
        return record_decisions(review, TA, [Decision(record_id=record.pk, reviewer=frank, decision="exclude")])

    failures = []
    for record in records:
        on_screen, imported = at_once(
            lambda record=record: record_decision(record=record, reviewer=carol, stage=TA, decision="exclude"),
            import_franks,
        )
        outcomes = [isinstance(x, Exception) for x in (on_screen, imported)]
        unexpected = [x for x in (on_screen, imported) if isinstance(x, Exception) and not isinstance(x, RecordFull)]
        if unexpected or outcomes.count(True) != 1 or _current_votes(record) != 2:
            failures.append((record.pk, on_screen, imported, _current_votes(record)))
    assert failures == []
    for record in Record.objects.filter(pk__in=[r.pk for r in records]):
        assert record.ta_outcome == "conflict"  # bob include against carol's or frank's exclude


# Tags ---------------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_adding_a_tag_while_it_is_merged_or_deleted_neither_fails_nor_loses_the_link(review, bob, carol):
    """bob tags records "randomised" while carol merges that tag into "RCT" (by renaming it) or
    deletes it: every call succeeds, and no link points at a tag that is gone."""
    if connection.vendor != "postgresql":
        pytest.skip(PG_ONLY)
    records = _records(review, 16)
    rct = Tag.objects.create(review=review, name="RCT")
    failures = []
    for i, record in enumerate(records):
        tag = Tag.objects.create(review=review, name="randomised")
        RecordTag.objects.create(record=records[i - 1], tag=tag, added_by=carol)  # the tag is in use
        if i % 2:
            change = lambda tag=tag: rename_tag(tag, "rct", user=carol)  # noqa: E731
        else:
            change = lambda tag=tag: delete_tag(tag, user=carol)  # noqa: E731
        added, changed = at_once(lambda record=record: add_tag(record, "randomised", user=bob), change)
        if isinstance(added, Exception) or isinstance(changed, Exception):
            failures.append((i, added, changed))
        # Whatever the order, the record carries a tag that exists: "randomised" made anew after a
        # delete or a merge, or "RCT" when the merge came second and moved bob's link over. When
        # the delete came second it took bob's link too, and the record's history says so.
        names = set(RecordTag.objects.filter(record=record).values_list("tag__name", flat=True))
        removed = Event.objects.filter(record=record, kind=Event.Kind.TAG, detail__tag_deleted=True).exists()
        if not (names & {"randomised", "RCT"} or (i % 2 == 0 and removed)):
            failures.append((i, "tag lost", names))
        Tag.objects.filter(review=review, name="randomised").delete()
    assert failures == []
    assert Tag.objects.filter(pk=rct.pk).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_tags_renamed_to_one_name_at_once_are_merged_not_a_server_error(review, carol):
    if connection.vendor != "postgresql":
        pytest.skip(PG_ONLY)
    failures = []
    for i in range(10):
        one = Tag.objects.create(review=review, name=f"first {i}")
        two = Tag.objects.create(review=review, name=f"second {i}")
        results = at_once(
            lambda one=one, i=i: rename_tag(one, f"Animal {i}", user=carol),
            lambda two=two, i=i: rename_tag(two, f"animal {i}", user=carol),
        )
        errors = [r for r in results if isinstance(r, Exception)]
        left = Tag.objects.filter(review=review, name__iexact=f"animal {i}").count()
        if errors or left != 1:
            failures.append((i, errors, left))
    assert failures == []


# Extraction values --------------------------------------------------------------------------------


@pytest.fixture
def arms(review):
    return ExtractionField.objects.create(review=review, name="Arms", kind=ExtractionField.Kind.TEXT)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_reviewers_entering_the_first_value_at_once_both_land_in_the_history(review, arms, bob, carol):
    """bob and carol type the first value of the same cell at the same instant: no error, one value
    stored, and the history holds both changes, the second with the first as its old value."""
    if connection.vendor != "postgresql":
        pytest.skip(PG_ONLY)
    records = _records(review, 12)
    failures = []
    for record in records:
        results = at_once(
            lambda r=record: save_values(r, {arms: "2"}, bob), lambda r=record: save_values(r, {arms: "3"}, carol)
        )
        errors = [r for r in results if isinstance(r, Exception)]
        stored = ExtractionValue.objects.get(record=record, field=arms).value
        history = [(e.detail["old"], e.detail["new"]) for e in value_history(record)]
        # Oldest first: the first writer replaced nothing; the second replaced the first's value.
        history.reverse()
        if errors or len(history) != 2 or history[0][0] != "" or history[1] != (history[0][1], stored):
            failures.append((record.pk, errors, stored, history))
    assert failures == []


# Claims: one reviewer, two tabs ---------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_bob_asking_for_his_next_record_in_two_tabs_at_once_holds_one_record(review, bob):
    """Two tabs asking at the same instant show bob the same record, and he holds one claim: a
    second claim would keep a record from everyone else for CLAIM_TTL without bob ever seeing it."""
    if connection.vendor != "postgresql":
        pytest.skip(PG_ONLY)
    _records(review, 30)
    failures = []
    for round_ in range(10):
        Claim.objects.all().delete()
        given = at_once(lambda: queue.next_record(review, bob, TA), lambda: queue.next_record(review, bob, TA))
        held = list(Claim.objects.filter(reviewer=bob).values_list("record_id", flat=True))
        pks = [g.pk if isinstance(g, Record) else g for g in given]
        if len(held) != 1 or pks[0] != pks[1] or pks[0] != held[0]:
            failures.append((round_, pks, held))
    assert failures == []


# Invitations ------------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_accepting_two_invitations_to_one_review_at_once_makes_one_membership(review, alice, dave):
    """dave holds two links to the same review (sent to two of his addresses) and opens both at
    once: one makes him a member, the other says he already is one; no server error."""
    if connection.vendor != "postgresql":
        pytest.skip(PG_ONLY)
    failures = []
    for round_ in range(6):
        Membership.objects.filter(review=review, user=dave).delete()
        one = invitations.invite(review, email=f"dave.{round_}@example.org", role=Role.REVIEWER, by=alice)
        two = invitations.invite(review, email=f"d.{round_}@example.net", role=Role.VIEWER, by=alice)
        results = at_once(
            lambda one=one: invitations.accept(one.invitation, user=dave),
            lambda two=two: invitations.accept(two.invitation, user=dave),
        )
        refused = [r for r in results if isinstance(r, Exception)]
        if len(refused) != 1 or not isinstance(refused[0], ValueError) or "already a member" not in str(refused[0]):
            failures.append((round_, results))
        if Membership.objects.filter(review=review, user=dave).count() != 1:
            failures.append((round_, "memberships"))
    assert failures == []


# Merges -------------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_merges_that_reach_each_others_records_never_deadlock(review, bob, carol):
    """B is a duplicate of A. bob merges C into B (the link goes on to A) while carol merges A
    into C: each needs the other's records. One is done, the other refused with a reason; never
    PostgreSQL's "deadlock detected" (a server error on the page)."""
    if connection.vendor != "postgresql":
        pytest.skip(PG_ONLY)
    failures = []
    for round_ in range(6):
        a, b, c = _records(review, 3)[-3:]
        Record.objects.filter(pk=b.pk).update(duplicate_of=a, duplicate_reason="doi")
        b.refresh_from_db()
        results = at_once(
            lambda a=a, b=b, c=c: merge(c, into=b, user=bob), lambda a=a, c=c: merge(a, into=c, user=carol)
        )
        unexpected = [r for r in results if isinstance(r, Exception) and type(r) is not ValueError]
        if unexpected:
            failures.append((round_, unexpected))
        # No circle: following the links from any of the three ends at an original.
        links = dict(Record.objects.filter(pk__in=[a.pk, b.pk, c.pk]).values_list("pk", "duplicate_of_id"))
        for start in links:
            seen, at = set(), start
            while links.get(at) is not None and at not in seen:
                seen.add(at)
                at = links[at]
            if at in seen:
                failures.append((round_, "circle", links))
    assert failures == []
