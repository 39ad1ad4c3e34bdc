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
an include is relevant; "report not retrieved" counts as irrelevant (the rule:
screening/sampling.py ``relevant_outcomes``).

Targets: the recall target and confidence an owner set for the stage (screening/sampling.py).
While a random sample runs at the stage, its test (no assumption about the ranking) is the
advice, and the ranked test is shown beside it; the sample too counts reconciled records only.
"""

import hashlib
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from django.core.cache import cache
from django.db.models import F, Min, OuterRef, Subquery
from django.db.models.functions import Coalesce

from review.models import Record, Stage
from screening import sampling, stages, status, stopping
from screening.models import Decision, Resolution
from screening.retrain import RETRAIN_EVERY, criteria_text
from screening.stages import OUTCOME_FIELD

Outcome = Record.Outcome
RECALL_TARGET = sampling.RECALL_TARGET
CONFIDENCE = sampling.CONFIDENCE
# Where the rule first said stop is looked for at about this many points along the order: each
# look costs a buscar test (tens of ms on thousands of records), and the dashboard must stay quick.
CURVE_CHECKS = 50


relevant_outcomes = sampling.relevant_outcomes
percent = stopping.percent


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


def suggest_sample(labels, n_total):
    """Whether to suggest starting the random-sample phase now: the ranked order has stalled (see
    bench/stopping.py for how the rule was chosen and what it leaves). When the sample starts
    changes only how much it leaves unscreened, never its guarantee: the sample is drawn from
    whatever is left at that moment."""
    return stopping.ranked_phase_stalled(labels, n_total)


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
    # How many of the rest, drawn at random and all irrelevant, would let the sample test stop if a
    # random sample began now (while one runs: how many more of it).
    to_sample: int | None
    # The ranked test (buscar, bias 1) on every settled record in screening order, and the random
    # sample running at this stage (None: none). ``advice`` is the sample test's while one runs.
    ranked_advice: stopping.StopAdvice | None = None
    sample: sampling.SampleProgress | None = None
    settings: sampling.Targets = sampling.Targets(RECALL_TARGET, CONFIDENCE)  # as set for the stage

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
    def target_percent(self):
        return percent(self.settings.recall_target).removesuffix("%")

    @property
    def setting_confidence_percent(self):
        return percent(self.settings.confidence).removesuffix("%")

    @property
    def suggest_sample(self):
        """Whether the dashboard suggests checking with a random sample now (see ``suggest_sample``)."""
        if self.sample is not None or not self.unscreened or self.advice is None:
            return False
        return suggest_sample(self.labels, self.n_total)

    @property
    def confidence_percent(self):
        """The confidence as a number of percent, "95" or "99.5"."""
        return percent(self.advice.confidence).removesuffix("%") if self.advice else None

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
        target = f"{percent(a.recall_target)} recall"
        confidence = percent(a.confidence)
        if self.sample is not None:
            s = self.sample
            if s.outside_waiting:
                return (
                    f"Keep screening: {s.outside_waiting} records joined this stage after the random sample began; "
                    "the sample says nothing about them, so they must be screened before it can recommend stopping."
                )
            if a.stop:
                return (
                    f"Stopping is recommended: the random sample of {s.sampled} records rejects, at {confidence} "
                    f"confidence, that fewer than {target} has been reached (p = {a.p_value:.3f}); the "
                    f"{self.unscreened} records left may stay unscreened."
                )
            more = (
                f"{s.more_to_sample} more sample records, if all irrelevant, would let it recommend stopping"
                if s.more_to_sample is not None
                else "the rest of the sample must be screened"
            )
            return (
                f"Keep screening the random sample: it cannot yet show, at {confidence} confidence, that "
                f"{target} has been reached (p = {a.p_value:.3f}); {more}."
            )
        if a.stop:
            return (
                f"Stopping is recommended: the test rejects, at {confidence} confidence, that fewer than "
                f"{target} has been reached (p = {a.p_value:.3f}); the {self.unscreened} records left may stay "
                "unscreened."
            )
        return (
            f"Keep screening: the test cannot yet show, at {confidence} confidence, that {target} has been "
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


def stage_progress(review, stage, *, recall_target=None, confidence=None):
    """Where ``stage`` stands against the stopping rule. The recall target and confidence default
    to those set for the stage (screening/sampling.py ``targets``); a running random sample uses
    the ones it began with, and its test is then the advice."""
    stage = Stage(stage)
    chosen = sampling.targets(review, stage)
    recall_target = chosen.recall_target if recall_target is None else recall_target
    confidence = chosen.confidence if confidence is None else confidence
    labels = screened_labels(review, stage)
    # The same "of M" as the dashboard's and the screening page's figures (status.team_counts).
    n_total = stages.in_stage(review, stage).aggregate(**status.team_counts(stage))["total"]
    if not n_total:
        return StageProgress(stage, (), 0, None, None, 1, 0)
    ranked = stopping.recommend(labels, n_total, recall_target=recall_target, confidence=confidence)
    every = max(1, len(labels) // CURVE_CHECKS)
    stop_at = _first_stop(labels, n_total, recall_target, confidence, every) if ranked.stop else None
    open_sample = sampling.open_sample(review, stage)
    sample = sampling.sample_progress(review, stage, open_sample) if open_sample else None
    if sample is None:
        advice = ranked
        to_sample = stopping.records_to_sample(
            sum(labels), n_total - len(labels), recall_target=recall_target, confidence=confidence
        )
    else:
        advice, to_sample = sample.advice, sample.more_to_sample
    return StageProgress(stage, tuple(labels), n_total, advice, stop_at, every, to_sample, ranked, sample, chosen)


def explanation(recall_target=RECALL_TARGET, confidence=CONFIDENCE):
    """The one sentence explaining the rule, with what it assumes."""
    return stopping.explain(recall_target, confidence, stopping.RANKED)


def sample_explanation(recall_target=RECALL_TARGET, confidence=CONFIDENCE):
    """The one sentence explaining the random-sample test."""
    return stopping.explain(recall_target, confidence, stopping.SAMPLE)


def review_progress(review):
    """[StageProgress] for title/abstract and full text, at the targets set for each."""
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


def _curve_advice(progress):
    """The estimate the recall curve draws: the stage's, except from a random sample with nothing
    screened yet, which counts every record left as relevant (the curve would lie flat at the
    bottom of an axis that high); until the sample has evidence, the ranked test's estimate holds."""
    if progress.sample is not None and not progress.sample.sampled and progress.ranked_advice is not None:
        return progress.ranked_advice
    return progress.advice


def recall_curve_svg(progress, *, title=""):
    """The recall curve of one stage as a standalone SVG document (all text escaped, no style or
    script: presentation attributes only, so the page's CSP holds)."""
    n_total = max(progress.n_total, 1)
    found = progress.relevant_found
    advice = _curve_advice(progress)
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
    a = _curve_advice(progress)
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
        target, confidence = percent(a.recall_target), percent(a.confidence)
        if p.sample is None:
            how = (
                "Stopping was assessed with the hypergeometric test of Callaghan and Müller-Hansen (2020) at a "
                f"recall target of {target} and {confidence} confidence, which assumes the ranking placed the "
                "unscreened records no earlier than a random order would; "
            )
        elif not p.sample.sampled:
            # Nothing of the sample agreed on yet: its test has no evidence, and its "estimate" (every
            # record left relevant) would read as a finding.
            s = p.sample
            parts.append(
                f"At {p.label.lower()} screening, {p.screened} of {p.n_total} records ({share:.0f}%) were screened "
                f"and {p.relevant_found} relevant records found. A uniform random sample of the {s.remainder} "
                "records then left unscreened was started, to assess stopping with the hypergeometric test of "
                f"Callaghan and Müller-Hansen (2020) at a recall target of {target} and {confidence} confidence; "
                "none of its records had been screened yet, so it gave no estimate of the relevant records left."
            )
            continue
        else:
            s = p.sample
            how = (
                f"When {s.sample.sampled_from} records had been screened, a uniform random sample of the "
                f"{s.remainder} records then left unscreened was screened in a random order drawn in advance; "
                f"stopping was assessed on the first {s.sampled} records of that order ({s.relevant_in_sample} "
                "relevant) with the hypergeometric test of Callaghan and Müller-Hansen (2020) at a recall target "
                f"of {target} and {confidence} confidence, which makes no assumption about the ranking; "
            )
        parts.append(
            f"At {p.label.lower()} screening, {p.screened} of {p.n_total} records ({share:.0f}%) were screened "
            f"and {p.relevant_found} relevant records found. "
            + how
            + (
                f"it recommended stopping (p = {a.p_value:.3f})"
                if a.stop
                else f"it had not recommended stopping (p = {a.p_value:.3f})"
            )
            + f". An estimated {a.estimated_remaining} relevant records (at most {high} at "
            f"{confidence} confidence{'' if not low else f', at least {low}'}) remain unscreened"
            + (
                f", an estimated recall of {p.estimated_recall_percent}%."
                if p.estimated_recall_percent is not None
                else "."
            )
        )
    return "\n\n".join(parts) + "\n"
