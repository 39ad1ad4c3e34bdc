"""A review file that is damaged, forged, from elsewhere or from an older Sieve.

A bad file gets an error that names the problem, and nothing of it is written (no review, no
accounts). An older format version imports through the upgrade hook.
"""

import json
import re
import zipfile
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from review.models import Event, Record, Review, Search
from screening.decisions import record_decision
from screening.models import Decision
from transfer.exporting import export_review
from transfer.fileformat import FORMAT_VERSION, NOT_TRANSFERRED, SECTIONS
from transfer.importing import TransferError, import_review

ROOT = Path(__file__).resolve().parents[2]
FILES = Path(__file__).parent / "files"


@pytest.fixture
def exported(review, bob, tmp_path):
    search = Search.objects.create(review=review, kind="file", source="Embase")
    records = Record.objects.bulk_create(
        Record(review=review, search=search, source="Embase", title=f"Kratom cohort {i}") for i in range(5)
    )
    Record.objects.filter(pk=records[4].pk).update(duplicate_of=records[0], duplicate_reason="title")
    record_decision(record=records[0], reviewer=bob, stage="title_abstract", decision="include")
    path = tmp_path / "kratom.zip"
    export_review(review=review, out=path)
    return path


def rewrite(path, name, change):
    """A copy of the review file at ``path`` with member ``name``'s text passed through ``change``."""
    out = path.with_name(f"changed-{path.name}")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, change(data.decode()).encode() if item.filename == name else data)
    return out


def forge(path, name, change):
    """As rewrite(), with the manifest's checksum and count made to match (a deliberate forgery)."""
    import hashlib

    out = rewrite(path, name, change)
    with zipfile.ZipFile(out) as z:
        data, manifest = z.read(name), json.loads(z.read("manifest.json"))
    section = name.removesuffix(".jsonl")
    manifest["sections"][section] = {"rows": data.count(b"\n"), "sha256": hashlib.sha256(data).hexdigest()}
    return rewrite(out, "manifest.json", lambda _: json.dumps(manifest))


def nothing_written(review_count, user_count):
    assert Review.objects.count() == review_count
    assert get_user_model().objects.count() == user_count
    assert not Review.objects.filter(slug="copy").exists()


@pytest.mark.parametrize(
    "name, change, message",
    [
        ("records.jsonl", lambda t: t.replace("Kratom cohort 3", "Kratom cohort 9"), "does not match its manifest"),
        ("decisions.jsonl", lambda t: "", "does not match its manifest"),
        ("manifest.json", lambda t: t.replace('"sieve-review"', '"other"'), 'format "sieve-review"'),
        (
            "manifest.json",
            lambda t: t.replace(f'"version": {FORMAT_VERSION}', '"version": 7'),
            "newer than this Sieve reads",
        ),
        ("manifest.json", lambda t: t[:20], "manifest.json is damaged"),
    ],
)
def test_a_changed_or_cut_file_is_refused_with_nothing_written(exported, name, change, message):
    reviews, users = Review.objects.count(), get_user_model().objects.count()
    with pytest.raises(TransferError, match=message):
        import_review(source=rewrite(exported, name, change), slug="copy")
    nothing_written(reviews, users)


@pytest.mark.parametrize(
    "name, change, message",
    [
        # A decision on a record of another review on this server.
        ("decisions.jsonl", lambda t: re.sub(r'"record": \d+', '"record": 99999', t), "does not hold"),
        ("decisions.jsonl", lambda t: t.replace('"include"', '"approve"'), "not one of its choices"),
        (
            "decisions.jsonl",
            lambda t: t.replace('"reviewer": "bob"', '"reviewer": "mallory"'),
            "not in the file's users",
        ),
        ("records.jsonl", lambda t: t.replace('"title":', '"is_superuser": true, "title":', 1), "unknown field"),
        ("records.jsonl", lambda t: t.replace('"year": null', '"year": "soon"', 1), "year"),
        ("users.jsonl", lambda t: t + '{"username": "x y z!", "email": "not an address"}\n', "users.jsonl, line"),
    ],
)
def test_a_forged_file_is_refused_with_nothing_written(exported, name, change, message):
    reviews, users = Review.objects.count(), get_user_model().objects.count()
    with pytest.raises(TransferError, match=message):
        import_review(source=forge(exported, name, change), slug="copy")
    nothing_written(reviews, users)


def test_a_file_that_is_not_a_review_file_is_refused(tmp_path, db):
    path = tmp_path / "notes.zip"
    path.write_bytes(b"PK not really a zip")
    with pytest.raises(TransferError, match="not a zip archive"):
        import_review(source=path)


def test_a_slug_in_use_or_not_a_slug_is_refused_by_the_command(exported, review):
    with pytest.raises(CommandError, match="exists already here"):
        call_command("import_review", str(exported))
    with pytest.raises(CommandError, match="not a valid slug"):
        call_command("import_review", str(exported), "--slug", "two words")
    assert Review.objects.count() == 1


def test_a_version_0_file_imports_through_the_upgrade_hook(alice, bob, tmp_path):
    # A hand-made draft-format file: tags called "labels", authors as one string.
    path = tmp_path / "review-v0.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for member in sorted((FILES / "review-v0").iterdir()):
            archive.write(member, member.name)
    result = import_review(source=path)
    review = result.review
    assert review.slug == "kratom-v0"
    record = Record.objects.get(review=review, pmid="31000001")
    assert record.authors == ["Singh, D", "Narayanan, S"]
    assert list(record.tags.values_list("name", flat=True)) == ["Animal study"]
    assert Record.objects.get(review=review, pmid="31000002").duplicate_of == record
    assert Decision.objects.get(record=record).reviewer == bob
    assert Event.objects.filter(review=review, kind="decision", actor=bob).count() == 1
    assert result.users_matched_by_email == ["alice", "bob"]


def project_models():
    """Every model defined in the project's own apps, and any background-job model installed."""
    for model in apps.get_models():
        module = Path(__import__(model.__module__, fromlist=["_"]).__file__).resolve()
        label = model._meta.label
        if ROOT in module.parents and ".venv" not in module.parts or "job" in label.lower() or "task" in label.lower():
            yield label


def test_every_model_is_transferred_or_excluded_on_purpose():
    handled = {s.model for s in SECTIONS}
    assert not handled & set(NOT_TRANSFERRED)
    unhandled = sorted(set(project_models()) - handled - set(NOT_TRANSFERRED))
    assert unhandled == [], (
        "Add these models to transfer/fileformat.py SECTIONS (or NOT_TRANSFERRED, saying why): " + ", ".join(unhandled)
    )
    assert "review.Record" in set(project_models())


def test_a_version_1_file_without_assignments_imports_with_none(exported):
    # Version 2 added the assignments section; a file written before it has neither the section
    # nor its manifest entry.
    def as_version_1(text):
        manifest = json.loads(text)
        manifest["version"] = 1
        del manifest["sections"]["assignments"]
        return json.dumps(manifest)

    old = rewrite(exported, "manifest.json", as_version_1)
    with zipfile.ZipFile(old) as src, zipfile.ZipFile(old.with_name("v1.zip"), "w") as dst:
        for item in src.infolist():
            if item.filename != "assignments.jsonl":
                dst.writestr(item, src.read(item))
    copy = import_review(source=old.with_name("v1.zip"), slug="copy").review
    assert Record.objects.for_review(copy).count() == 5
    assert FORMAT_VERSION > 1  # an older version than this Sieve writes
