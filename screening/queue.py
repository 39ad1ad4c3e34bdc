"""Who screens what next.

Every view that needs "the next record for this reviewer" comes here, so that ranking
(prioritised screening) and the hand-out of records under dual screening live in one place.

Handing out a record writes a Claim that holds one of its open votes for CLAIM_TTL. The claim is
taken in a transaction that locks the record row (PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED;
SQLite: the write lock taken at BEGIN IMMEDIATE), and re-counts votes and claims after the lock,
so two reviewers asking at the same moment are never both given a record that needs one more vote.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Mod
from django.utils import timezone

from review.models import Membership, Record
from screening import retrain, sampling, stages, status
from screening.models import (
    Assignment,
    Claim,
    Decision,
    HandOut,
    HandOutOrder,
    OrderPreference,
    RecordScore,
    SampleRecord,
    ScreeningOrder,
)

CLAIM_TTL = timedelta(minutes=20)
# How many candidates one hand-out looks at before giving up on rows others hold locked.
CANDIDATES = 20
# The first window of ranks a ranked hand-out looks at (then 4x, 16x... until one has a free record).
RANK_WINDOW = 100
# A reviewer holds at most this many records at a stage: the card on screen and the next one,
# prefetched by the page so that a decision shows it at once.
HOLD = 2


def _current_votes(stage):
    return Decision.objects.filter(record=OuterRef("pk"), stage=stage, is_current=True)


def _vote_count(stage):
    counted = _current_votes(stage).order_by().values("record").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def _still_open(stage, needed):
    """A Q for records that have fewer than ``needed`` current votes."""
    if needed <= 1:
        # The common case (single screening) needs no per-row count.
        return ~Exists(_current_votes(stage))
    return Q(votes__lt=needed)


def order_for(review, user, stage):
    """The order ``user`` screens ``review`` in: their choice, else "most likely relevant first"
    once the review has its question or criteria, or a relevant and an irrelevant label."""
    chosen = OrderPreference.objects.filter(review=review, user=user).values_list("order", flat=True).first()
    if chosen:
        return ScreeningOrder(chosen)
    if retrain.has_prior_knowledge(review, stage):
        return ScreeningOrder.RANKED
    return ScreeningOrder.IMPORT


@dataclass(frozen=True)
class Plan:
    """What decides ``user``'s hand-outs at a stage, read once per request: the random sample
    running (or None), the order they screen in, and the latest finished ranking run (or None)."""

    sample: object
    order: ScreeningOrder
    run: object


def plan_for(review, user, stage):
    return Plan(
        sample=sampling.open_sample(review, stage),
        order=order_for(review, user, stage),
        run=retrain.latest_run(review, stage),
    )


def set_order(review, user, order):
    OrderPreference.objects.update_or_create(review=review, user=user, defaults={"order": ScreeningOrder(order)})


# A fixed permutation of record ids per reviewer: (pk * M) mod P with P prime and a multiplier M
# per reviewer, derived from A (from the golden ratio: consecutive ids land far apart).
_PERMUTE_P = 2_147_483_647
_PERMUTE_A = 1_327_217_885


def _spreads(multiplier, bound=8, terms=6):
    """True when M/P has small leading partial quotients, like the golden ratio's: then no run of
    consecutive ids keeps its import order for more than about ``bound`` records. (A small M, say
    P/29, would keep runs of 29 ids in import order.)"""
    a, b = multiplier, _PERMUTE_P
    for _ in range(terms):
        if a == 0:
            return True
        q, r = divmod(b, a)
        if q > bound:
            return False
        a, b = r, a
    return True


def _multiplier(user):
    multiplier = _PERMUTE_A * (user.pk % (_PERMUTE_P - 1) + 1) % _PERMUTE_P
    # Deterministic per reviewer; about one multiplier in three passes, so this loops a few times.
    while not _spreads(multiplier):
        multiplier = multiplier * _PERMUTE_A % _PERMUTE_P
    return multiplier


def _shuffle_key(user):
    return ExpressionWrapper(Mod(F("pk") % _PERMUTE_P * _multiplier(user), _PERMUTE_P), IntegerField())


def _order(records, review, user, stage, plan=None):
    """The one place that decides screening order.

    While a random sample runs at ``stage`` (screening/sampling.py), every reviewer gets the
    sample's permutation, whatever order they chose: first the records outside it (they joined
    the stage after it began, and must all be screened before the sample test can stop), in
    import order, then the sample's records by position.
    Otherwise, ranked: the latest finished model's ranks, records it has not scored (imported
    since) after them in import order. Random: a permutation fixed per reviewer. Import: record order.
    """
    plan = plan or plan_for(review, user, stage)
    if plan.sample is not None:
        position = SampleRecord.objects.filter(sample=plan.sample, record=OuterRef("pk")).values("position")[:1]
        records = records.annotate(sample_position=Subquery(position, output_field=IntegerField()))
        return records.order_by(F("sample_position").asc(nulls_first=True), "pk")
    order, run = plan.order, plan.run
    if order == ScreeningOrder.RANKED:
        if run is None:
            return records.order_by("pk")
        rank = RecordScore.objects.filter(run=run, record=OuterRef("pk")).values("rank")[:1]
        records = records.annotate(model_rank=Subquery(rank, output_field=IntegerField()))
        return records.order_by(F("model_rank").asc(nulls_last=True), "pk")
    if order == ScreeningOrder.RANDOM:
        return records.annotate(shuffle=_shuffle_key(user)).order_by("shuffle", "pk")
    return records.order_by("pk")


def pending(review, user, stage, plan=None):
    """Records that still need ``user``'s vote at ``stage``, in screening order."""
    needed = review.reviewers_needed(stage)
    records = stages.in_stage(review, stage).exclude(Exists(_current_votes(stage).filter(reviewer=user)))
    if needed > 1:
        records = records.annotate(votes=_vote_count(stage))
    return _order(records.filter(_still_open(stage, needed)), review, user, stage, plan)


def _active_claims(stage, now):
    return Claim.objects.filter(record=OuterRef("pk"), stage=stage, expires_at__gt=now)


def _claim_count(stage, now, user):
    counted = (
        _active_claims(stage, now)
        .exclude(reviewer=user)
        .order_by()
        .values("record")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def _available(review, user, stage, now, plan=None):
    """Pending records whose open votes are not all held by other reviewers' live claims."""
    needed = review.reviewers_needed(stage)
    records = pending(review, user, stage, plan)
    if needed <= 1:
        return records.exclude(Exists(_active_claims(stage, now).exclude(reviewer=user)))
    # ``votes`` is annotated by pending() when more than one vote is needed.
    return records.annotate(held=_claim_count(stage, now, user)).filter(votes__lt=Value(needed) - F("held"))


def _still_free(records, user, stage, now, needed):
    """The ``records`` still free for ``user``, re-counted after the row lock (a claim committed a
    moment ago is visible now): not voted on by them, and with fewer votes and others' live claims
    than ``needed``. One query for all of them."""
    if not records:
        return []
    votes = Decision.objects.filter(record=OuterRef("pk"), stage=stage, is_current=True)
    counts = (
        Record.objects.filter(pk__in=[record.pk for record in records])
        .annotate(
            mine=Exists(votes.filter(reviewer=user)),
            taken=Coalesce(
                Subquery(votes.order_by().values("record").annotate(n=Count("pk")).values("n")),
                Value(0),
            )
            + _claim_count(stage, now, user),
        )
        .values_list("pk", "mine", "taken")
    )
    free = {pk for pk, mine, taken in counts if not mine and taken < needed}
    return [record for record in records if record.pk in free]


def next_record(review, user, stage, plan=None):
    """The next record ``user`` should screen at ``stage`` (claimed for them), or None.
    ``plan``: plan_for(review, user, stage), when the caller has read it already."""
    records = next_records(review, user, stage, plan, count=1)
    return records[0] if records else None


def next_records(review, user, stage, plan=None, *, count=HOLD):
    """Up to ``count`` (at most HOLD) records ``user`` should screen next at ``stage``, in order,
    each claimed for them: the card to show and the one the page prefetches after it.

    Records they already hold come first, oldest claim first (the same cards again on reload,
    until decided or the claim lapses); then new ones, claimed and logged as hand-outs. A reviewer
    never holds more than HOLD live claims at a stage: a claim that lapsed, or whose record no
    longer needs their vote, is dropped when a new one is made.
    """
    count = min(count, HOLD)
    with transaction.atomic():
        # One hand-out at a time per reviewer and review (two tabs, a double reload): the second
        # waits, then finds the claims the first made and shows the same records.
        Membership.objects.select_for_update().filter(review=review, user=user).values("pk").first()
        now = timezone.now()
        plan = plan or plan_for(review, user, stage)
        mine = Claim.objects.filter(reviewer=user, stage=stage, record__review=review)
        # What they hold that still waits for their vote (ranked order: with the record's rank).
        live = mine.filter(expires_at__gt=now)
        kept = list(
            pending(review, user, stage, plan)
            .filter(pk__in=live.values("record_id"))
            .annotate(claim=Subquery(live.filter(record=OuterRef("pk")).values("pk")[:1]))
            .order_by("claim")[:HOLD]
        )
        if len(kept) >= count:
            return kept[:count]
        mine.exclude(record_id__in=[record.pk for record in kept]).delete()
        needed = review.reviewers_needed(stage)
        chosen = _still_free(_candidates(review, user, stage, now, plan, skip=kept), user, stage, now, needed)
        chosen = chosen[: count - len(kept)]
        if chosen:
            Claim.objects.bulk_create(
                Claim(record=record, reviewer=user, stage=stage, expires_at=now + CLAIM_TTL) for record in chosen
            )
            _record_hand_outs(chosen, user, stage, now, plan)
    # Empty when everything left is held by others for now (or nothing is left).
    return kept + chosen


def _lock(records):
    # PostgreSQL: rows another hand-out holds locked are skipped (SQLite locks the whole file).
    if connection.features.has_select_for_update_skip_locked:
        return records.select_for_update(skip_locked=True, of=("self",))
    return records


def _candidates(review, user, stage, now, plan, skip=()):
    """Up to CANDIDATES available records in screening order, locked (``skip``: records the
    reviewer holds already).

    In ranked order the walk follows the run's (run, rank) index in growing windows and checks
    only the records in each window, so the cost follows how far the top ranks are taken, not the
    size of the review (the one ordered query over every pending record took seconds at 100,000).
    Each window is one query: its free records, in rank order, locked. Records the run did not
    score (imported since) come after, as in ``_order``.
    """
    run = plan.run
    available = _available(review, user, stage, now, plan)
    if skip:
        available = available.exclude(pk__in=[record.pk for record in skip])
    # Records the owner assigned to this reviewer come first, in their usual order; not while a
    # random sample runs (its order is what makes the stopping test valid).
    if plan.sample is None:
        assigned = Assignment.objects.filter(record__review=review, reviewer=user, stage=stage)
        found = list(_lock(available.filter(pk__in=assigned.values("record_id")))[:CANDIDATES])
        if found:
            return found
    if run is None or plan.sample is not None or plan.order != ScreeningOrder.RANKED:
        return list(_lock(available)[:CANDIDATES])
    # ``model_rank`` is annotated by _order() in ranked order; the score goes to the hand-out log.
    score = RecordScore.objects.filter(run=run, record=OuterRef("pk")).values("score")[:1]
    available = available.annotate(model_score=Subquery(score))
    start, size = 0, RANK_WINDOW
    while start < run.scored:
        window = RecordScore.objects.filter(run=run, rank__gt=start, rank__lte=start + size).values("record_id")
        found = list(_lock(available.filter(pk__in=window).order_by("model_rank", "pk"))[:CANDIDATES])
        if found:
            return found
        start, size = start + size, size * 4
    unscored = available.exclude(Exists(RecordScore.objects.filter(run=run, record=OuterRef("pk"))))
    return list(_lock(unscored.order_by("pk"))[:CANDIDATES])


def _record_hand_outs(records, user, stage, now, plan):
    """What the reviewer was shown and why: the order, and in ranked order the model version,
    the record's rank and its score (for the review's methods: what the model showed whom). In a
    random sample: order "sample" and the record's position in the permutation as its rank (none
    for a record outside the sample, handed out before it). Ranks and scores come annotated on the
    records where the hand-out read them (``model_rank``, ``model_score``), else one query."""
    hand_outs = [HandOut(record=record, reviewer=user, stage=stage, handed_at=now) for record in records]
    if plan.sample is not None:
        positions = dict(
            SampleRecord.objects.filter(sample=plan.sample, record__in=records).values_list("record_id", "position")
        )
        for hand_out in hand_outs:
            hand_out.order, hand_out.rank = HandOutOrder.SAMPLE, positions.get(hand_out.record_id)
    elif plan.order == ScreeningOrder.RANKED and (run := plan.run):
        if all(hasattr(record, "model_score") for record in records):
            scored = {record.pk: (record.model_rank, record.model_score) for record in records}
        else:
            scored = {
                pk: (rank, score)
                for pk, rank, score in RecordScore.objects.filter(run=run, record__in=records).values_list(
                    "record_id", "rank", "score"
                )
            }
        for hand_out in hand_outs:
            hand_out.order, hand_out.run, hand_out.model_version = plan.order, run, run.version
            hand_out.rank, hand_out.score = scored.get(hand_out.record_id, (None, None))
    else:
        for hand_out in hand_outs:
            hand_out.order = plan.order
    HandOut.objects.bulk_create(hand_outs)


def release_held(review, user, stage):
    """Drop the claims ``user`` holds at ``stage`` (they changed the order they screen in)."""
    Claim.objects.filter(reviewer=user, stage=stage, record__review=review).delete()


def release(record, user, stage):
    """Drop ``user``'s claim on ``record`` (their vote is in)."""
    Claim.objects.filter(record=record, reviewer=user, stage=stage).delete()


def progress(review, user, stage):
    """Counts for the progress bar, in two aggregate queries.

    mine_done: records at this stage with a current vote by ``user``; mine_total: that plus the
    records still waiting for their vote; team_done: records decided (reconciled: neither pending
    nor an open conflict, so that a conflict reads like a record still waiting for a vote);
    total: records taking part in the stage.
    """
    needed = max(review.reviewers_needed(stage), 1)
    totals = stages.in_stage(review, stage).aggregate(**status.team_counts(stage))
    total = totals["total"]
    # Driven from the votes (far fewer rows than records early on), grouped per record.
    per_record = (
        Decision.objects.filter(
            stages.in_stage_q(review, stage, prefix="record__"), record__review=review, stage=stage, is_current=True
        )
        .values("record")
        .annotate(votes=Count("pk"), mine=Max(Case(When(reviewer=user, then=1), default=0)))
    )
    counts = per_record.aggregate(
        mine_done=Count("record", filter=Q(mine=1)),
        full_without_me=Count("record", filter=Q(votes__gte=needed, mine=0)),
    )
    counts = {key: value or 0 for key, value in counts.items()}
    counts["total"] = total
    counts["team_done"] = totals["decided"]
    counts["mine_left"] = total - counts["mine_done"] - counts["full_without_me"]
    mine_total = counts["mine_done"] + counts["mine_left"]
    return {
        "mine_done": counts["mine_done"],
        "mine_total": mine_total,
        "team_done": counts["team_done"],
        "total": counts["total"],
        "mine_left": counts["mine_left"],
        "team_left": counts["total"] - counts["team_done"],
        "percent": round(100 * counts["mine_done"] / mine_total) if mine_total else 100,
        "team_percent": round(100 * counts["team_done"] / counts["total"]) if counts["total"] else 100,
    }


def my_decisions(review, user, stage):
    """``user``'s current votes at ``stage``, newest first (for going back and changing one)."""
    return (
        Decision.objects.filter(record__review=review, reviewer=user, stage=stage, is_current=True)
        .select_related("record")
        .order_by("-created_at", "-pk")
    )


def previous_decision(review, user, stage, *, before=None):
    """``user``'s current vote made just before ``before`` (a Decision), or their latest one."""
    decisions = my_decisions(review, user, stage)
    if before is not None:
        decisions = decisions.filter(
            Q(created_at__lt=before.created_at) | Q(created_at=before.created_at, pk__lt=before.pk)
        )
    return decisions.first()
