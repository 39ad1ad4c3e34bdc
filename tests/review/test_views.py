import csv
import io

import pytest
import rispy
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import resolve as resolve_url
from django.urls import reverse
from django.utils.html import escape

from review import importing
from review.models import Event, Invitation, Job, Membership, Record, Review, Role, Search, Stage
from screening.decisions import record_decision, resolve
from screening.models import Decision
from tests.eutils_server import Fault, eutils_server, fixture_records  # noqa: F401 (fixture)
from tests.shared import shared

ZOTERO = ("fixtures", "exports", "pubmed_zotero.ris")
# The same 100 records exported by EndNote and by Zotero: the second import is all duplicates.
ENDNOTE = ("fixtures", "exports", "baseline_endnote.ris")
ZOTERO_100 = ("fixtures", "exports", "baseline_zotero.ris")
TA = Stage.TITLE_ABSTRACT


def ris_count(*parts):
    with open(shared(*parts), encoding="utf-8-sig") as f:
        return len(rispy.load(f))


def import_fixture(review, user, *parts):
    return importing.import_file(review=review, path=shared(*parts), user=user)


@pytest.fixture
def records(review, alice):
    """The six PubMed records of Zotero's RIS export, imported by alice."""
    import_fixture(review, alice, *ZOTERO)
    return list(Record.objects.filter(review=review).order_by("pk"))


def login(client, user):
    client.force_login(user)
    return client


def page(response):
    return response.content.decode()


# Every page, with the method that reaches it, for the access tests.
def urls(review, record):
    s, pk = review.slug, record.pk
    return [
        ("get", reverse("review:detail", args=[s])),
        ("get", reverse("review:settings", args=[s])),
        ("post", reverse("review:settings", args=[s])),
        ("get", reverse("review:search", args=[s])),
        ("post", reverse("review:search", args=[s])),
        ("get", reverse("review:import", args=[s])),
        ("post", reverse("review:import", args=[s])),
        ("post", reverse("review:import_count", args=[s])),
        ("get", reverse("review:searches", args=[s])),
        ("get", reverse("review:searches_csv", args=[s])),
        ("get", reverse("review:duplicates", args=[s])),
        ("get", reverse("review:record", args=[s, pk])),
        ("post", reverse("review:unmerge", args=[s, pk])),
        ("post", reverse("review:merge", args=[s, pk])),
        ("get", reverse("review:members", args=[s])),
        ("post", reverse("review:member_invite", args=[s])),
        ("post", reverse("review:member_role", args=[s, review.memberships.first().pk])),
        ("post", reverse("review:member_remove", args=[s, review.memberships.first().pk])),
    ]


# --- Access ---------------------------------------------------------------------------------


def test_it_sends_logged_out_visitors_to_the_login_page(client, review, records):
    for method, url in urls(review, records[0]) + [("get", reverse("review:list")), ("get", reverse("review:create"))]:
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_dave_the_outsider_gets_404_everywhere_in_alices_review(client, review, records, dave):
    login(client, dave)
    for method, url in urls(review, records[0]):
        assert getattr(client, method)(url).status_code == 404, f"{method} {url}"
    assert Membership.objects.filter(review=review).count() == 3


def test_an_unknown_review_looks_the_same_as_a_forbidden_one(client, dave):
    login(client, dave)
    assert client.get(reverse("review:detail", args=["no-such-review"])).status_code == 404


def test_a_viewer_reads_but_cannot_write(client, review, records, dave):
    Membership.objects.create(review=review, user=dave, role=Role.VIEWER)
    login(client, dave)
    writes = {
        "review:settings",
        "review:search",
        "review:import",
        "review:import_count",
        "review:unmerge",
        "review:merge",
        "review:members",
        "review:member_invite",
        "review:member_role",
        "review:member_remove",
    }
    for method, url in urls(review, records[0]):
        status = getattr(client, method)(url).status_code
        assert status == (403 if resolve_url(url).view_name in writes else 200), f"{method} {url}"


def test_bob_the_reviewer_may_not_change_settings_or_members(client, review, bob):
    login(client, bob)
    assert client.get(reverse("review:settings", args=[review.slug])).status_code == 403
    assert client.get(reverse("review:members", args=[review.slug])).status_code == 403
    assert (
        client.post(
            reverse("review:member_invite", args=[review.slug]), {"email": "bob@example.org", "role": "owner"}
        ).status_code
        == 403
    )
    assert Membership.objects.get(review=review, user=bob).role == Role.REVIEWER


# --- Login and the review list ----------------------------------------------------------------


def test_alice_logs_in_and_sees_only_her_reviews(client, review, other_review, records, alice):
    assert "Log in" in page(client.get(reverse("login")))
    response = client.post(reverse("login"), {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 302
    assert response["Location"] == reverse("review:list")
    response = client.get(reverse("review:list"))
    assert [(r.slug, r.n_records, r.n_members) for r in response.context["reviews"]] == [
        (review.slug, ris_count(*ZOTERO), 3)
    ]
    assert review.title in page(response)
    assert other_review.title not in page(response)


def test_a_wrong_password_is_refused_with_a_message(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "correct username and password" in page(response)


# --- Creating and editing a review ---------------------------------------------------------------


def test_dave_creates_a_review_and_becomes_its_owner(client, dave):
    login(client, dave)
    response = client.post(
        reverse("review:create"),
        {
            "title": "Exercise for knee osteoarthritis",
            "slug": "",
            "question": "Does exercise help?",
            "exclusion_reasons": "Wrong population\nNot an RCT",
            "include_keywords": "exercise",
            "title_abstract_reviewers": 2,
            "full_text_reviewers": 1,
            "maybe_counts_as_include": "on",
        },
    )
    review = Review.objects.get(title="Exercise for knee osteoarthritis")
    assert response["Location"] == reverse("review:detail", args=[review.slug])
    assert review.slug == "exercise-for-knee-osteoarthritis"
    assert review.reasons_list() == ["Wrong population", "Not an RCT"]
    assert review.title_abstract_reviewers == 2
    assert review.role_of(dave) == Role.OWNER


def test_it_refuses_a_slug_another_review_has(client, review, dave):
    login(client, dave)
    response = client.post(
        reverse("review:create"),
        {
            "title": "Copycat",
            "slug": review.slug,
            "title_abstract_reviewers": 1,
            "full_text_reviewers": 1,
        },
    )
    assert response.status_code == 200
    assert "already exists" in page(response)
    assert not Review.objects.filter(title="Copycat").exists()


def test_a_second_review_with_the_same_title_gets_a_free_slug(alice):
    from review.reviews import create_review

    first = create_review(slug="", title="Kratom for PTSD", owner=alice)
    second = create_review(slug="", title="Kratom for PTSD", owner=alice)
    assert (first.slug, second.slug) == ("kratom-for-ptsd", "kratom-for-ptsd-2")
    with pytest.raises(ValueError, match="not a valid slug"):
        create_review(slug="no spaces please", title="X", owner=alice)


def test_alice_edits_the_settings_and_it_is_logged(client, review, alice):
    login(client, alice)
    url = reverse("review:settings", args=[review.slug])
    assert "Kratom for PTSD symptoms" in page(client.get(url))
    response = client.post(
        url,
        {
            "title": review.title,
            "inclusion_criteria": "Adults with PTSD",
            "exclusion_reasons": "Animal study",
            "include_keywords": review.include_keywords,
            "exclude_keywords": review.exclude_keywords,
            "title_abstract_reviewers": 2,
            "full_text_reviewers": 2,
        },
    )
    assert response.status_code == 302
    review.refresh_from_db()
    assert review.inclusion_criteria == "Adults with PTSD"
    assert review.slug == "kratom-ptsd"
    event = Event.objects.get(review=review, kind=Event.Kind.SETTINGS)
    assert "inclusion_criteria" in event.detail["changed"]


def test_asking_for_a_second_reviewer_reopens_records_one_reviewer_decided(client, review, records, alice, bob):
    record_decision(record=records[0], reviewer=bob, stage=TA, decision="include")
    records[0].refresh_from_db()
    assert records[0].ta_outcome == "include"
    login(client, alice)
    form = {
        "title": review.title,
        "exclusion_reasons": review.exclusion_reasons,
        "title_abstract_reviewers": 2,
        "full_text_reviewers": 1,
        "maybe_counts_as_include": "on",
        # Outcomes move: the settings page asks first, and this is the confirmation.
        "confirm": "1",
    }
    client.post(reverse("review:settings", args=[review.slug]), form)
    records[0].refresh_from_db()
    assert records[0].ta_outcome == ""


# --- Overview ---------------------------------------------------------------------------------


def test_the_overview_counts_records_duplicates_and_bobs_progress(client, review, bob, alice):
    import_fixture(review, alice, *ENDNOTE)
    import_fixture(review, alice, *ZOTERO_100)
    identified = ris_count(*ENDNOTE) + ris_count(*ZOTERO_100)
    duplicates = Record.objects.filter(review=review, duplicate_of__isnull=False).count()
    unique = list(Record.objects.filter(review=review, duplicate_of__isnull=True))
    record_decision(record=unique[0], reviewer=bob, stage=TA, decision="include")
    record_decision(record=unique[1], reviewer=bob, stage=TA, decision="exclude")
    login(client, bob)
    response = client.get(reverse("review:detail", args=[review.slug]))
    status = response.context["status"]
    assert (status["records"], status["duplicates"], status["unique"]) == (identified, duplicates, len(unique))
    assert duplicates > 0
    assert (status["title_abstract"]["included"], status["title_abstract"]["excluded"]) == (1, 1)
    assert status["title_abstract"]["pending"] == len(unique) - 2
    html = page(response)
    assert f"You: 2 screened, {len(unique) - 2} left for you" in html
    assert f"Team: 2 of {len(unique)} records decided" in html
    assert "baseline_zotero.ris" in html  # latest imports


def test_the_overview_query_count_does_not_grow_with_records(client, review, alice, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    login(client, alice)
    import_fixture(review, alice, *ZOTERO)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("review:detail", args=[review.slug]))
    import_fixture(review, alice, "fixtures", "exports", "baseline_endnote.ris")
    with django_assert_max_num_queries(len(few)):
        client.get(reverse("review:detail", args=[review.slug]))


# --- PubMed search ----------------------------------------------------------------------------


def test_bob_searches_pubmed_and_the_records_arrive(client, review, bob, eutils_server, inline_worker):  # noqa: F811
    expected = len(fixture_records())
    login(client, bob)
    url = reverse("review:search", args=[review.slug])
    review.pubmed_query = "kratom[tiab]"
    review.save()
    assert "kratom[tiab]" in page(client.get(url))
    response = client.post(
        url, {"query": "kratom[tiab]", "mindate": "", "maxdate": "", "max_records": 100}, follow=True
    )
    search = Search.objects.get(review=review)
    assert (search.kind, search.hits, search.added, search.run_by) == ("pubmed", expected, expected, bob)
    assert Record.objects.filter(review=review).count() == expected
    assert f"{expected} records added" in page(response)


def test_a_pubmed_failure_is_shown_on_the_job_page_and_nothing_is_stored(
    client,
    review,
    bob,
    eutils_server,  # noqa: F811
    inline_worker,
):
    eutils_server.plan("esearch", [Fault(status=400)], forever=True)
    login(client, bob)
    response = client.post(
        reverse("review:search", args=[review.slug]),
        {"query": "kratom", "mindate": "", "maxdate": "", "max_records": 10},
        follow=True,
    )
    job = Job.objects.get(review=review)
    assert response.redirect_chain == [(job.get_absolute_url(), 302)]
    assert job.status == Job.Status.FAILED and "PubMed" in job.error
    assert escape(job.error) in page(response)
    assert not Search.objects.filter(review=review).exists()


def test_the_search_form_wants_pubmed_dates(client, review, bob):
    login(client, bob)
    response = client.post(
        reverse("review:search", args=[review.slug]),
        {"query": "kratom", "mindate": "2020-13", "maxdate": "2019", "max_records": 10},
    )
    assert "not a date PubMed accepts" in page(response)
    response = client.post(
        reverse("review:search", args=[review.slug]),
        {"query": "kratom", "mindate": "2021", "maxdate": "2019/06", "max_records": 10},
    )
    assert "before the start date" in page(response)


# --- File import and the search log ------------------------------------------------------------


def test_carol_uploads_an_ris_export(client, review, carol, inline_worker):
    login(client, carol)
    path = shared(*ZOTERO)
    upload = SimpleUploadedFile(path.name, path.read_bytes())
    response = client.post(
        reverse("review:import", args=[review.slug]), {"file": upload, "source": "PubMed via Zotero"}, follow=True
    )
    expected = ris_count(*ZOTERO)
    search = Search.objects.get(review=review)
    assert (search.source, search.filename, search.added) == ("PubMed via Zotero", path.name, expected)
    assert f"{expected} records added" in page(response)
    job = Job.objects.get(review=review)
    assert response.redirect_chain[-1][0] == job.get_absolute_url()
    assert (job.status, job.search, job.created_by) == (Job.Status.DONE, search, carol)


def test_what_the_importer_could_not_read_is_shown_as_a_warning(client, review, carol, inline_worker):
    login(client, carol)
    path = shared("fixtures", "exports", "faulty_year.ris")
    response = client.post(
        reverse("review:import", args=[review.slug]),
        {"file": SimpleUploadedFile(path.name, path.read_bytes())},
        follow=True,
    )
    warnings = Job.objects.get(review=review).notes
    assert warnings and warnings[0].startswith("faulty_year.ris: record 1")
    assert escape(warnings[0]) in page(response)


def test_a_broken_file_is_refused_with_its_name_and_nothing_is_imported(client, review, carol, inline_worker, settings):
    login(client, carol)
    data = shared("fixtures", "exports", "pubmed.xml").read_bytes()
    broken = data[: len(data) // 2]
    response = client.post(
        reverse("review:import", args=[review.slug]), {"file": SimpleUploadedFile("half.xml", broken)}, follow=True
    )
    job = Job.objects.get(review=review)
    assert job.status == Job.Status.FAILED and job.error.startswith("half.xml")
    assert escape(job.error) in page(response)
    assert not list(settings.SIEVE_UPLOAD_DIR.iterdir())  # the saved upload is gone too
    assert Record.objects.filter(review=review).count() == 0
    assert not Search.objects.filter(review=review).exists()


def test_the_search_log_lists_every_import_and_downloads_as_csv(client, review, alice, bob):
    import_fixture(review, alice, *ENDNOTE)
    import_fixture(review, alice, *ZOTERO_100)
    login(client, bob)
    html = page(client.get(reverse("review:searches", args=[review.slug])))
    assert "baseline_endnote.ris" in html and "baseline_zotero.ris" in html
    response = client.get(reverse("review:searches_csv", args=[review.slug]))
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="kratom-ptsd-search-log.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert len(rows) == 1 + Search.objects.filter(review=review).count()


# --- Record detail, blinding and duplicates -----------------------------------------------------


def decisions_shown(response):
    return {(d.reviewer.username, d.decision) for d in response.context["decisions"]}


def test_it_hides_carols_vote_from_bob_until_the_record_is_reconciled(client, review, records, alice, bob, carol):
    review.title_abstract_reviewers = 2
    review.save()
    record = records[0]
    record_decision(record=record, reviewer=carol, stage=TA, decision="exclude")
    url = reverse("review:record", args=[review.slug, record.pk])
    login(client, bob)
    response = client.get(url)
    assert decisions_shown(response) == set()
    assert not [e for e, _ in response.context["events"] if e.kind == Event.Kind.DECISION]

    record_decision(record=record, reviewer=bob, stage=TA, decision="include")
    record.refresh_from_db()
    assert record.ta_outcome == "conflict"
    response = client.get(url)
    assert decisions_shown(response) == {("bob", "include")}
    assert {e.actor.username for e, _ in response.context["events"] if e.kind == Event.Kind.DECISION} == {"bob"}

    # alice, the owner, sees both votes to resolve the conflict.
    login(client, alice)
    assert decisions_shown(client.get(url)) == {("bob", "include"), ("carol", "exclude")}
    resolve(record=record, stage=TA, decision="include", user=alice)

    login(client, bob)
    response = client.get(url)
    assert decisions_shown(response) == {("bob", "include"), ("carol", "exclude")}
    assert "Title/abstract: Exclude" in page(response)


def test_the_record_page_shows_metadata_and_links(client, review, alice, bob):
    import_fixture(review, alice, "fixtures", "exports", "pubmed.xml")
    record = Record.objects.filter(review=review).exclude(pmid="").exclude(doi="").first()
    login(client, bob)
    html = page(client.get(reverse("review:record", args=[review.slug, record.pk])))
    assert f"https://pubmed.ncbi.nlm.nih.gov/{record.pmid}/" in html
    assert f"https://doi.org/{record.doi}" in html
    assert record.authors[0] in html


def test_bob_unlinks_a_false_duplicate_and_links_it_back(client, review, alice, bob):
    import_fixture(review, alice, *ENDNOTE)
    import_fixture(review, alice, *ZOTERO_100)
    dup = Record.objects.filter(review=review, duplicate_of__isnull=False).first()
    original = dup.duplicate_of
    login(client, bob)
    html = page(client.get(reverse("review:record", args=[review.slug, original.pk])))
    assert reverse("review:record", args=[review.slug, dup.pk]) in html

    client.post(reverse("review:unmerge", args=[review.slug, dup.pk]))
    dup.refresh_from_db()
    assert (dup.duplicate_of_id, dup.not_duplicate) == (None, True)

    client.post(reverse("review:merge", args=[review.slug, dup.pk]), {"into": original.pk})
    dup.refresh_from_db()
    assert (dup.duplicate_of_id, dup.duplicate_reason) == (original.pk, "manual")
    kinds = [e.kind for e in Event.objects.filter(record=dup).order_by("pk")]
    assert kinds[-2:] == [Event.Kind.UNMERGE, Event.Kind.MERGE]


def test_a_record_cannot_be_merged_into_another_reviews_record(client, review, other_review, records, alice, dave):
    import_fixture(other_review, dave, *ZOTERO)
    foreign = Record.objects.filter(review=other_review).first()
    login(client, alice)
    response = client.post(
        reverse("review:merge", args=[review.slug, records[0].pk]), {"into": foreign.pk}, follow=True
    )
    assert f"There is no record #{foreign.pk} in this review" in page(response)
    records[0].refresh_from_db()
    assert records[0].duplicate_of_id is None


def test_the_duplicates_page_groups_copies_and_undoes_with_htmx(client, review, alice, bob):
    import_fixture(review, alice, *ENDNOTE)
    import_fixture(review, alice, *ZOTERO_100)
    dups = list(Record.objects.filter(review=review, duplicate_of__isnull=False))
    login(client, bob)
    response = client.get(reverse("review:duplicates", args=[review.slug]))
    assert response.context["page"].paginator.count == len(dups)
    html = page(response)
    for d in dups:
        assert reverse("review:record", args=[review.slug, d.duplicate_of_id]) in html
    response = client.post(reverse("review:unmerge", args=[review.slug, dups[0].pk]), HTTP_HX_REQUEST="true")
    assert (response.status_code, response.content) == (200, b"")
    assert Record.objects.filter(review=review, duplicate_of__isnull=False).count() == len(dups) - 1


# --- Members ---------------------------------------------------------------------------------------


def test_alice_invites_dave_who_accepts_and_she_changes_his_role(client, review, alice, dave):
    login(client, alice)
    client.post(reverse("review:member_invite", args=[review.slug]), {"email": "DAVE@example.org", "role": "viewer"})
    assert not Membership.objects.filter(review=review, user=dave).exists()
    login(client, dave)
    [invitation] = Invitation.objects.for_invitee(dave)
    client.post(reverse("invitations:accept_listed", args=[invitation.pk]))
    member = Membership.objects.get(review=review, user=dave)
    assert member.role == Role.VIEWER
    login(client, alice)
    client.post(reverse("review:member_role", args=[review.slug, member.pk]), {f"m{member.pk}-role": "reviewer"})
    member.refresh_from_db()
    assert member.role == Role.REVIEWER
    html = page(client.get(reverse("review:members", args=[review.slug])))
    assert "dave@example.org" in html


def test_inviting_a_username_says_to_give_an_address(client, review, alice):
    login(client, alice)
    response = client.post(reverse("review:member_invite", args=[review.slug]), {"email": "zed", "role": "reviewer"})
    assert "&#x27;zed&#x27; is not an email address: invite people by their email address." in page(response)


def test_removing_bob_keeps_his_decisions(client, review, records, alice, bob):
    record_decision(record=records[0], reviewer=bob, stage=TA, decision="include")
    member = Membership.objects.get(review=review, user=bob)
    login(client, alice)
    client.post(reverse("review:member_remove", args=[review.slug, member.pk]))
    assert not Membership.objects.filter(review=review, user=bob).exists()
    assert Decision.objects.filter(reviewer=bob, record=records[0]).count() == 1
    assert Event.objects.filter(review=review, kind=Event.Kind.MEMBER, detail__user="bob").exists()


def test_the_last_owner_cannot_leave_or_step_down(client, review, alice):
    member = Membership.objects.get(review=review, user=alice)
    login(client, alice)
    response = client.post(reverse("review:member_remove", args=[review.slug, member.pk]), follow=True)
    assert "at least one owner" in page(response)
    client.post(reverse("review:member_role", args=[review.slug, member.pk]), {f"m{member.pk}-role": "viewer"})
    member.refresh_from_db()
    assert member.role == Role.OWNER


def test_nav_links_every_section(client, review, bob):
    login(client, bob)
    html = page(client.get(reverse("review:detail", args=[review.slug])))
    for name, args in [
        ("screening:records", [review.slug]),
        ("screening:prisma", [review.slug]),
        ("screening:extraction", [review.slug]),
        ("review:searches", [review.slug]),
        ("screening:screen", [review.slug, "title_abstract"]),
        ("screening:screen", [review.slug, "full_text"]),
    ]:
        assert f'href="{reverse(name, args=args)}"' in html
    assert f'href="{reverse("review:detail", args=[review.slug])}" aria-current="page"' in html


def test_alice_steps_down_once_bob_is_an_owner_too(client, review, alice, bob):
    Membership.objects.filter(review=review, user=bob).update(role=Role.OWNER)
    member = Membership.objects.get(review=review, user=alice)
    login(client, alice)
    response = client.post(
        reverse("review:member_role", args=[review.slug, member.pk]), {f"m{member.pk}-role": "reviewer"}
    )
    assert response["Location"] == reverse("review:detail", args=[review.slug])
    assert review.role_of(alice) == Role.REVIEWER
