import csv
import io
import json

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from review import importing
from review.annotations import add_note, add_tag, remove_tag
from review.models import AuditTrailError, Event, Record
from screening.audit import CSV_COLUMNS
from screening.decisions import resolve
from tests.screening.team import FT, OPEN_NOTE, SECRET_NOTE, SECRET_REASON, TA, make_team
from tests.screening.test_queue import import_ris


@pytest.fixture
def team(review, alice, bob, carol):
    """The dual-screened review, with the Zotero copies of its records merged in as duplicates."""
    team = make_team(review, bob, carol)
    import_ris(review, "baseline_zotero.ris", "Zotero")
    return team


def audit_rows(client, review):
    response = client.get(reverse("review:audit_csv", args=[review.slug]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{review.slug}-audit-trail.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == CSV_COLUMNS
    return [dict(zip(CSV_COLUMNS, row)) for row in rows[1:]]


# Append-only ------------------------------------------------------------------------------------


def test_an_event_is_never_changed_or_deleted(review, alice):
    event = Event.objects.create(review=review, actor=alice, kind=Event.Kind.SETTINGS, detail={"changed": ["title"]})
    event.detail = {"changed": ["nothing"]}
    with pytest.raises(AuditTrailError, match="events are never changed"):
        event.save()
    with pytest.raises(AuditTrailError, match="append-only"):
        event.delete()
    # A fresh object carrying an existing id is an insert, never a silent overwrite.
    with pytest.raises(IntegrityError), transaction.atomic():
        Event(pk=event.pk, review=review, kind=Event.Kind.SETTINGS, detail={"forged": True}).save()
    assert Event.objects.get(pk=event.pk).detail == {"changed": ["title"]}


# The CSV ----------------------------------------------------------------------------------------


def test_alice_exports_the_whole_trail(client, review, team, alice, carol):
    resolve(record=team.agreed, stage=TA, decision="exclude", user=alice, note="checked again")
    client.force_login(alice)
    rows = audit_rows(client, review)
    assert len(rows) == Event.objects.filter(review=review).count()
    assert {row["kind"] for row in rows} == {"import", "merge", "decision", "resolution"}
    # Carol's vote in the conflict, every column filled from the event.
    (vote,) = [
        r for r in rows if r["kind"] == "decision" and r["record id"] == str(team.conflict.pk) and r["actor"] == "carol"
    ]
    assert (vote["stage"], vote["decision"], vote["reason"], vote["note"]) == (
        TA,
        "exclude",
        SECRET_REASON,
        SECRET_NOTE,
    )
    assert vote["record title"] == team.conflict.title
    event = Event.objects.get(kind=Event.Kind.DECISION, record=team.conflict, actor=carol)
    assert vote["time"] == event.created_at.strftime("%Y-%m-%d %H:%M:%S")
    (resolution,) = [r for r in rows if r["kind"] == "resolution"]
    assert (resolution["actor"], resolution["decision"], resolution["note"]) == ("alice", "exclude", "checked again")
    dup = Record.objects.filter(duplicate_of=team.conflict).get()
    (merge,) = [r for r in rows if r["kind"] == "merge" and r["record id"] == str(dup.pk)]
    assert json.loads(merge["details"]) == {
        "automatic": True,
        "duplicate_of": team.conflict.pk,
        "reason": dup.duplicate_reason,
    }
    (search,) = [r for r in rows if r["kind"] == "import" and "baseline_zotero.ris" in r["details"]]
    assert search["record id"] == search["record title"] == search["stage"] == ""
    zotero_dups = Record.objects.filter(search__source="Zotero", duplicate_of__isnull=False).count()
    assert json.loads(search["details"])["duplicates"] == zotero_dups > 0


def test_bobs_trail_leaves_out_carols_votes_until_they_are_agreed(client, review, team, bob, carol):
    client.force_login(bob)
    rows = audit_rows(client, review)
    text = "\n".join(",".join(r.values()) for r in rows)
    assert SECRET_NOTE not in text and SECRET_REASON not in text
    hidden = {(team.conflict.pk, TA), (team.pending.pk, TA), (team.ft_conflict.pk, FT)}
    carols = {(int(r["record id"]), r["stage"]) for r in rows if r["kind"] == "decision" and r["actor"] == "carol"}
    assert not carols & hidden
    # Agreed votes show: the excluded record, and the title/abstract vote on the full-text conflict.
    assert {(team.agreed.pk, TA), (team.ft_conflict.pk, TA)} <= carols and OPEN_NOTE in text
    # Carol's hidden votes (conflict and pending at TA, the conflict at FT) are all that is missing.
    assert len(rows) == Event.objects.filter(review=review).count() - 3
    assert {r["record id"] for r in rows if r["actor"] == "bob"} >= {str(team.conflict.pk), str(team.ft_conflict.pk)}


def test_erin_the_viewer_gets_a_blinded_trail_and_dave_nothing(client, review, team, erin, dave):
    client.force_login(erin)
    rows = audit_rows(client, review)
    # Neither bob's nor carol's votes on the unagreed records: bob's two and carol's three.
    assert len(rows) == Event.objects.filter(review=review).count() - 5
    client.force_login(dave)
    assert client.get(reverse("review:audit_csv", args=[review.slug])).status_code == 404


# A record's history -----------------------------------------------------------------------------


def history(client, review, record):
    response = client.get(reverse("review:record", args=[review.slug, record.pk]))
    assert response.status_code == 200
    return [(event.kind, text) for event, text in response.context["events"]]


def test_a_records_history_shows_resolutions_merges_tags_and_notes(client, review, team, alice, bob):
    original = team.conflict
    dup = Record.objects.filter(duplicate_of=original).get()
    reason = dup.duplicate_reason
    tag = add_tag(original, "animal study", user=bob)
    remove_tag(original, tag, user=bob)
    add_note(original, "Same cohort as #12", user=bob)
    importing.unmerge(dup, user=bob)
    client.force_login(bob)
    # Carol's vote in the conflict is hidden from bob until alice resolves it.
    carols = (Event.Kind.DECISION, f"Title/abstract: Exclude — {SECRET_REASON} (note: {SECRET_NOTE})")
    assert carols not in history(client, review, original)
    resolve(record=original, stage=TA, decision="exclude", user=alice, note="checked again")
    shown = history(client, review, original)
    assert carols in shown
    assert (Event.Kind.RESOLUTION, "Title/abstract: Exclude (note: checked again)") in shown
    merged = f"#{dup.pk} as a duplicate of #{original.pk} ({reason}, automatically)"
    assert (Event.Kind.MERGE, merged) in shown
    assert (Event.Kind.UNMERGE, f"#{dup.pk} (was a duplicate of #{original.pk})") in shown
    assert (Event.Kind.TAG, "“animal study” added") in shown
    assert (Event.Kind.TAG, "“animal study” removed") in shown
    assert (Event.Kind.NOTE, "Same cohort as #12") in shown
    html = client.get(reverse("review:record", args=[review.slug, original.pk])).content.decode()
    assert "Conflict resolved" in html and "Duplicate merged" in html and "Tag changed" in html
    # The duplicate's own page tells its side of the story.
    assert (Event.Kind.UNMERGE, f"(was a duplicate of #{original.pk})") in history(client, review, dup)


@pytest.mark.parametrize("by_alice", [True, False], ids=["by alice", "by no one"])
def test_an_imports_merge_events_are_one_per_link_in_record_order_with_a_json_true(review, alice, by_alice):
    # Written by the database at landing (importing._merge_events), not from Python Events.
    from tests.shared import shared

    user = alice if by_alice else None
    importing.import_file(review=review, path=shared("fixtures", "exports", "baseline_endnote.ris"), user=user)
    importing.import_file(review=review, path=shared("fixtures", "exports", "baseline_zotero.ris"), user=user)
    links = list(Record.objects.filter(review=review, duplicate_of__isnull=False).order_by("pk"))
    events = list(Event.objects.filter(review=review, kind=Event.Kind.MERGE).order_by("pk"))
    assert len(links) > 50
    assert [event.record_id for event in events] == [record.pk for record in links]
    for event, record in zip(events, links, strict=True):
        assert event.detail == {
            "duplicate_of": record.duplicate_of_id,
            "reason": record.duplicate_reason,
            "automatic": True,
        }
        assert event.detail["automatic"] is True  # JSON true, not the number 1
        assert type(event.detail["duplicate_of"]) is int
        assert event.actor_id == (alice.pk if by_alice else None)
    (stored,) = {event.created_at for event in events}
    (imported,) = Event.objects.filter(review=review, kind=Event.Kind.IMPORT, detail__duplicates=len(links))
    assert abs((imported.created_at - stored).total_seconds()) < 60
