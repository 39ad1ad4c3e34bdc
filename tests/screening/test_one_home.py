"""One rule, one home: every place that applies a screening rule agrees with the rule's home.

- which records take part in a stage, and "maybe counts as include": screening/stages.py
  (in_stage, passes_title_abstract); the queue, the dashboard's status, PRISMA, the conflicts
  queue and a record's page must give the same answer on the same scripted review;
- what a blinded reviewer sees: screening/visibility.py (shown_outcome, its database expression
  and the records filter agree record by record);
- a full-text exclusion needs a reason (stages.needs_reason): the screening form, a recorded
  vote and a decisions file all refuse one without, and all accept a title/abstract one.
"""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from review.models import Record, Stage
from screening import conflicts, prisma, queue, stages, status, visibility
from screening.decision_import import DecisionImportError, import_decisions
from screening.decisions import DecisionError, record_decision, resolve
from screening.filters import RecordFilter
from screening.forms import DecisionForm
from tests.screening.team import FT, TA, vote
from tests.screening.test_queue import import_ris, unique_pks

Outcome = Record.Outcome


@pytest.fixture(params=[True, False], ids=["maybe-counts", "maybe-waits"])
def scripted(request, review, alice, bob, carol):
    """Dual screening at both stages on the EndNote export plus its Zotero duplicates, with every
    kind of title/abstract outcome: agreed include (twice), agreed maybe, include+maybe, an open conflict,
    a conflict resolved as maybe, an agreed exclude, a lone vote; one study agreed at full text."""
    review.maybe_counts_as_include = request.param
    review.title_abstract_reviewers = review.full_text_reviewers = 2
    review.save()
    import_ris(review, "baseline_endnote.ris", "EndNote")
    import_ris(review, "baseline_zotero.ris", "Zotero")
    r = [Record.objects.get(pk=pk) for pk in unique_pks(review)[:8]]
    script = [
        (r[0], "include", "include"),
        (r[1], "maybe", "maybe"),
        (r[2], "include", "exclude"),
        (r[3], "include", "exclude"),
        (r[4], "exclude", "exclude"),
        (r[6], "include", "maybe"),
        (r[7], "include", "include"),
    ]
    for record, bobs, carols in script:
        vote(record, bob, bobs)
        vote(record, carol, carols)
    vote(r[5], carol, "exclude")
    resolve(record=r[3], stage=TA, decision="maybe", user=alice)
    vote(r[0], bob, "include", FT)
    vote(r[0], carol, "include", FT)
    return review, r


def _ids(queryset):
    return set(queryset.values_list("pk", flat=True))


def test_every_place_agrees_on_who_takes_part_in_each_stage(scripted):
    review, r = scripted
    unique = _ids(Record.objects.for_review(review).unique())
    assert Record.objects.for_review(review).duplicates().exists()
    records = list(Record.objects.for_review(review).unique())
    passes = {rec.pk for rec in records if stages.passes_title_abstract(rec, review)}
    outsider = get_user_model().objects.create_user("frank")

    # The rule's own answers, one record in hand and as a query.
    assert _ids(stages.in_stage(review, TA)) == unique
    assert _ids(stages.in_stage(review, FT)) == passes
    assert _ids(Record.objects.for_review(review).filter(stages.passes_title_abstract_q(review))) == passes
    # "maybe counts as include": an agreed maybe and a resolved maybe go on only if the review says so.
    assert (r[1].pk in passes, r[3].pk in passes) == (review.maybe_counts_as_include,) * 2
    r[6].refresh_from_db()
    assert r[6].ta_outcome == (Outcome.INCLUDE if review.maybe_counts_as_include else Outcome.CONFLICT)

    # The queue: a reviewer with no votes is offered every record of the stage still short of votes.
    assert _ids(queue.pending(review, outsider, TA)) == unique - _ids(
        Record.objects.filter(pk__in=unique).exclude(ta_outcome=Outcome.PENDING)
    ) | {r[5].pk}
    assert _ids(queue.pending(review, outsider, FT)) == passes - {r[0].pk}

    # The dashboard's figures and PRISMA count the same records.
    counts = status.review_status(review)
    diagram = prisma.compute(review)
    assert counts[TA]["eligible"] == len(unique)
    assert counts[TA]["included"] == counts[FT]["eligible"] == diagram.reports_sought == len(passes)
    assert _ids(prisma.sought_records(review)) == passes
    assert (
        diagram.records_screened + diagram.awaiting_screening + diagram.screening_conflicts + diagram.undecided_maybe
        == len(unique)
    )
    waiting_maybes = {rec.pk for rec in records if rec.ta_outcome == Outcome.MAYBE} - passes
    assert counts[TA]["maybe"] == diagram.undecided_maybe == len(waiting_maybes)

    # Conflicts: the queue, its counts, the dashboard and PRISMA name the same records.
    for stage, prisma_conflicts in ((TA, diagram.screening_conflicts), (FT, diagram.full_text_conflicts)):
        field = stages.OUTCOME_FIELD[stage]
        in_conflict = _ids(stages.in_stage(review, stage).filter(**{field: Outcome.CONFLICT}))
        assert _ids(conflicts.open_conflicts(review, stage)) == in_conflict
        assert conflicts.open_counts(review)[stage] == counts[stage]["conflicts_open"] == prisma_conflicts
        assert prisma_conflicts == len(in_conflict)
    assert r[2].pk in _ids(conflicts.open_conflicts(review, TA))


def test_a_records_page_says_full_text_exactly_when_the_rule_does(client, scripted, alice):
    review, r = scripted
    client.force_login(alice)
    for record in r:
        record.refresh_from_db()
        page = client.get(reverse("review:record", args=[review.slug, record.pk]))
        assert page.context["at_full_text"] == stages.passes_title_abstract(record, review)


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_what_a_member_is_told_of_an_outcome_is_the_same_everywhere(scripted, who, request):
    review, _ = scripted
    user = request.getfixturevalue(who)
    membership = review.memberships.get(user=user)
    assert bool(visibility.blind_stages(review, membership)) == (who == "bob")
    for stage, name in ((TA, "ta"), (FT, "ft")):
        shown = dict(
            Record.objects.for_review(review)
            .unique()
            .annotate(shown=visibility.shown_outcome_expression(stage, membership))
            .values_list("pk", "shown")
        )
        for record in Record.objects.for_review(review).unique():
            told = visibility.shown_outcome(record, stage, membership)
            assert shown[record.pk] == told
            matching = [
                outcome
                for outcome in Outcome
                if Record.objects.filter(visibility.shown_outcome_q(stage, membership, outcome), pk=record.pk).exists()
            ]
            assert matching == [told]
        # The records page's filter: a conflict is "pending" to bob, and "conflict" finds nothing for him.
        base = Record.objects.for_review(review).unique()
        for value in ("pending", Outcome.CONFLICT.value, Outcome.INCLUDE.value):
            found = RecordFilter({name: value}, queryset=base, review=review, user=user, membership=membership)
            if not found.is_valid():
                assert who == "bob" and value == Outcome.CONFLICT.value  # not offered to a blinded reviewer
                continue
            want = {pk for pk, outcome in shown.items() if outcome == (value if value != "pending" else "")}
            assert _ids(found.qs) == want


def _form(review, stage, decision, reason=""):
    return DecisionForm(
        {"decision": decision, "reason": reason, "other_reason": "", "note": ""}, review=review, stage=stage
    )


def _csv(tmp_path, record, stage, decision, reason=""):
    path = tmp_path / "decisions.csv"
    path.write_text(
        f"pmid,doi,title,reviewer,stage,decision,reason\n,,{record.title},bob,{stage},{decision},{reason}\n"
    )
    return path


def test_a_full_text_exclusion_needs_a_reason_everywhere_and_only_there(scripted, bob, tmp_path):
    review, r = scripted
    at_full_text = r[7]  # included at title/abstract, no full-text vote yet
    unvoted = r[5]
    assert stages.needs_reason(FT, "exclude") and not stages.needs_reason(TA, "exclude")
    assert not stages.needs_reason(FT, "include")

    assert not _form(review, FT, "exclude").is_valid()
    with pytest.raises(DecisionError, match="full-text exclusion needs a reason"):
        record_decision(record=at_full_text, reviewer=bob, stage=FT, decision="exclude")
    with pytest.raises(DecisionImportError, match="a full-text exclusion needs a reason"):
        import_decisions(review=review, path=_csv(tmp_path, at_full_text, FT, "exclude"))

    # With a reason, and at title/abstract without one, all three accept it.
    reason = review.reasons_list()[0]
    assert _form(review, FT, "exclude", reason).is_valid()
    assert _form(review, TA, "exclude").is_valid()
    import_decisions(review=review, path=_csv(tmp_path, unvoted, TA, "exclude"))
    record_decision(record=at_full_text, reviewer=bob, stage=FT, decision="exclude", reason=reason)
    assert at_full_text.decisions.get(reviewer=bob, stage=FT, is_current=True).reason == reason
    assert unvoted.decisions.filter(reviewer=bob, stage=Stage.TITLE_ABSTRACT, decision="exclude").exists()
