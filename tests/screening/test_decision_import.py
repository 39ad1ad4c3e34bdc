import csv

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from review.models import Membership, Record, Search
from screening.decision_import import DecisionImportError, import_decisions
from screening.models import Decision


@pytest.fixture
def records(review):
    search = Search.objects.create(review=review, kind="file", source="PubMed")
    made = [
        Record.objects.create(
            review=review,
            search=search,
            source="PubMed",
            pmid=str(1000 + i),
            doi=f"10.1000/k{i}",
            title=f"Kratom study number {i}",
            title_norm=f"kratom study number {i}",
            doi_norm=f"10.1000/k{i}",
        )
        for i in range(4)
    ]
    # a duplicate of record 0 sharing its title
    made.append(
        Record.objects.create(
            review=review,
            search=search,
            source="Embase",
            title="Kratom study number 0",
            title_norm="kratom study number 0",
            duplicate_of=made[0],
        )
    )
    return made


def write(tmp_path, rows, name="decisions.csv"):
    path = tmp_path / name
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, ["pmid", "doi", "title", "reviewer", "stage", "decision", "reason"])
        w.writeheader()
        for r in rows:
            w.writerow({"pmid": "", "doi": "", "title": "", "reason": "", **r})
    return path


def test_it_matches_by_pmid_then_doi_then_title_and_creates_reviewers(tmp_path, review, records):
    path = write(
        tmp_path,
        [
            dict(pmid="1000", reviewer="erin", stage="title_abstract", decision="include"),
            dict(
                doi="https://doi.org/10.1000/K1",
                reviewer="erin",
                stage="title_abstract",
                decision="exclude",
                reason="rats",
            ),
            dict(title="KRATOM study number 2.", reviewer="erin", stage="title_abstract", decision="maybe"),
            dict(pmid="1000", reviewer="erin", stage="full_text", decision="exclude", reason="Wrong population"),
        ],
    )
    result = import_decisions(review=review, path=path)
    assert result.decisions == 4 and result.users_created == ["erin"]
    erin = get_user_model().objects.get(username="erin")
    assert not erin.has_usable_password()
    assert Membership.objects.get(review=review, user=erin).role == "reviewer"
    outcomes = {r.pk: (r.ta_outcome, r.ft_outcome, r.ft_reason) for r in Record.objects.filter(review=review)}
    assert outcomes[records[0].pk] == ("include", "exclude", "Wrong population")
    assert outcomes[records[1].pk][0] == "exclude"
    assert outcomes[records[2].pk][0] == "include"  # maybe counts as include
    assert outcomes[records[3].pk][0] == ""


def test_a_title_shared_by_a_record_and_its_duplicate_matches_the_original(tmp_path, review, records):
    path = write(
        tmp_path, [dict(title="Kratom study number 0", reviewer="bob", stage="title_abstract", decision="exclude")]
    )
    import_decisions(review=review, path=path)
    assert Decision.objects.get().record_id == records[0].pk


def test_an_unmatched_or_ambiguous_row_is_named_and_nothing_is_written(tmp_path, review, records):
    Record.objects.create(
        review=review, search=records[0].search, source="X", title="Twin title", title_norm="twin title"
    )
    Record.objects.create(
        review=review, search=records[0].search, source="X", title="Twin title", title_norm="twin title"
    )
    path = write(
        tmp_path,
        [
            dict(pmid="1001", reviewer="bob", stage="title_abstract", decision="include"),
            dict(pmid="999999", reviewer="bob", stage="title_abstract", decision="include"),
            dict(title="Twin title", reviewer="bob", stage="title_abstract", decision="exclude"),
            dict(pmid="1002", reviewer="bob", stage="title_abstract", decision="sideways"),
        ],
    )
    with pytest.raises(DecisionImportError) as info:
        import_decisions(review=review, path=path)
    message = str(info.value)
    assert "line 3: pmid '999999' matches no record" in message
    assert "line 4: title 'Twin title' matches 2 records" in message
    assert "line 5: decision 'sideways'" in message
    assert "line 2" not in message
    assert not Decision.objects.exists()


def test_full_text_decision_for_a_record_not_included_is_refused(tmp_path, review, records):
    path = write(
        tmp_path,
        [
            dict(pmid="1001", reviewer="bob", stage="title_abstract", decision="exclude"),
            dict(pmid="1001", reviewer="bob", stage="full_text", decision="include"),
        ],
    )
    with pytest.raises(DecisionImportError, match="line 3: record .* not included at title/abstract"):
        import_decisions(review=review, path=path)
    assert not Decision.objects.exists()
    assert Record.objects.get(pk=records[1].pk).ta_outcome == ""


def test_reimporting_a_changed_decision_keeps_the_old_one_as_history(tmp_path, review, records, bob):
    import_decisions(
        review=review,
        path=write(tmp_path, [dict(pmid="1003", reviewer="bob", stage="title_abstract", decision="include")]),
    )
    import_decisions(
        review=review,
        path=write(tmp_path, [dict(pmid="1003", reviewer="bob", stage="title_abstract", decision="exclude")], "b.csv"),
    )
    assert list(Decision.objects.filter(record=records[3]).values_list("decision", "is_current")) == [
        ("include", False),
        ("exclude", True),
    ]


def test_the_command_reports_errors_without_a_traceback(tmp_path, review, records):
    bad = tmp_path / "bad.csv"
    bad.write_text("pmid,reviewer\n1000,bob\n")
    with pytest.raises(CommandError, match="missing column\\(s\\): stage, decision"):
        call_command("import_decisions", review.slug, str(bad))
    with pytest.raises(CommandError, match="No review with slug"):
        call_command("import_decisions", "nope", str(bad))
