"""Drawing the PRISMA 2020 flow diagram for a new systematic review.

Databases and registers are drawn in the main column pair; when other-method sources exist
(websites, organisations, citation searching) their column pair is drawn to the right, as in the
statement's second template. A diagram drawn while screening is still open carries a banner saying
so and dashed boxes for the records still waiting, so that every box's sum holds in the file.

The layout follows the PRISMA 2020 statement's template as the PRISMA2020 R package draws it: a
yellow title box, two columns of boxes joined by arrows, and blue side bands reading
Identification, Screening and Included. Text wraps to the box width and boxes grow with their
content, so a review with many sources or exclusion reasons still draws without overlaps.
PNG and PDF are rendered from the same SVG by CairoSVG.
"""

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from xml.sax.saxutils import escape, quoteattr

from screening.closing import FULL_TEXT_REASON

# DejaVu Sans first: text is measured with it (Verdana has near-identical widths), so the wrapping
# holds wherever the SVG is shown; Arial/Helvetica are narrower and only ever leave more room.
FONT_FAMILY = "DejaVu Sans, Verdana, Arial, Helvetica, sans-serif"
FONT_SIZE = 13
TITLE_SIZE = 16
FOOTNOTE_SIZE = 11
LINE = 17  # line height
PAD_X, PAD_Y = 10, 8
BOX_W = 300
COL_GAP = 64  # between the two columns: room for the arrow
ROW_GAP = 34  # between rows: room for the arrow
MARGIN = 16
BAND_W = 34
BAND_GAP = 18
LEFT_X = MARGIN + BAND_W + BAND_GAP
RIGHT_X = LEFT_X + BOX_W + COL_GAP
WIDTH = RIGHT_X + BOX_W + MARGIN
INDENT = 12

TITLE_FILL = "#FFC125"  # Goldenrod1, the R package's title colour
BAND_FILL = "#BCD2EE"  # LightSteelBlue2, its side-band colour
INK = "#000000"
# Characters XML 1.0 cannot hold at all, even escaped (a stray control code in a source's name).
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@lru_cache(maxsize=1)
def _cairo_context():
    try:
        import cairocffi

        surface = cairocffi.ImageSurface(cairocffi.FORMAT_ARGB32, 1, 1)
        ctx = cairocffi.Context(surface)
        options = cairocffi.FontOptions()
        options.set_hint_metrics(cairocffi.HINT_METRICS_OFF)
        ctx.set_font_options(options)
        return ctx
    except (ImportError, OSError):  # no libcairo: fall back to an estimate
        return None


@lru_cache(maxsize=4096)
def text_width(text, size=FONT_SIZE, bold=False):
    """Width in px of ``text`` set in DejaVu Sans (an estimate when cairo is not available)."""
    ctx = _cairo_context()
    if ctx is None:
        return len(text) * size * (0.68 if bold else 0.62)
    import cairocffi

    weight = cairocffi.FONT_WEIGHT_BOLD if bold else cairocffi.FONT_WEIGHT_NORMAL
    ctx.select_font_face("DejaVu Sans", cairocffi.FONT_SLANT_NORMAL, weight)
    ctx.set_font_size(size)
    return ctx.text_extents(text)[4] * 1.03  # a little slack for other renderers' rounding


def wrap(text, width, size=FONT_SIZE, bold=False):
    """Greedy word wrap to ``width`` px; a word wider than a line is broken between characters."""
    lines, current = [], ""
    # A count "(n = 1,234)" is one word: it never breaks across lines.
    for word in re.findall(r"\(n = [\d,]+\)\S*|\S+", text):
        candidate = f"{current} {word}" if current else word
        if text_width(candidate, size, bold) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while text_width(current, size, bold) > width and len(current) > 1:
            cut = len(current) - 1
            while cut > 1 and text_width(current[:cut], size, bold) > width:
                cut -= 1
            lines.append(current[:cut])
            current = current[cut:]
    if current:
        lines.append(current)
    return lines or [""]


@dataclass
class Box:
    items: list  # (text, indent) pairs, each wrapped on its own
    align: str = "start"  # or "middle"
    fill: str = "#FFFFFF"
    width: int = BOX_W
    bold: bool = False
    rounded: bool = False
    dashed: bool = False  # work still open: these figures will change
    css: str = ""
    lines: list = field(default_factory=list)  # (text, indent) after wrapping
    min_height: float = 0  # stretched to its row's right-hand stack; the text stays centred

    def layout(self):
        self.lines = []
        for text, indent in self.items:
            # A list item's continuation lines hang under its first word, so items stay apart.
            hang = INDENT if indent else 0
            inner = self.width - 2 * PAD_X - indent - hang
            for i, line in enumerate(wrap(text, inner, bold=self.bold)):
                self.lines.append((line, indent + (hang if i else 0)))
        return self

    @property
    def content_height(self):
        return len(self.lines) * LINE + 2 * PAD_Y

    @property
    def height(self):
        return max(self.content_height, self.min_height)


def n(value):
    return f"(n = {value:,})"


# Marks a box line that a footnote below the diagram explains (a closure on the stopping rule).
NOTE_MARK = "*"
OPEN_FILL = "#FFF4CE"  # the still-open banner and boxes
GREY_FILL = "#DCDCDC"  # Gainsboro, the R package's colour for the other-methods column
STACK_GAP = 12  # between boxes stacked on the right of one row


def centred(label, value, **kwargs):
    return Box([(label, 0), (n(value), 0)], align="middle", **kwargs)


def _source_lines(sources, notes):
    return [
        (f"{source} {n(k)}" + (f" ({notes[source]})" if source in notes else ""), INDENT)
        for source, k in sources.items()
    ]


def _reasons_box(reasons, noted, **kwargs):
    if not reasons:
        return centred("Reports excluded", 0, **kwargs)
    return Box(
        [("Reports excluded:", 0)]
        + [
            (f"{reason} {n(k)}{NOTE_MARK if noted and reason == FULL_TEXT_REASON else ''}", INDENT)
            for reason, k in reasons.items()
        ],
        **kwargs,
    )


def _open_box(label, value, **kwargs):
    return Box([(label, 0), (n(value), 0)], align="middle", fill=OPEN_FILL, dashed=True, css="open", **kwargs)


def _main_rows(counts):
    """The databases-and-registers column: five rows of (left box, [right boxes])."""
    identified = [("Records identified from:", 0)]
    for label, sources in (("Databases", counts.databases_identified), ("Registers", counts.registers_identified)):
        if sources or label == "Databases":
            identified.append((f"{label} {n(sum(sources.values()))}{':' if sources else ''}", 0))
            identified += _source_lines(sources, counts.source_notes)
    noted = bool(counts.footnotes)
    automation = NOTE_MARK if noted and counts.records_excluded_automation else ""
    other_reasons = "Records removed for other reasons"
    if counts.records_removed_other:
        other_reasons += " (counted, not imported)"
    removed = [
        ("Records removed before screening:", 0),
        (f"Duplicate records removed {n(counts.duplicates_removed)}", INDENT),
        (
            f"Records marked as ineligible by automation tools {n(counts.records_excluded_automation)}{automation}",
            INDENT,
        ),
        (f"{other_reasons} {n(counts.records_removed_other)}", INDENT),
    ]
    screened_right = [centred("Records excluded", counts.records_excluded)]
    if counts.records_not_yet_screened:
        screened_right.append(_open_box("Not yet screened (screening still open)", counts.records_not_yet_screened))
    sought_right = [centred("Reports not retrieved", counts.reports_not_retrieved)]
    if counts.reports_not_yet_assessed:
        sought_right.append(
            _open_box("Not yet assessed (full-text screening still open)", counts.reports_not_yet_assessed)
        )
    included = Box(
        [
            (f"Studies included in review {n(counts.studies_included)}", 0),
            (f"Reports of included studies {n(counts.studies_included)}", 0),
        ],
        align="middle",
    )
    return [
        (Box(identified), [Box(removed)]),
        (centred("Records screened", counts.records_screened), screened_right),
        (centred("Reports sought for retrieval", counts.reports_sought), sought_right),
        (
            centred("Reports assessed for eligibility", counts.reports_assessed),
            [_reasons_box(counts.reports_excluded, noted)],
        ),
        (included, []),
    ]


def _other_rows(other, notes, noted):
    """The other-methods column, drawn beside the main one: rows as in ``_main_rows``."""
    grey = {"fill": GREY_FILL}
    identified = Box([("Records identified from:", 0)] + _source_lines(other.identified, notes), **grey)
    not_sought = [(label, k) for label, k in other.not_sought.items() if k]
    skipped = []
    if not_sought:
        skipped = [
            Box(
                [("Records not sought for retrieval:", 0)]
                + [
                    (f"{label} {n(k)}{NOTE_MARK if noted and 'automation' in label else ''}", INDENT)
                    for label, k in not_sought
                ],
                **grey,
            )
        ]
    sought_right = [centred("Reports not retrieved", other.reports_not_retrieved, **grey)]
    if other.reports_not_yet_assessed:
        sought_right.append(
            _open_box("Not yet assessed (full-text screening still open)", other.reports_not_yet_assessed)
        )
    return [
        (identified, []),
        (None, skipped),
        (centred("Reports sought for retrieval", other.reports_sought, **grey), sought_right),
        (
            centred("Reports assessed for eligibility", other.reports_assessed, **grey),
            [_reasons_box(other.reports_excluded, noted, **grey)],
        ),
        (None, []),
    ]


# Which rows each side band spans (indexes into the rows above).
BANDS = [("Identification", 0, 0), ("Screening", 1, 3), ("Included", 4, 4)]
GROUP_GAP = 40  # between the main column pair and the other-methods pair
OTHER_X = WIDTH - MARGIN + GROUP_GAP  # left edge of the other-methods pair


class _Canvas:
    def __init__(self):
        self.parts = []

    def rect(self, x, y, w, h, fill, rounded=False, stroke=INK, dashed=False, css=""):
        radius = ' rx="8" ry="8"' if rounded else ""
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        cls = f' class="{css}"' if css else ""
        self.parts.append(
            f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}"{radius}{cls} fill="{fill}" '
            f'stroke="{stroke}" stroke-width="1.2"{dash}/>'
        )

    def text(self, x, y, content, *, anchor="start", size=FONT_SIZE, bold=False, transform="", css=""):
        attrs = f'x="{x:g}" y="{y:g}"'
        if css:
            attrs += f' class="{css}"'
        if anchor != "start":
            attrs += f' text-anchor="{anchor}"'
        if size != FONT_SIZE:
            attrs += f' font-size="{size}"'
        if bold:
            attrs += ' font-weight="bold"'
        if transform:
            attrs += f" transform={quoteattr(transform)}"
        self.parts.append(f"<text {attrs}>{escape(_XML_ILLEGAL.sub('', content))}</text>")

    def arrow(self, x1, y1, x2, y2, head=True):
        marker = ' marker-end="url(#arrow)"' if head else ""
        self.parts.append(
            f'<line x1="{x1:g}" y1="{y1:g}" x2="{x2:g}" y2="{y2:g}" stroke="{INK}" stroke-width="1.4"{marker}/>'
        )

    def box(self, box, x, y):
        self.rect(x, y, box.width, box.height, box.fill, rounded=box.rounded, dashed=box.dashed, css=box.css)
        # Baseline of the first line: centre a FONT_SIZE glyph box inside the LINE-high slot.
        baseline = y + (box.height - box.content_height) / 2 + PAD_Y + (LINE - FONT_SIZE) / 2 + FONT_SIZE * 0.8
        for i, (line, indent) in enumerate(box.lines):
            if box.align == "middle":
                tx = x + box.width / 2
            else:
                tx = x + PAD_X + indent
            self.text(tx, baseline + i * LINE, line, anchor=box.align, bold=box.bold, css=box.css)


def _stack_height(boxes):
    return sum(b.height for b in boxes) + STACK_GAP * max(len(boxes) - 1, 0)


def _draw_group(canvas, rows, tops, heights, x):
    """One column pair: left boxes joined downwards, right stacks joined to their row's left box."""
    previous = None  # bottom of the last left box drawn
    for (left, rights), top, h in zip(rows, tops, heights):
        mid = top + h / 2
        centre = x + BOX_W / 2
        if left is not None:
            left_top = mid - left.height / 2
            canvas.box(left, x, left_top)
            if previous is not None:
                canvas.arrow(centre, previous, centre, left_top - 1.5)
            previous = left_top + left.height
        y = mid - _stack_height(rights) / 2
        for right in rights:
            right_mid = y + right.height / 2
            canvas.box(right, x + BOX_W + COL_GAP, y)
            # From the left box's edge, or from the arrow passing down the column where there is none.
            start = x + BOX_W if left is not None else centre
            canvas.arrow(start, right_mid, x + BOX_W + COL_GAP - 1.5, right_mid)
            y += right.height + STACK_GAP
    return previous


def render_svg(counts, *, title=None) -> str:
    """The PRISMA 2020 flow diagram for ``counts`` (a ``PrismaCounts``) as a standalone SVG document.

    With other-method sources the other-methods column is drawn to the right; while screening is
    still open a banner says so and the records still waiting are drawn in dashed boxes of their own.
    """
    canvas = _Canvas()
    other = counts.other
    width = OTHER_X + RIGHT_X + BOX_W - LEFT_X + MARGIN if other else WIDTH
    y = MARGIN
    if title:
        for line in wrap(title, width - 2 * MARGIN, size=TITLE_SIZE, bold=True):
            canvas.text(MARGIN, y + TITLE_SIZE, line, size=TITLE_SIZE, bold=True)
            y += TITLE_SIZE + 6
        y += 10
    if counts.open_note:
        note = Box(
            [(counts.open_note, 0)], fill=OPEN_FILL, width=width - 2 * MARGIN, bold=True, dashed=True, css="open-note"
        ).layout()
        canvas.box(note, MARGIN, y)
        y += note.height + 16

    pair_w = RIGHT_X + BOX_W - LEFT_X
    banner = Box(
        [("Identification of new studies via databases and registers", 0)],
        align="middle",
        fill=TITLE_FILL,
        width=pair_w,
        bold=True,
        rounded=True,
    ).layout()
    banner_h = banner.height
    canvas.box(banner, LEFT_X, y)
    if other:
        other_banner = Box(
            [("Identification of new studies via other methods", 0)],
            align="middle",
            fill=GREY_FILL,
            width=pair_w,
            bold=True,
            rounded=True,
        ).layout()
        banner_h = max(banner_h, other_banner.height)
        canvas.box(other_banner, OTHER_X, y)
    y += banner_h + 24

    groups = [(_main_rows(counts), LEFT_X)]
    if other:
        groups.append((_other_rows(other, counts.source_notes, bool(counts.footnotes)), OTHER_X))
    for rows, _x in groups:
        for left, rights in rows:
            for box in ([left] if left else []) + rights:
                box.layout()
            if left is not None and len(rights) > 1:
                # A stack beside a box: the box grows to the stack, so every arrow leaves its edge.
                left.min_height = _stack_height(rights)
    heights = [
        max(max(left.height if left else 0, _stack_height(rights)) for rows, _x in groups for left, rights in [rows[i]])
        for i in range(len(groups[0][0]))
    ]
    # A band must be long enough for its rotated label: grow its last row if it is not.
    for label, first, last in BANDS:
        span = sum(heights[first : last + 1]) + ROW_GAP * (last - first)
        need = text_width(label, bold=True) + 2 * PAD_Y + 8
        if span < need:
            heights[last] += need - span

    tops = []
    for h in heights:
        tops.append(y)
        y += h + ROW_GAP
    y -= ROW_GAP
    # Footnotes under the diagram, as wide as it: what a reader must know to read the boxes.
    for note in counts.footnotes:
        y += 12
        for line in wrap(f"{NOTE_MARK} {note}", width - 2 * MARGIN, size=FOOTNOTE_SIZE):
            y += FOOTNOTE_SIZE + 4
            canvas.text(MARGIN, y, line, size=FOOTNOTE_SIZE, css="footnote")
    height = y + MARGIN

    for label, first, last in BANDS:
        top, bottom = tops[first], tops[last] + heights[last]
        canvas.rect(MARGIN, top, BAND_W, bottom - top, BAND_FILL, rounded=True, stroke=BAND_FILL)
        cx, cy = MARGIN + BAND_W / 2, (top + bottom) / 2
        canvas.text(
            0, FONT_SIZE * 0.36, label, anchor="middle", bold=True, transform=f"translate({cx:g} {cy:g}) rotate(-90)"
        )

    for rows, x in groups:
        bottom = _draw_group(canvas, rows, tops, heights, x)
    if other:
        # The other column's assessed reports join the included box: down, then across to it.
        last = len(heights) - 1
        mid = tops[last] + heights[last] / 2
        centre = OTHER_X + BOX_W / 2
        canvas.arrow(centre, bottom, centre, mid, head=False)
        canvas.arrow(centre, mid, LEFT_X + BOX_W + 1.5, mid)

    doc_title = title or "PRISMA 2020 flow diagram"
    svg_open = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:g}" '
        f'viewBox="0 0 {width} {height:g}" font-family={quoteattr(FONT_FAMILY)} font-size="{FONT_SIZE}" '
        f'fill="{INK}" role="img">'
    )
    arrow_head = (
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{INK}"/></marker></defs>'
    )
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            svg_open,
            f"<title>{escape(_XML_ILLEGAL.sub('', doc_title))}</title>",
            arrow_head,
            f'<rect width="{width}" height="{height:g}" fill="#FFFFFF"/>',
            *canvas.parts,
            "</svg>",
            "",
        ]
    )


def render_png(svg, *, scale=2.0) -> bytes:
    """``svg`` rendered to PNG (at twice its size by default, for crisp text in documents)."""
    import cairosvg

    return cairosvg.svg2png(bytestring=svg.encode("utf-8"), scale=scale)


def render_pdf(svg) -> bytes:
    """``svg`` rendered to a one-page vector PDF."""
    import cairosvg

    return cairosvg.svg2pdf(bytestring=svg.encode("utf-8"))


FORMATS = ("svg", "png", "pdf", "json", "prisma2020-csv")


def render(counts, fmt, *, title=None):
    """``counts`` in one of FORMATS: text (str) for svg, json and prisma2020-csv, bytes for png and pdf.

    The one place the command and the download view both turn counts into a file.
    """
    from screening import prisma  # the counts module; it never imports this one

    if fmt == "json":
        return json.dumps(prisma.to_json(counts), indent=2, ensure_ascii=False) + "\n"
    if fmt == "prisma2020-csv":
        return prisma.to_prisma2020_csv(counts)
    if fmt not in FORMATS:
        raise ValueError(f"Unknown PRISMA format {fmt!r}: use one of {', '.join(FORMATS)}.")
    svg = render_svg(counts, title=title)
    return {"svg": lambda: svg, "png": lambda: render_png(svg), "pdf": lambda: render_pdf(svg)}[fmt]()
