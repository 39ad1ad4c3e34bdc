import csv
import json
from io import StringIO

import pytest
from django.core.management import call_command

from review.models import Record, Search
from screening.decision_import import import_decisions
from screening.decisions import resolve


@pytest.fixture
def dual_review(review):
    review.title_abstract_reviewers = review.full_text_reviewers = 2
    review.save()
    search = Search.objects.create(review=review, kind="file", source="Embase")
    Record.objects.bulk_create(
        Record(review=review, search=search, source="Embase", pmid=str(5000 + i), title=f"Study {i}")
        for i in range(100)
    )
    return review


def planted(tmp_path):
    """alice includes 10 records, bob 3 of those: 7 planted conflicts, 90 joint exclusions."""
    path = tmp_path / "votes.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["pmid", "reviewer", "stage", "decision", "reason"])
        for i in range(100):
            w.writerow([5000 + i, "alice", "title_abstract", "include" if i < 10 else "exclude", ""])
            w.writerow([5000 + i, "bob", "title_abstract", "include" if i < 3 else "exclude", ""])
    return path


def status(review):
    out = StringIO()
    call_command("review_status", review.slug, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_it_reports_exactly_the_planted_conflicts_and_the_hand_computed_kappa(tmp_path, dual_review):
    import_decisions(review=dual_review, path=planted(tmp_path))
    ta = status(dual_review)["title_abstract"]
    po, pe = 0.93, 0.10 * 0.03 + 0.90 * 0.97
    assert ta["conflicts_open"] == 7
    assert ta["included"] == 3 and ta["excluded"] == 90 and ta["screened"] == 93
    assert ta["kappa"] == pytest.approx((po - pe) / (1 - pe), abs=1e-4)
    assert ta["kappa_method"] == "cohen"
    assert ta["percent_agreement"] == pytest.approx(93)
    conflicted = set(Record.objects.filter(ta_outcome="conflict").values_list("pmid", flat=True))
    assert conflicted == {str(5000 + i) for i in range(3, 10)}


def test_resolving_a_conflict_moves_it_to_resolved_and_keeps_kappa(tmp_path, dual_review, alice):
    import_decisions(review=dual_review, path=planted(tmp_path))
    record = Record.objects.get(pmid="5004")
    resolve(record=record, stage="title_abstract", decision="include", user=alice, note="fits the PICO")
    s = status(dual_review)
    assert s["title_abstract"]["conflicts_open"] == 6
    assert s["title_abstract"]["conflicts_resolved"] == 1
    assert s["title_abstract"]["included"] == 4
    assert s["records"] == 100 and s["duplicates"] == 0
    # kappa describes the reviewers' independent votes, not the resolution
    po, pe = 0.93, 0.10 * 0.03 + 0.90 * 0.97
    assert s["title_abstract"]["kappa"] == pytest.approx((po - pe) / (1 - pe), abs=1e-4)
    assert s["full_text"]["eligible"] == 4


def test_the_page_and_the_command_name_cohens_kappa_for_one_pair_of_reviewers(tmp_path, dual_review, client, alice):
    import_decisions(review=dual_review, path=planted(tmp_path))
    out = StringIO()
    call_command("review_status", dual_review.slug, stdout=out)
    assert "(Cohen's kappa)" in out.getvalue()
    client.force_login(alice)
    page = client.get(f"/r/{dual_review.slug}/").content.decode()
    assert "Agreement (Cohen&#x27;s kappa)" in page
