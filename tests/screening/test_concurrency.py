"""No vote lost, doubled or stranded: votes and resolutions racing on one record.

The unit tests run on any database; the proof with real concurrent requests runs in the
PostgreSQL pass (``DATABASE_URL=postgres://...``), where READ COMMITTED lets two transactions
each miss the other's vote unless they queue on the record's row lock.
"""

import threading
import urllib.error
import urllib.request
from functools import partial
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from review.models import Event, Membership, Record, Role, Search
from screening import blinding
from screening.decisions import NotInConflict, RecordFull, record_decision, resolve
from screening.models import Decision, Resolution
from tests.concurrent import at_once
from tests.screening.conftest import dual_screened

TA = "title_abstract"
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def dual(review):
    return dual_screened(review, 3)


def first(review):
    return Record.objects.filter(review=review).order_by("pk").first()


def test_bob_submitting_the_same_vote_twice_stores_it_once(dual, bob):
    record = first(dual)
    made = record_decision(record=record, reviewer=bob, stage=TA, decision="exclude", reason="animal study")
    again = record_decision(record=record, reviewer=bob, stage=TA, decision="exclude", reason=" animal study ")
    assert again.pk == made.pk
    assert Decision.objects.filter(record=record, reviewer=bob).count() == 1
    assert Event.objects.filter(record=record, kind=Event.Kind.DECISION).count() == 1


def test_bob_changing_his_vote_still_supersedes_it(dual, bob):
    record = first(dual)
    record_decision(record=record, reviewer=bob, stage=TA, decision="exclude")
    record_decision(record=record, reviewer=bob, stage=TA, decision="include")
    rows = list(Decision.objects.filter(record=record, reviewer=bob).values_list("decision", "is_current"))
    assert rows == [("exclude", False), ("include", True)]


def test_a_vote_beyond_the_ones_needed_is_refused_where_votes_are_recorded(dual, alice, bob, carol):
    record = first(dual)
    record_decision(record=record, reviewer=bob, stage=TA, decision="include")
    record_decision(record=record, reviewer=carol, stage=TA, decision="include")
    with pytest.raises(RecordFull, match=f"Record #{record.pk} already has all the votes it needs"):
        record_decision(record=record, reviewer=alice, stage=TA, decision="exclude")
    assert not Decision.objects.filter(reviewer=alice).exists()
    # Those who voted may still change their minds.
    record_decision(record=record, reviewer=carol, stage=TA, decision="exclude")
    record.refresh_from_db()
    assert record.ta_outcome == Record.Outcome.CONFLICT


def test_alice_sent_past_a_full_record_gets_the_next_card_and_says_why(client, dual, alice, bob, carol):
    record = first(dual)
    record_decision(record=record, reviewer=bob, stage=TA, decision="include")
    record_decision(record=record, reviewer=carol, stage=TA, decision="include")
    client.force_login(alice)
    response = client.post(f"/r/{dual.slug}/screen/{TA}/{record.pk}/decide/", {"decision": "exclude"}, **HTMX)
    assert response.status_code == 400
    assert response.context["record"] != record
    assert f"Record #{record.pk} already has all the votes it needs" in response.content.decode()


def test_a_double_click_answers_with_the_next_card_and_keeps_one_vote(client, dual, bob):
    record = first(dual)
    client.force_login(bob)
    url = f"/r/{dual.slug}/screen/{TA}/{record.pk}/decide/"
    assert client.post(url, {"decision": "include"}, **HTMX).status_code == 200
    second = client.post(url, {"decision": "include"}, **HTMX)
    assert second.status_code == 200
    assert second.context["record"] != record
    assert Decision.objects.filter(record=record, reviewer=bob).count() == 1


def test_resolving_an_open_conflict_is_refused_once_it_is_no_longer_one(dual, alice, bob, carol):
    record = first(dual)
    record_decision(record=record, reviewer=bob, stage=TA, decision="include")
    record_decision(record=record, reviewer=carol, stage=TA, decision="exclude")
    resolve(record=record, stage=TA, decision="include", user=alice, only_if_conflict=True)
    with pytest.raises(NotInConflict, match=f"Record #{record.pk} is no longer an open conflict"):
        resolve(record=record, stage=TA, decision="exclude", user=alice, only_if_conflict=True)
    assert list(Resolution.objects.filter(record=record).values_list("decision", flat=True)) == ["include"]


# Real concurrent requests on PostgreSQL -----------------------------------------------------------


def _session(user):
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 302 after a vote is the acknowledgement itself


def _post(url, session, decision):
    csrf = "ConcurrencyTestToken" + "x" * 12  # 32 alphanumerics: a valid CSRF secret
    body = urlencode({"decision": decision, "csrfmiddlewaretoken": csrf}).encode()
    request = urllib.request.Request(
        url,
        data=body,
        headers={
            "Cookie": f"sessionid={session}; csrftoken={csrf}",
            "Referer": url,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _race(attempts):
    """Send every (url, session, decision) of ``attempts`` at the same instant; returns their answers."""
    answers = at_once(*(partial(_post, url, session, decision) for url, session, decision in attempts))
    # A request that failed outright is reported with the attempt.
    return [(None, repr(answer)) if isinstance(answer, Exception) else answer for answer in answers]


def _side(decision):
    return "include" if decision == "maybe" else decision


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_votes_are_neither_lost_doubled_nor_stranded(live_server, review, alice, bob, carol):
    """Against the threaded live server, votes on one record arrive at the same instant:
    bob and carol disagreeing (the outcome must be a conflict), three reviewers going for the last
    vote (one gets it), and double clicks (the vote stands once). 2 reviewers per record."""
    if connection.vendor != "postgresql":
        pytest.skip("the concurrency proof runs in the PostgreSQL pass of `make test` (DATABASE_URL=postgres://...)")
    frank = get_user_model().objects.create_user("frank", "frank@example.org", "pw-frank")
    Membership.objects.create(review=review, user=frank, role=Role.REVIEWER)
    review.title_abstract_reviewers = 2
    review.save()
    search = Search.objects.create(review=review, kind="file", source="Embase")
    Record.objects.bulk_create(
        Record(review=review, search=search, source="Embase", title=f"Kratom and trauma, cohort {i}") for i in range(36)
    )
    records = list(Record.objects.filter(review=review).order_by("pk"))
    sessions = {user.username: _session(user) for user in (alice, bob, carol, frank)}
    base = f"{live_server.url}/r/{review.slug}/screen/{TA}/"

    rounds = []
    for i, record in enumerate(records):
        url = f"{base}{record.pk}/decide/"
        kind = i % 3
        if kind == 0:  # two reviewers who disagree, at once
            rounds.append([(url, "bob", "include"), (url, "carol", "exclude")])
        elif kind == 1:  # one vote in, three go for the last one
            record_decision(record=record, reviewer=alice, stage=TA, decision="exclude")
            rounds.append([(url, "bob", "include"), (url, "carol", "exclude"), (url, "frank", "maybe")])
        else:  # double clicks by both reviewers
            rounds.append(
                [(url, "bob", "exclude"), (url, "bob", "exclude"), (url, "carol", "maybe"), (url, "carol", "maybe")]
            )

    results = []
    for attempts in rounds:
        answers = _race([(url, sessions[name], decision) for url, name, decision in attempts])
        results.extend(zip(attempts, answers, strict=True))

    failures = [(attempt, answer) for attempt, answer in results if answer[0] is None or answer[0] >= 500]
    assert not failures, f"{len(failures)} requests failed or answered 5xx, e.g. {failures[0]}"
    refused = [(a, s) for a, (s, body) in results if s == 400 and "already has all the votes it needs" in body]
    assert all(status in (302, 400) for _, (status, _) in results), sorted({s for _, (s, _) in results})

    current = {}
    for record_id, reviewer, decision in Decision.objects.filter(
        record__review=review, stage=TA, is_current=True
    ).values_list("record_id", "reviewer__username", "decision"):
        current.setdefault(record_id, {})[reviewer] = decision
    by_url = {f"{base}{r.pk}/decide/": r.pk for r in records}

    over_voted = {pk: votes for pk, votes in current.items() if len(votes) > 2}
    assert not over_voted, f"{len(over_voted)} records have more current votes than the 2 they need: {over_voted}"
    acknowledged = [(url, name, decision) for (url, name, decision), (status, _) in results if status == 302]
    missing = [a for a in acknowledged if current.get(by_url[a[0]], {}).get(a[1]) != a[2]]
    assert not missing, f"{len(missing)} acknowledged votes are not stored: {missing}"
    # Each race for the last vote is won exactly once; the others are told so.
    assert len(refused) == 2 * len(records) // 3

    outcomes = dict(Record.objects.filter(review=review).values_list("pk", "ta_outcome"))
    wrong = {}
    for pk, votes in current.items():
        sides = {_side(d) for d in votes.values()}
        expected = "conflict" if len(sides) > 1 else sides.pop()
        if len(votes) == 2 and outcomes[pk] != expected:
            wrong[pk] = (votes, outcomes[pk])
    assert not wrong, f"{len(wrong)} records with both votes have the wrong outcome: {wrong}"
    assert all(len(votes) == 2 for votes in current.values()) and len(current) == len(records)
    # A double click stores the vote once, with one audit event.
    doubled = records[2::3]
    assert Decision.objects.filter(record__in=doubled, reviewer=bob).count() == len(doubled)
    assert Event.objects.filter(record__in=doubled, actor=bob, kind=Event.Kind.DECISION).count() == len(doubled)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_vote_reopening_the_stage_while_alice_lifts_blinding_blinds_it_again(review, alice, bob, carol, monkeypatch):
    """alice's lift has checked that title/abstract is done and not yet committed when carol's
    changed vote turns a record into a conflict: whichever commits last, blinding must not stay
    lifted over an open conflict."""
    if connection.vendor != "postgresql":
        pytest.skip("the concurrency proof runs in the PostgreSQL pass of `make test` (DATABASE_URL=postgres://...)")
    review.title_abstract_reviewers = 2
    review.save()
    search = Search.objects.create(review=review, kind="file", source="Embase")
    record = Record.objects.create(review=review, search=search, source="Embase", title="Kratom and trauma")
    record_decision(record=record, reviewer=bob, stage=TA, decision="include")
    record_decision(record=record, reviewer=carol, stage=TA, decision="include")

    checked, voted = threading.Event(), threading.Event()
    real_blockers = blinding.stage_blockers

    def blockers_then_wait(*args, **kwargs):
        found = real_blockers(*args, **kwargs)
        checked.set()
        voted.wait(timeout=2)  # carol's vote is in flight (it waits on alice's lock once it is fixed)
        return found

    monkeypatch.setattr(blinding, "stage_blockers", blockers_then_wait)
    errors = []

    def lift():
        try:
            blinding.lift_blinding(review, stage=TA, by=alice)
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            connection.close()

    def vote():
        try:
            checked.wait(timeout=10)
            record_decision(record=record, reviewer=carol, stage=TA, decision="exclude")
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            voted.set()
            connection.close()

    threads = [threading.Thread(target=lift), threading.Thread(target=vote)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    record.refresh_from_db()
    review.refresh_from_db()
    assert record.ta_outcome == Record.Outcome.CONFLICT
    assert not review.ta_blinding_lifted, "blinding stayed lifted over an open conflict"
