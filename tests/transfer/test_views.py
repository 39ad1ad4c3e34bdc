"""alice exports the kratom review from its settings page and imports it from the "new review" page."""

import io

from django.contrib.auth import get_user_model
from django.urls import reverse

from review.models import Membership, Record, Review, Role, Search


def add_records(review):
    search = Search.objects.create(review=review, kind="file", source="Embase")
    Record.objects.bulk_create(
        Record(review=review, search=search, source="Embase", title=f"<script>x</script> cohort {i}") for i in range(3)
    )


def download(client, review):
    response = client.get(reverse("review:export", args=[review.slug]))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    return b"".join(response.streaming_content)


def test_alice_exports_the_review_and_imports_it_as_a_copy_she_owns(client, review, alice, dave):
    add_records(review)
    client.force_login(alice)
    settings_page = client.get(reverse("review:settings", args=[review.slug])).content.decode()
    assert reverse("review:export", args=[review.slug]) in settings_page
    assert reverse("transfer:import") in client.get(reverse("review:create")).content.decode()
    data = download(client, review)
    # dave imports it on "his" server: he owns the copy, the members come along.
    client.force_login(dave)
    upload = io.BytesIO(data)
    upload.name = "kratom.sieve.zip"
    response = client.post(reverse("transfer:import"), {"file": upload, "slug": "kratom-copy"})
    copy = Review.objects.get(slug="kratom-copy")
    assert response.status_code == 302 and response["Location"] == copy.get_absolute_url()
    assert copy.records.count() == 3
    assert set(copy.memberships.values_list("user__username", "role")) == {
        ("alice", Role.OWNER),
        ("bob", Role.REVIEWER),
        ("carol", Role.REVIEWER),
        ("dave", Role.OWNER),
    }
    assert "&lt;script&gt;" in client.get(reverse("screening:records", args=["kratom-copy"])).content.decode()


def test_only_the_owner_exports(client, review, bob, dave, erin):
    url = reverse("review:export", args=[review.slug])
    for user, status in ((bob, 403), (erin, 403), (dave, 404)):
        client.force_login(user)
        assert client.get(url).status_code == status
    client.logout()
    assert client.get(url).status_code == 302


def test_a_bad_file_is_shown_its_error_and_nothing_is_written(client, alice, db):
    client.force_login(alice)
    upload = io.BytesIO(b"TY  - JOUR\nER  - \n")
    upload.name = "records.ris"
    users = get_user_model().objects.count()

    response = client.post(reverse("transfer:import"), {"file": upload})

    assert response.status_code == 200
    assert "This is not a Sieve review file" in response.content.decode()
    assert Review.objects.count() == 0 and Membership.objects.count() == 0
    assert get_user_model().objects.count() == users


def test_the_import_page_needs_a_login(client, db):
    assert client.get(reverse("transfer:import")).status_code == 302
