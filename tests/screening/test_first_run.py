"""Empty and first-run states say what to do next; a viewer is shown no link that would refuse
her; 403, 404 and CSRF refusals keep the site's layout and explain (issue 10)."""

import re
from collections import deque

import pytest
from django.test import Client
from django.urls import reverse

from review.models import Membership, Record, Review, Role, Search

LAYOUT = '<header class="topbar">'


def test_an_empty_review_says_no_records_yet_with_links_to_search_or_import(client, review, alice):
    client.force_login(alice)
    html = client.get(reverse("screening:screen", args=[review.slug, "title_abstract"])).content.decode()
    assert "No records yet" in html and "All done" not in html
    assert reverse("review:search", args=[review.slug]) in html
    assert reverse("review:import", args=[review.slug]) in html


def test_an_empty_full_text_stage_points_back_to_title_abstract(client, review, bob):
    search = Search.objects.create(review=review, kind="file", source="Embase")
    Record.objects.create(review=review, search=search, source="Embase", title="Kratom cohort")
    client.force_login(bob)
    html = client.get(reverse("screening:screen", args=[review.slug, "full_text"])).content.decode()
    assert "No records at full text yet" in html and "All done" not in html
    assert reverse("screening:screen", args=[review.slug, "title_abstract"]) in html


def test_once_every_record_is_screened_it_says_all_done(client, review, bob):
    search = Search.objects.create(review=review, kind="file", source="Embase")
    record = Record.objects.create(review=review, search=search, source="Embase", title="Kratom cohort")
    client.force_login(bob)
    client.post(reverse("screening:decide", args=[review.slug, "title_abstract", record.pk]), {"decision": "exclude"})
    html = client.get(reverse("screening:screen", args=[review.slug, "title_abstract"])).content.decode()
    assert "All done at this stage" in html and "No records yet" not in html


def test_a_user_with_no_review_sees_how_to_start(client, dave):
    client.force_login(dave)
    html = client.get(reverse("review:list")).content.decode()
    assert "You are not a member of any review yet." in html
    assert f'<a class="btn btn-primary" href="{reverse("review:create")}">Create a review</a>' in html
    assert "import an export file" in html and "invite you" in html


def _links(html, slug):
    return set(re.findall(rf'href="(/r/{re.escape(slug)}/[^"#?]*)', html))


def _post_forms(html, slug):
    """The actions of the POST forms that reach the review (the log-out form does not)."""
    return set(re.findall(rf'<form[^>]*method="post"[^>]*action="(/r/{re.escape(slug)}/[^"]*)"', html))


def test_erin_the_viewer_is_shown_no_link_that_refuses_her(client, review, team, erin):
    client.force_login(erin)
    start = reverse("review:detail", args=[review.slug])
    seen, todo, refused, forms = {start}, deque([start]), [], set()
    while todo and len(seen) < 300:
        url = todo.popleft()
        response = client.get(url)
        if response.status_code in (403, 405):
            refused.append((url, response.status_code))
            continue
        if response.status_code == 200 and "text/html" in response.get("Content-Type", ""):
            html = response.content.decode()
            forms |= {(url, action) for action in _post_forms(html, review.slug)}
            for link in _links(html, review.slug) - seen:
                seen.add(link)
                todo.append(link)
    assert refused == []
    # Nor a form that changes something (a viewer changes nothing).
    assert forms == set()
    # The crawl did reach the pages a viewer reads, and not the screening pages.
    assert reverse("screening:records", args=[review.slug]) in seen
    assert reverse("screening:screen", args=[review.slug, "title_abstract"]) not in seen


def test_bob_the_reviewer_still_has_the_screening_links(client, review, team, bob):
    client.force_login(bob)
    html = client.get(reverse("review:detail", args=[review.slug])).content.decode()
    assert reverse("screening:screen", args=[review.slug, "title_abstract"]) in html
    assert reverse("screening:screen", args=[review.slug, "full_text"]) in html


def test_a_404_keeps_the_layout_and_explains(client, review, dave, settings):
    assert settings.DEBUG is False
    client.force_login(dave)
    response = client.get(reverse("review:detail", args=[review.slug]))
    html = response.content.decode()
    assert response.status_code == 404
    assert LAYOUT in html and "Page not found" in html and "not a member of" in html
    assert f'href="{reverse("review:list")}"' in html


def test_a_404_for_a_visitor_offers_to_log_in(client, settings):
    assert settings.DEBUG is False
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert LAYOUT in html and reverse("login") in html


def test_a_403_keeps_the_layout_and_says_why(client, review, erin, settings):
    assert settings.DEBUG is False
    client.force_login(erin)
    response = client.get(reverse("screening:screen", args=[review.slug, "title_abstract"]))
    html = response.content.decode()
    assert response.status_code == 403
    assert LAYOUT in html and "Not allowed" in html
    assert "Your role in this review does not allow this." in html
    assert "erin" in html  # the page around it knows who is logged in


def test_a_refused_form_keeps_the_layout_and_says_nothing_was_saved(review, alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(reverse("review:settings", args=[review.slug]), {"title": "Renamed"})
    html = response.content.decode()
    assert response.status_code == 403
    assert LAYOUT in html and "This form could not be sent" in html and "Nothing was saved" in html
    assert "alice" in html
    assert Review.objects.get(pk=review.pk).title == "Kratom for PTSD symptoms"


@pytest.mark.parametrize("role", [Role.VIEWER])
def test_a_viewers_dashboard_offers_no_search_or_import(client, review, team, erin, role):
    assert Membership.objects.get(review=review, user=erin).role == role
    client.force_login(erin)
    html = client.get(reverse("review:detail", args=[review.slug])).content.decode()
    assert reverse("review:search", args=[review.slug]) not in html
    assert reverse("review:import", args=[review.slug]) not in html
