"""The stopping rule's settings and its random-sample phase, per review and stage.

Settings: the recall target and confidence the test uses (defaults 95% and 95%), set by an owner.

The random-sample phase: an owner starts "check with a random sample" while records remain
unscreened. Sieve then draws a uniform random permutation of the records not yet settled (a seed
from ``secrets`` shuffles their ids, sorted, with numpy) and stores it; from then on the queue
(screening/queue.py ``_order``) hands the stage's records out in that order to every reviewer,
whatever order each one chose. The sample test (screening/stopping.py, ``sampled_from``) uses the
longest prefix of the permutation whose records all have a settled outcome: which records count
is fixed by the permutation alone, never by their outcomes, so the prefix stays a uniform sample
even when a reviewer skips a record or holds it, or a conflict waits for a resolution.

Records outside the permutation: those settled before the start (the ranked phase) and those that
joined the stage after it (imported later, or sent on to full text later). The sample says nothing
about the second kind, so while any of them is unsettled the test cannot recommend stopping; the
queue hands them out first. Once they are all settled the test is sound again: every relevant
record outside the remainder is then known, and the sample is uniform over the remainder.

"Settled": the record's outcome at the stage is reconciled (screening/stages.py ``decided_q``);
pending and conflict look alike, so nothing here depends on a vote a blinded reviewer cannot see.
"""

import dataclasses
import secrets
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from review.models import Event, Record, Review, Stage
from screening import stages, stopping
from screening.models import RandomSample, SampleRecord, StoppingSettings
from screening.stages import OUTCOME_FIELD, UNRECONCILED

Outcome = Record.Outcome
RECALL_TARGET = 0.95
CONFIDENCE = 0.95
# Both are percentages on the form: 50% to 99.9%.
LOWEST, HIGHEST = 0.5, 0.999


class SamplingError(ValueError):
    """A sample cannot be started or ended (the message says why)."""


@dataclass(frozen=True)
class Targets:
    recall_target: float
    confidence: float


def relevant_outcomes(review, stage):
    """The reconciled outcomes at ``stage`` that count as relevant for the stopping test: at
    title/abstract an include, a maybe (it may still go on; counting it relevant can only delay a
    stop), or whatever passes; at full text only an include."""
    if Stage(stage) == Stage.TITLE_ABSTRACT:
        return sorted({*stages.passing_outcomes(review), Outcome.MAYBE})
    return [Outcome.INCLUDE]


def targets(review, stage):
    """The recall target and confidence set for ``stage`` of ``review`` (defaults 95%, 95%)."""
    row = (
        StoppingSettings.objects.filter(review=review, stage=Stage(stage))
        .values_list("recall_target", "confidence")
        .first()
    )
    return Targets(*row) if row else Targets(RECALL_TARGET, CONFIDENCE)


def check_targets(recall_target, confidence):
    """Errors (a list of sentences) for a recall target or confidence outside 50%-99.9%."""
    errors = []
    for name, value in (("Recall target", recall_target), ("Confidence", confidence)):
        if not LOWEST - 1e-12 <= value <= HIGHEST + 1e-12:
            errors.append(f"{name} must be between 50% and 99.9% (got {value:.2%}).")
    return errors


def set_targets(review, stage, *, recall_target, confidence, by):
    """Store the recall target and confidence for ``stage`` (fractions), audited. A sample already
    running keeps the ones it started with (they are part of what it was drawn for)."""
    stage = Stage(stage)
    errors = check_targets(recall_target, confidence)
    if errors:
        raise ValueError(" ".join(errors))
    with transaction.atomic():
        Review.objects.select_for_update().filter(pk=review.pk).values("pk").first()
        old = targets(review, stage)
        StoppingSettings.objects.update_or_create(
            review=review,
            stage=stage,
            defaults={
                "recall_target": recall_target,
                "confidence": confidence,
                "updated_by": by,
                "updated_at": timezone.now(),
            },
        )
        Event.objects.create(
            review=review,
            actor=by,
            kind=Event.Kind.SETTINGS,
            detail={
                "stage": stage.value,
                "stopping": "targets",
                "old": {"recall_target": old.recall_target, "confidence": old.confidence},
                "new": {"recall_target": recall_target, "confidence": confidence},
            },
        )


def open_sample(review, stage):
    """The random sample running at ``stage`` of ``review``, or None."""
    return RandomSample.objects.filter(review=review, stage=Stage(stage), ended_at__isnull=True).first()


def start_sample(review, stage, *, by):
    """Begin the random-sample phase at ``stage``: draw and store the permutation (audited).

    Under the review row's lock, so two owners starting at once make one sample (the second gets
    a SamplingError); the partial unique constraint backs that up.
    """
    stage = Stage(stage)
    with transaction.atomic():
        Review.objects.select_for_update().filter(pk=review.pk).values("pk").first()
        if open_sample(review, stage):
            raise SamplingError(f"A random sample is already running at {stage.label.lower()} screening.")
        in_stage = stages.in_stage(review, stage)
        remainder = list(in_stage.exclude(stages.decided_q(stage)).values_list("pk", flat=True))
        if not remainder:
            raise SamplingError(
                f"Every record at {stage.label.lower()} screening has been screened: there is nothing left to sample."
            )
        settled = in_stage.filter(stages.decided_q(stage)).count()
        chosen = targets(review, stage)
        seed = secrets.token_hex(16)
        try:
            with transaction.atomic():
                sample = RandomSample.objects.create(
                    review=review,
                    stage=stage,
                    started_by=by,
                    sampled_from=settled,
                    remainder=len(remainder),
                    seed=seed,
                    recall_target=chosen.recall_target,
                    confidence=chosen.confidence,
                )
        except IntegrityError as e:
            raise SamplingError(f"A random sample is already running at {stage.label.lower()} screening.") from e
        SampleRecord.objects.bulk_create(
            (
                SampleRecord(sample=sample, record_id=pk, position=i)
                for i, pk in enumerate(stopping.draw_permutation(remainder, seed), start=1)
            ),
            batch_size=5000,
        )
        Event.objects.create(
            review=review,
            actor=by,
            kind=Event.Kind.SETTINGS,
            detail={
                "stage": stage.value,
                "stopping": "sample started",
                "sample": sample.pk,
                "sampled_from": settled,
                "remainder": len(remainder),
                "seed": seed,
                "recall_target": chosen.recall_target,
                "confidence": chosen.confidence,
            },
        )
    return sample


def end_sample(review, stage, *, by):
    """End the random-sample phase at ``stage`` (audited): the queue goes back to each reviewer's
    order and the dashboard to the ranked test. The sample and its permutation are kept."""
    stage = Stage(stage)
    with transaction.atomic():
        Review.objects.select_for_update().filter(pk=review.pk).values("pk").first()
        sample = open_sample(review, stage)
        if sample is None:
            raise SamplingError(f"No random sample is running at {stage.label.lower()} screening.")
        progress = sample_progress(review, stage, sample)
        sample.ended_at, sample.ended_by = timezone.now(), by
        sample.save(update_fields=["ended_at", "ended_by"])
        Event.objects.create(
            review=review,
            actor=by,
            kind=Event.Kind.SETTINGS,
            detail={
                "stage": stage.value,
                "stopping": "sample ended",
                "sample": sample.pk,
                "sampled": progress.sampled,
                "relevant_in_sample": progress.relevant_in_sample,
                "recommended_stop": progress.advice.stop,
            },
        )
    return sample


@dataclass(frozen=True)
class SampleProgress:
    sample: RandomSample
    sampled: int  # the settled prefix of the permutation: the records the test uses
    relevant_in_sample: int
    settled_beyond: int  # settled records after the first unsettled one: they count once it is settled
    outside_settled: int  # settled records not in the permutation (screened before it, mostly)
    outside_waiting: int  # unsettled records not in the permutation (joined the stage after the start)
    advice: stopping.StopAdvice
    more_to_sample: int  # further sample records, all irrelevant, for the test to recommend stopping

    @property
    def remainder(self):
        return self.sample.remainder

    @property
    def left_in_remainder(self):
        return self.sample.remainder - self.sampled


def sample_progress(review, stage, sample):
    """Where ``sample`` stands: its settled prefix and the sample test on it.

    The test's labels: the settled records outside the permutation (every relevant record outside
    the remainder, once ``outside_waiting`` is 0), then the prefix; its population: those plus the
    remainder as drawn. Settled records beyond the prefix count as unscreened for the test (their
    relevant records are left out of "found": conservative, never in the test's favour). A record
    of the permutation that has since left the stage (marked a duplicate, or no longer sent on to
    full text) is settled as irrelevant: it is not a relevant record of the stage.
    """
    stage = Stage(stage)
    field = OUTCOME_FIELD[stage]
    relevant = {str(o) for o in relevant_outcomes(review, stage)}
    unsettled = {str(o) for o in UNRECONCILED}
    in_stage = stages.in_stage(review, stage)
    taking_part = set(in_stage.filter(pk__in=sample.records.values("record")).values_list("pk", flat=True))
    rows = sample.records.order_by("position").values_list("record_id", f"record__{field}")
    prefix, beyond, broken = [], 0, False
    for record_id, outcome in rows.iterator(chunk_size=5000):
        if record_id not in taking_part:
            outcome = None  # left the stage: settled, irrelevant
        elif outcome in unsettled:
            broken = True
            continue
        if broken:
            beyond += 1
        else:
            prefix.append(int(outcome in relevant))
    outside = in_stage.exclude(pk__in=sample.records.values("record"))
    outside_labels = [int(o in relevant) for o in outside.filter(stages.decided_q(stage)).values_list(field, flat=True)]
    outside_waiting = outside.exclude(stages.decided_q(stage)).count()
    labels = outside_labels + prefix
    n_total = len(outside_labels) + sample.remainder
    advice = stopping.recommend(
        labels,
        n_total,
        recall_target=sample.recall_target,
        confidence=sample.confidence,
        sampled_from=len(outside_labels),
    )
    more = stopping.more_to_sample(
        labels,
        n_total,
        sampled_from=len(outside_labels),
        recall_target=sample.recall_target,
        confidence=sample.confidence,
    )
    if outside_waiting and advice.stop:
        # Records the sample does not cover are still unscreened: the test says nothing about them.
        advice = dataclasses.replace(advice, stop=False)
    return SampleProgress(
        sample=sample,
        sampled=len(prefix),
        relevant_in_sample=sum(prefix),
        settled_beyond=beyond,
        outside_settled=len(outside_labels),
        outside_waiting=outside_waiting,
        advice=advice,
        more_to_sample=more,
    )
