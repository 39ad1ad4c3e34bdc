import csv
import io

from review.models import Record, Search
from review.searchlog import search_log_csv
from review.spreadsheet import safe_cell
from screening.audit import audit_csv_chunks
from screening.decisions import record_decision

ATTACK = '=HYPERLINK("http://x.example","open")'


def test_only_text_a_spreadsheet_would_run_gets_an_apostrophe():
    assert safe_cell(ATTACK) == "'" + ATTACK
    assert safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("-animals") == "'-animals"
    assert safe_cell(-3) == -3 and safe_cell(2.5) == 2.5
    assert safe_cell("(kratom) AND ptsd") == "(kratom) AND ptsd"


def test_a_typed_note_and_a_query_stay_text_in_the_audit_and_search_csvs(review, alice, bob):
    search = Search.objects.create(review=review, kind="pubmed", source="PubMed", query="+kratom")
    record = Record.objects.create(review=review, search=search, source="PubMed", title="Kratom cohort")
    record_decision(record=record, reviewer=bob, stage="title_abstract", decision="include", note=ATTACK)
    owner = review.memberships.get(user=alice)
    rows = list(csv.DictReader(io.StringIO("".join(audit_csv_chunks(review, owner)))))
    notes = [r["note"] for r in rows if r["note"]]
    assert notes == ["'" + ATTACK]
    log = list(csv.DictReader(io.StringIO(search_log_csv(review))))
    assert [r for r in log[0].values() if "kratom" in r] == ["'+kratom"]
