import csv
import io

import openpyxl
import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import RequestFactory
from django.urls import reverse

from review.models import Event, Record, Search, Stage
from screening.decisions import record_decision
from screening.extraction import build_table, export, extraction_rows, included_records, save_values
from screening.models import ExtractionField, ExtractionValue
from tests.screening.test_prisma import add_record, dataset_rows

TA, FT = Stage.TITLE_ABSTRACT, Stage.FULL_TEXT


@pytest.fixture
def fields(review):
    return [
        ExtractionField.objects.create(review=review, name="Sample size", kind="number", position=1),
        ExtractionField.objects.create(
            review=review, name="Design", kind="choice", choices="RCT\nCohort\nCase series", position=2
        ),
        ExtractionField.objects.create(review=review, name="Blinded", kind="yesno", position=3),
        ExtractionField.objects.create(review=review, name="Outcome measure", kind="text", position=4),
    ]


# Full-text plan for the real records taken from the emicizumab dataset; None = excluded at title/abstract.
FULL_TEXT = [
    ("include", ""),
    ("include", ""),
    ("exclude", "Wrong population"),
    ("not_retrieved", ""),
    ("include", ""),
    ("include", ""),
    None,
]
DISPUTED = 5  # carol excludes this one at full text once two reviewers are required: a conflict


@pytest.fixture
def studies(review, bob, carol):
    search = Search.objects.create(review=review, kind="file", source="Embase", filename="embase.ris")
    rows = [r for r in dataset_rows() if r["authors"] and r["year"]][: len(FULL_TEXT)]
    records = [add_record(review, search, row) for row in rows]
    for record, ft in zip(records, FULL_TEXT):
        record_decision(record=record, reviewer=bob, stage=TA, decision="include" if ft else "exclude")
        if ft:
            record_decision(record=record, reviewer=bob, stage=FT, decision=ft[0], reason=ft[1])
    review.full_text_reviewers = 2
    review.save()
    record_decision(record=records[DISPUTED], reviewer=carol, stage=FT, decision="exclude", reason="Wrong outcome")
    return records


def test_only_reconciled_full_text_includes_are_extracted(review, studies):
    want = [r for r, ft in zip(studies, FULL_TEXT) if ft and ft[0] == "include" and r is not studies[DISPUTED]]
    assert [r.pk for r in included_records(review)] == [r.pk for r in sorted(want, key=lambda r: (r.year, r.pk))]
    studies[DISPUTED].refresh_from_db()
    assert studies[DISPUTED].ft_outcome == "conflict"


def test_rows_carry_the_study_label_and_values_in_field_order(review, studies, fields, bob):
    save_values(studies[0], {fields[0]: "120", fields[1]: "rct", fields[2]: "Yes", fields[3]: "ABR"}, bob)
    rows = {r["record_id"]: r for r in extraction_rows(review)}
    first = rows[studies[0].pk]
    surname = studies[0].authors[0].split(",")[0]
    assert first["study_id"] == f"{surname} {studies[0].year}"
    assert first["first_author"] == studies[0].authors[0]
    assert (first["title"], first["doi"], first["pmid"]) == (studies[0].title, studies[0].doi, studies[0].pmid)
    assert [first[f"field_{f.pk}"] for f in fields] == ["120", "RCT", "yes", "ABR"]
    assert [rows[studies[1].pk][f"field_{f.pk}"] for f in fields] == ["", "", "", ""]


def test_rows_take_three_queries_however_many_studies(review, studies, fields, bob, django_assert_num_queries):
    for record in (studies[0], studies[1]):
        save_values(record, {fields[0]: "10", fields[3]: "bleeds"}, bob)
    with django_assert_num_queries(3):
        extraction_rows(review)


def test_two_studies_with_the_same_label_get_letters(review, studies):
    Record.objects.filter(pk=studies[1].pk).update(authors=studies[0].authors, year=studies[0].year)
    labels = sorted(r["study_id"] for r in extraction_rows(review) if r["record_id"] in (studies[0].pk, studies[1].pk))
    base = f"{studies[0].authors[0].split(',')[0]} {studies[0].year}"
    assert labels == [f"{base}a", f"{base}b"]


@pytest.mark.parametrize(
    "field_index, value, message",
    [
        (0, "about forty", "Sample size: 'about forty' is not a number."),
        (0, "nan", "Sample size: 'nan' is not a number."),
        (1, "Cross-over", "Design: 'Cross-over' is not one of the options (RCT, Cohort, Case series)."),
        (2, "perhaps", "Blinded: 'perhaps' is not yes or no."),
    ],
)
def test_bad_values_name_their_field_and_write_nothing(studies, fields, bob, field_index, value, message):
    with pytest.raises(ValidationError) as err:
        save_values(studies[0], {fields[3]: "ABR", fields[field_index]: value}, bob)
    assert err.value.message_dict == {fields[field_index].name: [message]}
    assert not ExtractionValue.objects.filter(record=studies[0]).exists()


def test_values_can_be_given_by_name_changed_and_cleared(studies, fields, bob, carol):
    assert save_values(studies[0], {"Sample size": "12", "Design": "cohort"}, bob) == fields[:2]
    assert save_values(studies[0], {"Sample size": "12"}, carol) == []  # unchanged
    assert save_values(studies[0], {"Sample size": "", "Design": "Case series"}, carol) == fields[:2]
    stored = {v.field.name: (v.value, v.updated_by) for v in ExtractionValue.objects.filter(record=studies[0])}
    assert stored == {"Design": ("Case series", carol)}


def test_a_field_of_another_review_is_refused(studies, other_review, bob):
    foreign = ExtractionField.objects.create(review=other_review, name="Sponsor")
    with pytest.raises(ValidationError, match="Sponsor"):
        save_values(studies[0], {foreign: "Roche"}, bob)


def test_csv_export_round_trips(review, studies, fields, bob):
    save_values(studies[4], {fields[0]: "48", fields[1]: "Cohort", fields[2]: "n", fields[3]: "Trough, µg/mL"}, bob)
    rows = list(csv.DictReader(io.StringIO(export(review, "csv").decode("utf-8"))))
    assert list(rows[0]) == ["Study ID", "First author", "Year", "Title", "PMID", "DOI"] + [f.name for f in fields]
    assert len(rows) == included_records(review).count()
    row = next(r for r in rows if r["Title"] == studies[4].title)
    assert (row["Sample size"], row["Design"], row["Blinded"], row["Outcome measure"]) == (
        "48",
        "Cohort",
        "no",
        "Trough, µg/mL",
    )
    assert row["Year"] == str(studies[4].year) and row["DOI"] == studies[4].doi


def test_csv_export_keeps_formula_like_text_from_running_but_leaves_negative_numbers(review, studies, fields, bob):
    save_values(studies[4], {fields[0]: "-3", fields[3]: '=HYPERLINK("http://x.example","click")'}, bob)
    rows = list(csv.DictReader(io.StringIO(export(review, "csv").decode("utf-8"))))
    row = next(r for r in rows if r["Title"] == studies[4].title)
    assert row["Outcome measure"] == '\'=HYPERLINK("http://x.example","click")'
    assert row["Sample size"] == "-3"


def test_xlsx_export_round_trips_with_numbers_as_numbers_and_formulas_as_text(review, studies, fields, bob, tmp_path):
    save_values(studies[1], {fields[0]: "2.5", fields[3]: "=SUM(A1)"}, bob)
    path = tmp_path / "x.xlsx"
    path.write_bytes(export(review, "xlsx"))
    sheet = openpyxl.load_workbook(path).active
    values = list(sheet.values)
    assert values[0][:4] == ("Study ID", "First author", "Year", "Title")
    assert len(values) - 1 == included_records(review).count()
    row = next(v for v in values[1:] if v[3] == studies[1].title)
    assert row[2] == studies[1].year and row[6] == 2.5
    formula_cell = sheet.cell(row=values.index(row) + 1, column=10)
    assert (formula_cell.value, formula_cell.data_type) == ("=SUM(A1)", "s")  # kept as text, never run


def test_the_table_has_one_column_per_field(review, studies, fields, bob):
    save_values(studies[0], {fields[1]: "RCT"}, bob)
    request = RequestFactory().get("/", {"sort": "year"})
    table = build_table(review, request)
    assert [c.header for c in table.columns] == ["Study ID", "First author", "Year", "Title", "PMID", "DOI"] + [
        f.name for f in fields
    ]
    assert len(table.rows) == included_records(review).count()
    html = table.as_html(request)
    assert "RCT" in html and f"https://doi.org/{studies[0].doi}" in html


def test_the_command_writes_csv_and_xlsx(review, studies, fields, tmp_path):
    stdout = io.StringIO()
    call_command("export_extraction", review.slug, "--format", "csv", stdout=stdout)
    assert stdout.getvalue().encode("utf-8") == export(review, "csv")
    path = tmp_path / "e.xlsx"
    call_command("export_extraction", review.slug, "--format", "xlsx", "-o", str(path))
    assert path.read_bytes()[:2] == b"PK"
    with pytest.raises(CommandError, match="nope"):
        call_command("export_extraction", "nope")


# The audit trail of extraction (issue #6) -------------------------------------------------------


def _extraction_events(**lookups):
    return list(Event.objects.filter(kind=Event.Kind.EXTRACTION, **lookups).order_by("pk"))


def test_each_changed_value_is_logged_with_its_old_and_new_value(studies, fields, bob, carol):
    study = studies[0]
    save_values(study, {"Sample size": "40", "Design": "rct"}, bob)
    save_values(study, {"Sample size": "42", "Design": "RCT", "Blinded": ""}, carol)
    save_values(study, {"Sample size": ""}, bob)
    details = [(e.actor.username, e.record_id, e.detail) for e in _extraction_events()]
    size, design = fields[0], fields[1]
    assert details == [
        ("bob", study.pk, {"action": "value", "field": "Sample size", "field_id": size.pk, "old": "", "new": "40"}),
        ("bob", study.pk, {"action": "value", "field": "Design", "field_id": design.pk, "old": "", "new": "RCT"}),
        ("carol", study.pk, {"action": "value", "field": "Sample size", "field_id": size.pk, "old": "40", "new": "42"}),
        ("bob", study.pk, {"action": "value", "field": "Sample size", "field_id": size.pk, "old": "42", "new": ""}),
    ]


def test_bob_sees_who_changed_a_value_from_what_on_the_entry_page(client, review, studies, fields, bob, carol):
    study = studies[0]
    save_values(study, {"Outcome measure": "CAPS-5"}, bob)
    client.force_login(carol)
    url = reverse("screening:extraction_entry", args=[review.slug, study.pk])
    response = client.post(url, {f"field_{fields[3].pk}": "PCL-5"})
    assert response.status_code == 302
    client.force_login(bob)
    page = client.get(url).content.decode()
    history = page[page.index("<h2>History</h2>") :]
    assert history.index("carol") < history.index("bob")  # newest first
    assert "CAPS-5 → PCL-5" in history and "(empty) → CAPS-5" in history


def test_field_creation_rename_and_kind_change_are_logged(client, review, alice):
    client.force_login(alice)
    url = reverse("screening:extraction_fields", args=[review.slug])
    client.post(url, {"action": "save", "name": "Dose", "kind": "text", "choices": "", "help_text": ""})
    field = ExtractionField.objects.get(review=review, name="Dose")
    client.post(url, {"action": "save", "field": field.pk, "name": "Dose (mg)", "kind": "number", "choices": ""})
    created, changed = (e.detail for e in _extraction_events(review=review))
    assert created == {
        "action": "field created",
        "field": "Dose",
        "field_id": field.pk,
        "name": "Dose",
        "kind": "text",
        "choices": "",
        "help_text": "",
    }
    assert changed == {
        "action": "field changed",
        "field": "Dose (mg)",
        "field_id": field.pk,
        "changes": {"name": ["Dose", "Dose (mg)"], "kind": ["text", "number"]},
    }


def test_deleting_a_field_with_values_asks_first_and_deletes_only_when_confirmed(
    client, review, studies, fields, alice, bob
):
    save_values(studies[0], {"Sample size": "40"}, bob)
    save_values(studies[1], {"Sample size": "12"}, bob)
    size = fields[0]
    client.force_login(alice)
    url = reverse("screening:extraction_fields", args=[review.slug])
    asked = client.post(url, {"action": "delete", "field": size.pk})
    assert asked.status_code == 200
    page = asked.content.decode()
    assert "2 values entered for this field will be deleted" in page and 'name="confirm"' in page
    assert (
        ExtractionField.objects.filter(pk=size.pk).exists() and ExtractionValue.objects.filter(field=size).count() == 2
    )
    assert not _extraction_events(detail__action="field deleted")

    done = client.post(url, {"action": "delete", "field": size.pk, "confirm": "1"})
    assert done.status_code == 302
    assert not ExtractionField.objects.filter(pk=size.pk).exists() and not ExtractionValue.objects.exists()
    (deleted,) = _extraction_events(detail__action="field deleted")
    assert deleted.actor == alice and deleted.record_id is None
    assert deleted.detail["field"] == "Sample size" and deleted.detail["kind"] == "number"
    assert deleted.detail["values"] == [
        {"record": studies[0].pk, "value": "40"},
        {"record": studies[1].pk, "value": "12"},
    ]
    # Each study's own history says its value went with the field.
    last = _extraction_events(record=studies[1])[-1]
    assert (last.actor, last.detail["old"], last.detail["new"], last.detail["because"]) == (
        alice,
        "12",
        "",
        "field deleted",
    )


def test_a_field_without_values_is_deleted_at_once_and_logged(client, review, fields, alice):
    client.force_login(alice)
    client.post(reverse("screening:extraction_fields", args=[review.slug]), {"action": "delete", "field": fields[2].pk})
    assert not ExtractionField.objects.filter(pk=fields[2].pk).exists()
    (deleted,) = _extraction_events(detail__action="field deleted")
    assert deleted.detail["values"] == [] and deleted.detail["field"] == "Blinded"


def test_erin_the_viewer_cannot_delete_a_field(client, review, fields, erin):
    client.force_login(erin)
    url = reverse("screening:extraction_fields", args=[review.slug])
    assert client.post(url, {"action": "delete", "field": fields[0].pk, "confirm": "1"}).status_code == 403
    assert ExtractionField.objects.filter(pk=fields[0].pk).exists()


def test_the_audit_trail_describes_extraction_events(review, studies, fields, alice, bob):
    from review.models import Membership
    from screening.audit import audit_rows, describe_event
    from screening.extraction import delete_field

    save_values(studies[0], {"Design": "Cohort"}, bob)
    delete_field(fields[1], user=alice)
    value, deleted, gone = _extraction_events()
    assert describe_event(value, studies[0]) == "“Design”: (empty) → Cohort"
    assert describe_event(deleted) == "field “Design” deleted with its 1 value"
    assert describe_event(gone, studies[0]) == "“Design”: Cohort → (empty) (field deleted)"
    rows = [row for row in audit_rows(review, Membership.objects.get(user=alice)) if row[2] == "extraction"]
    assert len(rows) == 3 and '"new": "Cohort"' in rows[0][-1]


def _as_shown(response):
    """What the browser would post back from the entry page: every input as the page shows it."""
    form = response.context["form"]
    return {name: form[name].value() or "" for name in form.fields}


def test_bob_saving_one_value_keeps_the_value_carol_changed_since_he_opened_the_form(
    client, review, studies, fields, bob, carol
):
    study = studies[0]
    save_values(study, {"Sample size": "40", "Outcome measure": "CAPS-5"}, bob)
    url = reverse("screening:extraction_entry", args=[review.slug, study.pk])
    client.force_login(bob)
    form = _as_shown(client.get(url))
    save_values(study, {"Sample size": "42"}, carol)  # carol, in her own tab, meanwhile
    form[f"field_{fields[3].pk}"] = "PCL-5"
    assert client.post(url, form).status_code == 302
    stored = dict(ExtractionValue.objects.filter(record=study).values_list("field__name", "value"))
    assert stored == {"Sample size": "42", "Outcome measure": "PCL-5"}


def test_bob_changing_the_value_carol_changed_meanwhile_is_told_and_overwrites_only_on_purpose(
    client, review, studies, fields, bob, carol
):
    study = studies[0]
    save_values(study, {"Sample size": "40"}, bob)
    url = reverse("screening:extraction_entry", args=[review.slug, study.pk])
    client.force_login(bob)
    form = _as_shown(client.get(url))
    save_values(study, {"Sample size": "42"}, carol)
    form[f"field_{fields[0].pk}"] = "45"
    response = client.post(url, form)
    assert response.status_code == 400
    assert "Sample size: carol changed this to &#x27;42&#x27; while you were editing" in response.content.decode()
    assert ExtractionValue.objects.get(record=study, field=fields[0]).value == "42"
    again = _as_shown(response)
    assert again[f"field_{fields[0].pk}"] == "45"  # what bob typed is kept, now over carol's value
    assert client.post(url, again).status_code == 302
    assert ExtractionValue.objects.get(record=study, field=fields[0]).value == "45"
    olds = [
        (e.actor.username, e.detail["old"], e.detail["new"])
        for e in Event.objects.filter(record=study).filter(kind=Event.Kind.EXTRACTION).order_by("pk")
    ]
    assert olds == [("bob", "", "40"), ("carol", "40", "42"), ("bob", "42", "45")]
