"""Blinding, exactly: whatever bob can fetch is the same whether carol disagreed with his vote or
has simply not voted yet.

Situation B: bob has voted include on a record and carol has not voted. Situation A: carol then
votes exclude, so the record is in conflict. Bob fetches every page, fragment, sort order, filter
and download in B and again in A; the two must be identical but for per-request noise.
"""

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from review.models import Membership, Record, Role
from screening.decisions import OUTCOME_FIELD
from screening.filters import OUTCOME_CHOICES
from screening.models import Choice
from screening.tables import RecordTable
from tests.screening.team import FT, TA, make_team, vote
from tests.screening.test_blinding import body, sweep_urls
from tests.screening.test_queue import unique_pks

# A masked CSRF token (64 letters and digits) differs on every response.
CSRF = re.compile(r"\b[A-Za-z0-9]{64}\b")
# cairosvg stamps each PDF with the time it was made.
PDF_DATES = re.compile(r"/(CreationDate|ModDate) \(D:[^)]*\)")


def normalised(response):
    text = CSRF.sub("<csrf>", body(response))
    return response.status_code, PDF_DATES.sub(r"/\1 (<date>)", text)


def records_urls(review, user):
    """The records table in every sort order and under every filter value bob can pick."""
    url = reverse("screening:records", args=[review.slug])
    orderable = [name for name, column in RecordTable.base_columns.items() if column.orderable is not False]
    assert {"ta_outcome", "ft_outcome"} <= set(orderable)
    # Every sort order, on the first page and with every record on one page.
    params = [f"sort={d}{name}{size}" for name in orderable for d in ("", "-") for size in ("", "&per_page=500")]
    params += [f"{f}={value}" for f in ("ta", "ft") for value, _ in OUTCOME_CHOICES]
    params += [f"decision={c}&decision_stage={s}" for c in Choice.values for s in (TA, FT)]
    params += [f"decision={c}&decision_stage={s}&reviewer={user.pk}" for c in Choice.values for s in (TA, FT)]
    params += ["duplicates=unique", "duplicates=duplicate", "q=the"]
    return [("records", f"{url}?{p}") for p in params]


def fetch_all(client, urls):
    seen = {}
    for _, url in urls:
        seen[url] = normalised(client.get(url))
        seen[url + " (htmx)"] = normalised(client.get(url, HTTP_HX_REQUEST="true"))
    return seen


@pytest.fixture
def situation(review, bob, carol):
    """The team review (tests/screening/team.py) and a sixth record, not voted on yet."""
    team = make_team(review, bob, carol)
    return team, Record.objects.get(pk=unique_pks(review)[5])


@pytest.fixture
def frozen_clock():
    """Both sweeps at one moment: a slow run must not show a page's own clock (a queued job's
    "no worker for a minute", a claim lapsing) as a difference the vote made."""
    with time_machine.travel(timezone.now(), tick=False):
        yield


@pytest.mark.parametrize("stage, third_reviewer", [(TA, False), (FT, False), (TA, True)])
def test_bob_cannot_tell_a_conflict_from_a_missing_vote(
    client, review, situation, alice, bob, carol, stage, third_reviewer, frozen_clock
):
    team, record = situation
    if third_reviewer:
        # Three reviewers share the screening, two votes per record: carol's vote fills the record.
        frank = get_user_model().objects.create_user("frank", "frank@example.org", "pw-frank")
        Membership.objects.create(review=review, user=frank, role=Role.REVIEWER)
    if stage == FT:
        vote(record, bob, "include")
        vote(record, carol, "include")
    vote(record, bob, "include", stage)
    urls = sweep_urls(review, team) + records_urls(review, bob)
    for s in (TA, FT):
        urls.append(("record", reverse("review:record", args=[review.slug, record.pk])))
        urls.append(("screen", reverse("screening:screen", args=[review.slug, s]) + f"?record={record.pk}"))
    owner_view = [reverse("review:detail", args=[review.slug]), reverse("screening:prisma", args=[review.slug])]

    client.force_login(bob)
    before = fetch_all(client, urls)
    client.force_login(alice)
    alice_before = [normalised(client.get(url)) for url in owner_view]

    vote(record, carol, "exclude", stage, reason="Wrong population", note="carol disagrees")
    assert getattr(record, OUTCOME_FIELD[stage]) == Record.Outcome.CONFLICT

    client.force_login(bob)
    after = fetch_all(client, urls)
    changed = [url for url in before if before[url] != after[url]]
    assert changed == []
    # The sweep reached the pages that used to give the conflict away.
    assert all(before[url][0] == 200 for url in owner_view)
    # Alice sees the conflict appear, so the comparison above is not blind itself.
    client.force_login(alice)
    assert [normalised(client.get(url)) for url in owner_view] != alice_before


def _world(client, review, record, bob, carol, stage, urls, *, carol_votes, at):
    """Bob changes his vote to exclude on ``record`` at ``at``, after carol excluded it or before
    she voted; what bob can fetch afterwards. The database goes back to where it was."""
    sid = transaction.savepoint()
    clock = time_machine.travel(at, tick=False)
    clock.start()
    if carol_votes:
        vote(record, carol, "exclude", stage, reason="Wrong population", note="carol disagrees")
    client.force_login(bob)
    decide = reverse("screening:decide", args=[review.slug, stage, record.pk])
    posted = client.post(decide, {"decision": "exclude", "reason": "Wrong population"}, HTTP_HX_REQUEST="true")
    seen = {"POST (htmx)": normalised(posted), **fetch_all(client, urls)}
    record.refresh_from_db()
    outcome = getattr(record, OUTCOME_FIELD[stage])
    clock.stop()
    transaction.savepoint_rollback(sid)
    return seen, outcome


@pytest.mark.parametrize("stage", [TA, FT])
def test_bob_changing_his_vote_does_not_tell_him_whether_carol_voted(client, review, situation, bob, carol, stage):
    """Bob voted include; changing to exclude must not settle a conflict with carol's exclusion
    where a missing vote would leave the record pending: his change would be a probe of her vote."""
    team, record = situation
    if stage == FT:
        vote(record, bob, "include")
        vote(record, carol, "include")
    vote(record, bob, "include", stage)
    urls = sweep_urls(review, team) + records_urls(review, bob)
    for s in (TA, FT):
        urls.append(("record", reverse("review:record", args=[review.slug, record.pk])))
        urls.append(("screen", reverse("screening:screen", args=[review.slug, s]) + f"?record={record.pk}"))

    # Both worlds at the same moment: the times of bob's change are the same in his history.
    at = timezone.now() + timedelta(hours=1)
    waiting, waiting_outcome = _world(client, review, record, bob, carol, stage, urls, carol_votes=False, at=at)
    disagreed, disagreed_outcome = _world(client, review, record, bob, carol, stage, urls, carol_votes=True, at=at)

    assert [url for url in waiting if waiting[url] != disagreed[url]] == []
    assert waiting_outcome == Record.Outcome.PENDING
    # Once the votes have disagreed, only a resolution settles the record (it waits in the conflicts queue).
    assert disagreed_outcome == Record.Outcome.CONFLICT
