import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from review import annotations
from review.annotations import AnnotationError
from review.models import Event, Membership, Record, RecordNote, RecordTag, Role, Stage, Tag
from screening.models import Decision
from tests.browser import log_in, wait_until_wired
from tests.screening.test_queue import import_ris, unique_pks

TA = Stage.TITLE_ABSTRACT
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def erin(review):
    """A viewer: reads everything, annotates nothing."""
    user = get_user_model().objects.create_user("erin", "erin@example.org", "pw-erin")
    Membership.objects.create(review=review, user=user, role=Role.VIEWER)
    return user


@pytest.fixture
def imported(review):
    """The 99 records of EndNote's baseline export, and Zotero's copies of them (duplicates)."""
    import_ris(review, "baseline_endnote.ris", "EndNote")
    import_ris(review, "baseline_zotero.ris", "Zotero")
    return review


def records(review, n):
    return [Record.objects.get(pk=pk) for pk in unique_pks(review)[:n]]


def tag_events(record=None):
    events = Event.objects.filter(kind=Event.Kind.TAG).order_by("pk")
    if record is not None:
        events = events.filter(record=record)
    return [(e.actor.username, e.detail) for e in events]


def record_url(name, record, *args):
    return reverse(f"review:{name}", args=[record.review.slug, record.pk, *args])


# The plain functions ----------------------------------------------------------------------------


def test_bob_tags_a_record_and_carol_reuses_his_tag_whatever_the_case(imported, bob, carol):
    first, second = records(imported, 2)
    tag = annotations.add_tag(first, "  Animal \t study ", user=bob)
    assert tag.name == "Animal study"
    again = annotations.add_tag(second, "animal STUDY", user=carol)
    assert again.pk == tag.pk and Tag.objects.filter(review=imported).count() == 1
    assert list(tag.records.order_by("pk")) == [first, second]
    assert RecordTag.objects.get(record=second, tag=tag).added_by == carol
    assert tag_events() == [("bob", {"added": "Animal study"}), ("carol", {"added": "Animal study"})]


def test_tagging_twice_changes_nothing_and_logs_once(imported, bob, carol):
    (first,) = records(imported, 1)
    annotations.add_tag(first, "check full text", user=bob)
    annotations.add_tag(first, "Check Full Text", user=carol)
    assert RecordTag.objects.filter(record=first).count() == 1
    assert tag_events(first) == [("bob", {"added": "check full text"})]


def test_a_tag_name_must_be_short_and_not_blank(imported, bob):
    (first,) = records(imported, 1)
    limit = Tag._meta.get_field("name").max_length
    annotations.add_tag(first, "x" * limit, user=bob)
    with pytest.raises(AnnotationError, match=f"at most {limit} characters"):
        annotations.add_tag(first, "y" * (limit + 1), user=bob)
    with pytest.raises(AnnotationError, match="needs a name"):
        annotations.add_tag(first, " \n ", user=bob)
    assert list(Tag.objects.values_list("name", flat=True)) == ["x" * limit]


def test_removing_a_tag_keeps_it_in_the_review_and_logs_it(imported, bob, carol):
    first, second = records(imported, 2)
    tag = annotations.add_tag(first, "Rat study", user=bob)
    annotations.add_tag(second, "Rat study", user=bob)
    assert annotations.remove_tag(first, tag, user=carol) is True
    assert annotations.remove_tag(first, tag, user=carol) is False
    assert list(first.tags.all()) == [] and list(second.tags.all()) == [tag]
    assert tag_events(first) == [("bob", {"added": "Rat study"}), ("carol", {"removed": "Rat study"})]


def test_a_tag_of_another_review_cannot_be_removed_here(imported, other_review, bob, dave):
    import_ris(other_review, "pubmed_zotero.ris", "Zotero")
    theirs = annotations.add_tag(Record.objects.filter(review=other_review).first(), "theirs", user=dave)
    (first,) = records(imported, 1)
    with pytest.raises(AnnotationError, match="another review"):
        annotations.remove_tag(first, theirs, user=bob)


def test_a_note_is_stored_with_its_author_and_logged(imported, bob):
    (first,) = records(imported, 1)
    note = annotations.add_note(first, "  Same cohort as the 2019 paper?\n", user=bob)
    assert (note.author, note.text) == (bob, "Same cohort as the 2019 paper?")
    event = Event.objects.get(kind=Event.Kind.NOTE)
    assert (event.record, event.actor, event.detail) == (first, bob, {"text": note.text, "note_id": note.pk})
    with pytest.raises(AnnotationError, match="needs some text"):
        annotations.add_note(first, "   ", user=bob)
    assert RecordNote.objects.count() == 1


def test_alice_renames_merges_and_deletes_tags(imported, alice, bob):
    first, second, third = records(imported, 3)
    rats = annotations.add_tag(first, "rats", user=bob)
    annotations.add_tag(second, "rats", user=bob)
    rodents = annotations.add_tag(second, "Rodents", user=bob)
    annotations.add_tag(third, "Rodents", user=bob)
    assert annotations.rename_tag(rats, "Rat studies", user=alice).pk == rats.pk
    assert Tag.objects.get(pk=rats.pk).name == "Rat studies"
    # A name another tag has (in any case) merges: second had both and keeps one link.
    kept = annotations.rename_tag(rats, "rodents", user=alice)
    assert kept.pk == rodents.pk and kept.name == "Rodents"
    assert not Tag.objects.filter(pk=rats.pk).exists()
    assert sorted(rodents.records.values_list("pk", flat=True)) == [first.pk, second.pk, third.pk]
    assert annotations.delete_tag(rodents, user=alice) == 3
    assert not RecordTag.objects.exists()
    assert tag_events(third)[-1] == ("alice", {"removed": "Rodents", "tag_deleted": True})
    review_level = [detail for _, detail in tag_events() if "deleted" in detail or "renamed" in detail]
    assert review_level == [
        {"renamed": "rats", "to": "Rat studies"},
        {"renamed": "Rat studies", "to": "Rodents", "merged": True, "records": 1},
        {"deleted": "Rodents", "records": 3},
    ]


# Views --------------------------------------------------------------------------------------------


def test_bob_tags_without_javascript_and_comes_back(client, imported, bob):
    (first,) = records(imported, 1)
    client.force_login(bob)
    back = record_url("record", first) + "?from=list"
    response = client.post(record_url("tag_add", first), {"name": "Kratom use", "next": back})
    assert response.status_code == 302 and response["Location"] == back
    page = client.get(back).content.decode()
    assert "Kratom use" in page and "The whole team sees these tags and notes" in page


def test_an_unsafe_next_goes_to_the_record_page_instead(client, imported, bob):
    (first,) = records(imported, 1)
    client.force_login(bob)
    response = client.post(record_url("note_add", first), {"text": "see erratum", "next": "https://evil.example/"})
    assert response["Location"] == record_url("record", first)


def test_htmx_gets_the_annotations_block_only(client, imported, bob):
    first, second = records(imported, 2)
    annotations.add_tag(second, "Review article", user=bob)
    client.force_login(bob)
    response = client.post(record_url("tag_add", first), {"name": "review ARTICLE"}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith(f'<section class="card annotations" id="annotations-{first.pk}"')
    assert "<html" not in body and "Review article" in body
    tag = Tag.objects.get()
    assert record_url("tag_remove", first, tag.pk) in body
    response = client.post(record_url("tag_remove", first, tag.pk), **HTMX)
    assert response.status_code == 200 and record_url("tag_remove", first, tag.pk) not in response.content.decode()
    # Still suggested for the next record: the tag belongs to the review.
    assert '<option value="Review article">' in response.content.decode()


def test_htmx_shows_the_error_in_the_block_and_keeps_the_text(client, imported, bob):
    (first,) = records(imported, 1)
    client.force_login(bob)
    long_note = "n" * (annotations.NOTE_MAX_LENGTH + 1)
    response = client.post(record_url("note_add", first), {"text": long_note}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 400 and "at most 5000 characters" in body and long_note in body
    response = client.post(record_url("tag_add", first), {"name": ""})
    assert response.status_code == 302
    assert "A tag needs a name." in client.get(response["Location"]).content.decode()
    assert not RecordNote.objects.exists() and not Tag.objects.exists()


def test_notes_show_their_author_and_time_to_the_whole_team(client, imported, bob, carol):
    (first,) = records(imported, 1)
    client.force_login(bob)
    client.post(record_url("note_add", first), {"text": "Mixed sample: adults <18 included"})
    note = RecordNote.objects.get()
    client.force_login(carol)
    page = client.get(record_url("record", first)).content.decode()
    assert "Mixed sample: adults &lt;18 included" in page
    assert f'bob · <time datetime="{note.created_at.isoformat()}' in page


def test_erin_the_viewer_reads_but_cannot_annotate(client, imported, bob, erin):
    (first,) = records(imported, 1)
    tag = annotations.add_tag(first, "Qualitative", user=bob)
    annotations.add_note(first, "Ask the authors for data", user=bob)
    client.force_login(erin)
    page = client.get(record_url("record", first)).content.decode()
    assert "Qualitative" in page and "Ask the authors for data" in page
    assert record_url("tag_add", first) not in page and record_url("tag_remove", first, tag.pk) not in page
    assert client.post(record_url("tag_add", first), {"name": "mine"}).status_code == 403
    assert client.post(record_url("tag_remove", first, tag.pk)).status_code == 403
    assert client.post(record_url("note_add", first), {"text": "mine"}).status_code == 403
    assert client.post(reverse("review:tag_rename", args=[imported.slug, tag.pk]), {"name": "x"}).status_code == 403
    assert client.post(reverse("review:tag_delete", args=[imported.slug, tag.pk])).status_code == 403
    assert list(first.tags.values_list("name", flat=True)) == ["Qualitative"] and RecordNote.objects.count() == 1


def test_dave_the_outsider_gets_404(client, imported, bob, dave):
    (first,) = records(imported, 1)
    tag = annotations.add_tag(first, "Qualitative", user=bob)
    client.force_login(dave)
    for url, data in [
        (record_url("tag_add", first), {"name": "x"}),
        (record_url("tag_remove", first, tag.pk), {}),
        (record_url("note_add", first), {"text": "x"}),
        (reverse("review:tag_rename", args=[imported.slug, tag.pk]), {"name": "x"}),
        (reverse("review:tag_delete", args=[imported.slug, tag.pk]), {}),
    ]:
        assert client.post(url, data).status_code == 404, url
    assert client.get(reverse("review:tags", args=[imported.slug])).status_code == 404
    assert tag_events() == [("bob", {"added": "Qualitative"})]


def test_a_tag_of_another_review_is_404(client, imported, other_review, bob, dave):
    import_ris(other_review, "pubmed_zotero.ris", "Zotero")
    theirs = annotations.add_tag(Record.objects.filter(review=other_review).first(), "theirs", user=dave)
    (first,) = records(imported, 1)
    client.force_login(bob)
    assert client.post(record_url("tag_remove", first, theirs.pk)).status_code == 404


def test_alice_manages_the_tag_list_and_bob_only_reads_it(client, imported, alice, bob):
    first, second = records(imported, 2)
    tag = annotations.add_tag(first, "animal", user=bob)
    annotations.add_tag(second, "animal", user=bob)
    tags_url = reverse("review:tags", args=[imported.slug])
    client.force_login(bob)
    page = client.get(tags_url).content.decode()
    assert "animal" in page and reverse("review:tag_rename", args=[imported.slug, tag.pk]) not in page
    client.force_login(alice)
    response = client.post(reverse("review:tag_rename", args=[imported.slug, tag.pk]), {"name": "Animal study"})
    assert response["Location"] == tags_url
    assert "“animal” renamed to “Animal study”" in client.get(tags_url).content.decode()
    client.post(reverse("review:tag_delete", args=[imported.slug, tag.pk]))
    assert not Tag.objects.exists()


# The screening card -----------------------------------------------------------------------------


def screen_url(review):
    return reverse("screening:screen", args=[review.slug, TA])


def test_the_screening_card_shows_the_records_tags_and_the_next_ones_after_a_decision(client, imported, bob, carol):
    first, second = records(imported, 2)
    annotations.add_tag(first, "Veterans", user=carol)
    annotations.add_tag(second, "Case report", user=carol)
    annotations.add_note(second, "Same patient as #12?", user=carol)
    client.force_login(bob)
    page = client.get(screen_url(imported)).content.decode()
    # The card on screen; the next one is prefetched after it, in a <template>, with its own tags.
    page, prefetched = page.split('<template class="next-card"')
    assert ">Veterans</a>" in page and ">Case report</a>" not in page
    assert ">Case report</a>" in prefetched and ">Veterans</a>" not in prefetched
    # Without JavaScript a tag post returns to this very record.
    assert f'name="next" value="{screen_url(imported)}?record={first.pk}"' in page
    response = client.post(
        reverse("screening:decide", args=[imported.slug, TA, first.pk]), {"decision": "include"}, **HTMX
    )
    card = response.content.decode()
    assert ">Case report</a>" in card and "Same patient as #12?" in card and ">Veterans</a>" not in card
    assert record_url("tag_add", second) in card
    assert f'name="next" value="{screen_url(imported)}?record={second.pk}"' in card


def test_a_plain_tag_post_from_a_revisited_card_comes_back_to_it(client, imported, bob):
    first, _ = records(imported, 2)
    client.force_login(bob)
    client.post(reverse("screening:decide", args=[imported.slug, TA, first.pk]), {"decision": "exclude"})
    revisit = f"{screen_url(imported)}?record={first.pk}"
    page = client.get(revisit).content.decode()
    assert f'name="next" value="{revisit}"' in page
    response = client.post(record_url("tag_add", first), {"name": "wrong design", "next": revisit})
    assert response["Location"] == revisit
    assert "wrong design" in client.get(revisit).content.decode()


# The records table ------------------------------------------------------------------------------


def table_pks(client, review, **params):
    response = client.get(reverse("screening:records", args=[review.slug]), params)
    assert response.status_code == 200
    return [row.record.pk for row in response.context["table"].paginated_rows], response


def test_the_records_table_filters_by_tags(client, imported, bob):
    chosen = records(imported, 6)
    for record in chosen[:3]:
        animal = annotations.add_tag(record, "animal", user=bob)
    for record in chosen[2:5]:
        child = annotations.add_tag(record, "children", user=bob)
    annotations.add_tag(chosen[5], "unrelated", user=bob)
    client.force_login(bob)
    pks, response = table_pks(client, imported, tag=animal.pk)
    assert pks == [r.pk for r in chosen[:3]]
    assert response.context["table"].paginator.count == 3
    # Any of the tags; the record carrying both is listed once.
    pks, _ = table_pks(client, imported, tag=[animal.pk, child.pk])
    assert pks == [r.pk for r in chosen[:5]]
    pks, response = table_pks(client, imported, tag=child.pk, ta="pending")
    assert pks == [r.pk for r in chosen[2:5]]
    page = response.content.decode()
    assert (
        f'<a class="chip chip-only" href="{reverse("screening:records", args=[imported.slug])}?tag={child.pk}">'
        "children</a>" in page
    )


def test_a_tag_of_another_review_is_not_a_filter_here(client, imported, other_review, bob, dave):
    import_ris(other_review, "pubmed_zotero.ris", "Zotero")
    theirs = annotations.add_tag(Record.objects.filter(review=other_review).first(), "theirs", user=dave)
    client.force_login(bob)
    _, response = table_pks(client, imported, tag=theirs.pk)
    assert "tag" in response.context["filter"].errors


def test_the_tags_column_costs_one_query_per_page(client, imported, bob, django_assert_max_num_queries):
    client.force_login(bob)
    (first,) = records(imported, 1)
    annotations.add_tag(first, "one", user=bob)
    with CaptureQueriesContext(connection) as few:
        table_pks(client, imported)
    for i, record in enumerate(Record.objects.for_review(imported)):
        annotations.add_tag(record, f"tag {i % 7}", user=bob)
        annotations.add_tag(record, "all", user=bob)
    with django_assert_max_num_queries(len(few)):
        pks, response = table_pks(client, imported)
    assert len(pks) == 50
    cells = [row.get_cell("tags") for row in response.context["table"].paginated_rows]
    assert all(">all</a>" in cell for cell in cells) and ">one</a>" in cells[0]


# In a real browser -------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_bob_tags_and_notes_on_the_card_without_setting_off_shortcuts(imported, bob, carol, live_server, browser_page):
    page = browser_page
    first, second = records(imported, 2)
    annotations.add_tag(second, "Case report", user=carol)
    decide = [reverse("screening:decide", args=[imported.slug, TA, r.pk]) for r in (first, second)]
    log_in(page, live_server, "bob")
    page.goto(live_server.url + screen_url(imported))
    page.wait_for_selector(f"#card[data-ready] form[action='{decide[0]}']")
    page.evaluate("window.stillTheSamePage = true")
    # m, i and e are all shortcuts: typed into the tag box they are just letters.
    wait_until_wired(page, f"#annotations-{first.pk} .tag-form")
    page.click(f"#tag-name-{first.pk}")
    page.keyboard.type("mice")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#annotations-{first.pk} .chip a:text-is('mice')")
    wait_until_wired(page, f"#annotations-{first.pk} .tag-form")
    # The box keeps the focus for the next tag, so its letters still do not decide anything.
    assert page.evaluate("document.activeElement.id") == f"tag-name-{first.pk}"
    page.keyboard.type("ever")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#annotations-{first.pk} .chip a:text-is('ever')")
    wait_until_wired(page, f"#annotations-{first.pk} .note-form")
    page.click(f"#note-text-{first.pk}")
    page.keyboard.type("exclude if animal-only")
    page.click(f"#annotations-{first.pk} .note-form button")
    page.wait_for_selector(f"#annotations-{first.pk} .note-text:text-is('exclude if animal-only')")
    assert not Decision.objects.exists()
    page.keyboard.press("Escape")
    # The prefetched next card shows before the server has answered the vote: wait for the answer.
    with page.expect_response(lambda r: r.url.endswith(decide[0]) and r.request.method == "POST"):
        page.keyboard.press("i")
    page.wait_for_selector(f"#card[data-ready] form[action='{decide[1]}']")
    assert page.is_visible(f"#annotations-{second.pk} .chip a:text-is('Case report')")
    assert page.evaluate("window.stillTheSamePage") is True
    assert list(Decision.objects.values_list("record_id", "decision")) == [(first.pk, "include")]
    assert list(first.tags.values_list("name", flat=True)) == ["ever", "mice"]
    assert list(RecordNote.objects.values_list("record_id", "text")) == [(first.pk, "exclude if animal-only")]
