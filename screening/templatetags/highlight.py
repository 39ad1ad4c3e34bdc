"""Keyword highlighting on the screening page: include words in green, exclude words in red, and
the words that raised the ranking model's score (``kw-model``)."""

import re
from functools import lru_cache

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

register = template.Library()


@lru_cache(maxsize=64)
def _pattern(include, exclude, model=()):
    """One case-insensitive regex over all keywords; longer keywords win over their prefixes.

    A keyword matches a whole word or its plural ("rat" marks "rats", never "rating"); a trailing
    * matches any word ending ("random*"). ``model`` terms (the words that raised the ranking
    model's score) match exactly and come after the keywords: the reviewer's own keywords win.
    """
    terms = {}
    for kind, words in (("exclude", exclude), ("include", include)):
        for word in words:
            stem = word.rstrip("*").strip()
            if stem:
                # Include wins when a word is listed as both.
                terms[(stem.lower(), word.endswith("*"))] = kind
    model_terms = sorted(
        {t.lower() for t in model if t.strip()} - {stem for stem, _ in terms}, key=lambda t: (-len(t), t)
    )
    if not terms and not model_terms:
        return None, {}
    ordered = sorted(terms, key=lambda t: (-len(t[0]), t))
    groups, kinds = [], {}
    for n, (stem, wildcard) in enumerate(ordered):
        tail = r"\w*" if wildcard else r"(?:e?s)?"
        groups.append(f"(?P<k{n}>{re.escape(stem)}{tail})")
        kinds[f"k{n}"] = terms[(stem, wildcard)]
    for n, term in enumerate(model_terms):
        groups.append(f"(?P<m{n}>" + r"\s+".join(re.escape(part) for part in term.split()) + ")")
        kinds[f"m{n}"] = "model"
    return re.compile(r"(?<!\w)(?:" + "|".join(groups) + r")(?!\w)", re.IGNORECASE), kinds


def highlight_text(text, include=(), exclude=(), model=()):
    """``text`` HTML-escaped, with keyword matches wrapped in <mark class="kw-include|kw-exclude|kw-model">."""
    text = "" if text is None else str(text)
    pattern, kinds = _pattern(tuple(include), tuple(exclude), tuple(model))
    if pattern is None:
        return escape(text)
    out, last = [], 0
    for match in pattern.finditer(text):
        out.append(escape(text[last : match.start()]))
        out.append(f'<mark class="kw-{kinds[match.lastgroup]}">{escape(match.group(0))}</mark>')
        last = match.end()
    out.append(escape(text[last:]))
    return mark_safe("".join(out))


@register.filter
def highlight(text, keywords):
    """``{{ record.abstract|highlight:keywords }}`` with keywords = (include list, exclude list)."""
    include, exclude = keywords or ((), ())
    return highlight_text(text, include, exclude)


@register.filter
def highlight_marks(text, marks):
    """``{{ record.abstract|highlight_marks:marks }}`` with marks = (include, exclude, model terms)."""
    include, exclude, model = marks or ((), (), ())
    return highlight_text(text, include, exclude, model)
