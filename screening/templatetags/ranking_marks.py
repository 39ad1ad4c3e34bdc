"""Highlighting on the screening card: the review's include/exclude keywords, and the words that
raised the model's score for this record (``kw-model``). The reviewer's own keywords win."""

import re
from functools import lru_cache

from django import template
from django.utils.safestring import mark_safe

from screening.templatetags.highlight import highlight_text

register = template.Library()


@lru_cache(maxsize=64)
def _model_pattern(terms):
    if not terms:
        return None
    ordered = sorted(set(terms), key=lambda t: (-len(t), t))
    words = "|".join(r"\s+".join(re.escape(part) for part in term.split()) for term in ordered)
    return re.compile(r"(?<!\w)(?:" + words + r")(?!\w)", re.IGNORECASE)


def mark_model_terms(html, terms):
    """``html`` (already escaped, possibly with keyword <mark>s) with ``terms`` marked outside tags
    and outside existing marks."""
    pattern = _model_pattern(tuple(terms))
    if pattern is None:
        return html
    out = []
    # Split into markup (tags, the content of existing marks, entities) and plain escaped text.
    for n, piece in enumerate(re.split(r"(<mark[^>]*>.*?</mark>|<[^>]+>|&#?\w+;)", html, flags=re.DOTALL)):
        if n % 2:
            out.append(piece)
        else:
            out.append(pattern.sub(lambda m: f'<mark class="kw-model">{m.group(0)}</mark>', piece))
    return "".join(out)


@register.filter
def highlight_marks(text, marks):
    """``{{ record.abstract|highlight_marks:marks }}`` with marks = (include, exclude, model terms)."""
    include, exclude, terms = marks or ((), (), ())
    html = highlight_text(text, include, exclude)
    # Terms are lowercase words and digits (the model's tokens): escaping never changes them.
    return mark_safe(mark_model_terms(str(html), [t for t in terms if re.fullmatch(r"[\w ]+", t)]))
