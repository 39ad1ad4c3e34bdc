"""Handing out records under dual screening: claims, expiry, and real parallel requests."""

import re
import threading
import urllib.request
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from review.models import Record, Search
from screening import queue
from screening.decisions import record_decision
from screening.models import Claim, Decision
from tests.screening.conftest import dual_screened

TA = "title_abstract"


@pytest.fixture
def dual(review):
    return dual_screened(review, 40)


def pks(review):
    return list(Record.objects.filter(review=review).order_by("pk").values_list("pk", flat=True))


def test_two_reviewers_share_a_record_that_needs_two_votes_but_a_third_does_not_get_it(dual, alice, bob, carol):
    first = pks(dual)[0]
    assert queue.next_record(dual, bob, TA).pk == first
    assert queue.next_record(dual, carol, TA).pk == first
    assert queue.next_record(dual, alice, TA).pk != first


def test_a_record_needing_one_more_vote_goes_to_one_reviewer_only(dual, alice, bob, carol):
    first, second = pks(dual)[:2]
    record_decision(record=Record.objects.get(pk=first), reviewer=carol, stage=TA, decision="include")
    assert queue.next_record(dual, bob, TA).pk == first
    assert queue.next_record(dual, alice, TA).pk == second


def test_a_lapsed_claim_frees_the_record(dual, alice, bob, carol):
    first = pks(dual)[0]
    record_decision(record=Record.objects.get(pk=first), reviewer=carol, stage=TA, decision="include")
    assert queue.next_record(dual, bob, TA).pk == first
    Claim.objects.filter(reviewer=bob).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert queue.next_record(dual, alice, TA).pk == first


def test_voting_releases_the_claim_and_moving_on_keeps_one_claim_per_reviewer(dual, bob):
    first, second = pks(dual)[:2]
    assert queue.next_record(dual, bob, TA).pk == first
    record_decision(record=Record.objects.get(pk=first), reviewer=bob, stage=TA, decision="exclude")
    assert not Claim.objects.filter(record_id=first).exists()
    assert queue.next_record(dual, bob, TA).pk == second
    assert list(Claim.objects.filter(reviewer=bob).values_list("record_id", flat=True)) == [second]


def _session(user):
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value, client


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_reviewers_never_both_get_the_record_that_needs_one_more_vote(live_server, review, alice, bob, carol):
    """alice and bob ask for their next record at the same instant, 15 times over, against the
    threaded live server: each record already has carol's vote and needs exactly one more."""
    if connection.vendor != "postgresql":
        pytest.skip("the concurrency proof runs in the PostgreSQL pass of `make test` (DATABASE_URL=postgres://...)")
    review.title_abstract_reviewers = 2
    review.save()
    search = Search.objects.create(review=review, kind="file", source="Embase")
    Record.objects.bulk_create(
        Record(review=review, search=search, source="Embase", title=f"Kratom and trauma, cohort {i}") for i in range(40)
    )
    for record in Record.objects.filter(review=review):
        record_decision(record=record, reviewer=carol, stage=TA, decision="exclude")
    base = f"{live_server.url}/r/{review.slug}/screen/{TA}/"
    people = {name: _session(user) for name, user in (("alice", alice), ("bob", bob))}
    barrier = threading.Barrier(2)
    given = {"alice": [], "bob": []}
    errors = []

    def screen(name):
        session, _ = people[name]
        try:
            for _ in range(15):
                barrier.wait(timeout=20)
                request = urllib.request.Request(base, headers={"Cookie": f"sessionid={session}"})
                html = urllib.request.urlopen(request, timeout=20).read().decode()
                pk = int(re.search(rf"/screen/{TA}/(\d+)/decide/", html).group(1))
                given[name].append(pk)
                barrier.wait(timeout=20)
                csrf = "ParallelTestToken" + "x" * 15  # 32 alphanumerics: a valid CSRF secret
                body = urlencode({"decision": "exclude", "csrfmiddlewaretoken": csrf}).encode()
                post = urllib.request.Request(
                    f"{base}{pk}/decide/",
                    data=body,
                    headers={
                        "Cookie": f"sessionid={session}; csrftoken={csrf}",
                        "Referer": base,
                        "Content-Type": "application/x-www-form-urlencoded",
                    },
                )
                urllib.request.urlopen(post, timeout=20).read()
        except Exception as exc:  # reported below with the thread's name
            errors.append(f"{name}: {exc!r}")
            barrier.abort()

    threads = [threading.Thread(target=screen, args=(name,)) for name in given]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(given["alice"]) == len(given["bob"]) == 15
    for a, b in zip(given["alice"], given["bob"]):
        assert a != b, f"alice and bob were both given record {a}"
    # No record collected a third vote.
    votes = Decision.objects.filter(stage=TA, is_current=True, record__review=review)
    per_record = {}
    for record_id in votes.values_list("record_id", flat=True):
        per_record[record_id] = per_record.get(record_id, 0) + 1
    assert max(per_record.values()) == 2
    assert sum(1 for n in per_record.values() if n == 2) == 30


def test_a_third_vote_on_a_fully_voted_record_is_refused(client, dual, alice, bob, carol):
    first = Record.objects.get(pk=pks(dual)[0])
    record_decision(record=first, reviewer=bob, stage=TA, decision="include")
    record_decision(record=first, reviewer=carol, stage=TA, decision="include")
    client.force_login(alice)
    response = client.post(f"/r/{dual.slug}/screen/{TA}/{first.pk}/decide/", {"decision": "exclude"})
    assert response.status_code == 400
    assert "already has all the votes it needs" in response.content.decode()
    assert not Decision.objects.filter(reviewer=alice).exists()


def test_when_every_open_vote_is_held_by_others_the_page_says_so(client, review, alice, bob, carol):
    search = Search.objects.create(review=review, kind="file", source="Embase")
    record = Record.objects.create(review=review, search=search, source="Embase", title="The only kratom trial")
    assert queue.next_record(review, bob, TA) == record
    client.force_login(carol)
    page = client.get(f"/r/{review.slug}/screen/{TA}/").content.decode()
    assert "Nothing free right now" in page and "All done" not in page
