"""Closing title/abstract (or full-text) screening on the stopping rule's recommendation.

alice (owner) closes the kratom review's title/abstract screening once bob has screened enough
for the buscar test to say stop: the records left unscreened are marked ineligible by automation
tools, leave the stage, and are reported in PRISMA (every format), the search log, the audit
trail and the methods paragraph. She can reopen it. Races with votes are proven on PostgreSQL.
"""

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from review import searchlog
from review.models import Event, Membership, Record, Search, Stage
from screening import closing, prisma, prisma_svg, progress_report, queue, stages
from screening.audit import audit_csv_chunks, describe_event
from screening.decision_import import DecisionImportError, import_decisions
from screening.decisions import DecisionError, record_decision, record_decisions
from screening.models import ClosedRecord, Decision, StageClosure
from tests.concurrent import at_once

TA, FT = Stage.TITLE_ABSTRACT, Stage.FULL_TEXT
START = timezone.now() - timedelta(days=2)
# 230 records; bob screens 40 relevant then 140 irrelevant: the test says stop (p about 0.017),
# and 50 records are left unscreened.
RELEVANT, IRRELEVANT, TOTAL = 40, 140, 230
LEFT = TOTAL - RELEVANT - IRRELEVANT


def add_records(review, n, source="Embase"):
    search = Search.objects.create(review=review, kind="file", source=source)
    first = Record.objects.filter(review=review).count()
    Record.objects.bulk_create(
        Record(
            review=review,
            search=search,
            source=source,
            title=f"Kratom and trauma, cohort {first + i}",
            pmid=str(9000 + first + i),
        )
        for i in range(n)
    )
    return list(Record.objects.for_review(review).order_by("pk"))[first:]


def screen(review, records, reviewer, decisions, *, stage=TA, minute=0):
    """``reviewer``'s votes on ``records``, one a minute from START + ``minute``, in one go."""
    record_decisions(
        review,
        stage,
        [
            Decision(
                record=r,
                reviewer=reviewer,
                decision=d,
                reason="Wrong population" if stage == FT and d == "exclude" else "",
                created_at=START + timedelta(minutes=minute + i),
            )
            for i, (r, d) in enumerate(zip(records, decisions, strict=True))
        ],
    )


@pytest.fixture
def stoppable(review, bob):
    """The review with bob's 180 votes in: the rule says stop, 50 records unscreened."""
    records = add_records(review, TOTAL)
    screen(review, records[: RELEVANT + IRRELEVANT], bob, ["include"] * RELEVANT + ["exclude"] * IRRELEVANT)
    return review


def unscreened_records(review):
    return list(closing.unscreened(review, TA))


# Closing ----------------------------------------------------------------------------------------


def test_closing_marks_the_unscreened_records_and_keeps_the_tests_figures(stoppable, alice):
    advice = progress_report.stage_progress(stoppable, TA).advice
    assert advice.stop
    left = {r.pk for r in unscreened_records(stoppable)}
    assert len(left) == LEFT

    closure = closing.close_stage(stoppable, TA, alice)

    assert set(ClosedRecord.objects.filter(closure=closure).values_list("record_id", flat=True)) == left
    assert (closure.stage, closure.closed_by, closure.records_marked) == (TA, alice, LEFT)
    assert (closure.method, closure.recall_target, closure.confidence) == ("ranked", 0.95, 0.95)
    assert closure.p_value == pytest.approx(advice.p_value) and closure.p_value < 0.05
    assert (closure.screened, closure.relevant_found, closure.n_total) == (RELEVANT + IRRELEVANT, RELEVANT, TOTAL)
    assert (closure.estimated_remaining, closure.remaining_low, closure.remaining_high) == (
        advice.estimated_remaining,
        *advice.interval,
    )
    assert closure.model_version is None  # no ranking model had run
    event = Event.objects.get(review=stoppable, kind=Event.Kind.CLOSURE)
    assert event.actor == alice
    assert event.detail["records_marked"] == LEFT and event.detail["action"] == "closed"


def test_the_closure_names_the_model_version_the_team_was_screening_with(stoppable, alice):
    from screening.models import RankingRun

    RankingRun.objects.create(review=stoppable, stage=TA, version=3, status=RankingRun.Status.DONE)
    RankingRun.objects.create(review=stoppable, stage=TA, version=4, status=RankingRun.Status.FAILED)
    assert closing.close_stage(stoppable, TA, alice).model_version == 3


def test_closing_on_the_sample_test_ends_the_random_sample(stoppable, alice, bob):
    from screening import sampling
    from screening.models import SampleRecord

    sample = sampling.start_sample(stoppable, TA, by=alice)
    assert not progress_report.stage_progress(stoppable, TA).advice.stop  # nothing sampled yet
    drawn = [s.record for s in SampleRecord.objects.filter(sample=sample).order_by("position")]
    for n in range(1, len(drawn) + 1):
        screen(stoppable, drawn[n - 1 : n], bob, ["exclude"], minute=500 + n)
        if progress_report.stage_progress(stoppable, TA).advice.stop:
            break
    assert n < len(drawn)  # the sample test stopped before the remainder ran out

    closure = closing.close_stage(stoppable, TA, alice)

    sample.refresh_from_db()
    assert closure.method == "random sample"
    assert sample.ended_at is not None and sample.ended_by == alice
    assert sampling.open_sample(stoppable, TA) is None
    assert closure.records_marked == len(drawn) - n


def test_closed_records_leave_the_stage_and_the_queue(stoppable, alice, carol):
    left = unscreened_records(stoppable)
    assert queue.pending(stoppable, carol, TA).filter(pk__in=[r.pk for r in left]).count() == LEFT
    closing.close_stage(stoppable, TA, alice)

    assert not stages.in_stage(stoppable, TA).filter(pk__in=[r.pk for r in left]).exists()
    assert not queue.pending(stoppable, carol, TA).filter(pk__in=[r.pk for r in left]).exists()
    assert stages.in_stage(stoppable, TA).count() == RELEVANT + IRRELEVANT
    assert queue.next_record(stoppable, carol, TA) is None or queue.next_record(stoppable, carol, TA).pk not in {
        r.pk for r in left
    }


def test_a_vote_on_a_closed_record_is_refused_with_the_reason(stoppable, alice, carol):
    record = unscreened_records(stoppable)[0]
    closing.close_stage(stoppable, TA, alice)
    with pytest.raises(DecisionError, match="closed on the stopping rule.*ineligible by automation tools"):
        record_decision(record=record, reviewer=carol, stage=TA, decision="include")
    assert not Decision.objects.filter(record=record).exists()
    with pytest.raises(DecisionError, match="closed on the stopping rule"):
        screen(stoppable, [record], carol, ["include"])


def test_an_imported_vote_on_a_closed_record_is_refused(stoppable, alice, carol):
    record = unscreened_records(stoppable)[0]
    closing.close_stage(stoppable, TA, alice)
    text = f"pmid,reviewer,stage,decision\n{record.pmid},carol,title_abstract,include\n"
    with pytest.raises(DecisionImportError, match="closed on the stopping rule"):
        import_decisions(review=stoppable, text=text, user=alice)
    assert not Decision.objects.filter(record=record).exists()


def test_records_imported_after_the_closure_are_not_covered(stoppable, alice):
    closing.close_stage(stoppable, TA, alice)
    (late,) = add_records(stoppable, 1, source="PubMed")
    assert stages.in_stage(stoppable, TA).filter(pk=late.pk).exists()
    assert list(closing.unscreened(stoppable, TA)) == [late]
    assert prisma.compute(stoppable).records_excluded_automation == LEFT


def test_closing_is_refused_while_the_rule_says_keep_screening(review, alice, bob):
    records = add_records(review, TOTAL)
    screen(review, records[:60], bob, ["include"] * 40 + ["exclude"] * 20)
    with pytest.raises(closing.ClosureError, match=r"does not recommend stopping.*p = 0\.\d+"):
        closing.close_stage(review, TA, alice)
    assert not StageClosure.objects.exists() and not ClosedRecord.objects.exists()
    assert not Event.objects.filter(kind=Event.Kind.CLOSURE).exists()


def test_closing_waits_for_records_with_votes_to_be_settled(review, alice, bob, carol):
    review.title_abstract_reviewers = 2
    review.save()
    records = add_records(review, TOTAL)
    decisions = ["include"] * RELEVANT + ["exclude"] * IRRELEVANT
    screen(review, records[: RELEVANT + IRRELEVANT], bob, decisions)
    screen(review, records[: RELEVANT + IRRELEVANT], carol, decisions, minute=1)
    # Two records wait for bob's vote: carol's alone does not settle them.
    screen(review, records[-2:], carol, ["exclude", "exclude"], minute=500)
    assert progress_report.stage_progress(review, TA).advice.stop

    with pytest.raises(closing.ClosureError, match="2 records at title/abstract screening have votes but no settled"):
        closing.close_stage(review, TA, alice)
    assert not ClosedRecord.objects.exists()

    screen(review, records[-2:], bob, ["exclude", "exclude"], minute=600)
    closure = closing.close_stage(review, TA, alice)
    assert closure.records_marked == LEFT - 2


def test_only_an_owner_closes_or_reopens(stoppable, alice, bob):
    with pytest.raises(closing.ClosureError, match="Only an owner"):
        closing.close_stage(stoppable, TA, bob)
    closing.close_stage(stoppable, TA, alice)
    with pytest.raises(closing.ClosureError, match="Only an owner"):
        closing.reopen_stage(stoppable, TA, bob)
    assert closing.open_closure(stoppable, TA) is not None


def test_a_stage_is_closed_once(stoppable, alice):
    closing.close_stage(stoppable, TA, alice)
    with pytest.raises(closing.ClosureError, match="already closed"):
        closing.close_stage(stoppable, TA, alice)
    assert StageClosure.objects.count() == 1


def test_the_confirmed_count_must_still_hold(stoppable, alice):
    add_records(stoppable, 1)  # imported between the confirmation page and the click
    with pytest.raises(closing.ClosureError, match=f"confirmed marking {LEFT} records, but {LEFT + 1:,} are"):
        closing.close_stage(stoppable, TA, alice, expect=LEFT)
    assert not StageClosure.objects.exists()


# Reopening --------------------------------------------------------------------------------------


def test_reopening_returns_the_records_and_keeps_the_history(stoppable, alice, carol):
    left = {r.pk for r in unscreened_records(stoppable)}
    closure = closing.close_stage(stoppable, TA, alice)
    closing.reopen_stage(stoppable, TA, alice)

    closure.refresh_from_db()
    assert closure.reopened_by == alice and closure.reopened_at is not None
    assert ClosedRecord.objects.filter(closure=closure).count() == LEFT  # which ones it had marked
    assert set(queue.pending(stoppable, carol, TA).values_list("pk", flat=True)) == left
    assert prisma.compute(stoppable).records_excluded_automation == 0
    assert prisma.compute(stoppable).footnotes == []
    actions = list(Event.objects.filter(kind=Event.Kind.CLOSURE).values_list("detail__action", flat=True))
    assert actions == ["closed", "reopened"]
    record = Record.objects.get(pk=min(left))
    record_decision(record=record, reviewer=carol, stage=TA, decision="exclude")

    with pytest.raises(closing.ClosureError, match="not closed"):
        closing.reopen_stage(stoppable, TA, alice)
    # Closed again later: a new closure, the old one stays reopened.
    again = closing.close_stage(stoppable, TA, alice)
    assert again.pk != closure.pk and again.records_marked == LEFT - 1


# PRISMA -----------------------------------------------------------------------------------------

FOOTNOTE = re.compile(
    r"Records marked as ineligible by automation tools: 50 records left unscreened at title/abstract screening "
    r"when the stopping rule of Callaghan and Müller-Hansen \(2020\) indicated, at 95% confidence, that at least "
    r"95% of the relevant records had been found \(ranked test, p = 0\.\d{3}; 40 relevant in 180 screened\), "
    r"\d{4}-\d\d-\d\d\."
)


def test_prisma_counts_add_up_with_the_automation_box(stoppable, alice):
    before = prisma.compute(stoppable)
    closing.close_stage(stoppable, TA, alice)
    c = prisma.compute(stoppable)

    assert c.records_excluded_automation == LEFT
    assert before.records_screened == c.records_screened == RELEVANT + IRRELEVANT
    assert before.awaiting_screening == LEFT and c.awaiting_screening == 0
    assert c.total_identified - c.duplicates_removed - c.records_excluded_automation == (
        c.records_screened + c.awaiting_screening + c.screening_conflicts + c.undecided_maybe
    )
    assert c.records_screened == c.records_excluded + c.reports_sought
    assert c.is_complete or c.awaiting_full_text  # the included ones wait for full text, nothing else


def test_a_closed_record_merged_as_a_duplicate_counts_once(stoppable, alice):
    from review.importing import merge

    a, b = unscreened_records(stoppable)[:2]
    closing.close_stage(stoppable, TA, alice)
    merge(b, into=a, user=alice)
    c = prisma.compute(stoppable)
    assert (c.duplicates_removed, c.records_excluded_automation) == (1, LEFT - 1)
    assert c.total_identified - c.duplicates_removed - c.records_excluded_automation == c.records_screened
    assert "(n = 49)" in prisma_svg.render_svg(c)


def _svg_text(svg):
    root = ET.fromstring(svg.encode("utf-8"))
    return " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))


def test_the_footnote_and_the_box_appear_in_every_format(stoppable, alice, client):
    closing.close_stage(stoppable, TA, alice)
    c = prisma.compute(stoppable)
    assert len(c.footnotes) == 1 and FOOTNOTE.fullmatch(c.footnotes[0])

    svg = prisma_svg.render(c, "svg")
    text = _svg_text(svg)
    assert f"Records marked as ineligible by automation tools (n = {LEFT})*" in text
    # Wrapped over lines: compare with the spaces the line breaks took.
    assert FOOTNOTE.search(" ".join(text.split()))

    data = json.loads(prisma_svg.render(c, "json"))
    assert data["records_excluded_automation"] == LEFT
    assert len(data["footnotes"]) == 1 and FOOTNOTE.fullmatch(data["footnotes"][0])

    rows = {r["data"]: r["n"] for r in csv.DictReader(io.StringIO(prisma_svg.render(c, "prisma2020-csv")))}
    assert rows["excluded_automatic"] == str(LEFT)
    assert rows["records_screened"] == str(RELEVANT + IRRELEVANT)

    # PNG and PDF are drawn from that SVG: the footnote makes the drawing taller.
    without = prisma.PrismaCounts(**{**c.__dict__, "footnotes": []})
    assert _png_height(prisma_svg.render(c, "png")) > _png_height(prisma_svg.render(without, "png"))
    assert _pdf_height(prisma_svg.render(c, "pdf")) > _pdf_height(prisma_svg.render(without, "pdf"))

    client.force_login(alice)
    page = client.get(reverse("screening:prisma", args=[stoppable.slug])).content.decode()
    caption = re.search(r'<figcaption class="prisma-footnotes small">(.*?)</figcaption>', page, re.S).group(1)
    assert FOOTNOTE.search(caption.replace("&#x27;", "'"))


def _png_height(png):
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[20:24], "big")


def _pdf_height(pdf):
    return float(re.search(rb"/MediaBox \[\s*0 0 [\d.]+ ([\d.]+)", pdf).group(1))


def test_closing_full_text_counts_the_reports_as_excluded_without_assessment(review, alice, bob):
    records = add_records(review, TOTAL)
    screen(review, records, bob, ["include"] * TOTAL)
    screen(
        review,
        records[: RELEVANT + IRRELEVANT],
        bob,
        ["include"] * RELEVANT + ["exclude"] * IRRELEVANT,
        stage=FT,
        minute=1000,
    )
    closure = closing.close_stage(review, FT, alice)
    assert closure.records_marked == LEFT
    c = prisma.compute(review)
    assert c.records_excluded_automation == 0  # title/abstract was screened in full
    assert c.reports_closed_by_rule == LEFT
    assert c.reports_excluded[closing.FULL_TEXT_REASON] == LEFT
    assert c.reports_sought == c.reports_not_retrieved + c.reports_assessed + c.awaiting_full_text
    assert c.reports_assessed == c.total_reports_excluded + c.studies_included
    assert c.studies_included == RELEVANT and c.awaiting_full_text == 0
    assert len(c.footnotes) == 1 and c.footnotes[0].startswith(
        f"Reports excluded, “{closing.FULL_TEXT_REASON}”: 50 reports"
    )
    assert f"{closing.FULL_TEXT_REASON} (n = {LEFT})*" in " ".join(_svg_text(prisma_svg.render_svg(c)).split())


# Search log, audit trail, methods paragraph -----------------------------------------------------


def test_the_search_log_records_the_closure_and_the_reopening(stoppable, alice):
    closing.close_stage(stoppable, TA, alice)
    closing.reopen_stage(stoppable, TA, alice)
    rows = list(csv.DictReader(io.StringIO(searchlog.search_log_csv(stoppable))))
    kinds = [r["Kind"] for r in rows]
    # The import (a search row) comes first: rows are in time order.
    assert kinds == ["File import", "Stage closed", "Stage reopened"]
    closed, reopened = rows[1], rows[2]
    assert closed["Query"].startswith(
        f"Stopping rule: title/abstract screening closed, {LEFT} records marked ineligible by automation tools"
    )
    assert "recall target 95%, 95% confidence" in closed["Query"]
    assert closed["Run by"] == reopened["Run by"] == "alice"
    assert (
        reopened["Query"] == f"Stopping rule: title/abstract screening reopened, {LEFT} records returned to screening"
    )


def test_the_audit_trail_records_the_closure_and_the_reopening(stoppable, alice, bob):
    closing.close_stage(stoppable, TA, alice)
    closing.reopen_stage(stoppable, TA, alice)
    membership = Membership.objects.get(review=stoppable, user=bob)
    rows = list(csv.DictReader(io.StringIO("".join(audit_csv_chunks(stoppable, membership)))))
    closures = [r for r in rows if r["kind"] == "closure"]
    assert [(r["actor"], r["stage"]) for r in closures] == [("alice", TA), ("alice", TA)]
    assert json.loads(closures[0]["details"])["records_marked"] == LEFT
    assert json.loads(closures[1]["details"])["records_returned"] == LEFT
    events = Event.objects.filter(kind=Event.Kind.CLOSURE).order_by("pk")
    assert describe_event(events[0]) == (
        f"Title/abstract screening closed on the stopping rule (recall target 95%, 95% confidence): "
        f"{LEFT} records marked ineligible by automation tools"
    )
    assert describe_event(events[1]) == f"Title/abstract screening reopened: {LEFT} records returned to screening"


def test_the_methods_paragraph_reports_the_closure_with_the_figures_at_the_time(stoppable, alice):
    closing.close_stage(stoppable, TA, alice)
    text = progress_report.methods_paragraph(stoppable)
    assert re.search(
        r"Title/abstract screening was stopped on \d{4}-\d\d-\d\d, after 180 of 230 records \(78%\) had been "
        r"screened and 40 relevant records found, when the hypergeometric test of Callaghan and Müller-Hansen "
        r"\(2020\) \(ranked test\) rejected, at 95% confidence, that fewer than 95% of the relevant records had been "
        r"found \(p = 0\.\d{3}\)\. An estimated \d+ relevant records \(at most \d+ at 95% confidence\) remained among "
        r"the 50 records left unscreened, which were reported in the PRISMA flow diagram as records marked as "
        r"ineligible by automation tools\.",
        text,
    ), text
    # Not also described as if every record had been screened.
    assert "180 of 180" not in text
    closing.reopen_stage(stoppable, TA, alice)
    assert "was stopped on" not in progress_report.methods_paragraph(stoppable)


# The dashboard and the views --------------------------------------------------------------------


def _dashboard(client, user, review):
    client.force_login(user)
    return client.get(reverse("review:detail", args=[review.slug])).content.decode()


def test_the_owner_sees_the_close_button_and_the_confirmation_names_the_count(stoppable, alice, client):
    close_url = reverse("screening:close_stage", args=[stoppable.slug, TA])
    assert f'href="{close_url}"' in _dashboard(client, alice, stoppable)
    page = client.get(close_url).content.decode()
    assert f"mark <strong>{LEFT} records</strong>" in page.replace("the <strong>", "mark <strong>")
    assert f'name="expect" value="{LEFT}"' in page
    assert f"and mark {LEFT} records</button>" in page

    response = client.post(close_url, {"expect": str(LEFT)})
    assert response.status_code == 302 and response["Location"].endswith("#stopping-title_abstract")
    assert closing.open_closure(stoppable, TA).records_marked == LEFT
    html = _dashboard(client, alice, stoppable)
    assert f'href="{close_url}"' not in html
    assert 'id="closures"' in html and f"{LEFT} records left unscreened and marked ineligible" in html
    assert reverse("screening:reopen_stage", args=[stoppable.slug, TA]) in html

    assert client.post(reverse("screening:reopen_stage", args=[stoppable.slug, TA])).status_code == 302
    assert closing.open_closure(stoppable, TA) is None
    assert "Reopened" in _dashboard(client, alice, stoppable)


def test_a_post_without_the_confirmed_count_closes_nothing(stoppable, alice, client):
    client.force_login(alice)
    client.post(reverse("screening:close_stage", args=[stoppable.slug, TA]))
    assert not StageClosure.objects.exists()
    assert "Confirm how many records to mark" in _dashboard(client, alice, stoppable)


def test_the_confirmation_page_says_why_a_stage_cannot_be_closed(review, alice, bob, client):
    records = add_records(review, TOTAL)
    screen(review, records[:60], bob, ["include"] * 40 + ["exclude"] * 20)
    client.force_login(alice)
    page = client.get(reverse("screening:close_stage", args=[review.slug, TA])).content.decode()
    assert "does not recommend stopping" in page and 'name="expect"' not in page
    assert "Close title/abstract screening on this recommendation" not in _dashboard(client, alice, review)


def test_reviewers_and_viewers_see_the_closure_but_no_controls(stoppable, alice, bob, erin, client):
    close_url = reverse("screening:close_stage", args=[stoppable.slug, TA])
    reopen_url = reverse("screening:reopen_stage", args=[stoppable.slug, TA])
    for user in (bob, erin):
        assert close_url not in _dashboard(client, user, stoppable)
    closing.close_stage(stoppable, TA, alice)
    for user in (bob, erin):
        html = _dashboard(client, user, stoppable)
        assert 'id="closures"' in html and reopen_url not in html


@pytest.mark.parametrize("name", ["close_stage", "reopen_stage"])
def test_reviewers_and_viewers_get_403_and_outsiders_404(stoppable, bob, erin, dave, name):
    url = reverse(f"screening:{name}", args=[stoppable.slug, TA])
    for user, status in ((bob, 403), (erin, 403), (dave, 404)):
        client = Client()
        client.force_login(user)
        assert client.post(url, {"expect": str(LEFT)}).status_code == status
        if name == "close_stage":  # the confirmation page; reopening is POST only
            assert client.get(url).status_code == status
    assert not StageClosure.objects.exists()


def test_closing_needs_the_csrf_token(stoppable, alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    url = reverse("screening:close_stage", args=[stoppable.slug, TA])
    assert client.post(url, {"expect": str(LEFT)}).status_code == 403
    assert not StageClosure.objects.exists()


def test_an_unknown_stage_is_404(stoppable, alice, client):
    client.force_login(alice)
    assert client.get(reverse("screening:close_stage", args=[stoppable.slug, "abstracts"])).status_code == 404


# Races (PostgreSQL) -----------------------------------------------------------------------------

PG_ONLY = "the concurrency proof runs in the PostgreSQL pass of `make test` (DATABASE_URL=postgres://...)"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("decision", ["exclude", "include"])
def test_a_vote_racing_the_closure_is_counted_before_it_or_refused_after(review, alice, bob, carol, decision):
    """carol votes on an unscreened record at the instant alice closes. Either the vote is in and
    the test ran on it (the record is not marked; an include may even undo the stop), or the
    record is marked and the vote refused: never a marked record with a vote."""
    if connection.vendor != "postgresql":
        pytest.skip(PG_ONLY)
    records = add_records(review, TOTAL)
    screen(review, records[: RELEVANT + IRRELEVANT], bob, ["include"] * RELEVANT + ["exclude"] * IRRELEVANT)
    outcomes = []
    for target in records[RELEVANT + IRRELEVANT : RELEVANT + IRRELEVANT + 6]:
        vote, closure = at_once(
            lambda t=target: record_decision(record=t, reviewer=carol, stage=TA, decision=decision),
            lambda: closing.close_stage(review, TA, alice),
        )
        voted = Decision.objects.filter(record=target, stage=TA).exists()
        marked = ClosedRecord.objects.filter(record=target, closure__reopened_at__isnull=True).exists()
        assert voted != marked, (vote, closure)
        if voted:
            assert isinstance(vote, Decision)
            if isinstance(closure, StageClosure):
                assert closure.screened == Record.objects.filter(review=review).exclude(ta_outcome="").count()
            else:
                assert isinstance(closure, closing.ClosureError) and "does not recommend" in str(closure)
        else:
            assert isinstance(closure, StageClosure) and isinstance(vote, DecisionError)
            assert "closed on the stopping rule" in str(vote)
        outcomes.append(voted)
        if isinstance(closure, StageClosure):
            closing.reopen_stage(review, TA, alice)
    unmarked = Record.objects.filter(review=review).exclude(pk__in=stages.closed_records(review, TA))
    assert unmarked.count() == TOTAL  # every closure reopened, nothing left half-closed


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_owners_closing_at_once_close_once(review, alice, bob, carol):
    if connection.vendor != "postgresql":
        pytest.skip(PG_ONLY)
    from review.models import Role

    Membership.objects.filter(review=review, user=carol).update(role=Role.OWNER)
    records = add_records(review, TOTAL)
    screen(review, records[: RELEVANT + IRRELEVANT], bob, ["include"] * RELEVANT + ["exclude"] * IRRELEVANT)
    results = at_once(lambda: closing.close_stage(review, TA, alice), lambda: closing.close_stage(review, TA, carol))
    assert sorted(type(r).__name__ for r in results) == ["ClosureError", "StageClosure"]
    assert StageClosure.objects.count() == 1 and ClosedRecord.objects.count() == LEFT
    assert Event.objects.filter(kind=Event.Kind.CLOSURE).count() == 1


def test_the_records_table_shows_and_filters_the_closed_records(stoppable, alice, bob, client):
    left = {r.pk for r in unscreened_records(stoppable)}
    closing.close_stage(stoppable, TA, alice)
    (late,) = add_records(stoppable, 1)
    url = reverse("screening:records", args=[stoppable.slug])
    client.force_login(bob)

    def listed(query):
        html = client.get(f"{url}?{query}&per_page=500").content.decode()
        return {int(pk) for pk in re.findall(r'href="/r/kratom-ptsd/records/(\d+)/"', html)}, html

    closed, html = listed("ta=automation")
    assert closed == left and "Ineligible (automation)" in html
    pending, _ = listed("ta=pending")
    assert pending == {late.pk}


def test_the_screening_page_refuses_a_vote_on_a_closed_record_and_says_why(stoppable, alice, carol, client):
    record = unscreened_records(stoppable)[0]
    closing.close_stage(stoppable, TA, alice)
    client.force_login(carol)
    url = reverse("screening:decide", args=[stoppable.slug, TA, record.pk])
    response = client.post(url, {"decision": "include"})
    assert response.status_code == 400
    assert "closed on the stopping rule" in response.content.decode()
    assert not Decision.objects.filter(record=record).exists()


def test_an_imported_full_text_vote_on_a_closed_report_names_the_closure(review, alice, bob):
    records = add_records(review, TOTAL)
    screen(review, records, bob, ["include"] * TOTAL)
    decisions = ["include"] * RELEVANT + ["exclude"] * IRRELEVANT
    screen(review, records[: RELEVANT + IRRELEVANT], bob, decisions, stage=FT, minute=1000)
    closing.close_stage(review, FT, alice)
    text = f"pmid,reviewer,stage,decision\n{records[-1].pmid},bob,full_text,include\n"
    with pytest.raises(
        DecisionImportError, match="line 2: Full text screening was closed on the stopping rule.*record #"
    ):
        import_decisions(review=review, text=text, user=alice)


def test_a_closed_records_page_says_it_was_marked_by_automation(stoppable, alice, bob, client):
    closed, screened = unscreened_records(stoppable)[0], Record.objects.filter(review=stoppable).first()
    closing.close_stage(stoppable, TA, alice)
    client.force_login(bob)
    page = client.get(reverse("review:record", args=[stoppable.slug, closed.pk])).content.decode()
    assert "Ineligible (automation)" in page and "closed on the stopping rule" in page
    other = client.get(reverse("review:record", args=[stoppable.slug, screened.pk])).content.decode()
    assert "Ineligible (automation)" not in other
    closing.reopen_stage(stoppable, TA, alice)
    assert (
        "Ineligible (automation)"
        not in client.get(reverse("review:record", args=[stoppable.slug, closed.pk])).content.decode()
    )
