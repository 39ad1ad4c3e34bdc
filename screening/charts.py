"""Charts of a review's screening: progress over time per reviewer, the recall curve of the
prioritised order, and agreement per reviewer pair. The figures come from a few aggregate queries
(never one row per record in Python, except the recall curve's labels, which
screening/progress_report.py reads for the stopping rule anyway); the drawing is plain SVG.

Why hand-drawn SVG, as screening/prisma_svg.py draws PRISMA: the three charts are a few lines,
dots and bars; pygal writes <script> and <style> into its SVG (the page's CSP forbids both inline)
and matplotlib costs hundreds of milliseconds and a large dependency per chart. Here every text is
escaped (reviewer names are typed by users), each chart carries <title> and <desc>, and only
presentation attributes are used. PNG comes from the same SVG through CairoSVG, as for PRISMA.

Blinding (screening/visibility.py): a blinded reviewer sees only their own progress line (how
many records each other reviewer decided is shown only to those who see every vote, like the
members page), and no agreement figures at all (they would change the moment another reviewer
disagreed). The recall curve counts reconciled records only: the same for every member.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta
from xml.sax.saxutils import escape, quoteattr

from django.db.models import Count, F, Max, Min, OuterRef, Subquery
from django.db.models.functions import Coalesce, Least, Trunc
from django.utils import timezone

from review.models import Stage
from screening import agreement, progress_report, stages, stopping, visibility
from screening.models import Decision
from screening.prisma_svg import _XML_ILLEGAL

WIDTH, HEIGHT = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 44, 80
FONT = "DejaVu Sans, Verdana, Arial, Helvetica, sans-serif"
INK, GRID, MUTED = "#000000", "#dddddd", "#555555"
CURVE, RANDOM, STOP = "#1f5fa8", "#555555", "#b3261e"
# Okabe and Ito's colour-blind-safe palette; beyond eight reviewers the dash pattern tells lines apart.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
DASHES = ("", "6 3", "2 3", "8 3 2 3")
NAME_CHARS = 24  # a reviewer's name on a chart is cut here (the table beside it has it in full)
# Reviews shorter than this from first to last vote are charted per hour, longer ones per day.
HOURLY_SPAN = timedelta(hours=48)


def clean(text):
    """``text`` as XML text content: escaped, with characters XML cannot hold at all removed."""
    return escape(_XML_ILLEGAL.sub("", str(text)))


def short(name):
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…"


# Figures -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewerLine:
    reviewer: str
    points: tuple  # (bucket start, records decided by then), one per bucket with decisions

    @property
    def total(self):
        return self.points[-1][1] if self.points else 0


@dataclass(frozen=True)
class ReviewerProgress:
    stage: Stage
    unit: str  # "day" or "hour"
    lines: tuple  # ReviewerLine, by name
    others_hidden: bool  # a blinded reviewer: only their own line

    @property
    def label(self):
        return self.stage.label


def reviewer_progress(review, stage, membership):
    """Records each reviewer has decided at ``stage``, cumulated per day (per hour for a review
    screened within two days), as ``membership`` may see it. A record counts once per reviewer,
    at the reviewer's first vote on it (a changed vote moves nothing). Two queries, whatever the
    size."""
    stage = Stage(stage)
    votes = Decision.objects.filter(record__review=review, stage=stage)
    others_hidden = not visibility.sees_all_votes(review, membership, stage)
    if others_hidden:
        votes = votes.filter(reviewer_id=membership.user_id)
    span = votes.aggregate(first=Min("created_at"), last=Max("created_at"))
    if span["first"] is None:
        return ReviewerProgress(stage, "day", (), others_hidden)
    unit = "hour" if span["last"] - span["first"] < HOURLY_SPAN else "day"
    # Each current vote (one per record and reviewer) dated by the reviewer's first vote on the
    # record: the earliest of it and the votes it superseded (an imported history may be out of
    # order). Looking among superseded votes only keeps the lookup small whatever plan is chosen.
    superseded = (
        Decision.objects.filter(record=OuterRef("record"), reviewer=OuterRef("reviewer"), stage=stage, is_current=False)
        .order_by("created_at")
        .values("created_at")[:1]
    )
    first_at = Least("created_at", Coalesce(Subquery(superseded), "created_at"))
    rows = (
        votes.filter(is_current=True)
        .annotate(bucket=Trunc(first_at, unit, tzinfo=timezone.get_current_timezone()))
        .values("reviewer__username", "bucket")
        .annotate(n=Count("pk"))
        .order_by("reviewer__username", "bucket")
    )
    lines = defaultdict(list)
    for row in rows:
        name, bucket, n = row["reviewer__username"], row["bucket"], row["n"]
        total = lines[name][-1][1] if lines[name] else 0
        lines[name].append((bucket, total + n))
    return ReviewerProgress(
        stage, unit, tuple(ReviewerLine(name, tuple(points)) for name, points in sorted(lines.items())), others_hidden
    )


@dataclass(frozen=True)
class PairAgreement:
    reviewers: tuple  # two names, in name order
    records: int  # records both voted on
    kappa: float | None  # Cohen's kappa on those records
    percent_agreement: float


def pair_agreement(review, stage):
    """Per reviewer pair, Cohen's kappa and raw agreement on the records of ``stage`` both voted
    on: the figures of screening/agreement.py ``agreement``'s ``pairs``, counted by the database
    (one self-join grouped by the two reviewers and their votes) instead of vote by vote."""
    stage = Stage(stage)
    rows = (
        Decision.objects.filter(
            stages.in_stage_q(review, stage, prefix="record__"), record__review=review, stage=stage, is_current=True
        )
        # One filter() call: the other vote is on the same record, stage, current, by a later reviewer.
        .filter(
            record__decisions__stage=stage,
            record__decisions__is_current=True,
            record__decisions__reviewer_id__gt=F("reviewer_id"),
        )
        .values_list(
            "reviewer__username", "record__decisions__reviewer__username", "decision", "record__decisions__decision"
        )
        .annotate(n=Count("pk"))
        .order_by()
    )
    tables = defaultdict(Counter)
    maybe = review.maybe_counts_as_include
    for a, b, vote_a, vote_b, n in rows:
        side_a = stages.counts_as(vote_a, maybe_counts_as_include=maybe)
        side_b = stages.counts_as(vote_b, maybe_counts_as_include=maybe)
        if b < a:
            a, b, side_a, side_b = b, a, side_b, side_a
        tables[(a, b)][(side_a, side_b)] += n
    pairs = []
    for names, table in sorted(tables.items()):
        records = sum(table.values())
        kappa = agreement.cohen_kappa_table(table)
        same = sum(k for (x, y), k in table.items() if x == y)
        pairs.append(
            PairAgreement(names, records, None if kappa is None else round(kappa, 4), round(100 * same / records, 4))
        )
    return pairs


def shown_pair_agreement(review, stage, membership):
    """``pair_agreement`` as ``membership`` may see it: None while blinding hides agreement."""
    if not visibility.sees_team_figures(review, membership, stage):
        return None
    return pair_agreement(review, stage)


@dataclass(frozen=True)
class RecallChart:
    progress: progress_report.StageProgress
    # Where the rule would first say stop, counted in further records screened, if every one of them
    # were irrelevant (0: it says stop now; None: no number of them would do, or ``stop_at`` says
    # where it did). While a random sample runs, its test's count (of further sample records).
    would_stop_after: int | None

    @property
    def stop_note(self):
        """The one sentence saying where the rule said, or would say, stop."""
        p, after = self.progress, self.would_stop_after
        if self.stop_at is not None:
            return f"The stopping rule first said stop after {self.stop_at} records."
        if after == 0:
            return f"The stopping rule says stop now, after {p.screened} records."
        if after:
            return (
                f"The stopping rule would say stop after {p.screened + after} records "
                f"if the next {after} screened are all irrelevant."
            )
        if p.unscreened:
            return "The stopping rule would not say stop even if every record left were irrelevant."
        return "Every record has been screened."

    @property
    def stop_at(self):
        return self.progress.stop_at

    @property
    def random_line_end(self):
        """(records, found): the random-order line runs from (0, 0) to here."""
        return self.progress.n_total, self.progress.relevant_found


def ranked_stop_after(labels, n_total, *, recall_target, confidence):
    """How many more records, all irrelevant, the ranked test needs before it says stop (0: it
    says stop now; None: not even every record left would do)."""
    alpha = 1 - confidence
    left = n_total - len(labels)

    def says_stop(extra):
        more = list(labels) + [0] * extra
        return stopping.p_value(more, n_total, recall_target=recall_target) < alpha

    if says_stop(0):
        return 0
    if not left or not says_stop(left):
        return None
    low, high = 0, left  # says_stop(low) is False, says_stop(high) True: each irrelevant record lowers p
    while high - low > 1:
        mid = (low + high) // 2
        if says_stop(mid):
            high = mid
        else:
            low = mid
    return high


def recall_chart(review, stage=Stage.TITLE_ABSTRACT):
    """The recall curve of ``stage`` from the review's own reconciled decisions, in the order the
    team met the records (screening/progress_report.py), with the stopping rule's point."""
    progress = progress_report.stage_progress(review, stage)
    after = None
    if progress.n_total and progress.stop_at is None and progress.unscreened:
        if progress.sample is not None:
            after = progress.to_sample  # the running sample's test is the advice
        else:
            settings = progress.settings
            after = ranked_stop_after(
                progress.labels,
                progress.n_total,
                recall_target=settings.recall_target,
                confidence=settings.confidence,
            )
    return RecallChart(progress, after)


# Drawing -----------------------------------------------------------------------------------------


def _ticks(high, count=5):
    return progress_report._ticks(high, count)


class _Svg:
    def __init__(self, chart_id, title, desc, width=WIDTH, height=HEIGHT):
        self.width, self.height = width, height
        ids = f"{chart_id}-title", f"{chart_id}-desc"
        self.parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="{ids[0]} {ids[1]}" '
            f"font-family={quoteattr(FONT)}>",
            f'<title id="{ids[0]}">{clean(title)}</title>',
            f'<desc id="{ids[1]}">{clean(desc)}</desc>',
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        ]
        self.text(width / 2, 24, title if len(title) <= 90 else title[:89] + "…", size=14)

    def text(self, x, y, content, *, anchor="middle", size=11, fill=INK, css="", rotate=False):
        extra = f' class="{css}"' if css else ""
        if rotate:
            extra += f' transform="rotate(-90 {x:g} {y:g})"'
        self.parts.append(
            f'<text x="{x:g}" y="{y:g}" text-anchor="{anchor}" font-size="{size}" fill="{fill}"{extra}>'
            f"{clean(content)}</text>"
        )

    def line(self, x1, y1, x2, y2, stroke, *, width=1, dash="", css=""):
        extra = (f' stroke-dasharray="{dash}"' if dash else "") + (f' class="{css}"' if css else "")
        self.parts.append(
            f'<line x1="{x1:g}" y1="{y1:g}" x2="{x2:g}" y2="{y2:g}" stroke="{stroke}" stroke-width="{width}"{extra}/>'
        )

    def polyline(self, points, stroke, *, width=2, dash="", css=""):
        extra = (f' stroke-dasharray="{dash}"' if dash else "") + (f' class="{css}"' if css else "")
        coords = " ".join(f"{x:g},{y:g}" for x, y in points)
        self.parts.append(f'<polyline points="{coords}" fill="none" stroke="{stroke}" stroke-width="{width}"{extra}/>')

    def rect(self, x, y, w, h, fill, *, stroke="none", css=""):
        extra = f' class="{css}"' if css else ""
        self.parts.append(
            f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" fill="{fill}" stroke="{stroke}"{extra}/>'
        )

    def circle(self, x, y, r, *, fill, stroke, css=""):
        extra = f' class="{css}"' if css else ""
        self.parts.append(
            f'<circle cx="{x:g}" cy="{y:g}" r="{r:g}" fill="{fill}" stroke="{stroke}" stroke-width="2"{extra}/>'
        )

    def render(self):
        return "\n".join([*self.parts, "</svg>"]) + "\n"


def _plot_frame(svg, x_ticks, y_ticks, x_label, y_label, x_of, y_of, *, x_names=None):
    plot_w, plot_h = svg.width - LEFT - RIGHT, svg.height - TOP - BOTTOM
    for i, v in enumerate(x_ticks):
        svg.line(x_of(v), TOP, x_of(v), TOP + plot_h, GRID)
        # The last label ends at its tick, so a long one (a date) stays inside the picture.
        anchor = "end" if i == len(x_ticks) - 1 and x_names else "middle"
        svg.text(x_of(v), TOP + plot_h + 16, x_names[i] if x_names else str(v), anchor=anchor)
    for v in y_ticks:
        svg.line(LEFT, y_of(v), LEFT + plot_w, y_of(v), GRID)
        svg.text(LEFT - 6, y_of(v) + 4, str(v), anchor="end")
    svg.parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="{INK}"/>')
    svg.text(LEFT + plot_w / 2, TOP + plot_h + 34, x_label, size=12)
    svg.text(16, TOP + plot_h / 2, y_label, size=12, rotate=True)
    return plot_w, plot_h


def _legend(svg, entries):
    """Legend rows under the plot: (label, stroke, dash) each, two to a row."""
    y = svg.height - 26
    for i, (label, stroke, dash) in enumerate(entries):
        x = LEFT + (i % 2) * 280
        if i and not i % 2:
            y += 16
        svg.line(x, y, x + 24, y, stroke, width=2, dash=dash)
        svg.text(x + 30, y + 4, label, anchor="start")


def _when(moment, unit):
    local = timezone.localtime(moment)
    return f"{local.day} {local:%b %H:%M}" if unit == "hour" else f"{local.day} {local:%b}"


def progress_svg(chart, *, title=""):
    """The progress-over-time chart: one line per reviewer, records decided against time."""
    heading = f"Screening progress per reviewer, {chart.label.lower()}" + (f": {title}" if title else "")
    chart_id = f"progress-{chart.stage.value}"
    svg = _Svg(chart_id, heading, describe_progress(chart))
    if not chart.lines:
        svg.text(WIDTH / 2, HEIGHT / 2, _nothing_yet(chart), size=13, fill=MUTED)
        return svg.render()
    step = timedelta(hours=1) if chart.unit == "hour" else timedelta(days=1)
    start = min(line.points[0][0] for line in chart.lines)
    end = max(line.points[-1][0] for line in chart.lines) + step
    span = max(round((end - start) / step), 1)  # buckets from the first to just after the last
    x_ticks = _ticks(span, 6)
    y_ticks = _ticks(max(line.total for line in chart.lines))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(v):
        return round(LEFT + plot_w * v / (x_ticks[-1] or 1), 1)

    def y_of(v):
        return round(TOP + plot_h * (1 - v / (y_ticks[-1] or 1)), 1)

    names = [_when(start + v * step, chart.unit) for v in x_ticks]
    first = timezone.localtime(start)
    x_label = f"Time, by {chart.unit}, from {first.day} {first:%b %Y} ({timezone.get_current_timezone_name()})"
    _plot_frame(svg, x_ticks, y_ticks, x_label, "Records decided", x_of, y_of, x_names=names)
    legend = []
    for i, line in enumerate(chart.lines):
        colour, dash = PALETTE[i % len(PALETTE)], DASHES[(i // len(PALETTE)) % len(DASHES)]
        # A step per bucket: flat until the bucket ends, then up by what was decided in it.
        points, last = [(x_of(round((line.points[0][0] - start) / step)), y_of(0))], 0
        for bucket, total in line.points:
            at = round((bucket - start) / step)
            points += [(x_of(at), y_of(last)), (x_of(at + 1), y_of(total))]
            last = total
        points.append((x_of(span), y_of(last)))
        svg.polyline(points, colour, dash=dash, css="reviewer")
        legend.append((f"{short(line.reviewer)} ({line.total})", colour, dash))
    _legend(svg, legend[:6])
    if len(legend) > 6:
        svg.text(svg.width - RIGHT, svg.height - 6, f"and {len(legend) - 6} more: see the table", anchor="end")
    return svg.render()


def _nothing_yet(chart):
    # A blinded reviewer is told about their own votes only: others may have voted.
    return "You have no decisions at this stage yet." if chart.others_hidden else "No decisions at this stage yet."


def describe_progress(chart):
    if not chart.lines:
        return _nothing_yet(chart)
    who = "; ".join(f"{line.reviewer}: {line.total} records" for line in chart.lines)
    hidden = " Only your own line is shown while this stage is blinded." if chart.others_hidden else ""
    return f"Records decided per reviewer at {chart.label.lower()} screening, by {chart.unit}. {who}.{hidden}"


def recall_svg(chart, *, title=""):
    """The recall curve: relevant records found against records screened in the order screened,
    the random-order line, and where the stopping rule said (or would say) stop."""
    p = chart.progress
    heading = f"Recall curve, {p.label.lower()}" + (f": {title}" if title else "")
    svg = _Svg(f"recall-{p.stage.value}", heading, describe_recall(chart))
    if not p.n_total:
        svg.text(WIDTH / 2, HEIGHT / 2, "No records at this stage yet.", size=13, fill=MUTED)
        return svg.render()
    x_ticks, y_ticks = _ticks(p.n_total), _ticks(max(p.relevant_found, 1))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(v):
        return round(LEFT + plot_w * v / (x_ticks[-1] or 1), 1)

    def y_of(v):
        return round(TOP + plot_h * (1 - v / (y_ticks[-1] or 1)), 1)

    _plot_frame(svg, x_ticks, y_ticks, "Records screened, in the order screened", "Relevant records found", x_of, y_of)
    end_x, end_y = chart.random_line_end
    svg.line(x_of(0), y_of(0), x_of(end_x), y_of(end_y), RANDOM, dash="6 4", css="random-order")
    if chart.stop_at is not None:
        sx = x_of(chart.stop_at)
        svg.line(sx, TOP, sx, TOP + plot_h, STOP, dash="2 3", css="stop")
        anchor, tx = _beside(sx, chart.stop_at, x_ticks[-1])
        svg.text(tx, TOP + 14, f"rule said stop at {chart.stop_at}", anchor=anchor, fill=STOP)
    elif chart.would_stop_after is not None:
        at = p.screened + chart.would_stop_after
        sx = x_of(at)
        svg.line(sx, TOP, sx, TOP + plot_h, STOP, dash="2 3", css="would-stop")
        svg.circle(sx, y_of(p.relevant_found), 4, fill="#ffffff", stroke=STOP, css="would-stop")
        anchor, tx = _beside(sx, at, x_ticks[-1])
        svg.text(
            tx,
            TOP + 14,
            f"would stop at {at} if the next {chart.would_stop_after} are irrelevant"
            if chart.would_stop_after
            else f"rule says stop now, at {at}",
            anchor=anchor,
            fill=STOP,
        )
    svg.polyline([(x_of(a), y_of(b)) for a, b in progress_report.curve_points(p.labels)], CURVE, css="found")
    _legend(
        svg,
        [
            ("found, in the order screened", CURVE, ""),
            (f"random order, if the {p.relevant_found} found were all", RANDOM, "6 4"),
            ("stopping rule", STOP, "2 3"),
        ],
    )
    return svg.render()


def _beside(px, value, high):
    """(text-anchor, x) for a label beside a vertical line at ``px``: to its left in the right part
    of the plot, so it stays inside the picture."""
    return ("end", px - 4) if value > high * 0.6 else ("start", px + 4)


def describe_recall(chart):
    p = chart.progress
    if not p.n_total:
        return "No records at this stage yet."
    text = (
        f"{p.relevant_found} relevant records found in the first {p.screened} of {p.n_total} records screened. "
        f"The dashed line is what a random order would find on average if the {p.relevant_found} relevant "
        "records found so far were all there are: a straight line to that number at the last record."
    )
    return f"{text} {chart.stop_note}"


def agreement_svg(stage, pairs, *, title=""):
    """Agreement per reviewer pair: a bar for Cohen's kappa on a -1 to 1 scale, with kappa, raw
    agreement and the records both screened written beside it."""
    stage = Stage(stage)
    heading = f"Agreement per reviewer pair, {stage.label.lower()}" + (f": {title}" if title else "")
    row_h, top = 34, TOP + 24
    height = max(top + row_h * len(pairs) + 40, 160)
    svg = _Svg(f"agreement-{stage.value}", heading, describe_agreement(stage, pairs), height=height)
    if not pairs:
        svg.text(WIDTH / 2, height / 2, "No record has been screened by two reviewers yet.", size=13, fill=MUTED)
        return svg.render()
    label_w, bar_x, bar_w = 190, 200, 200

    def x_of(k):
        return round(bar_x + bar_w * (k + 1) / 2, 1)

    for k in (-1, 0, 0.5, 1):
        svg.line(x_of(k), top - 6, x_of(k), top + row_h * len(pairs), GRID if k else INK)
        svg.text(x_of(k), top - 10, f"{k:g}", size=10)
    svg.text(bar_x + bar_w + 10, top - 10, "κ · agreement · records", anchor="start", size=10)
    for i, pair in enumerate(pairs):
        y = top + row_h * i
        names = f"{short(pair.reviewers[0])} & {short(pair.reviewers[1])}"
        svg.text(label_w, y + row_h / 2 + 4, names, anchor="end")
        kappa = pair.kappa
        if kappa is not None:
            x0, x1 = sorted((x_of(0), x_of(kappa)))
            svg.rect(x0, y + 8, max(x1 - x0, 1), row_h - 16, CURVE if kappa >= 0 else STOP, css="kappa")
        figures = f"{'–' if kappa is None else f'{kappa:.2f}'} · {pair.percent_agreement:.1f}% · {pair.records}"
        svg.text(bar_x + bar_w + 10, y + row_h / 2 + 4, figures, anchor="start")
    svg.text(
        WIDTH / 2,
        height - 12,
        "Bars: Cohen's kappa (0 = chance agreement, 1 = perfect) on the records both screened",
        size=10,
        fill=MUTED,
    )
    return svg.render()


def describe_agreement(stage, pairs):
    if not pairs:
        return "No record has been screened by two reviewers yet."
    return " ".join(
        f"{p.reviewers[0]} and {p.reviewers[1]}: Cohen's kappa "
        f"{'undefined' if p.kappa is None else f'{p.kappa:.2f}'}, {p.percent_agreement:.1f}% agreement "
        f"on {p.records} records both screened."
        for p in pairs
    )


def png(svg, *, scale=2.0):
    """``svg`` rendered to PNG (twice its size by default)."""
    import cairosvg

    return cairosvg.svg2png(bytestring=svg.encode("utf-8"), scale=scale)
