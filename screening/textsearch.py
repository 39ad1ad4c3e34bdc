"""The records table's word search: what a reviewer types, read into a tree, matched on either database.

The language is Lucene's, read by luqum: ``"quoted phrase"``, ``AND``, ``OR``, ``NOT`` (or ``-word``),
``word*`` (a trailing wildcard) and parentheses. Words side by side must all be found (AND, as in
PubMed and Google); ``AND``/``OR``/``NOT`` are operators in capitals only ("and" is a word).

What a word is, the same on both databases: a run of letters and digits of title + " " + abstract,
lowercased; everything else separates words and is not searched for. So ``COVID-19`` is the phrase
"covid 19" (it finds "COVID-19" and "COVID 19", not "COVID19"), ``Alzheimer's`` is "alzheimer s",
``3.5`` is "3 5". A word matches itself only: ``rat`` does not find "rats" (no stemming), ``rat*``
does. Accents count (``naive`` does not find "naïve"); case does not.

PostgreSQL: ``to_tsvector('simple', ...)`` of the text with the ASCII punctuation its parser reads
as more than a separator made spaces (PARSER_SPECIAL: it would make "-19" a signed number and "3.5"
one token), so that it sees the words Python sees, matched ``@@`` a ``to_tsquery`` built here from the
words only (``<->`` for phrases, ``:*`` for a prefix), through a GIN index on that expression
(review/migrations/0019_record_words_tsvector.py). SQLite: the same words matched by a regular
expression on the same text. The highlighting uses the same expressions in Python.
"""

import re
import unicodedata
from dataclasses import dataclass

from django.db import connections
from django.db.models import BooleanField, F, Func, Q, TextField, Value
from django.db.models.functions import Concat
from django.utils.html import escape
from django.utils.safestring import mark_safe
from luqum import tree
from luqum.exceptions import IllegalCharacterError, ParseError
from luqum.parser import parser

# A word: letters and digits, as PostgreSQL's parser reads them: Python's \w without the underscore
# and without the other numerals ("x²" is the word "x", "¼" none).
_OTHER_NUMERALS = re.escape("".join(c for c in map(chr, range(0x10000)) if unicodedata.category(c) == "No"))
WORD_CHAR = rf"[^\W_{_OTHER_NUMERALS}]"
NOT_WORD_CHAR = rf"[\W_{_OTHER_NUMERALS}]"
WORD = re.compile(WORD_CHAR + "+")
# The ASCII characters that make PostgreSQL's parser read something else than words (signed numbers
# "-19", decimals and versions "3.5", hyphenated words, host names, e-mail addresses, URLs, file
# paths, XML tags and entities); the index's text has them made spaces. Other characters than
# letters and digits separate words in its parser as in Python (tests/screening/test_text_search.py
# compares the words of both).
PARSER_SPECIAL = r"[-+./@:<>&;_~\\]"
# Lucene syntax the search does not offer (fields, boosts, fuzziness, ranges and comparisons, regular expressions,
# single-character wildcards): their characters only separate words, as in a pasted title
# ("COVID-19: a review", "Does it work?").
UNUSED_SYNTAX = re.compile(r"[:^~/\\\[\]{}?<>=]")
LONE_DASH = re.compile(r"-(?=\s|$)")


# Bounds that keep a search's SQL and its reading small (SQLite refuses expressions nested 1,000 deep).
MAX_LENGTH = 1000
MAX_NESTING = 10


class SearchSyntaxError(ValueError):
    """What the reviewer typed cannot be read; the message says why, for the page."""


@dataclass(frozen=True)
class Term:
    """Consecutive words (one word, or a phrase); the last one a prefix when ``prefix``."""

    words: tuple
    prefix: bool = False


@dataclass(frozen=True)
class All:
    parts: tuple


@dataclass(frozen=True)
class Any:
    parts: tuple


@dataclass(frozen=True)
class Not:
    part: object


# Reading what was typed ------------------------------------------------------------------------


def parse(text):
    """The tree of ``text``, or None when it has nothing to search for. Raises SearchSyntaxError."""
    if not text or not text.strip():
        return None
    if text.count('"') % 2:
        raise SearchSyntaxError('A quotation mark (") is not closed.')
    if len(text) > MAX_LENGTH:
        raise SearchSyntaxError(f"The search is {len(text)} characters long; it can be at most {MAX_LENGTH}.")
    unquoted = re.sub(r'"[^"]*"', " ", text)
    depth = deepest = 0
    for character in unquoted:
        depth += {"(": 1, ")": -1}.get(character, 0)
        deepest = max(depth, deepest)
    if deepest > MAX_NESTING:
        raise SearchSyntaxError(f"Parentheses can be nested {MAX_NESTING} deep at most.")
    if unquoted.count("(") != unquoted.count(")"):
        raise SearchSyntaxError(
            "A parenthesis is not closed."
            if unquoted.count("(") > unquoted.count(")")
            else "A closing parenthesis has no opening one."
        )
    try:
        # A dash before a space is punctuation ("Kratom - a review"), not NOT as in "-rats".
        node = parser.parse(LONE_DASH.sub(" ", UNUSED_SYNTAX.sub(" ", text)))
    except (ParseError, IllegalCharacterError):
        raise SearchSyntaxError(
            "The search could not be read: AND, OR and NOT each need a word after them (and AND and OR one before)."
        ) from None
    query = _read(node)
    if query is None:
        raise SearchSyntaxError("The search has no letters or digits to look for.")
    return query


def _read(node):
    if isinstance(node, tree.Word):
        return _word(node.value)
    if isinstance(node, tree.Phrase):
        words = tuple(_lower(w) for w in WORD.findall(node.value))
        return Term(words) if words else None
    if isinstance(node, (tree.Not, tree.Prohibit)):
        part = _read(node.children[0])
        return Not(part) if part is not None else None
    if isinstance(node, (tree.Group, tree.FieldGroup, tree.Plus)):
        return _read(node.children[0])
    if isinstance(node, (tree.AndOperation, tree.UnknownOperation, tree.OrOperation)):
        parts = tuple(p for p in (_read(child) for child in node.children) if p is not None)
        if len(parts) <= 1:
            return parts[0] if parts else None
        return Any(parts) if isinstance(node, tree.OrOperation) else All(parts)
    raise SearchSyntaxError(f"The search cannot use {node}.")


def _lower(word):
    """``word`` in small letters character by character, as PostgreSQL lowers it ("İ" is "i")."""
    return word.replace("İ", "i").lower()


def _word(value):
    if value.startswith("*") and WORD.search(value):
        raise SearchSyntaxError(f"A wildcard (*) can only end a word (rat*), not begin it: {value}")
    stem = value.rstrip("*")
    if "*" in stem:
        raise SearchSyntaxError(f"A wildcard (*) can only end a word (rat*): {value}")
    words = tuple(_lower(w) for w in WORD.findall(stem))
    return Term(words, prefix=stem != value) if words else None


# Matching ---------------------------------------------------------------------------------------


def terms(query, *, negated=False):
    """The terms of ``query`` that a matching record contains (those under no NOT)."""
    if isinstance(query, Term):
        return [] if negated else [query]
    if isinstance(query, Not):
        return terms(query.part, negated=not negated)
    return [t for part in query.parts for t in terms(part, negated=negated)]


def pattern(term):
    """The regular expression (case-insensitive) of ``term`` in a text, on word boundaries."""
    body = (NOT_WORD_CHAR + "+").join(re.escape(w) for w in term.words)
    return f"(?<!{WORD_CHAR})" + body + (WORD_CHAR + "*" if term.prefix else f"(?!{WORD_CHAR})")


def tsquery(query):
    """``query`` in to_tsquery's syntax (built from the words only, each quoted)."""
    if isinstance(query, Term):
        lexemes = [f"'{w}'" for w in query.words]  # letters and digits only: nothing to escape
        if query.prefix:
            lexemes[-1] += ":*"
        return "(" + " <-> ".join(lexemes) + ")"
    if isinstance(query, Not):
        return "!" + tsquery(query.part)
    joiner = " & " if isinstance(query, All) else " | "
    return "(" + joiner.join(tsquery(p) for p in query.parts) + ")"


class Words(Func):
    """The records' words as PostgreSQL indexes them (the index's expression, exactly)."""

    template = f"to_tsvector('simple'::regconfig, regexp_replace(%(expressions)s, '{PARSER_SPECIAL}', ' ', 'g'))"
    arg_joiner = " || ' ' || "
    output_field = TextField()  # a tsvector; only ever compared with @@

    def __init__(self):
        super().__init__(F("title"), F("abstract"))


class _TsQuery(Func):
    template = "to_tsquery('simple'::regconfig, %(expressions)s)"
    output_field = TextField()


class _Matches(Func):
    """``Words() @@ to_tsquery('simple', tsquery)``: the query's text is a parameter, never SQL."""

    template = "%(expressions)s"
    arg_joiner = " @@ "
    output_field = BooleanField()

    def __init__(self, tsquery_text):
        super().__init__(Words(), _TsQuery(Value(tsquery_text)))


def _q(query):
    """``query`` as a Q on the alias ``words_text`` (title + " " + abstract): SQLite's matching."""
    if isinstance(query, Term):
        return Q(words_text__iregex=pattern(query))
    if isinstance(query, Not):
        return ~_q(query.part)
    combined = Q()
    for part in query.parts:
        combined = combined & _q(part) if isinstance(query, All) else combined | _q(part)
    return combined


def filter_records(queryset, query):
    """The records of ``queryset`` whose title or abstract matches ``query`` (a parse() tree)."""
    if query is None:
        return queryset
    if connections[queryset.db].vendor == "postgresql":
        return queryset.filter(_Matches(tsquery(query)))
    text = Concat("title", Value(" "), "abstract", output_field=TextField())
    return queryset.alias(words_text=text).filter(_q(query))


def highlight(text, query):
    """``text`` escaped, with what ``query`` matched in it in <mark>."""
    spans = []
    for term in terms(query) if query is not None else []:
        spans += [m.span() for m in re.finditer(pattern(term), text, flags=re.IGNORECASE)]
    pieces, at = [], 0
    for start, end in sorted(spans):
        if end <= at:
            continue
        start = max(start, at)
        pieces += [escape(text[at:start]), "<mark>", escape(text[start:end]), "</mark>"]
        at = end
    pieces.append(escape(text[at:]))
    return mark_safe("".join(pieces))
