"""alice moves the kratom review to another server: export_review, then import_review.

The review is scripted as a team leaves it: two files imported (with duplicates across them),
bob and carol dual-screening title/abstract, a conflict alice resolves, full text with reasons,
extraction, tags, notes, a ranking run, PDFs attached (by hand and from PubMed Central) and an
open-access search that found none, and title/abstract closed on the stopping rule. The copy must
report the same PRISMA counts, status, extraction table, audit trail and full-text panels, with the
same PDFs byte for byte (stored under the copy's own names).
"""

import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from review import fulltexts
from review.annotations import add_note, add_tag
from review.models import Event, FullText, Record, Review, Search, Stage
from screening import closing, prisma, status
from screening.decisions import record_decision, record_decisions, resolve
from screening.extraction import extraction_rows, field_key, save_values
from screening.models import (
    Assignment,
    Decision,
    ExtractionField,
    HandOut,
    OrderPreference,
    RandomSample,
    RankingRun,
    RecordScore,
    SampleRecord,
    StageClosure,
    StoppingSettings,
)
from tests.screening.test_queue import import_ris
from transfer.exporting import export_review
from transfer.importing import import_review

TA, FT = Stage.TITLE_ABSTRACT, Stage.FULL_TEXT
PDFS = [b"%PDF-1.4\n% kratom cohort " + bytes([i]) * (i * 3000) + b"\n%%EOF\n" for i in range(3)]
START = timezone.now() - timedelta(days=3)
RELEVANT, IRRELEVANT, LEFT = 40, 140, 50


def add_records(review, n):
    search = Search.objects.create(review=review, kind="file", source="Embase", filename="embase.ris")
    Record.objects.bulk_create(
        Record(
            review=review,
            search=search,
            source="Embase",
            title=f"Kratom and trauma, cohort {i}",
            pmid=str(9000 + i),
            authors=[f"Author{i}, A"],
            year=2000 + i % 20,
        )
        for i in range(n)
    )
    return list(search.records.order_by("pk"))


def screen(review, records, reviewer, decisions, minute=0):
    record_decisions(
        review,
        TA,
        [
            Decision(record=r, reviewer=reviewer, decision=d, created_at=START + timedelta(minutes=minute + i))
            for i, (r, d) in enumerate(zip(records, decisions, strict=True))
        ],
    )


@pytest.fixture
def scripted(review, alice, bob, carol):
    review.title_abstract_reviewers = 2
    review.full_text_reviewers = 2
    review.save()
    import_ris(review, "baseline_endnote.ris", "EndNote")
    import_ris(review, "baseline_zotero.ris", "Zotero")
    assert Record.objects.for_review(review).duplicates().exists()
    for r in Record.objects.for_review(review).unique():
        # The file imports stay out of the stopping test's numbers: both exclude them.
        record_decision(record=r, reviewer=bob, stage=TA, decision="exclude")
        record_decision(record=r, reviewer=carol, stage=TA, decision="exclude")
    records = add_records(review, RELEVANT + IRRELEVANT + LEFT)
    screened = records[: RELEVANT + IRRELEVANT]
    votes = ["include"] * RELEVANT + ["exclude"] * IRRELEVANT
    screen(review, screened, bob, votes)
    carol_votes = list(votes)
    carol_votes[0], carol_votes[1] = "exclude", "maybe"  # two conflicts
    screen(review, screened, carol, carol_votes, minute=500)
    resolve(record=records[0], stage=TA, decision="include", user=alice, note="Cohort fits")
    resolve(record=records[1], stage=TA, decision="include", user=alice)
    record_decision(record=records[100], reviewer=carol, stage=TA, decision="include")  # changed vote: history
    record_decision(record=records[100], reviewer=carol, stage=TA, decision="exclude")
    resolve(record=records[100], stage=TA, decision="exclude", user=alice)
    # Full text: three included, one excluded with a reason, one not retrieved, one conflict.
    for r in records[:3]:
        for who in (bob, carol):
            record_decision(record=r, reviewer=who, stage=FT, decision="include")
    for who in (bob, carol):
        record_decision(record=records[3], reviewer=who, stage=FT, decision="exclude", reason="Wrong population")
        record_decision(record=records[4], reviewer=who, stage=FT, decision="not_retrieved")
    record_decision(record=records[5], reviewer=bob, stage=FT, decision="include")
    record_decision(record=records[5], reviewer=carol, stage=FT, decision="exclude", reason="Wrong outcome")
    fields = [
        ExtractionField.objects.create(review=review, name="Sample size", kind="number", position=1),
        ExtractionField.objects.create(review=review, name="Design", kind="choice", choices="RCT\nCohort", position=2),
    ]
    save_values(records[0], {fields[0]: "120", fields[1]: "Cohort"}, alice)
    save_values(records[1], {fields[0]: "45"}, bob)
    add_tag(records[0], "Check dose", user=bob)
    add_tag(records[1], "check dose", user=carol)
    add_tag(records[1], "Animal study", user=alice)
    add_note(records[0], "Dose in <b>mg/kg</b>", user=carol)
    run = RankingRun.objects.create(
        review=review, stage=TA, version=1, status=RankingRun.Status.DONE, terms={"kratom": 1.5}
    )
    RecordScore.objects.bulk_create(
        RecordScore(run=run, record=r, score=0.5, rank=i + 1) for i, r in enumerate(records[-LEFT:])
    )
    closing.close_stage(review, TA, alice)
    StoppingSettings.objects.create(review=review, stage=FT, recall_target=0.9, confidence=0.8, updated_by=alice)
    OrderPreference.objects.create(review=review, user=bob, order="random")
    HandOut.objects.create(record=records[0], reviewer=bob, stage=TA, order="ranked", run=run, model_version=1, rank=1)
    Assignment.objects.create(record=records[-1], reviewer=carol, stage=TA, assigned_by=alice)
    for i, (r, pdf) in enumerate(zip(records[:3], PDFS, strict=True)):
        source = FullText.Source.PMC if i == 2 else FullText.Source.UPLOAD
        fulltexts.attach(r, pdf, filename=f"cohort {i}.pdf", user=bob, source=source, pmcid="PMC9" if i == 2 else "")
    FullText.objects.create(record=records[4], oa_checked_at=START, oa_note=fulltexts.NO_OPEN_ACCESS)
    sample = RandomSample.objects.create(
        review=review, stage=FT, started_by=alice, sampled_from=3, remainder=3, seed="42", recall_target=0.9,
        confidence=0.8, ended_at=timezone.now(), ended_by=alice,
    )  # fmt: skip
    SampleRecord.objects.bulk_create(
        SampleRecord(sample=sample, record=r, position=3 - i) for i, r in enumerate(records[:3])
    )
    return review


def audit_trail(review):
    return [
        (e.kind, e.actor.username if e.actor else None, e.record.title if e.record else None, e.detail, e.created_at)
        for e in Event.objects.filter(review=review).select_related("actor", "record").order_by("created_at", "pk")
    ]


def panels(review):
    """What each record's full-text panel shows (and the PDF it serves, read from the storage)."""
    return sorted(
        (
            f.record.title,
            f.has_pdf,
            f.filename,
            f.size,
            f.sha256,
            f.source,
            f.added_by.username if f.added_by else None,
            f.added_at,
            f.oa_checked_at,
            f.oa_pmcid,
            f.oa_note,
            f.pmc_url,
            f.file.open("rb").read() if f.has_pdf else None,
        )
        for f in FullText.objects.filter(record__review=review).select_related("record", "added_by")
    )


def picture(review):
    """Everything the two copies must agree on, free of database ids."""
    review = Review.objects.get(pk=review.pk)
    counts = prisma.to_json(prisma.compute(review))
    state = status.review_status(review)
    state.pop("review")
    names = {field_key(f): f.name for f in review.extraction_fields.all()}
    table = [{names.get(k, k): v for k, v in row.items() if k != "record_id"} for row in extraction_rows(review)]
    decisions = list(
        Decision.objects.filter(record__review=review)
        .order_by("created_at", "record__title", "reviewer__username", "pk")
        .values_list("record__title", "reviewer__username", "stage", "decision", "reason", "is_current", "created_at")
    )
    duplicates = sorted(
        Record.objects.for_review(review)
        .duplicates()
        .values_list("title", "source", "duplicate_of__title", "duplicate_of__source", "duplicate_reason")
    )
    tags = sorted(review.tags.values_list("name", "record_tags__record__title", "record_tags__added_by__username"))
    closures = list(StageClosure.objects.filter(review=review).values_list("stage", "records_marked", "p_value"))
    members = sorted(review.memberships.values_list("user__username", "role"))
    searches = list(review.searches.values_list("source", "filename", "added", "duplicates", "run_at"))
    return {
        "prisma": counts,
        "status": state,
        "extraction": table,
        "audit": audit_trail(review),
        "decisions": decisions,
        "duplicates": duplicates,
        "tags": tags,
        "closures": closures,
        "members": members,
        "searches": searches,
        "notes": list(
            review.records.filter(notes__isnull=False).values_list("title", "notes__text", "notes__author__username")
        ),
        "stopping": list(
            StoppingSettings.objects.filter(review=review).values_list(
                "stage", "recall_target", "confidence", "updated_by__username"
            )
        ),
        "orders": list(OrderPreference.objects.filter(review=review).values_list("user__username", "order")),
        "handouts": list(
            HandOut.objects.filter(record__review=review).values_list(
                "record__title", "reviewer__username", "run__version", "rank", "handed_at"
            )
        ),
        "samples": list(
            SampleRecord.objects.filter(sample__review=review)
            .order_by("position")
            .values_list("sample__seed", "sample__ended_by__username", "record__title", "position")
        ),
        "assignments": list(
            Assignment.objects.filter(record__review=review).values_list(
                "record__title", "reviewer__username", "stage", "assigned_by__username", "created_at"
            )
        ),
        "scores": list(
            RecordScore.objects.filter(run__review=review).order_by("rank").values_list("record__title", "rank")
        ),
        "fulltexts": panels(review),
    }


def test_a_review_survives_export_and_import_unchanged(scripted, tmp_path):
    before = picture(scripted)
    assert before["prisma"] and before["extraction"] and before["closures"] and len(before["audit"]) > 400
    assert [p[-1] for p in before["fulltexts"] if p[1]] == PDFS and len(before["fulltexts"]) == 4
    path = tmp_path / "kratom.zip"
    counts = export_review(review=scripted, out=path).counts
    assert [section for section, rows in counts.items() if not rows] == []  # the script fills every section

    copy = import_review(source=path, slug="kratom-copy").review

    assert copy.pk != scripted.pk and copy.slug == "kratom-copy"
    after = picture(copy)
    # The copy's audit trail is the original's, then one event saying where it came from.
    *audit, moved = after["audit"]
    after["audit"] = audit
    assert moved[:2] == ("settings", None) and moved[3]["from_review"] == "kratom-ptsd"
    for key in before:
        assert after[key] == before[key], key
    # The copy's PDFs are files of its own, in its own folder of the storage.
    names = {f.file.name for f in FullText.objects.filter(record__review=copy).exclude(file="")}
    originals = {f.file.name for f in FullText.objects.filter(record__review=scripted).exclude(file="")}
    assert len(names) == 3 and all(name.startswith(f"{copy.pk}/") for name in names) and not names & originals
    # Same people, matched by their email address on this (the same) server: no new accounts.
    assert get_user_model().objects.count() == 3


def test_the_commands_move_a_review_to_a_server_without_its_people(scripted, tmp_path):
    path = tmp_path / "kratom.zip"
    call_command("export_review", scripted.slug, "-o", str(path))
    before = picture(scripted)
    # On the other server, nobody has these names or addresses.
    for user in get_user_model().objects.all():
        user.username, user.email = f"old-{user.username}", f"old-{user.email}"
        user.save()
    out = io.StringIO()

    call_command("import_review", str(path), "--slug", "moved", stdout=out)

    after = picture(Review.objects.get(slug="moved"))
    assert after["audit"].pop()[3]["accounts_created"] == ["alice", "bob", "carol"]
    assert after == before
    assert "New inactive accounts (activate them, or set a password, to let these people in): alice, bob, carol" in (
        out.getvalue()
    )
    alice = get_user_model().objects.get(username="alice")
    assert not alice.is_active and not alice.has_usable_password() and alice.email == "alice@example.org"
