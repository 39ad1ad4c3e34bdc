"""A decision and the next card cost the same number of queries whatever the review's size."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from review.models import Record, Search, Stage
from screening import queue
from screening.models import RankingRun, RecordScore

TA = Stage.TITLE_ABSTRACT


def ranked_review(review, n, *, reviewers=2):
    """``review`` with ``n`` records, ``reviewers`` votes per record and a finished ranking run."""
    review.title_abstract_reviewers = reviewers
    review.save()
    search = Search.objects.create(review=review, kind="file", source="Embase")
    Record.objects.bulk_create(
        Record(review=review, search=search, source="Embase", title=f"Kratom and trauma, cohort {i}", abstract="x")
        for i in range(n)
    )
    run = RankingRun.objects.create(
        review=review, stage=TA, version=1, status=RankingRun.Status.DONE, scored=n, terms={"kratom": 1.0}
    )
    pks = list(Record.objects.filter(review=review).order_by("-pk").values_list("pk", flat=True))
    RecordScore.objects.bulk_create(
        RecordScore(run=run, record_id=pk, score=1 - i / n, rank=i + 1) for i, pk in enumerate(pks)
    )
    return review


def decide_queries(client, review, user):
    """The queries of one htmx decision on the card ``user`` is shown (with its next card)."""
    client.force_login(user)
    shown = queue.next_record(review, user, TA)
    url = reverse("screening:decide", args=[review.slug, TA, shown.pk])
    with CaptureQueriesContext(connection) as captured:
        response = client.post(url, {"decision": "exclude"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    return captured
