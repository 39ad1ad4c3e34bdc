"""The full-text PDF beside the decision buttons, in Chromium, under the Content-Security-Policy."""

import pytest
from django.core.files.storage import FileSystemStorage
from django.urls import reverse

from review import fulltexts
from review.models import FullText, Record, Search
from tests.browser import log_in

# A one-page PDF with the text "Kratom full text" (written for this test).
PDF = b"""%PDF-1.4
1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj
2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj
3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 300 144] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >> endobj
4 0 obj << /Length 52 >> stream
BT /F1 18 Tf 20 70 Td (Kratom full text) Tj ET
endstream endobj
5 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj
trailer << /Root 1 0 R >>
%%EOF
"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_pdf_loads_in_its_frame_on_the_full_text_card(
    review, bob, live_server, browser_page, tmp_path, monkeypatch
):
    monkeypatch.setattr(FullText._meta.get_field("file"), "storage", FileSystemStorage(location=tmp_path / "ft"))
    search = Search.objects.create(review=review, kind="file", source="Embase")
    record = Record.objects.create(review=review, search=search, source="Embase", title="Kratom", ta_outcome="include")
    fulltexts.attach(record, PDF, filename="kratom.pdf", user=bob)
    page = browser_page
    violations, pdfs = [], []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "console.log('Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
    )
    pdf_url = reverse("screening:fulltext_pdf", args=[review.slug, record.pk])
    page.on("response", lambda r: pdfs.append((r.status, r.headers.get("content-type"))) if pdf_url in r.url else None)
    log_in(page, live_server, "bob")
    page.goto(live_server.url + reverse("screening:screen", args=[review.slug, "full_text"]) + f"?record={record.pk}")
    frame = page.wait_for_selector("iframe.fulltext-viewer")
    assert frame.is_visible()
    page.wait_for_function("() => performance.getEntriesByType('resource').some(e => e.name.includes('fulltext.pdf'))")
    page.wait_for_timeout(500)
    assert (200, "application/pdf") in pdfs
    # The frame holds the PDF (not an error page refusing to be framed).
    assert any(f.url.endswith(pdf_url) for f in page.frames)
    assert page.is_visible("button[name=decision][value=include]")
    assert violations == [], violations
    # Beside, not below: on a wide screen the PDF is to the right of the decision buttons, level
    # with them, both in sight at once.
    buttons = page.locator(".decision-buttons").bounding_box()
    viewer = frame.bounding_box()
    assert viewer["x"] >= buttons["x"] + buttons["width"], (buttons, viewer)
    assert viewer["y"] < buttons["y"] + buttons["height"] and viewer["y"] + viewer["height"] > buttons["y"]
    assert buttons["y"] + buttons["height"] <= 900 and viewer["y"] < 900
