"""Escaping helpers below the pages: PRISMA SVG text, keyword highlighting, imported links."""

import io
import xml.etree.ElementTree as ET

import pytest
from django.urls import reverse

from review import importing
from review.links import web_url
from review.models import Record
from screening.prisma import OtherMethods, PrismaCounts
from screening.prisma_svg import render_svg
from screening.templatetags.highlight import highlight_text

SVG = "{http://www.w3.org/2000/svg}"
TITLE = 'Kratom </title><script>alert(1)</script> & "PTSD"\x01'
SOURCE = "<img src=x onerror=alert(1)> Embase"
REASON = "</text><script>alert(2)</script>"


def test_the_prisma_svg_keeps_title_source_and_reason_as_text():
    counts = PrismaCounts(
        databases_identified={SOURCE: 3},
        records_screened=3,
        reports_excluded={REASON: 1},
        # The other-methods column and a short search's note carry typed text too.
        other=OtherMethods(identified={SOURCE: 2}, reports_excluded={REASON: 1}),
        source_notes={SOURCE: "1 of 9 found; limited to <script>alert(3)</script>"},
    )
    svg = render_svg(counts, title=TITLE)
    assert "<script" not in svg and "<img" not in svg
    root = ET.fromstring(svg.split("\n", 1)[1])  # parses: nothing broke out of its element
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "<img src=x onerror=alert(1)> Embase" in texts
    assert "</text><script>alert(2)</script>" in texts
    assert "limited to <script>alert(3)</script>" in texts
    assert root.find(f"{SVG}title").text == 'Kratom </title><script>alert(1)</script> & "PTSD"'


def test_highlighting_escapes_the_text_and_the_keywords():
    html = highlight_text('<b onclick="x">kratom</b> <script>', include=["<b"], exclude=["kratom"])
    assert html == (
        '<mark class="kw-include">&lt;b</mark> onclick=&quot;x&quot;&gt;'
        '<mark class="kw-exclude">kratom</mark>&lt;/b&gt; &lt;script&gt;'
    )
    assert highlight_text("<i>plain</i>") == "&lt;i&gt;plain&lt;/i&gt;"


HOSTILE = [
    "javascript:alert(1)",
    "JAVASCRIPT:alert(1)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "\x00\x01 javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "DATA:text/html;base64,PHNjcmlwdD4=",
    "vbscript:msgbox(1)",
    "//evil.example/x",
    "/relative/path",
    "http:/missing-host",
    "ftp://files.example.org/a.pdf",
]


@pytest.mark.parametrize("url", HOSTILE)
def test_a_link_that_is_not_http_or_https_is_refused(url):
    assert web_url(url) == ""


@pytest.mark.parametrize("url", ["https://doi.org/10.1/x", "HTTP://Example.org/a?b=1&c=2", "  https://x.org/ "])
def test_web_links_are_kept(url):
    assert web_url(url) == url.strip()


def test_an_imported_javascript_link_is_neither_stored_nor_rendered(client, review, alice):
    ris = "".join(
        f"TY  - JOUR\nTI  - Study {word} of kratom\nPY  - 20{n:02}\nUR  - {url}\nER  - \n\n"
        for n, (word, url) in enumerate(
            zip(("alpha", "beta", "gamma"), ("javascript:alert(1)", "https://example.org/a", " data:text/html,x"))
        )
    )
    importing.import_file(review=review, fileobj=io.BytesIO(ris.encode()), filename="x.ris", source="Embase")
    urls = dict(Record.objects.filter(review=review).values_list("title", "url"))
    assert urls == {
        "Study alpha of kratom": "",
        "Study beta of kratom": "https://example.org/a",
        "Study gamma of kratom": "",
    }
    # A record holding such a link from before is shown without it.
    record = Record.objects.get(review=review, title="Study alpha of kratom")
    Record.objects.filter(pk=record.pk).update(url=" JAVASCRIPT:alert(1)")
    client.force_login(alice)
    page = client.get(reverse("review:record", args=[review.slug, record.pk])).content.decode()
    assert "alert(1)" not in page
    good = Record.objects.get(review=review, title="Study beta of kratom")
    page = client.get(reverse("review:record", args=[review.slug, good.pk])).content.decode()
    assert 'href="https://example.org/a"' in page
