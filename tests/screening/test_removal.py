"""Undoing an import and deleting a review (review/removal.py).

alice owns the kratom review; bob and carol screen; dave is an outsider. EndNote and Zotero
exported the same 100 records: imported in that order, the Zotero copies are duplicates.
"""

import threading
import time

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from review import annotations, invitations, removal, removal_views, searchlog
from review.importing import merge, unmerge
from review.models import Event, Record, Review, Role, Search, Stage
from screening import closing, prisma, queue, sampling
from screening.audit import describe_event
from screening.decisions import DecisionError, record_decision
from screening.models import (
    ClosedRecord,
    Decision,
    ExtractionField,
    ExtractionValue,
    HandOut,
    RandomSample,
    RankingRun,
    RecordScore,
    Resolution,
    SampleRecord,
    StageClosure,
)
from tests.concurrent import at_once
from tests.screening.test_closing import IRRELEVANT, RELEVANT, TOTAL, add_records, screen
from tests.screening.test_queue import import_ris

TA = Stage.TITLE_ABSTRACT


@pytest.fixture
def two_imports(review):
    import_ris(review, "baseline_endnote.ris", "EndNote")
    import_ris(review, "baseline_zotero.ris", "Zotero")
    return review


def search_of(review, source):
    return Search.objects.get(review=review, source=source)


def records_of(review, source):
    return Record.objects.filter(review=review, search__source=source)


# Undoing an import -----------------------------------------------------------------------------


def test_undoing_the_later_import_removes_its_records_and_leaves_the_first_alone(two_imports, alice):
    endnote = set(records_of(two_imports, "EndNote").values_list("pk", "duplicate_of"))
    zotero = search_of(two_imports, "Zotero")
    assert records_of(two_imports, "Zotero").duplicates().count() > 0

    plan = removal.undo_import(zotero, user=alice)

    assert not records_of(two_imports, "Zotero").exists()
    assert set(records_of(two_imports, "EndNote").values_list("pk", "duplicate_of")) == endnote
    assert (plan.records, plan.restored, plan.relinked) == (zotero.added, 0, 0)
    zotero.refresh_from_db()
    assert zotero.undone_at is not None and zotero.undone_by == alice and zotero.undone_records == plan.records


def test_undoing_the_first_import_makes_its_twins_originals_again(two_imports, alice):
    endnote = search_of(two_imports, "EndNote")
    twins = set(records_of(two_imports, "Zotero").filter(duplicate_of__search=endnote).values_list("pk", flat=True))
    assert len(twins) > 50

    plan = removal.undo_import(endnote, user=alice)

    assert plan.restored == len(twins)
    assert not Record.objects.filter(review=two_imports, search=endnote).exists()
    restored = Record.objects.filter(pk__in=twins)
    assert restored.count() == len(twins)
    assert not restored.filter(duplicate_of__isnull=False).exists()
    assert set(restored.values_list("duplicate_reason", flat=True)) == {""}
    # They are screened now.
    assert twins <= set(queue.pending(two_imports, queue_user(two_imports, "bob"), TA).values_list("pk", flat=True))


def queue_user(review, name):
    return review.memberships.get(user__username=name).user


def test_a_third_copy_is_relinked_to_the_twin_that_becomes_the_original(review, alice):
    import_ris(review, "baseline_endnote.ris", "EndNote")
    import_ris(review, "baseline_zotero.ris", "Zotero")
    import_ris(review, "baseline_endnote.ris", "EndNote again")
    first = search_of(review, "EndNote")
    original = records_of(review, "EndNote").filter(duplicates__search__source="Zotero").first()
    zotero = Record.objects.get(duplicate_of=original, search__source="Zotero")
    again = Record.objects.get(duplicate_of=original, search__source="EndNote again")

    plan = removal.undo_import(first, user=alice)

    zotero.refresh_from_db()
    again.refresh_from_db()
    assert zotero.duplicate_of_id is None
    assert again.duplicate_of_id == zotero.pk  # the oldest remaining twin is the original now
    assert plan.restored > 0 and plan.relinked >= plan.restored
    # Every remaining duplicate points at a record that exists and is an original.
    dups = Record.objects.filter(review=review, duplicate_of__isnull=False)
    assert not dups.filter(duplicate_of__duplicate_of__isnull=False).exists()


def test_the_search_log_keeps_the_undone_import_and_prisma_drops_its_records(two_imports, alice):
    zotero = search_of(two_imports, "Zotero")
    before = prisma.compute(two_imports)
    removal.undo_import(zotero, user=alice)
    after = prisma.compute(two_imports)

    assert after.total_identified == before.total_identified - zotero.added
    rows = searchlog.search_log_rows(two_imports)
    assert len(rows) == 2
    assert f"Undone on {timezone.now():%Y-%m-%d} by alice: its {zotero.added} records" in rows[1]["notes"]
    event = Event.objects.get(review=two_imports, kind=Event.Kind.UNDO)
    assert event.actor == alice and event.detail["search"] == zotero.pk and event.detail["records"] == zotero.added


def test_the_merge_events_of_the_removed_records_stay_in_the_audit_trail(two_imports, alice):
    zotero = search_of(two_imports, "Zotero")
    merges = Event.objects.filter(review=two_imports, kind=Event.Kind.MERGE).count()
    assert merges > 0
    removal.undo_import(zotero, user=alice)
    assert Event.objects.filter(review=two_imports, kind=Event.Kind.MERGE).count() == merges


def test_an_undone_count_leaves_prisma(review, alice):
    search = Search.objects.create(review=review, kind=Search.Kind.COUNT, source="Citation searching", hits=12)
    assert prisma.compute(review).total_identified == 12
    removal.undo_import(search, user=alice)
    assert prisma.compute(review).total_identified == 0


def test_undo_is_refused_once_a_record_has_a_decision(two_imports, alice, bob):
    endnote = search_of(two_imports, "EndNote")
    record = records_of(two_imports, "EndNote").unique().first()
    record_decision(record=record, reviewer=bob, stage=TA, decision="exclude")
    count = Record.objects.filter(review=two_imports).count()

    with pytest.raises(removal.RemovalRefused, match="decisions"):
        removal.undo_import(endnote, user=alice)

    assert Record.objects.filter(review=two_imports).count() == count
    assert search_of(two_imports, "EndNote").undone_at is None
    assert not Event.objects.filter(kind=Event.Kind.UNDO).exists()


def test_a_vote_on_a_record_whose_import_was_just_undone_is_refused_in_words(two_imports, alice, bob, client):
    # Bob's page still shows a record when Alice undoes its import; his vote then names why.
    record = records_of(two_imports, "EndNote").unique().first()
    removal.undo_import(search_of(two_imports, "EndNote"), user=alice)

    with pytest.raises(DecisionError, match="no longer in the review: its import was undone"):
        record_decision(record=record, reviewer=bob, stage=TA, decision="exclude")
    assert not Decision.objects.filter(record_id=record.pk).exists()


@pytest.mark.parametrize("work", ["tag", "note", "extraction"])
def test_undo_is_refused_once_a_record_is_tagged_annotated_or_extracted(two_imports, alice, work):
    record = records_of(two_imports, "Zotero").first()
    if work == "tag":
        annotations.add_tag(record, "animal study", user=alice)
    elif work == "note":
        annotations.add_note(record, "check the dose", user=alice)
    else:
        field = ExtractionField.objects.create(review=two_imports, name="Sample size")
        ExtractionValue.objects.create(record=record, field=field, value="40")
    with pytest.raises(removal.RemovalRefused, match="worked on"):
        removal.undo_import(search_of(two_imports, "Zotero"), user=alice)
    assert Record.objects.filter(pk=record.pk).exists()


def test_undo_is_refused_when_a_twin_with_votes_would_become_an_original(two_imports, alice, bob):
    """A Zotero copy bob screened before it was merged by hand would count again: refused."""
    zotero = records_of(two_imports, "Zotero").duplicates().first()
    original = zotero.duplicate_of
    unmerge(zotero, user=alice)
    record_decision(record=zotero, reviewer=bob, stage=TA, decision="include")
    merge(zotero, into=original, user=alice)

    with pytest.raises(removal.RemovalRefused, match="become originals again"):
        removal.undo_import(search_of(two_imports, "EndNote"), user=alice)
    assert Record.objects.filter(pk=original.pk).exists()


def test_a_claim_or_a_hand_out_does_not_stop_an_undo(two_imports, alice, bob):
    record = queue.next_record(two_imports, bob, TA)
    assert record is not None and HandOut.objects.filter(record=record).exists()
    removal.undo_import(record.search, user=alice)
    assert not Record.objects.filter(pk=record.pk).exists()
    assert not HandOut.objects.filter(record_id=record.pk).exists()


def test_an_import_is_undone_once(two_imports, alice):
    zotero = search_of(two_imports, "Zotero")
    removal.undo_import(zotero, user=alice)
    with pytest.raises(removal.RemovalRefused, match="already undone"):
        removal.undo_import(zotero, user=alice)


def test_the_owner_confirms_on_a_page_naming_the_counts(two_imports, alice, client):
    zotero = search_of(two_imports, "Zotero")
    client.force_login(alice)
    url = reverse("review:search_undo", args=[two_imports.slug, zotero.pk])
    page = client.get(url).content.decode()
    assert f"<strong>{zotero.added}</strong> records removed" in page
    assert records_of(two_imports, "Zotero").exists()  # a GET removes nothing

    response = client.post(url)

    assert response.status_code == 302
    assert not records_of(two_imports, "Zotero").exists()
    log = client.get(reverse("review:searches", args=[two_imports.slug])).content.decode()
    assert "undone" in log


def test_the_confirmation_page_says_why_an_undo_is_refused(two_imports, alice, bob, client):
    record_decision(record=records_of(two_imports, "EndNote").first(), reviewer=bob, stage=TA, decision="include")
    client.force_login(alice)
    url = reverse("review:search_undo", args=[two_imports.slug, search_of(two_imports, "EndNote").pk])
    page = client.get(url).content.decode()
    assert "1 with decisions" in page and "Undo and remove" not in page
    client.post(url)
    assert records_of(two_imports, "EndNote").count() == 100


@pytest.mark.parametrize(("user", "status"), [("bob", 403), ("dave", 404)])
def test_only_the_owner_undoes_an_import(two_imports, client, user, status, dave):
    zotero = search_of(two_imports, "Zotero")
    client.force_login(queue_user(two_imports, "bob") if user == "bob" else dave)
    url = reverse("review:search_undo", args=[two_imports.slug, zotero.pk])
    assert client.get(url).status_code == status
    assert client.post(url).status_code == status
    assert records_of(two_imports, "Zotero").count() == zotero.added


def test_the_undo_import_command(two_imports, alice, bob, capsys):
    zotero = search_of(two_imports, "Zotero")
    call_command("undo_import", two_imports.slug, str(zotero.pk), "--user", "alice")
    assert f"{zotero.added} records removed" in capsys.readouterr().out
    assert not records_of(two_imports, "Zotero").exists()
    record_decision(record=records_of(two_imports, "EndNote").first(), reviewer=bob, stage=TA, decision="include")
    with pytest.raises(CommandError, match="decisions"):
        call_command("undo_import", two_imports.slug, str(search_of(two_imports, "EndNote").pk))


PG_ONLY = "the concurrency proof runs in the PostgreSQL pass (DATABASE_URL=postgres://...)"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_vote_racing_the_undo_lands_before_it_or_finds_its_record_gone(review, alice, bob):
    """bob votes on a record of an import at the instant alice undoes it: either the vote is in
    and the undo refused, or the records are gone and the vote fails. Never both."""
    if connection.vendor != "postgresql":
        pytest.skip(PG_ONLY)
    for i in range(6):
        search = Search.objects.create(review=review, kind="file", source=f"Embase {i}")
        Record.objects.bulk_create(
            Record(review=review, search=search, source=search.source, title=f"Kratom {i}-{n}") for n in range(50)
        )
        target = Record.objects.filter(search=search).order_by("-pk").first()
        vote, undo = at_once(
            lambda t=target: record_decision(record=t, reviewer=bob, stage=TA, decision="include"),
            lambda s=search: removal.undo_import(s, user=alice),
        )
        voted = Decision.objects.filter(record_id=target.pk).exists()
        gone = not Record.objects.filter(search=search).exists()
        assert voted != gone, (vote, undo)
        if voted:
            assert isinstance(undo, removal.RemovalRefused) and isinstance(vote, Decision)
        else:
            assert isinstance(undo, removal.UndoPlan) and isinstance(vote, Exception)


# Deleting a review -----------------------------------------------------------------------------


def row_counts():
    return {model._meta.label: model._default_manager.count() for model in apps.get_models(include_auto_created=True)}


def script_a_review(review, alice, bob, carol):
    """Everything a review can hold: votes and their history, a resolution, tags, notes,
    extraction, a ranking run with scores, hand-outs, a random sample, a closure, an invitation."""
    records = add_records(review, TOTAL)
    screen(review, records[: RELEVANT + IRRELEVANT], bob, ["include"] * RELEVANT + ["exclude"] * IRRELEVANT)
    closing.close_stage(review, TA, alice)
    closing.reopen_stage(review, TA, alice)  # the closure and its records are kept as history
    record_decision(record=records[0], reviewer=bob, stage=TA, decision="exclude")  # a changed vote: history
    Resolution.objects.create(record=records[1], stage=TA, decision="include", resolved_by=alice)
    annotations.add_tag(records[2], "animal study", user=carol)
    annotations.add_note(records[2], "check the dose", user=carol)
    field = ExtractionField.objects.create(review=review, name="Sample size")
    ExtractionValue.objects.create(record=records[3], field=field, value="40", updated_by=alice)
    run = RankingRun.objects.create(review=review, stage=TA, version=1, status=RankingRun.Status.DONE)
    RecordScore.objects.bulk_create(
        RecordScore(run=run, record=r, score=0.5, rank=i) for i, r in enumerate(records[-20:], 1)
    )
    queue.next_record(review, carol, TA)
    sampling.start_sample(review, TA, by=alice)
    invitations.invite(review, email="erin@example.org", role=Role.REVIEWER, by=alice)
    queue.set_order(review, carol, "import")


def test_deleting_a_scripted_review_leaves_no_row_of_it(review, alice, bob, carol, tmp_path, settings):
    kept = Review.objects.create(slug="other", title="Another review")
    import_ris(kept, "baseline_endnote.ris", "EndNote")
    before = row_counts()
    script_a_review(review, alice, bob, carol)
    during = row_counts()
    for model in (Decision, Resolution, HandOut, RankingRun, RecordScore, RandomSample, SampleRecord):
        assert during[model._meta.label] > before[model._meta.label], model
    for model in (StageClosure, ClosedRecord, ExtractionValue, Event, Search):
        assert during[model._meta.label] > before[model._meta.label], model
    assert during["review.Invitation"] > before["review.Invitation"]
    assert during["screening.OrderPreference"] > before["screening.OrderPreference"]
    assert during["review.RecordNote"] > before["review.RecordNote"]
    assert during["review.RecordTag"] > before["review.RecordTag"]
    assert Decision.objects.filter(record__review=review, is_current=False).exists()

    removal.delete_review(review, confirmation=review.slug)

    after = row_counts()
    # The kratom review and its three memberships existed before the script ran: they go too.
    before["review.Review"] -= 1
    before["review.Membership"] -= 3
    assert after == before
    assert Record.objects.filter(review=kept).count() == 100


def test_a_deleted_reviews_cached_ranking_files_go(
    review, alice, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.DATA_DIR = tmp_path
    cache = tmp_path / "cache" / "ranking"
    cache.mkdir(parents=True)
    mine = cache / f"review{review.pk}-title_abstract-abc.npz"
    other = cache / f"review{review.pk}0-title_abstract-abc.npz"
    mine.write_bytes(b"x")
    other.write_bytes(b"x")
    with django_capture_on_commit_callbacks(execute=True):
        removal.delete_review(review, confirmation=review.title)
    assert not mine.exists() and other.exists()


def test_a_review_with_records_is_deleted_by_its_owner_after_typing_its_name(two_imports, alice, client):
    client.force_login(alice)
    url = reverse("review:delete", args=[two_imports.slug])
    page = client.get(url).content.decode()
    assert "<strong>200</strong> records" in page

    wrong = client.post(url, {"confirmation": "kratom"})
    assert wrong.status_code == 200 and "did not match" in wrong.content.decode()
    assert Review.objects.filter(pk=two_imports.pk).exists()

    response = client.post(url, {"confirmation": two_imports.slug})
    assert response.status_code == 302 and response.url == reverse("review:list")
    assert not Review.objects.filter(pk=two_imports.pk).exists()
    assert not Record.objects.filter(review_id=two_imports.pk).exists()


@pytest.mark.parametrize(("user", "status"), [("bob", 403), ("dave", 404)])
def test_only_the_owner_deletes_a_review(two_imports, client, user, status, dave):
    client.force_login(queue_user(two_imports, "bob") if user == "bob" else dave)
    url = reverse("review:delete", args=[two_imports.slug])
    assert client.get(url).status_code == status
    assert client.post(url, {"confirmation": two_imports.slug}).status_code == status
    assert Review.objects.filter(pk=two_imports.pk).exists()


def test_the_delete_review_command_needs_yes(two_imports, capsys):
    with pytest.raises(CommandError, match="--yes"):
        call_command("delete_review", two_imports.slug)
    assert Review.objects.filter(pk=two_imports.pk).exists()
    call_command("delete_review", two_imports.slug, "--yes")
    assert "200 records" in capsys.readouterr().out
    assert not Review.objects.filter(pk=two_imports.pk).exists()


def test_the_audit_trail_says_what_the_undo_removed(two_imports, alice):
    removal.undo_import(search_of(two_imports, "EndNote"), user=alice)
    event = Event.objects.get(kind=Event.Kind.UNDO)
    line = describe_event(event)
    assert line.startswith("EndNote (baseline_endnote.ris): 100 records removed, ")
    assert f"{event.detail['restored']} duplicates of them screened again" in line


def test_a_big_review_is_deleted_by_the_worker(two_imports, alice, client, settings, monkeypatch):
    monkeypatch.setattr(removal_views, "DELETE_IN_REQUEST_UP_TO", 100)
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    client.force_login(alice)
    url = reverse("review:delete", args=[two_imports.slug])
    response = client.post(url, {"confirmation": two_imports.slug}, follow=True)
    assert "is being deleted in the background" in response.content.decode()
    assert Review.objects.filter(pk=two_imports.pk).exists()  # not yet: the worker has it

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    client.post(url, {"confirmation": two_imports.slug})
    assert not Review.objects.filter(pk=two_imports.pk).exists()
    assert not Record.objects.filter(review_id=two_imports.pk).exists()


def stage_an_import(review, n=30):
    """An import still being written (or whose process was killed): a staged search and records."""
    search = Search.all_objects.create(review=review, kind="file", source="Scopus", staged_at=timezone.now())
    Record.all_objects.bulk_create(
        Record(review=review, search=search, source="Scopus", title=f"Kratom staged {i}", staged=True) for i in range(n)
    )
    return search


def pointers_into(pks_by_model):
    """{field: rows} for every foreign key of any installed model whose rows still point at one
    of ``pks_by_model`` ({model: set of pks}), or at a row that no longer exists."""
    found = {}
    for model in apps.get_models(include_auto_created=True):
        for f in model._meta.concrete_fields:
            if not (f.many_to_one or f.one_to_one):
                continue
            target = f.remote_field.model
            rows = model._base_manager.exclude(**{f"{f.attname}__isnull": True})
            gone = rows.filter(**{f"{f.attname}__in": pks_by_model.get(target, ())}).count()
            dangling = rows.exclude(**{f"{f.attname}__in": target._base_manager.values(f.target_field.attname)}).count()
            if gone or dangling:
                found[f"{model._meta.label}.{f.name}"] = gone + dangling
    return found


def test_after_deleting_a_review_no_row_of_any_model_points_at_it_or_its_records(
    review, alice, bob, carol, tmp_path, settings
):
    kept = Review.objects.create(slug="other", title="Another review")
    import_ris(kept, "baseline_endnote.ris", "EndNote")
    script_a_review(review, alice, bob, carol)
    stage_an_import(review)
    gone = {
        Review: {review.pk},
        Record: set(Record.all_objects.filter(review=review).values_list("pk", flat=True)),
        Search: set(Search.all_objects.filter(review=review).values_list("pk", flat=True)),
    }
    assert len(gone[Record]) > TOTAL and pointers_into({}) == {}
    assert pointers_into(gone)  # the check sees the review's rows before the deletion

    removal.delete_review(review, confirmation=review.slug)

    assert pointers_into(gone) == {}
    assert Record.objects.filter(review=kept).count() == 100


def test_a_review_with_an_import_still_being_written_is_deleted_whole(review, alice):
    add_records(review, 10)
    staged = stage_an_import(review)
    assert Record.objects.filter(review=review).count() == 10  # the staged ones show nowhere

    counts = removal.delete_review(review, confirmation=review.slug)

    assert counts["records"] == 10
    assert not Record.all_objects.filter(review_id=review.pk).exists()
    assert not Search.all_objects.filter(pk=staged.pk).exists()
    assert not Review.objects.filter(pk=review.pk).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_vote_racing_the_deletion_lands_before_it_or_fails(alice, bob):
    """bob votes at the instant alice deletes the review: the review goes either way, and no vote
    is left pointing at a deleted record."""
    if connection.vendor != "postgresql":
        pytest.skip(PG_ONLY)
    for i in range(4):
        review = Review.objects.create(slug=f"race-{i}", title=f"Race {i}", created_by=alice)
        review.memberships.create(user=alice, role=Role.OWNER)
        review.memberships.create(user=bob, role=Role.REVIEWER)
        target = add_records(review, 300)[-1 - i * 50]
        vote, deletion = at_once(
            lambda t=target: record_decision(record=t, reviewer=bob, stage=TA, decision="include"),
            lambda r=review: removal.delete_review(r, confirmation=r.slug),
        )
        assert isinstance(deletion, dict), deletion
        assert isinstance(vote, Decision | Exception)
        assert not Review.objects.filter(pk=review.pk).exists()
        assert not Decision.objects.filter(record_id=target.pk).exists()
    assert pointers_into({}) == {}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_row_written_without_a_lock_during_the_deletion_cannot_point_at_a_deleted_record(review, bob, monkeypatch):
    """The deletion skips PostgreSQL's per-row foreign-key checks of its records' DELETE (they are
    locked, and emptied of what points at them, first). A decision inserted without locking its
    record (the inserting transaction checks its foreign keys at its commit) that tries to commit
    in the worst moment, after the deletion emptied the decisions and before it deletes the
    records, waits for the deletion's locks and then finds its record gone."""
    if connection.vendor != "postgresql":
        pytest.skip(PG_ONLY)
    target = add_records(review, 50)[0]
    inserted, worst_moment, committing = threading.Event(), threading.Event(), threading.Event()
    check = removal._pointed_at_from_elsewhere

    def pause_before_deleting_the_records(model, ids):
        worst_moment.set()
        committing.wait(timeout=30)
        time.sleep(1)  # the commit lands now, unless it waits for the deletion's locks
        return check(model, ids)

    monkeypatch.setattr(removal, "_pointed_at_from_elsewhere", pause_before_deleting_the_records)

    def write_without_lock():
        with transaction.atomic():
            Decision.objects.create(record_id=target.pk, reviewer=bob, stage=TA, decision="include")
            inserted.set()
            worst_moment.wait(timeout=30)
            committing.set()
        return "committed"

    def delete():
        inserted.wait(timeout=30)
        return removal.delete_review(review, confirmation=review.slug)

    write, deletion = at_once(write_without_lock, delete)

    assert isinstance(deletion, dict), deletion
    assert isinstance(write, IntegrityError), write
    assert not Decision.objects.filter(record_id=target.pk).exists()
    assert pointers_into({}) == {}


@pytest.mark.postgres
def test_a_role_that_may_not_skip_the_foreign_key_checks_still_deletes(review, alice, bob, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip(PG_ONLY)
    records = add_records(review, 20)
    record_decision(record=records[0], reviewer=bob, stage=TA, decision="include")
    # What PostgreSQL answers a role without the grant (a refused SET), here by an invalid value.
    monkeypatch.setattr(removal, "_SKIP_CHECKS", "SET LOCAL session_replication_role = not_a_role")

    removal.delete_review(review, confirmation=review.slug)

    assert not Record.all_objects.filter(review_id=review.pk).exists()
    assert not Decision.objects.filter(record_id=records[0].pk).exists()
    with connection.cursor() as cursor:
        cursor.execute("SHOW session_replication_role")
        assert cursor.fetchone()[0] == "origin"


UNINDEXED_FOREIGN_KEYS = """
    SELECT c.conrelid::regclass::text, c.conname
    FROM pg_constraint c
    WHERE c.contype = 'f' AND NOT EXISTS (
        SELECT 1 FROM pg_index i
        WHERE i.indrelid = c.conrelid AND i.indpred IS NULL
          AND (i.indkey::int2[])[0:array_length(c.conkey, 1) - 1] = c.conkey
    )
"""


@pytest.mark.postgres
def test_every_foreign_key_has_an_index_leading_with_its_columns(db):
    """Deleting a row checks every table pointing at it: without an index on the pointing column,
    each deleted record would scan a whole table (a 100,000-record review: hours)."""
    if connection.vendor != "postgresql":
        pytest.skip("pg_constraint and pg_index are PostgreSQL's catalogues")
    with connection.cursor() as cursor:
        cursor.execute(UNINDEXED_FOREIGN_KEYS)
        assert cursor.fetchall() == []
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confrelid = 'review_record'::regclass"
        )
        assert cursor.fetchone()[0] >= 10  # the check looks at the real catalogue
