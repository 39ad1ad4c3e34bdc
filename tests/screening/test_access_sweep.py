"""Every page and endpoint of a review, tried by an outsider and by a viewer."""

import pytest
from django.urls import reverse

from review.models import Event, Invitation, Membership, Record, RecordNote, RecordTag, Review, Tag
from screening.models import Decision, ExtractionField, ExtractionValue, Resolution
from tests.screening.test_blinding import sweep_urls

WRITE_FORM = {
    "decision": "include",
    "reason": "Wrong population",
    "note": "x",
    "name": "x",
    "text": "x",
    "email": "dave@example.org",
    "role": "owner",
    "into": "1",
    "query": "kratom",
    "title": "x",
    "kind": "text",
    "can_resolve": "on",
}
TABLES = (
    Decision,
    Resolution,
    Event,
    Membership,
    Invitation,
    Record,
    RecordTag,
    RecordNote,
    Tag,
    ExtractionField,
    ExtractionValue,
)


def snapshot():
    counts = {model.__name__: model.objects.count() for model in TABLES}
    counts["owners"] = Membership.objects.filter(role="owner").count()
    counts["pending invitations"] = Invitation.objects.pending().count()
    counts["review"] = list(Review.objects.values_list("title", "ta_blinding_lifted", "ft_blinding_lifted"))
    return counts


@pytest.fixture
def urls(review, team, other_review, erin):
    # dave owns another review, so he is a real, active user, just not a member of this one.
    # The review list and "new review" belong to no review: any logged-in user may use them.
    return [url for name, url in sweep_urls(review, team) if name not in ("review:list", "review:create")]


def test_dave_the_outsider_gets_404_everywhere_and_changes_nothing(client, review, team, urls, dave):
    client.force_login(dave)
    before = snapshot()
    answers = {}
    for url in urls:
        for method in (client.get, client.post):
            status = method(url, WRITE_FORM).status_code if method is client.post else method(url).status_code
            answers.setdefault(status, []).append((method.__name__, url))
    # 405 is a GET-only page refusing a POST before it looks anything up: no more is learnt.
    assert set(answers) <= {404, 405}, {k: v[:3] for k, v in answers.items() if k not in (404, 405)}
    assert len(answers[404]) > len(urls)
    assert snapshot() == before


def test_erin_the_viewer_reads_but_every_write_is_refused(client, review, team, urls, erin):
    client.force_login(erin)
    before = snapshot()
    accepted = []
    # A download of the records is a read a viewer may make, by GET or, for a set too big to stream
    # (the background job that writes the file they may see), by the POST of its confirmation.
    downloads = reverse("screening:records_export", args=[review.slug, "csv"]).removesuffix(".csv")
    for url in urls:
        status = client.post(url, WRITE_FORM, HTTP_HX_REQUEST="true").status_code
        if status not in (403, 404, 405) and not url.startswith(downloads):
            accepted.append((url, status))
    assert accepted == [], "\n".join(f"{u} {s}" for u, s in accepted)
    assert snapshot() == before
    # ... while the pages a viewer may read do answer.
    for page in ("", "records/", "prisma/", "extraction/", "searches/"):
        assert client.get(f"/r/{review.slug}/{page}").status_code == 200


def test_a_logged_out_visitor_is_sent_to_log_in(client, review, team, urls):
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
