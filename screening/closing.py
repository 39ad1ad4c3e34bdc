"""Closing a screening stage on the stopping rule's recommendation, and reopening it.

When the stopping test (screening/stopping.py, shown by screening/progress_report.py) says that
the target recall has been reached at the stated confidence, the owner may close the stage: the
records nobody has voted on yet are marked ineligible by automation tools, one ClosedRecord row
each, under a StageClosure row that keeps the test's figures at that moment. From then on they
take no part in the stage (screening/stages.py, the one home of that rule): they leave the queue,
never reach full text, and a vote on one is refused. Records imported later are not covered.
Reopening stamps the closure (the row stays, for the history) and the records come back.

Records that have votes but are not settled (waiting for another reviewer's vote, or in
conflict) are not marked: closing is refused until they are settled, and the message says how
many there are. Their votes are the team's work; marking them "ineligible by automation" would
misreport them.

How it is reported (screening/prisma.py): at title/abstract, PRISMA 2020's "Records marked as
ineligible by automation tools" box in "Records removed before screening", with a footnote naming
the method, target and confidence. At full text PRISMA 2020 has no box for reports left
unassessed by automation: they are counted in "Reports assessed for eligibility" and shown in
"Reports excluded" under their own reason, ``FULL_TEXT_REASON``, which says that nobody assessed
them, with the same footnote; the boxes add up and nothing is hidden. The search log
(review/searchlog.py, through a hook filled in apps.ready) and the audit trail record the closure
and any reopening; the methods paragraph gets ``methods_sentence``.

Concurrency: records are locked first (the stage's records, in pk order, as
screening.decisions.lock_records does for a vote), then the review row; the test runs on what is
committed once the locks are held. A vote racing the closure is either in before (and counted by
the test, so the record is not marked) or waits and is refused after.
"""

from datetime import UTC

from django.db import transaction
from django.utils import timezone

from review.models import Event, Membership, Record, Review, Role, Stage
from screening import progress_report, retrain, sampling, stages
from screening.decisions import lock_records
from screening.models import Claim, ClosedRecord, Decision, StageClosure
from screening.stages import OUTCOME_FIELD

FULL_TEXT_REASON = "Not assessed: left unscreened on the stopping rule (automation tool)"
METHOD_NAMES = {
    StageClosure.Method.RANKED: "ranked test",
    StageClosure.Method.SAMPLE: "random-sample test",
}


class ClosureError(ValueError):
    """A closure or reopening that cannot be done; the message says why."""


def open_closure(review, stage):
    """The closure of ``stage`` that holds now, or None."""
    return StageClosure.objects.filter(review=review, stage=Stage(stage), reopened_at__isnull=True).first()


def open_closures(review):
    """{stage: StageClosure} for the stages of ``review`` closed now."""
    rows = StageClosure.objects.filter(review=review, reopened_at__isnull=True).select_related("closed_by")
    return {Stage(c.stage): c for c in rows}


def history(review):
    """Every closure of ``review``, reopened ones included, oldest first."""
    return list(StageClosure.objects.filter(review=review).select_related("closed_by", "reopened_by"))


def unsettled_with_votes(review, stage):
    """Records of ``stage`` that have votes but no settled outcome yet (waiting for another vote,
    or in conflict). A resolution always settles a record, so votes are all there is to look at."""
    stage = Stage(stage)
    voted = Decision.objects.filter(stage=stage, is_current=True).values("record_id")
    return (
        stages.in_stage(review, stage)
        .filter(**{f"{OUTCOME_FIELD[stage]}__in": stages.UNRECONCILED})
        .filter(pk__in=voted)
    )


def unscreened(review, stage):
    """Records of ``stage`` nobody has voted on: the ones a closure would mark."""
    stage = Stage(stage)
    voted = Decision.objects.filter(stage=stage, is_current=True).values("record_id")
    return (
        stages.in_stage(review, stage)
        .filter(**{OUTCOME_FIELD[stage]: Record.Outcome.PENDING})
        .exclude(pk__in=voted)
        .order_by("pk")
    )


def _owner(review, by):
    if not Membership.objects.filter(review=review, user=by, role=Role.OWNER).exists():
        raise ClosureError("Only an owner of the review can close or reopen a screening stage.")


def _plural(n, word):
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def check_closable(review, stage, progress=None):
    """The progress of ``stage`` when it may be closed now; raises ClosureError saying why not."""
    stage = Stage(stage)
    if open_closure(review, stage):
        raise ClosureError(f"{stage.label} screening is already closed on the stopping rule; reopen it first.")
    progress = progress or progress_report.stage_progress(review, stage)
    advice = progress.advice
    if advice is None:
        raise ClosureError(f"No records have reached {stage.label.lower()} screening yet: there is nothing to close.")
    if waiting := unsettled_with_votes(review, stage).count():
        raise ClosureError(
            f"{_plural(waiting, 'record')} at {stage.label.lower()} screening "
            f"{'has' if waiting == 1 else 'have'} votes but no settled outcome (waiting for another vote, or "
            "in conflict): settle them before closing the stage on the stopping rule."
        )
    if not advice.stop:
        raise ClosureError(
            f"The stopping rule does not recommend stopping {stage.label.lower()} screening yet: the test cannot "
            f"show, at {advice.confidence:.0%} confidence, that {advice.recall_target:.0%} recall has been reached "
            f"(p = {advice.p_value:.3f})."
        )
    if not unscreened(review, stage).exists():
        raise ClosureError(f"Every record at {stage.label.lower()} screening has been screened: nothing to close.")
    return progress


def close_stage(review, stage, by, *, expect=None):
    """Close ``stage`` of ``review`` on the stopping rule's recommendation (owner only).

    Marks every record of the stage nobody has voted on as ineligible by automation tools and
    returns the StageClosure. Raises ClosureError (nothing written) when the rule does not say
    stop, records with votes are not settled, the stage is closed already, or ``by`` is no owner.
    ``expect``: the number of records the owner confirmed marking; refused if it changed since.
    """
    stage = Stage(stage)
    _owner(review, by)
    with transaction.atomic():
        # Records, then the review row: the lock order of every vote and outcome write.
        lock_records(stages.in_stage(review, stage).values("pk"))
        Review.objects.select_for_update(no_key=True).filter(pk=review.pk).values("pk").get()
        progress = check_closable(review, stage)
        advice = progress.advice
        ids = list(unscreened(review, stage).values_list("pk", flat=True))
        if expect is not None and expect != len(ids):
            raise ClosureError(
                f"You confirmed marking {_plural(expect, 'record')}, but {len(ids):,} are unscreened now (records "
                "were screened or imported since): check the figures and confirm again."
            )
        if sampling.open_sample(review, stage) is not None:
            # The closure ends the random-sample phase (its figures are logged as they stand): the
            # records left are no longer in the stage, so the sample would count them as settled.
            sampling.end_sample(review, stage, by=by)
        run = retrain.latest_run(review, stage)
        low, high = advice.interval
        closure = StageClosure.objects.create(
            review=review,
            stage=stage,
            closed_by=by,
            method=StageClosure.Method(advice.method),
            recall_target=advice.recall_target,
            confidence=advice.confidence,
            p_value=advice.p_value,
            screened=advice.screened,
            relevant_found=advice.relevant_found,
            n_total=advice.n_total,
            estimated_remaining=advice.estimated_remaining,
            remaining_low=low,
            remaining_high=high,
            model_version=run.version if run else None,
            records_marked=len(ids),
        )
        ClosedRecord.objects.bulk_create((ClosedRecord(closure=closure, record_id=pk) for pk in ids), batch_size=2000)
        # Records held for a reviewer are no longer to be screened.
        Claim.objects.filter(record_id__in=ids, stage=stage).delete()
        Event.objects.create(
            review=review,
            actor=by,
            kind=Event.Kind.CLOSURE,
            created_at=closure.closed_at,
            detail={"stage": stage.value, "action": "closed", **_figures(closure)},
        )
    return closure


def reopen_stage(review, stage, by):
    """Undo the open closure of ``stage`` (owner only): its records return to screening."""
    stage = Stage(stage)
    _owner(review, by)
    with transaction.atomic():
        closure = open_closure(review, stage)
        if closure is None:
            raise ClosureError(f"{stage.label} screening is not closed on the stopping rule: nothing to reopen.")
        lock_records(closure.records.values("record_id"))
        Review.objects.select_for_update(no_key=True).filter(pk=review.pk).values("pk").get()
        now = timezone.now()
        if not StageClosure.objects.filter(pk=closure.pk, reopened_at__isnull=True).update(
            reopened_at=now, reopened_by=by
        ):
            raise ClosureError(f"{stage.label} screening was reopened a moment ago by someone else.")
        closure.reopened_at, closure.reopened_by = now, by
        Event.objects.create(
            review=review,
            actor=by,
            kind=Event.Kind.CLOSURE,
            created_at=now,
            detail={
                "stage": stage.value,
                "action": "reopened",
                "closure": closure.pk,
                "records_returned": closure.records_marked,
            },
        )

        def rescore():
            from screening import tasks  # the records come back unscored: rank them with the rest

            tasks.request_retrain(review, stage, force=True)

        transaction.on_commit(rescore)
    return closure


def _figures(closure):
    return {
        "closure": closure.pk,
        "records_marked": closure.records_marked,
        "method": closure.method,
        "recall_target": closure.recall_target,
        "confidence": closure.confidence,
        "p_value": round(closure.p_value, 6),
        "screened": closure.screened,
        "relevant_found": closure.relevant_found,
        "estimated_remaining": closure.estimated_remaining,
        "remaining_interval": [closure.remaining_low, closure.remaining_high],
        "model_version": closure.model_version,
    }


# How the closure is reported ---------------------------------------------------------------------


def _date(when):
    return when.astimezone(UTC).strftime("%Y-%m-%d")


def marked_label(stage):
    """What the marked records are called in the stage's PRISMA box."""
    if Stage(stage) == Stage.FULL_TEXT:
        return "reports counted as excluded without being assessed"
    return "records marked as ineligible by automation tools"


def prisma_footnote(closure, marked=None):
    """The footnote under the PRISMA diagram: method, target, confidence and date of the closure.

    ``marked``: how many of the closure's records the diagram counts (a record merged as a
    duplicate since is counted there instead); the closure's own count by default.
    """
    marked = closure.records_marked if marked is None else marked
    box = (
        f"Reports excluded, “{FULL_TEXT_REASON}”"
        if closure.stage == Stage.FULL_TEXT
        else "Records marked as ineligible by automation tools"
    )
    unit = "reports" if closure.stage == Stage.FULL_TEXT else "records"
    return (
        f"{box}: {marked:,} {unit} left unscreened at {Stage(closure.stage).label.lower()} screening when the "
        "stopping rule of Callaghan and Müller-Hansen (2020) indicated, at "
        f"{closure.confidence:.0%} confidence, that at least {closure.recall_target:.0%} of the relevant records "
        f"had been found ({METHOD_NAMES.get(closure.method, closure.method)}, p = {closure.p_value:.3f}; "
        f"{closure.relevant_found:,} relevant in {closure.screened:,} screened), {_date(closure.closed_at)}."
    )


def methods_sentence(review, stage):
    """The methods paragraph's sentence on a stage closed on the rule ('' when it is not closed)."""
    closure = open_closure(review, stage)
    if closure is None:
        return ""
    stage_name = Stage(closure.stage).label.lower()
    share = 100 * closure.screened / closure.n_total if closure.n_total else 0
    low = f", at least {closure.remaining_low}" if closure.remaining_low else ""
    model = f" (ranking model version {closure.model_version})" if closure.model_version else ""
    where = (
        "counted in the PRISMA flow diagram as reports excluded without being assessed"
        if closure.stage == Stage.FULL_TEXT
        else "reported in the PRISMA flow diagram as records marked as ineligible by automation tools"
    )
    return (
        f"{stage_name.capitalize()} screening was stopped on {_date(closure.closed_at)}{model}, after "
        f"{closure.screened} of {closure.n_total} records ({share:.0f}%) had been screened and "
        f"{closure.relevant_found} relevant records found, when the hypergeometric test of Callaghan and "
        f"Müller-Hansen (2020) ({METHOD_NAMES.get(closure.method, closure.method)}) rejected, at "
        f"{closure.confidence:.0%} confidence, that fewer than {closure.recall_target:.0%} of the relevant "
        f"records had been found (p = {closure.p_value:.3f}). An estimated {closure.estimated_remaining} relevant "
        f"records (at most {closure.remaining_high} at {closure.confidence:.0%} confidence{low}) remained among "
        f"the {closure.records_marked} records left unscreened, which were {where}."
    )


def search_log_rows(review):
    """The search log's rows for closures and reopenings (review/searchlog.py calls this through
    its hook), keyed as searchlog.COLUMNS."""
    rows = []
    for closure in history(review):
        stage_name = Stage(closure.stage).label.lower()
        rows.append(
            {
                "when": closure.closed_at,
                "source": "Stopping rule",
                "kind": "Stage closed",
                "query": (
                    f"Stopping rule: {stage_name} screening closed, {_plural(closure.records_marked, 'record')} "
                    f"marked ineligible by automation tools (Callaghan and Müller-Hansen 2020, "
                    f"{METHOD_NAMES.get(closure.method, closure.method)}, recall target "
                    f"{closure.recall_target:.0%}, {closure.confidence:.0%} confidence, p = {closure.p_value:.3f})"
                ),
                "run_by": closure.closed_by.get_username(),
            }
        )
        if closure.reopened_at:
            rows.append(
                {
                    "when": closure.reopened_at,
                    "source": "Stopping rule",
                    "kind": "Stage reopened",
                    "query": (
                        f"Stopping rule: {stage_name} screening reopened, "
                        f"{_plural(closure.records_marked, 'record')} returned to screening"
                    ),
                    "run_by": closure.reopened_by.get_username() if closure.reopened_by else "",
                }
            )
    return rows
