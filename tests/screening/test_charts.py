"""The Charts page: progress per reviewer, the recall curve, agreement per pair (screening/charts.py)."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from review.models import Membership, Record, Review, Role, Search, Stage
from screening import agreement, charts, status, stopping
from screening.models import Decision
from tests.screening.conftest import dual_screened
from tests.screening.team import vote

TA, FT = Stage.TITLE_ABSTRACT, Stage.FULL_TEXT
XSS = '<img src=x onerror="alert(1)">&amp;'
SVG = "{http://www.w3.org/2000/svg}"


def _membership(review, user):
    return Membership.objects.get(review=review, user=user)


def _texts(svg):
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    return [el.text or "" for el in root.iter() if el.tag in (f"{SVG}text", f"{SVG}title", f"{SVG}desc")]


def _records(review, n):
    return list(Record.objects.for_review(review).order_by("pk")[:n])


def _at(user, when):
    """Date every vote ``user`` has cast so far at ``when``."""
    Decision.objects.filter(reviewer=user).update(created_at=when)


DAY1 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


# Progress over time ------------------------------------------------------------------------------


@pytest.fixture
def screened(review, bob, carol):
    dual_screened(review, 6)
    return _records(review, 6)


def test_progress_counts_a_record_once_at_the_reviewers_first_vote(review, screened, alice, bob, carol):
    for record in screened[:3]:
        vote(record, bob, "exclude")
    _at(bob, DAY1)
    vote(screened[0], bob, "include")  # changed on day 3: still decided on day 1
    vote(screened[3], bob, "exclude")
    Decision.objects.filter(reviewer=bob, created_at__gt=DAY1).update(created_at=DAY1 + timedelta(days=2))
    chart = charts.reviewer_progress(review, TA, _membership(review, alice))
    assert chart.unit == "day"
    (line,) = chart.lines
    assert line.reviewer == "bob"
    assert [(when.date().isoformat(), n) for when, n in line.points] == [("2026-03-02", 3), ("2026-03-04", 4)]


def test_an_imported_history_out_of_order_still_counts_the_record_once(review, screened, alice, bob):
    # bob's current vote carries an earlier date than the vote it superseded (imported that way).
    Decision.objects.bulk_create(
        [
            Decision(
                record=screened[0],
                reviewer=bob,
                stage=TA,
                decision="include",
                created_at=DAY1 + timedelta(days=3),
                is_current=False,
            ),
            Decision(
                record=screened[0], reviewer=bob, stage=TA, decision="exclude", created_at=DAY1 + timedelta(days=1)
            ),
        ]
    )
    (line,) = charts.reviewer_progress(review, TA, _membership(review, alice)).lines
    assert [(when.date().isoformat(), n) for when, n in line.points] == [("2026-03-03", 1)]


def test_a_short_review_is_charted_by_the_hour(review, screened, alice, bob, carol):
    vote(screened[0], bob, "exclude")
    _at(bob, DAY1)
    vote(screened[1], carol, "exclude")
    _at(carol, DAY1 + timedelta(hours=3))
    chart = charts.reviewer_progress(review, TA, _membership(review, alice))
    assert chart.unit == "hour"
    assert [(line.reviewer, line.points[0][0].hour) for line in chart.lines] == [("bob", 9), ("carol", 12)]


def test_it_shows_bob_only_his_own_line_while_the_stage_is_blinded(review, screened, alice, bob, carol):
    vote(screened[0], bob, "exclude")
    vote(screened[1], carol, "exclude")
    vote(screened[2], carol, "exclude")
    seen_by_bob = charts.reviewer_progress(review, TA, _membership(review, bob))
    assert seen_by_bob.others_hidden
    assert [(line.reviewer, line.total) for line in seen_by_bob.lines] == [("bob", 1)]
    not_voted = charts.reviewer_progress(review, FT, _membership(review, bob))
    assert "You have no decisions at this stage yet." in _texts(charts.progress_svg(not_voted))
    seen_by_alice = charts.reviewer_progress(review, TA, _membership(review, alice))
    assert [(line.reviewer, line.total) for line in seen_by_alice.lines] == [("bob", 1), ("carol", 2)]
    review.ta_blinding_lifted = True
    review.save()
    assert len(charts.reviewer_progress(review, TA, _membership(review, bob)).lines) == 2


def test_the_progress_svg_draws_one_line_per_reviewer(review, screened, alice, bob, carol):
    vote(screened[0], bob, "exclude")
    vote(screened[1], carol, "exclude")
    svg = charts.progress_svg(charts.reviewer_progress(review, TA, _membership(review, alice)), title=review.title)
    assert svg.count('class="reviewer"') == 2
    texts = _texts(svg)
    assert "bob (1)" in texts and "carol (1)" in texts


# Agreement per pair ------------------------------------------------------------------------------


def _agreement_story(review, screened, alice, bob, carol):
    review.title_abstract_reviewers = 3
    review.save()
    for record, b, c in zip(
        screened,
        ["include", "exclude", "maybe", "exclude", "include"],
        ["include", "exclude", "exclude", "include", "maybe"],
    ):
        vote(record, bob, b)
        vote(record, carol, c)
    vote(screened[0], alice, "include")
    vote(screened[1], alice, "maybe")


@pytest.mark.parametrize("maybe_counts", [False, True])
def test_pair_figures_are_the_agreement_modules_counted_by_the_database(
    review, screened, alice, bob, carol, maybe_counts
):
    review.maybe_counts_as_include = maybe_counts
    review.save()
    _agreement_story(review, screened, alice, bob, carol)
    expected = agreement.agreement(status.stage_votes(review, TA))["pairs"]
    got = charts.pair_agreement(review, TA)
    assert [
        {
            "reviewers": list(p.reviewers),
            "records": p.records,
            "kappa": p.kappa,
            "percent_agreement": p.percent_agreement,
        }
        for p in got
    ] == expected
    assert [p.reviewers for p in got] == [("alice", "bob"), ("alice", "carol"), ("bob", "carol")]
    assert got[2].records == 5


def test_agreement_is_hidden_from_bob_while_blinded_and_shown_to_alice(client, review, screened, alice, bob, carol):
    _agreement_story(review, screened, alice, bob, carol)
    assert charts.shown_pair_agreement(review, TA, _membership(review, bob)) is None
    assert charts.shown_pair_agreement(review, TA, _membership(review, alice))
    client.force_login(bob)
    page = client.get(reverse("screening:charts", args=[review.slug])).content.decode()
    assert "Hidden while this stage is blinded" in page
    assert 'class="kappa"' not in page
    assert "carol" not in page  # neither her progress line nor a pair with her
    assert client.get(reverse("screening:chart_agreement", args=[review.slug, TA, "svg"])).status_code == 404
    client.force_login(alice)
    response = client.get(reverse("screening:chart_agreement", args=[review.slug, TA, "svg"]))
    assert response.status_code == 200
    assert "bob &amp; carol" in " ".join(_texts(response.content.decode())).replace("&", "&amp;")


def test_the_agreement_svg_writes_the_figures_on_the_chart(review, screened, alice, bob, carol):
    _agreement_story(review, screened, alice, bob, carol)
    pairs = charts.pair_agreement(review, TA)
    texts = _texts(charts.agreement_svg(TA, pairs))
    bob_carol = pairs[-1]
    assert f"{bob_carol.kappa:.2f} · {bob_carol.percent_agreement:.1f}% · 5" in texts


# Recall curve ------------------------------------------------------------------------------------


def _reconciled(review, outcomes):
    """Records agreed on in this order (one vote each, a minute apart), outcome per letter: i/e."""
    review.title_abstract_reviewers = 1
    review.save()
    search = Search.objects.create(review=review, kind="file", source="Embase")
    records = Record.objects.bulk_create(Record(review=review, search=search, title=f"r{i}") for i in range(40))
    bob = get_user_model().objects.get(username="bob")
    for i, (record, outcome) in enumerate(zip(records, outcomes)):
        vote(record, bob, {"i": "include", "e": "exclude"}[outcome])
        Decision.objects.filter(record=record).update(created_at=DAY1 + timedelta(minutes=i))
    return records


def test_the_recall_curve_follows_the_screening_order_with_the_random_line_to_all_records(review, bob):
    _reconciled(review, "iieie" + "e" * 5)
    chart = charts.recall_chart(review, TA)
    assert chart.progress.labels == (1, 1, 0, 1, 0, 0, 0, 0, 0, 0)
    assert chart.random_line_end == (40, 3)
    svg = charts.recall_svg(chart, title=review.title)
    root = ET.fromstring(svg)
    line = root.find(f"{SVG}line[@class='random-order']")
    assert line.get("x1") == str(charts.LEFT) and line.get("y1") == str(charts.HEIGHT - charts.BOTTOM)
    assert any("random order, if the 3 found were all" in t for t in _texts(svg))


def test_the_recall_curve_marks_where_the_rule_would_stop(review, bob):
    _reconciled(review, "iieie")
    chart = charts.recall_chart(review, TA)
    assert chart.stop_at is None and chart.would_stop_after
    labels, n = list(chart.progress.labels), chart.progress.n_total
    extra = chart.would_stop_after
    assert stopping.p_value(labels + [0] * extra, n) < 0.05 <= stopping.p_value(labels + [0] * (extra - 1), n)
    svg = charts.recall_svg(chart)
    assert 'class="would-stop"' in svg
    assert f"would stop at {5 + extra} if the next {extra} are irrelevant" in _texts(svg)


def test_the_recall_curve_marks_where_the_rule_said_stop(review, bob):
    _reconciled(review, "ii" + "e" * 38)
    chart = charts.recall_chart(review, TA)
    assert chart.stop_at is not None and chart.would_stop_after is None
    assert 'class="stop"' in charts.recall_svg(chart)


# Escaping, downloads, access ---------------------------------------------------------------------


def test_a_reviewer_named_like_markup_is_text_everywhere(client, review, screened, alice, carol):
    mallory = get_user_model().objects.create_user(XSS, "m@example.org", "pw")
    Membership.objects.create(review=review, user=mallory, role=Role.REVIEWER)
    vote(screened[0], mallory, "include")
    vote(screened[0], carol, "exclude")
    membership = _membership(review, alice)
    svgs = [
        charts.progress_svg(charts.reviewer_progress(review, TA, membership)),
        charts.agreement_svg(TA, charts.pair_agreement(review, TA)),
    ]
    for svg in svgs:
        assert "<img" not in svg
        assert any(XSS[:20] in t for t in _texts(svg))  # parsed back to the very name
    client.force_login(alice)
    page = client.get(reverse("screening:charts", args=[review.slug])).content.decode()
    assert "<img src=x" not in page
    assert "&lt;img src=x" in page


def test_each_chart_downloads_as_svg_and_png(client, review, screened, alice, bob, carol):
    _agreement_story(review, screened, alice, bob, carol)
    client.force_login(alice)
    for name in ("chart_progress", "chart_recall", "chart_agreement"):
        for stage in (TA, FT):
            svg = client.get(reverse(f"screening:{name}", args=[review.slug, stage, "svg"]))
            assert svg["Content-Type"] == "image/svg+xml"
            assert "attachment" in svg["Content-Disposition"]
            ET.fromstring(svg.content)
            png = client.get(reverse(f"screening:{name}", args=[review.slug, stage, "png"]))
            assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(reverse("screening:chart_recall", args=[review.slug, TA, "gif"])).status_code == 404
    assert client.get(reverse("screening:chart_recall", args=[review.slug, "abstract", "svg"])).status_code == 404


def test_dave_the_outsider_gets_404_and_erin_the_viewer_sees_the_charts(client, review, screened, dave, erin):
    urls = [reverse("screening:charts", args=[review.slug])] + [
        reverse(f"screening:{name}", args=[review.slug, TA, "svg"])
        for name in ("chart_progress", "chart_recall", "chart_agreement")
    ]
    client.force_login(dave)
    assert [client.get(url).status_code for url in urls] == [404] * 4
    client.force_login(erin)
    assert client.get(urls[0]).status_code == 200


def test_the_dashboard_links_to_the_charts(client, review, alice):
    client.force_login(alice)
    page = client.get(reverse("review:detail", args=[review.slug])).content.decode()
    assert reverse("screening:charts", args=[review.slug]) in page


# Queries -----------------------------------------------------------------------------------------


def _bulk_screened(review, users, n):
    """``n`` records, each voted on by every one of ``users`` (written in bulk) and agreed on."""
    search = Search.objects.create(review=review, kind="file", source="Embase")
    records = Record.objects.bulk_create(
        Record(review=review, search=search, title=f"r{i}", ta_outcome="include" if i % 7 == 0 else "exclude")
        for i in range(n)
    )
    Decision.objects.bulk_create(
        Decision(
            record=r,
            reviewer=u,
            stage=TA,
            decision=r.ta_outcome if j else "exclude",
            created_at=DAY1 + timedelta(hours=i),
        )
        for i, r in enumerate(records)
        for j, u in enumerate(users)
    )


def _charts_page_queries(client, review):
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("screening:charts", args=[review.slug]))
    assert page.status_code == 200
    assert page.content.decode().count('class="kappa"') == 1  # the bob & carol bar, drawn from the figures
    return len(queries)


def test_the_charts_page_takes_the_same_queries_at_any_size(client, review, alice, bob, carol):
    small = Review.objects.create(slug="small", title="Small", created_by=alice)
    for user, role in ((alice, Role.OWNER), (bob, Role.REVIEWER), (carol, Role.REVIEWER)):
        Membership.objects.create(review=small, user=user, role=role)
    for r, n in ((small, 30), (review, 150)):
        r.title_abstract_reviewers = 2
        r.save()
        _bulk_screened(r, [bob, carol], n)
    client.force_login(alice)
    assert _charts_page_queries(client, small) == _charts_page_queries(client, review)


def test_the_stopping_sentence_says_which_of_said_says_would_or_never(review):
    from screening.progress_report import StageProgress

    def note(labels, n_total, stop_at, after):
        return charts.RecallChart(StageProgress(TA, tuple(labels), n_total, None, stop_at, 1, None), after).stop_note

    assert note([1, 0, 0], 3, 3, None) == "The stopping rule first said stop after 3 records."
    assert note([1, 0], 9, None, 0) == "The stopping rule says stop now, after 2 records."
    assert note([1, 0], 9, None, 4) == (
        "The stopping rule would say stop after 6 records if the next 4 screened are all irrelevant."
    )
    assert "would not say stop" in note([1, 0], 9, None, None)
    assert note([1, 0], 2, None, None) == "Every record has been screened."
