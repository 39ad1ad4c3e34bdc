"""The RIS reader frames records itself and feeds rispy line by line (issue 9, one pass per line):
each record's dict is the one rispy's own ``parse_lines`` makes of the record's lines, and a
record cut short is named, not dropped."""

import pytest
from rispy import RisParser
from rispy.config import LIST_TYPE_TAGS

from review.article import ImportFileError
from review.importers import ris

TRICKY = """1.
TY  - JOUR
  continued before any tag
TI  - A title
  that goes on
AU  - Liu, R.
AU  - Adler, D. G.
UR  - http://a.example/1; http://b.example/2
  http://c.example/3
L2  - https://pubmed.ncbi.nlm.nih.gov/1/
L2  - https://www.ncbi.nlm.nih.gov/pmc/articles/PMC7205316
XY  - an unknown tag
XY  - again
kw  - not a tag (lower case)
KW  - one
KW  - two

AB  - An abstract
ER  - 
NL  - Ovid's line after ER

TY  - BOOK
  a continuation with no tag before it in its record
T1  - Second\r
PY  - 2001///\r
ER  -\r
"""


def _parser():
    return RisParser(list_tags=[*LIST_TYPE_TAGS, "L1", "L2", "L4"])


def test_each_record_is_what_rispys_own_loop_makes_of_its_lines():
    lines = TRICKY.splitlines(keepends=True)
    entries = list(ris._entries(iter(lines), "tricky.ris", _parser()))
    assert [(number, start) for number, start, _ in entries] == [(1, 2), (2, 22)]
    blocks = [lines[1:19], lines[21:26]]
    assert [entry for _, _, entry in entries] == [_parser().parse_lines(iter(b))[0] for b in blocks]
    assert entries[0][2]["title"] == "A title that goes on"
    # rispy adds a continuation of an unknown tag as one more value.
    assert entries[0][2]["unknown_tag"]["XY"] == ["an unknown tag", "again", "kw  - not a tag (lower case)"]


def test_a_record_without_er_line_is_named_with_both_lines():
    text = "TY  - JOUR\nTI  - One\nER  - \nTY  - JOUR\nTI  - Two\n\nTY  - JOUR\nTI  - Three\nER  - \n"
    with pytest.raises(ImportFileError, match=r"x\.ris: record 2 \(line 4\) has no ER line: .* starts at line 7"):
        list(ris.parse(iter(text.splitlines(keepends=True)), "x.ris"))


def test_a_file_ending_inside_a_record_is_named():
    text = "TY  - JOUR\nTI  - One\nER  - \nTY  - JOUR\nTI  - Two\n"
    with pytest.raises(ImportFileError, match=r"x\.ris: record 2 \(line 4\) is cut short"):
        list(ris.parse(iter(text.splitlines(keepends=True)), "x.ris"))
