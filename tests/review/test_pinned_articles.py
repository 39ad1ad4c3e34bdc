"""Every import fixture gives the Articles it gave before the RIS reader was made cheaper.

The pins are digests (one per article), not the articles: the fixtures are third-party exports.

The pins are written by ``tests/review/pinned_articles.py`` from the code of the time; a change
of output must be intended, and the pins rewritten with it.
"""

import json

import pytest

from tests.review import pinned_articles

PINS = json.loads(pinned_articles.PINS.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", pinned_articles.fixture_paths(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_gives_its_pinned_articles(path):
    key = f"{path.parent.name}/{path.name}"
    assert key in PINS["fixtures"], f"{key} is new: rewrite the pins"
    expected = PINS["fixtures"][key]
    result = pinned_articles.read(path)
    got = pinned_articles.pinned(result)
    if "articles" in expected and "articles" in got:
        assert got["locations"] == expected["locations"], f"{key}: other records or record locations"
        for number, (one, other) in enumerate(zip(got["articles"], expected["articles"], strict=True)):
            assert one == other, f"{key}: article {number + 1} differs from its pin: {result['articles'][number]}"
    assert got == expected, f"{key}: {result.get('error') or result['warnings']}"


def test_generated_ris_file_gives_its_pinned_articles():
    assert pinned_articles.generated_digest() == PINS["generated_ris"]


def test_shared_helpers_answer_as_pinned_on_every_fixture_line():
    assert pinned_articles.helper_digests() == PINS["helpers"]
