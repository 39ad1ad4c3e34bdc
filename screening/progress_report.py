"""Screening progress against the stopping rule: per stage, the reconciled records in screening
order, the buscar test's advice on them (screening/stopping.py), the recall curve, and a methods
paragraph for the paper. A read-only report, the same for every member of the review.

Blinding (screening/visibility.py): only reconciled outcomes enter, and a reconciled record's
votes are open to every member, so nothing here changes when a reviewer votes on a record that
still waits for another vote, or disagrees with one. Records still pending or in conflict count
as unscreened.

Order: records are taken in the order of their first vote at the stage (ties by pk): the order
the team met them in, which is what the test needs. Relevant: the record passes the stage (at
title/abstract, a reconciled "maybe" counts as relevant even where maybe does not count as
include: it may still go on, and counting it relevant can only delay a stop). At full text only
an include is relevant; "report not retrieved" counts as irrelevant.
"""

import hashlib
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from django.core.cache import cache
from django.db.models import F, Min, OuterRef, Subquery
from django.db.models.functions import Coalesce

from review.models import Record, Stage
from screening import stages, stopping
from screening.models import Decision, Resolution
from screening.retrain import RETRAIN_EVERY, criteria_text
from screening.stages import OUTCOME_FIELD

Outcome = Record.Outcome
RECALL_TARGET = 0.95
CONFIDENCE = 0.95
# Where the rule first said stop is looked for at about this many points along the order: each
# look costs a buscar test (tens of ms on thousands of records), and the dashboard must stay quick.
CURVE_CHECKS = 50


def relevant_outcomes(review, stage):
    """The reconciled outcomes at ``stage`` that count as relevant for the stopping test."""
    if Stage(stage) == Stage.TITLE_ABSTRACT:
        return sorted({*stages.passing_outcomes(review), Outcome.MAYBE})
    return [Outcome.INCLUDE]


def screened_labels(review, stage):
    """1 (relevant) or 0 for each reconciled record of ``stage``, in the order of its first vote."""
    stage = Stage(stage)
    first_vote = Decision.objects.filter(record=OuterRef("pk"), stage=stage).order_by().values("record")
    first_resolution = Resolution.objects.filter(record=OuterRef("pk"), stage=stage).order_by().values("record")
    records = (
        stages.in_stage(review, stage)
        .filter(stages.decided_q(stage))
        .annotate(
            met_at=Coalesce(
                Subquery(first_vote.annotate(t=Min("created_at")).values("t")[:1]),
                Subquery(first_resolution.annotate(t=Min("created_at")).values("t")[:1]),
                F("created_at"),
            )
        )
        .order_by("met_at", "pk")
    )
    relevant = set(relevant_outcomes(review, stage))
    return [int(outcome in relevant) for outcome in records.values_list(OUTCOME_FIELD[stage], flat=True)]


def curve_points(labels):
    """(records screened, relevant found) at the corners of the step curve: the start, just before
    and at each relevant record, and the end (flat between relevant records, as screened)."""
    points, found = [(0, 0)], 0
    for i, label in enumerate(labels, start=1):
        if label:
            if points[-1][0] < i - 1:
                points.append((i - 1, found))
            found += 1
            points.append((i, found))
    if labels and points[-1][0] != len(labels):
        points.append((len(labels), found))
    return points


def irrelevant_in_a_row(labels):
    """How many irrelevant records were screened since the last relevant one (a heuristic only)."""
    run = 0
    for label in reversed(labels):
        if label:
            break
        run += 1
    return run


@dataclass(frozen=True)
class StageProgress:
    stage: Stage
    labels: tuple
    n_total: int
    advice: stopping.StopAdvice | None  # None when the stage has no records
    # Records screened when the rule first said stop (checked every ``checked_every``); only looked
    # for while it says stop now (an earlier stop that a later relevant record undid is not shown).
    stop_at: int | None
    checked_every: int
    # How many of the rest, drawn at random and all irrelevant, would let the sample test stop. Not
    # shown yet: the panel runs the ranked test only (no record of a random-sample phase exists).
    to_sample: int

    @property
    def label(self):
        return self.stage.label

    @property
    def screened(self):
        return len(self.labels)

    @property
    def relevant_found(self):
        return sum(self.labels)

    @property
    def unscreened(self):
        return self.n_total - self.screened

    @property
    def irrelevant_in_a_row(self):
        return irrelevant_in_a_row(self.labels)

    @property
    def confidence_percent(self):
        return round(100 * self.advice.confidence) if self.advice else None

    @property
    def estimated_recall_percent(self):
        recall = self.advice.estimated_recall if self.advice else None
        return None if recall is None else round(100 * recall, 1)

    @property
    def recommendation(self):
        """The sentence the dashboard shows (and the methods paragraph builds on)."""
        a = self.advice
        if a is None:
            return "No records at this stage yet."
        if not self.unscreened:
            return "Every record at this stage has been screened."
        target = f"{a.recall_target:.0%} recall"
        if a.stop:
            return (
                f"Stopping is recommended: the test rejects, at {a.confidence:.0%} confidence, that fewer than "
                f"{target} has been reached (p = {a.p_value:.3f}); the {self.unscreened} records left may stay "
                "unscreened."
            )
        return (
            f"Keep screening: the test cannot yet show, at {a.confidence:.0%} confidence, that {target} has been "
            f"reached (p = {a.p_value:.3f})."
        )


def _first_stop(labels, n_total, recall_target, confidence, every):
    """Records screened when the rule first said stop (checked every ``every``), cached by the
    labels themselves: they change only when an outcome does."""
    digest = hashlib.sha256(bytes(labels)).hexdigest()
    key = f"sieve-first-stop:{digest}:{len(labels)}:{n_total}:{recall_target}:{confidence}:{every}"
    found = cache.get(key)
    if found is None:
        at = stopping.simulate_stop_at(labels, n_total, recall_target=recall_target, confidence=confidence, every=every)
        found = -1 if at is None else at
        cache.set(key, found, timeout=24 * 3600)
    return None if found < 0 else found


def stage_progress(review, stage, *, recall_target=RECALL_TARGET, confidence=CONFIDENCE):
    stage = Stage(stage)
    labels = screened_labels(review, stage)
    n_total = stages.in_stage(review, stage).count()
    if not n_total:
        return StageProgress(stage, (), 0, None, None, 1, 0)
    advice = stopping.recommend(labels, n_total, recall_target=recall_target, confidence=confidence)
    every = max(1, len(labels) // CURVE_CHECKS)
    stop_at = _first_stop(labels, n_total, recall_target, confidence, every) if advice.stop else None
    to_sample = stopping.records_to_sample(
        sum(labels), n_total - len(labels), recall_target=recall_target, confidence=confidence
    )
    return StageProgress(stage, tuple(labels), n_total, advice, stop_at, every, to_sample)


def explanation(recall_target=RECALL_TARGET, confidence=CONFIDENCE):
    """The one sentence explaining the rule, with what it assumes."""
    return stopping.explain(recall_target, confidence, stopping.RANKED)


def review_progress(review):
    """[StageProgress] for title/abstract and full text."""
    return [stage_progress(review, stage) for stage in Stage]


# The recall curve ------------------------------------------------------------------------------

WIDTH, HEIGHT = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 40, 56
FONT = "DejaVu Sans, Verdana, Arial, Helvetica, sans-serif"
CURVE, RANDOM, STOP, GRID = "#1f5fa8", "#777777", "#b3261e", "#dddddd"


def _ticks(high, count=5):
    """Round tick values from 0 to at least ``high``."""
    if high <= 0:
        return [0, 1]
    magnitude = 1
    while magnitude * 10 <= high / count:
        magnitude *= 10
    for base in (1, 2, 5, 10):
        step = base * magnitude
        if high / step <= count:
            break
    top = -(-high // step) * step
    return list(range(0, top + 1, step))


def recall_curve_svg(progress, *, title=""):
    """The recall curve of one stage as a standalone SVG document (all text escaped, no style or
    script: presentation attributes only, so the page's CSP holds)."""
    n_total = max(progress.n_total, 1)
    found = progress.relevant_found
    advice = progress.advice
    estimated_total = found + (advice.estimated_remaining if advice else 0)
    y_high = max(found + (advice.interval[1] if advice else 0), 1)
    x_ticks, y_ticks = _ticks(n_total), _ticks(y_high)
    x_max, y_max = x_ticks[-1] or 1, y_ticks[-1] or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(v):
        return round(LEFT + plot_w * v / x_max, 1)

    def y(v):
        return round(TOP + plot_h * (1 - v / y_max), 1)

    def text(px, py, content, *, anchor="middle", size=12, fill="#000000", extra=""):
        return (
            f'<text x="{px}" y="{py}" text-anchor="{anchor}" font-family={quoteattr(FONT)} font-size="{size}" '
            f'fill="{fill}"{extra}>{escape(content)}</text>'
        )

    heading = f"Recall curve, {progress.label.lower()} screening" + (f": {title}" if title else "")
    ids = (f"curve-title-{progress.stage.value}", f"curve-desc-{progress.stage.value}")
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        # Ids per stage: the dashboard shows both stages' curves on one page.
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{ids[0]} {ids[1]}">',
        f'<title id="{ids[0]}">{escape(heading)}</title>',
        f'<desc id="{ids[1]}">{escape(_describe(progress))}</desc>',
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        text(WIDTH / 2, 22, heading[:110], size=14),
    ]
    for v in x_ticks:
        out.append(f'<line x1="{x(v)}" y1="{TOP}" x2="{x(v)}" y2="{TOP + plot_h}" stroke="{GRID}"/>')
        out.append(text(x(v), TOP + plot_h + 16, str(v), size=11))
    for v in y_ticks:
        out.append(f'<line x1="{LEFT}" y1="{y(v)}" x2="{LEFT + plot_w}" y2="{y(v)}" stroke="{GRID}"/>')
        out.append(text(LEFT - 6, y(v) + 4, str(v), anchor="end", size=11))
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#000000"/>')
    out.append(text(LEFT + plot_w / 2, HEIGHT - 14, "Records screened"))
    out.append(
        text(16, TOP + plot_h / 2, "Relevant records found", extra=f' transform="rotate(-90 16 {TOP + plot_h / 2})"')
    )
    if estimated_total:
        # A random order finds relevant records at a steady rate: the estimated total over every record.
        out.append(
            f'<line class="random-order" x1="{x(0)}" y1="{y(0)}" x2="{x(n_total)}" y2="{y(estimated_total)}" '
            f'stroke="{RANDOM}" stroke-dasharray="6 4"/>'
        )
    if progress.stop_at is not None:
        sx = x(progress.stop_at)
        out.append(
            f'<line class="stop" x1="{sx}" y1="{TOP}" x2="{sx}" y2="{TOP + plot_h}" stroke="{STOP}" '
            'stroke-dasharray="2 3"/>'
        )
        out.append(text(sx + 4, TOP + 14, f"stop at {progress.stop_at}", anchor="start", size=11, fill=STOP))
    points = " ".join(f"{x(a)},{y(b)}" for a, b in curve_points(progress.labels))
    out.append(f'<polyline class="found" points="{points}" fill="none" stroke="{CURVE}" stroke-width="2"/>')
    legend_y = HEIGHT - 34
    out.append(
        f'<line x1="{LEFT}" y1="{legend_y}" x2="{LEFT + 24}" y2="{legend_y}" stroke="{CURVE}" stroke-width="2"/>'
    )
    out.append(text(LEFT + 30, legend_y + 4, "found in screening order", anchor="start", size=11))
    rx = LEFT + 220
    out.append(
        f'<line x1="{rx}" y1="{legend_y}" x2="{rx + 24}" y2="{legend_y}" stroke="{RANDOM}" stroke-dasharray="6 4"/>'
    )
    out.append(text(rx + 30, legend_y + 4, "random order (estimated total)", anchor="start", size=11))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _describe(progress):
    a = progress.advice
    if a is None:
        return "No records at this stage yet."
    every = f" (checked every {progress.checked_every} records)" if progress.checked_every > 1 else ""
    stop = f" The stopping rule first said stop after {progress.stop_at} records{every}." if progress.stop_at else ""
    return (
        f"{progress.relevant_found} relevant records found in {progress.screened} of {progress.n_total} screened; "
        f"an estimated {a.estimated_remaining} remain.{stop}"
    )


def recall_curve_png(svg, *, scale=2.0):
    import cairosvg

    return cairosvg.svg2png(bytestring=svg.encode("utf-8"), scale=scale)


# The methods paragraph -------------------------------------------------------------------------


def methods_paragraph(review, progresses=None):
    """A draft paragraph for the paper's methods: model, prior knowledge, retraining, stopping rule,
    records screened and the recall estimate, per stage."""
    progresses = review_progress(review) if progresses is None else progresses
    prior = (
        "The review's research question and eligibility criteria were given to the model as prior knowledge, "
        "as an extra relevant document whose weight fades as relevant records are found."
        if criteria_text(review).strip()
        else "No research question or eligibility criteria were given to the model as prior knowledge."
    )
    parts = [
        "Sieve offered records for screening in order of predicted relevance (reviewers could also choose "
        "random or import order) from a model that reproduces ASReview LAB's default "
        "(TF-IDF word unigrams and bigrams with a linear support vector machine, relevant records weighted up) "
        "and learns from the review team's reconciled decisions and single votes; the model was retrained "
        f"in the background after every {RETRAIN_EVERY} screening decisions. {prior}",
    ]
    for p in progresses:
        # A stage closed on the stopping rule: its sentence, from the figures at closure (screening/closing.py).
        from screening import closing  # closing builds on this module: imported here, not at the top

        if closed := closing.methods_sentence(review, p.stage):
            parts.append(closed)
            continue
        if p.advice is None:
            continue
        a = p.advice
        share = 100 * p.screened / p.n_total
        low, high = a.interval
        parts.append(
            f"At {p.label.lower()} screening, {p.screened} of {p.n_total} records ({share:.0f}%) were screened "
            f"and {p.relevant_found} relevant records found. Stopping was assessed with the "
            "hypergeometric test of Callaghan and Müller-Hansen (2020) at a recall target of "
            f"{a.recall_target:.0%} and {a.confidence:.0%} confidence, which assumes the ranking placed the "
            "unscreened records no earlier than a random order would; "
            + (
                f"it recommended stopping (p = {a.p_value:.3f})"
                if a.stop
                else f"it had not recommended stopping (p = {a.p_value:.3f})"
            )
            + f". An estimated {a.estimated_remaining} relevant records (at most {high} at "
            f"{a.confidence:.0%} confidence{'' if not low else f', at least {low}'}) remain unscreened"
            + (
                f", an estimated recall of {p.estimated_recall_percent}%."
                if p.estimated_recall_percent is not None
                else "."
            )
        )
    return "\n\n".join(parts) + "\n"
