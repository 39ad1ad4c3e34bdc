"""Downloads opened in a spreadsheet: text people typed (field names, source names, exclusion
reasons) must never run as a formula, and numbers must stay numbers."""

import csv
import io

import openpyxl

from screening.extraction import export, save_values
from screening.models import ExtractionField
from screening.prisma import PrismaCounts, to_prisma2020_csv
from tests.screening.test_extraction import fields, studies  # noqa: F401 (fixtures)

EVIL_FIELD = "=cmd|' /C calc'!A0"


def test_an_extraction_field_name_that_looks_like_a_formula_stays_text_in_the_csv_header(review, studies, bob):  # noqa: F811
    evil = ExtractionField.objects.create(review=review, name=EVIL_FIELD, kind="number", position=1)
    at = ExtractionField.objects.create(review=review, name="@SUM(1+1)", kind="text", position=2)
    save_values(studies[0], {evil: "-4", at: "fine"}, bob)
    header, *rows = list(csv.reader(io.StringIO(export(review, "csv").decode("utf-8"))))
    assert header[-2:] == ["'" + EVIL_FIELD, "'@SUM(1+1)"]
    assert header[:6] == ["Study ID", "First author", "Year", "Title", "PMID", "DOI"]
    # The negative number under it is still a number.
    assert [row[-2] for row in rows if row[3] == studies[0].title] == ["-4"]


def test_an_extraction_field_name_and_value_that_look_like_formulas_are_text_cells_in_the_xlsx(
    review,
    studies,  # noqa: F811
    bob,
    tmp_path,
):
    evil = ExtractionField.objects.create(review=review, name=EVIL_FIELD, kind="text", position=1)
    count = ExtractionField.objects.create(review=review, name="Sample size", kind="number", position=2)
    save_values(studies[0], {evil: "=1+1", count: "-4"}, bob)
    path = tmp_path / "x.xlsx"
    path.write_bytes(export(review, "xlsx"))
    sheet = openpyxl.load_workbook(path).active
    header = [c for c in next(sheet.iter_rows(max_row=1))]
    assert (header[6].value, header[6].data_type) == (EVIL_FIELD, "s")
    row = next(r for r in sheet.iter_rows(min_row=2) if r[3].value == studies[0].title)
    assert (row[6].value, row[6].data_type) == ("=1+1", "s")
    assert (row[7].value, row[7].data_type) == (-4, "n")


def test_prisma2020_csv_escapes_typed_source_names_and_reasons_but_not_counts():
    counts = PrismaCounts(
        databases_identified={"=HYPERLINK(http://x.example)": 12, "Embase": 3},
        duplicates_removed=2,
        records_screened=13,
        records_excluded=9,
        reports_sought=4,
        reports_assessed=4,
        reports_excluded={"@SUM(1)": 1, "-Wrong population": 1},
        reports_included=2,
    )
    rows = {r["data"]: r for r in csv.DictReader(io.StringIO(to_prisma2020_csv(counts)))}
    assert rows["database_specific_results"]["n"] == "'=HYPERLINK(http://x.example), 12; Embase, 3"
    assert rows["dbr_excluded"]["n"] == "'@SUM(1), 1; -Wrong population, 1"
    assert {k: rows[k]["n"] for k in ("database_results", "duplicates", "records_screened", "new_studies")} == {
        "database_results": "15",
        "duplicates": "2",
        "records_screened": "13",
        "new_studies": "2",
    }
    # No other cell of the file starts like a formula.
    for row in csv.reader(io.StringIO(to_prisma2020_csv(counts))):
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row)
