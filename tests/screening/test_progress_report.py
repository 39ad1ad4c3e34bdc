"""The dashboard's stopping panel: labels in screening order, the buscar advice on them, the recall
curve and the methods paragraph, their downloads, and their blinding."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from review.models import Record, Search
from screening import progress_report, stopping
from screening.decisions import record_decision
from tests.screening.team import TA

START = timezone.now() - timedelta(days=1)


def records(review, n):
    search = Search.objects.create(review=review, kind="file", source="Embase")
    Record.objects.bulk_create(
        Record(review=review, search=search, source="Embase", title=f"Kratom and trauma, cohort {i}") for i in range(n)
    )
    return list(Record.objects.for_review(review).order_by("pk"))


def screen(records, user, decisions, *, minute=0):
    """``user`` votes ``decisions`` ("include"/"exclude") on ``records``, one a minute from ``minute``."""
    for i, (record, decision) in enumerate(zip(records, decisions, strict=True)):
        at = START + timedelta(minutes=minute + i)
        record_decision(record=record, reviewer=user, stage=TA, decision=decision, at=at)


def panel(response):
    """The stopping section of the dashboard."""
    html = response.content.decode()
    match = re.search(r'<section class="card stopping".*?</section>', html, re.S)
    assert match, "no stopping panel"
    return match.group(0)


def test_labels_follow_the_order_of_first_votes_not_of_import(review, bob):
    recs = records(review, 6)
    # bob screens the last record first, then the first.
    screen([recs[5], recs[0], recs[2]], bob, ["include", "exclude", "include"])
    assert progress_report.screened_labels(review, TA) == [1, 0, 1]
    progress = progress_report.stage_progress(review, TA)
    assert (progress.screened, progress.n_total, progress.relevant_found) == (3, 6, 2)


def test_the_estimate_tightens_as_irrelevant_records_are_screened(review, bob):
    recs = records(review, 400)
    screen(recs[:60], bob, ["include"] * 40 + ["exclude"] * 20)
    early = progress_report.stage_progress(review, TA)
    screen(recs[60:340], bob, ["exclude"] * 280, minute=60)
    late = progress_report.stage_progress(review, TA)

    assert early.advice.interval[1] > late.advice.interval[1]
    assert early.advice.estimated_remaining >= late.advice.estimated_remaining
    assert late.advice.p_value < early.advice.p_value
    # The panel's figures are the stopping module's on the same labels.
    expected = stopping.recommend([1] * 40 + [0] * 300, 400)
    assert late.advice == expected
    assert late.advice.stop and late.stop_at == stopping.simulate_stop_at(
        [1] * 40 + [0] * 300, 400, every=late.checked_every
    )
    assert late.checked_every == 340 // progress_report.CURVE_CHECKS
    assert early.stop_at is None
    assert "Stopping is recommended" in late.recommendation
    assert "Keep screening" in early.recommendation
    assert late.irrelevant_in_a_row == 300


def test_records_in_conflict_count_as_unscreened(review, bob, carol):
    review.title_abstract_reviewers = 2
    review.save()
    recs = records(review, 4)
    screen(recs[:2], bob, ["include", "include"])
    screen(recs[:2], carol, ["include", "exclude"], minute=10)
    # recs[0] agreed include; recs[1] in conflict.
    assert progress_report.screened_labels(review, TA) == [1]


def test_the_curve_steps_up_at_every_relevant_record_and_stays_flat_between():
    assert progress_report.curve_points([0, 1, 0, 1, 0]) == [(0, 0), (1, 0), (2, 1), (3, 1), (4, 2), (5, 2)]
    assert progress_report.curve_points([1, 1, 0, 0, 1]) == [(0, 0), (1, 1), (2, 2), (4, 2), (5, 3)]
    assert progress_report.curve_points([1]) == [(0, 0), (1, 1)]
    assert progress_report.curve_points([]) == [(0, 0)]


def test_the_svg_draws_the_curve_the_random_line_and_the_stop(review, bob):
    recs = records(review, 400)
    screen(recs[:340], bob, ["include"] * 5 + ["exclude"] * 35 + ["include"] * 35 + ["exclude"] * 265)
    progress = progress_report.stage_progress(review, TA)
    svg = progress_report.recall_curve_svg(progress, title="<b>Kratom</b> & co")
    points = re.search(r'<polyline class="found" points="([^"]*)"', svg).group(1).split()
    assert len(points) == len(progress_report.curve_points(progress.labels)) == 43
    assert 'class="random-order"' in svg and 'class="stop"' in svg
    assert f"stop at {progress.stop_at}" in svg
    assert "&lt;b&gt;Kratom&lt;/b&gt; &amp; co" in svg and "<b>" not in svg
    assert "style=" not in svg and "<script" not in svg


def test_the_methods_paragraph_names_the_rule_and_the_figures(review, bob):
    review.question = "Does kratom reduce PTSD symptoms in adults?"
    review.save()
    recs = records(review, 50)
    screen(recs[:10], bob, ["include"] * 2 + ["exclude"] * 8)
    text = progress_report.methods_paragraph(review)
    assert "Callaghan and Müller-Hansen (2020)" in text
    assert "recall target of 95% and 95% confidence" in text
    assert "10 of 50 records (20%) were screened and 2 relevant records found" in text
    assert "retrained in the background after every 5 screening decisions" in text
    assert "question and eligibility criteria were given to the model" in text
    review.question = ""
    review.save()
    assert "No research question" in progress_report.methods_paragraph(review)


def test_the_dashboard_shows_the_panel_and_the_downloads_answer(client, review, alice, bob):
    recs = records(review, 40)
    screen(recs[:10], bob, ["include"] + ["exclude"] * 9)
    client.force_login(alice)
    html = panel(client.get(reverse("review:detail", args=[review.slug])))
    assert "Callaghan and Müller-Hansen 2020" in html
    assert "Relevant estimated to remain" in html and "95% confidence" in html
    assert "<svg" in html and "10 of 40" in html

    svg = client.get(reverse("screening:recall_curve", args=[review.slug, TA, "svg"]))
    assert svg.status_code == 200 and svg["Content-Type"] == "image/svg+xml"
    assert svg.content.startswith(b"<svg")
    png = client.get(reverse("screening:recall_curve", args=[review.slug, TA, "png"]))
    assert png["Content-Type"] == "image/png" and png.content.startswith(b"\x89PNG")
    txt = client.get(reverse("screening:methods_text", args=[review.slug]))
    assert txt["Content-Type"] == "text/plain; charset=utf-8"
    assert "10 of 40 records" in txt.content.decode()
    assert client.get(reverse("screening:recall_curve", args=[review.slug, "nope", "svg"])).status_code == 404
    assert client.get(reverse("screening:recall_curve", args=[review.slug, TA, "pdf"])).status_code == 404


@pytest.mark.parametrize(
    "name, args",
    [("screening:recall_curve", [TA, "svg"]), ("screening:recall_curve", [TA, "png"]), ("screening:methods_text", [])],
)
def test_outsiders_get_404(client, review, dave, name, args):
    records(review, 3)
    client.force_login(dave)
    assert client.get(reverse(name, args=[review.slug, *args])).status_code == 404


def test_bob_cannot_tell_from_the_panel_whether_carol_disagreed(client, review, bob, carol):
    review.title_abstract_reviewers = 2
    review.save()
    recs = records(review, 30)
    screen(recs[:5], bob, ["include", "exclude", "exclude", "include", "exclude"])
    screen(recs[:4], carol, ["include", "exclude", "exclude", "include"], minute=10)
    client.force_login(bob)
    url = reverse("review:detail", args=[review.slug])
    before = panel(client.get(url))
    # carol disagrees on the record bob voted on and she had not: a conflict, still unreconciled.
    screen([recs[4]], carol, ["include"], minute=20)
    assert panel(client.get(url)) == before
    for fmt in ("svg",):
        curve = reverse("screening:recall_curve", args=[review.slug, TA, fmt])
        assert client.get(curve).content == client.get(curve).content
    # Not blind by accident: an agreed record does change it.
    screen([recs[5]], bob, ["exclude"], minute=30)
    screen([recs[5]], carol, ["exclude"], minute=31)
    assert panel(client.get(url)) != before


def test_both_stages_curves_on_one_dashboard_keep_their_element_ids_unique(client, review, alice, bob):
    # Two inline SVGs on one page: a shared id would label one curve with the other's title.
    recs = records(review, 20)
    screen(recs[:6], bob, ["include"] + ["exclude"] * 5)
    client.force_login(alice)
    html = client.get(reverse("review:detail", args=[review.slug])).content.decode()
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert ids and len(ids) == len(set(ids))
