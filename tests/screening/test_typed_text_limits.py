"""What people type is bounded by the forms (the model TextFields have no length of their own)."""

import pytest

from review import limits
from review.forms import PubMedSearchForm, ReviewForm
from review.models import Stage
from screening.decision_import import DecisionImportError, import_decisions
from screening.forms import DecisionForm, ExtractionEntryForm, ExtractionFieldForm
from screening.models import Decision, ExtractionField
from tests.screening.test_decision_import import records, write  # noqa: F401 (fixture)


def settings_data(review, **changes):
    form = ReviewForm(instance=review)
    data = {name: form[name].value() for name in form.fields}
    return {k: "" if v is None else v for k, v in {**data, **changes}.items()}


def test_alice_cannot_save_inclusion_criteria_longer_than_the_cap(review):
    too_long = "adults " * (limits.REVIEW_TEXT // 7 + 1)
    form = ReviewForm(settings_data(review, inclusion_criteria=too_long), instance=review)
    assert not form.is_valid()
    assert form.errors["inclusion_criteria"] == [
        f"Ensure this value has at most {limits.REVIEW_TEXT} characters (it has {len(too_long.strip())})."
    ]
    assert form["inclusion_criteria"].field.widget.attrs["maxlength"] == str(limits.REVIEW_TEXT)


def test_settings_within_the_caps_still_save(review):
    form = ReviewForm(settings_data(review, inclusion_criteria="Adults with PTSD"), instance=review)
    assert form.is_valid(), form.errors


def test_a_pubmed_query_longer_than_the_cap_is_refused():
    form = PubMedSearchForm({"query": "kratom OR " * limits.PUBMED_QUERY, "max_records": 10})
    assert not form.is_valid()
    assert "at most" in form.errors["query"][0]


def test_bobs_decision_note_longer_than_the_cap_is_refused(review):
    form = DecisionForm(
        {"decision": "include", "note": "n" * (limits.DECISION_NOTE + 1)}, review=review, stage=Stage.TITLE_ABSTRACT
    )
    assert not form.is_valid()
    assert form.errors["note"] == [
        f"Ensure this value has at most {limits.DECISION_NOTE} characters (it has {limits.DECISION_NOTE + 1})."
    ]


def test_an_extraction_value_and_field_choices_longer_than_the_caps_are_refused(review):
    outcome = ExtractionField.objects.create(review=review, name="Outcome", kind="text", position=1)
    entry = ExtractionEntryForm(
        {f"field_{outcome.pk}": "x" * (limits.EXTRACTION_VALUE + 1)}, fields=[outcome], values={}
    )
    assert not entry.is_valid()
    assert "at most" in entry.errors[f"field_{outcome.pk}"][0]
    options = "\n".join(f"option {i}" for i in range(limits.EXTRACTION_CHOICES))
    field_form = ExtractionFieldForm({"name": "Design", "kind": "choice", "choices": options}, review=review)
    assert not field_form.is_valid()
    assert "at most" in field_form.errors["choices"][0]


def test_an_imported_decision_with_an_overlong_reason_or_note_is_named_by_line(tmp_path, review, records):  # noqa: F811
    path = write(
        tmp_path,
        [
            dict(pmid="1000", reviewer="erin", stage="title_abstract", decision="exclude", reason="r" * 301),
            dict(pmid="1001", reviewer="erin", stage="title_abstract", decision="include"),
        ],
    )
    text = path.read_text().splitlines()
    text[0] += ",note"
    text[1] += ","
    text[2] += "," + "n" * (limits.DECISION_NOTE + 1)
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(DecisionImportError) as error:
        import_decisions(review=review, path=path)
    assert error.value.errors == [
        "line 2: the reason has 301 characters; the limit is 300",
        f"line 3: the note has {limits.DECISION_NOTE + 1:,} characters; the limit is {limits.DECISION_NOTE:,}",
    ]
    assert not Decision.objects.exists()
