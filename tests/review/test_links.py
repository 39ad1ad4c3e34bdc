"""links.web_url's shortcut for plain addresses agrees with its full check."""

import pytest

from review.links import web_url


@pytest.mark.parametrize(
    "value, expected",
    [
        ("https://pubmed.ncbi.nlm.nih.gov/31690499/", "https://pubmed.ncbi.nlm.nih.gov/31690499/"),
        ("HTTP://Example.org:8080/a?b=1#c", "HTTP://Example.org:8080/a?b=1#c"),
        ("  https://doi.org/10.1000/x  ", "https://doi.org/10.1000/x"),
        ("https://doi.org/10.1000/a\tb", "https://doi.org/10.1000/ab"),  # a browser drops the tab
        ("https://[::1]/", "https://[::1]/"),  # not plain: the full check accepts it
        ("https://[::1/", ""),  # urlsplit refuses it
        ("http://", ""),
        ("http:///path", ""),
        ("javascript:alert(1)", ""),
        ("java\tscript:alert(1)", ""),
        ("https://example.org/\x7fx", ""),
        ("ftp://example.org/file", ""),
        ("https://exämple.org/", "https://exämple.org/"),
    ],
)
def test_plain_and_other_addresses_are_judged_as_before(value, expected):
    assert web_url(value) == expected
