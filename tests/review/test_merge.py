"""Merging records by hand never makes a record a duplicate of itself (issue #6)."""

import threading

import pytest
from django.db import close_old_connections, connection, transaction
from django.urls import reverse

from review.importing import merge, unmerge
from review.models import Event, Record, Search


@pytest.fixture
def three(review):
    search = Search.objects.create(review=review, kind=Search.Kind.FILE, source="Embase")
    return [
        Record.objects.create(review=review, search=search, source="Embase", title=f"Kratom and trauma, cohort {i}")
        for i in range(3)
    ]


def _links(records):
    return {r.pk: Record.objects.get(pk=r.pk).duplicate_of_id for r in records}


def test_bob_cannot_merge_a_back_into_b_after_merging_b_into_a(three, bob):
    a, b, _ = three
    merge(b, into=a, user=bob)
    with pytest.raises(ValueError, match=rf"#{b.pk} is already marked as a duplicate of #{a.pk}"):
        merge(a, into=b, user=bob)
    assert _links(three) == {a.pk: None, b.pk: a.pk, three[2].pk: None}
    assert Event.objects.filter(kind=Event.Kind.MERGE).count() == 1


def test_merging_with_copies_read_before_the_other_merge_is_still_refused(three, bob, carol):
    # carol's page was loaded before bob merged B into A: her copies say nobody is a duplicate.
    a, b, _ = three
    carols_a, carols_b = Record.objects.get(pk=a.pk), Record.objects.get(pk=b.pk)
    merge(b, into=a, user=bob)
    with pytest.raises(ValueError, match="would become a duplicate of itself"):
        merge(carols_a, into=carols_b, user=carol)
    assert _links([a, b]) == {a.pk: None, b.pk: a.pk}


def test_merging_an_original_into_a_duplicate_of_its_duplicate_is_refused(three, bob):
    # C is a duplicate of B, B of A: A into C would close the circle through the chain.
    a, b, c = three
    Record.objects.filter(pk=b.pk).update(duplicate_of=a)
    Record.objects.filter(pk=c.pk).update(duplicate_of=b)
    with pytest.raises(ValueError, match="would become a duplicate of itself"):
        merge(a, into=c, user=bob)
    assert _links(three) == {a.pk: None, b.pk: a.pk, c.pk: b.pk}


def test_merging_into_a_duplicate_links_to_its_original(three, bob):
    a, b, c = three
    merge(b, into=a, user=bob)
    merge(c, into=b, user=bob)
    assert _links(three) == {a.pk: None, b.pk: a.pk, c.pk: a.pk}


def test_after_undoing_the_link_the_merge_the_other_way_round_works(three, bob):
    a, b, _ = three
    merge(b, into=a, user=bob)
    unmerge(Record.objects.get(pk=b.pk), user=bob)
    merge(a, into=b, user=bob)
    assert _links([a, b]) == {a.pk: b.pk, b.pk: None}


def test_unmerge_with_a_stale_copy_undoes_the_current_link(three, bob):
    a, b, c = three
    stale_b = Record.objects.get(pk=b.pk)
    merge(b, into=a, user=bob)
    unmerge(stale_b, user=bob)
    assert _links([b]) == {b.pk: None}
    assert Event.objects.get(kind=Event.Kind.UNMERGE).detail == {"was_duplicate_of": a.pk}


def test_the_merge_form_says_why_it_refuses(client, review, three, bob):
    a, b, _ = three
    merge(b, into=a, user=bob)
    client.force_login(bob)
    response = client.post(reverse("review:merge", args=[review.slug, a.pk]), {"into": b.pk}, follow=True)
    assert "would become a duplicate of itself" in response.content.decode()
    assert _links([a, b]) == {a.pk: None, b.pk: a.pk}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_merges_both_ways_at_once_leave_one_link_and_no_circle(three, bob, carol):
    """bob merges A into B while carol merges B into A, each on their own connection: the second
    waits for the first's row locks, then sees its link and is refused."""
    if connection.vendor != "postgresql":
        pytest.skip("the concurrency proof runs in the PostgreSQL pass of `make test` (DATABASE_URL=postgres://...)")
    a, b, _ = three
    bob_locked, carol_started = threading.Event(), threading.Event()
    outcome = {}

    def bobs_merge():
        try:
            with transaction.atomic():
                merge(Record.objects.get(pk=a.pk), into=Record.objects.get(pk=b.pk), user=bob)
                bob_locked.set()
                # Hold the locks until carol's merge is under way.
                carol_started.wait(timeout=10)
                threading.Event().wait(0.5)
            outcome["bob"] = "merged"
        except Exception as exc:
            outcome["bob"] = repr(exc)
        finally:
            close_old_connections()

    def carols_merge():
        # carol read both records before bob's merge committed.
        carols_a, carols_b = Record.objects.get(pk=a.pk), Record.objects.get(pk=b.pk)
        bob_locked.wait(timeout=10)
        carol_started.set()
        try:
            merge(carols_b, into=carols_a, user=carol)
            outcome["carol"] = "merged"
        except ValueError as exc:
            outcome["carol"] = str(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=bobs_merge), threading.Thread(target=carols_merge)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert outcome["bob"] == "merged"
    assert "would become a duplicate of itself" in outcome["carol"]
    assert _links([a, b]) == {a.pk: b.pk, b.pk: None}
