"""The hand-out log: what the model showed whom (model version, rank, score), as CSV and from the
command line; blinded like the votes it stands beside."""

import csv
import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from review.models import Membership, Record, Search, Stage
from screening import handouts, queue, retrain
from screening.handouts import CSV_COLUMNS
from screening.models import HandOut, RecordScore

TA, FT = Stage.TITLE_ABSTRACT, Stage.FULL_TEXT
RELEVANT = "Kratom (mitragynine) use among veterans with PTSD symptoms"
IRRELEVANT = "Liver enzyme activity in rats fed a high-fat diet"
FORMULA = '=HYPERLINK("http://evil.example","click")'


@pytest.fixture
def ranked(review):
    """Twelve records ranked by the review's question; dual screening at title/abstract."""
    review.question = "Does kratom relieve PTSD symptoms in veterans?"
    review.title_abstract_reviewers = 2
    review.save()
    search = Search.objects.create(review=review, kind="file", source="Embase")
    titles = [f"{RELEVANT} {i}" if i % 2 else f"{IRRELEVANT} {i}" for i in range(11)] + [FORMULA]
    Record.objects.bulk_create(
        Record(review=review, search=search, source="Embase", title=t, pmid=str(1000 + i), doi=f"10.1/x{i}")
        for i, t in enumerate(titles)
    )
    run = retrain.retrain_now(review, TA)
    return review, run


def lift(review):
    """The owner lifts blinding at title/abstract (screening.blinding.lift_blinding, once it is done)."""
    review.ta_blinding_lifted = True
    review.save(update_fields=["ta_blinding_lifted"])


def download(client, user, review):
    client.force_login(user)
    response = client.get(reverse("screening:handouts_csv", args=[review.slug]))
    return response


def rows_of(response):
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="kratom-ptsd-handouts.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == CSV_COLUMNS
    return [dict(zip(CSV_COLUMNS, row)) for row in rows[1:]]


def test_alice_sees_what_the_model_showed_each_reviewer(client, ranked, alice, bob, carol):
    review, run = ranked
    to_bob = queue.next_record(review, bob, TA)
    to_carol = queue.next_record(review, carol, TA)
    rows = rows_of(download(client, alice, review))
    assert [(r["reviewer"], r["record_id"]) for r in rows] == [("bob", str(to_bob.pk)), ("carol", str(to_carol.pk))]
    rank, score = RecordScore.objects.filter(run=run, record=to_bob).values_list("rank", "score").get()
    first = rows[0]
    assert first["model_version"] == str(run.version) == "1"
    assert (first["rank"], float(first["score"])) == (str(rank), score)
    assert (first["stage"], first["order"]) == (TA, "ranked")
    assert (first["pmid"], first["doi"], first["title"]) == (to_bob.pmid, to_bob.doi, to_bob.title)
    handed = HandOut.objects.get(reviewer=bob)
    assert first["handed_at_utc"] == handed.handed_at.strftime("%Y-%m-%d %H:%M:%S.%f")


def test_a_record_handed_in_import_order_has_no_model_figures(client, ranked, alice, bob):
    review, _ = ranked
    queue.set_order(review, bob, "import")
    handed = queue.next_record(review, bob, TA)
    (row,) = rows_of(download(client, alice, review))
    assert (row["record_id"], row["order"]) == (str(handed.pk), "import")
    assert row["model_version"] == row["rank"] == row["score"] == ""


def test_a_title_a_spreadsheet_would_run_is_written_as_text(client, ranked, alice, bob):
    review, _ = ranked
    formula = Record.objects.get(review=review, title=FORMULA)
    HandOut.objects.create(record=formula, reviewer=bob, stage=TA, order="random")
    (row,) = rows_of(download(client, alice, review))
    assert row["title"] == "'" + FORMULA


def test_a_blinded_reviewer_gets_only_his_own_hand_outs(client, ranked, alice, bob, carol):
    review, _ = ranked
    queue.next_record(review, carol, TA)
    to_bob = queue.next_record(review, bob, TA)
    # Carol's hand-out would tell bob that she is voting on that record.
    assert [(r["reviewer"], r["record_id"]) for r in rows_of(download(client, bob, review))] == [
        ("bob", str(to_bob.pk))
    ]
    # A resolver sees every vote, so every hand-out.
    Membership.objects.filter(review=review, user=bob).update(can_resolve=True)
    assert {r["reviewer"] for r in rows_of(download(client, bob, review))} == {"bob", "carol"}


def test_once_blinding_is_lifted_at_a_stage_its_hand_outs_are_open(client, ranked, alice, bob, carol):
    review, _ = ranked
    queue.next_record(review, carol, TA)
    included = Record.objects.filter(review=review).first()
    HandOut.objects.create(record=included, reviewer=carol, stage=FT, order="import")
    lift(review)
    rows = rows_of(download(client, bob, review))
    assert [(r["reviewer"], r["stage"]) for r in rows] == [("carol", TA)]  # full text is still blinded


def test_a_viewer_sees_hand_outs_only_where_blinding_is_lifted(client, ranked, alice, bob, erin):
    review, _ = ranked
    queue.next_record(review, bob, TA)
    assert rows_of(download(client, erin, review)) == []
    lift(review)
    assert [r["reviewer"] for r in rows_of(download(client, erin, review))] == ["bob"]


def test_an_outsider_gets_404_and_a_visitor_the_login_page(client, ranked, dave):
    review, _ = ranked
    assert download(client, dave, review).status_code == 404
    client.logout()
    response = client.get(reverse("screening:handouts_csv", args=[review.slug]))
    assert response.status_code == 302 and "login" in response["Location"]


def _queries_for(client, user, review):
    client.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("screening:handouts_csv", args=[review.slug]))
        body = b"".join(response.streaming_content)
    return len(queries), body.count(b"\n") - 1


def test_the_download_costs_the_same_few_queries_for_3_or_300_hand_outs(client, ranked, alice, bob, carol):
    review, _ = ranked
    records = list(Record.objects.filter(review=review))
    HandOut.objects.bulk_create(
        HandOut(record=records[i % 12], reviewer=bob, stage=TA, order="ranked") for i in range(3)
    )
    few, n_few = _queries_for(client, bob, review)
    HandOut.objects.bulk_create(
        HandOut(record=records[i % 12], reviewer=(bob, carol)[i % 2], stage=TA, order="random") for i in range(594)
    )
    many, n_many = _queries_for(client, bob, review)
    alice_many, n_alice = _queries_for(client, alice, review)
    assert (n_few, n_many, n_alice) == (3, 300, 597)
    assert few == many == alice_many <= 6


def test_the_command_writes_the_whole_log(ranked, bob, carol, tmp_path, capsys):
    review, _ = ranked
    queue.next_record(review, bob, TA)
    queue.next_record(review, carol, TA)
    out = tmp_path / "handouts.csv"
    call_command("handouts", review.slug, "-o", str(out))
    written = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["reviewer"] for r in written] == ["bob", "carol"]
    assert "".join(handouts.handout_csv_chunks(review)) == out.read_text(encoding="utf-8")
    call_command("handouts", review.slug)
    assert capsys.readouterr().out == out.read_text(encoding="utf-8")


def test_the_command_names_what_is_wrong_and_leaves_no_half_file(ranked, tmp_path):
    review, _ = ranked
    with pytest.raises(CommandError, match="No review with slug 'nope'"):
        call_command("handouts", "nope")
    with pytest.raises(CommandError, match="Cannot write"):
        call_command("handouts", review.slug, "-o", str(tmp_path / "missing-dir" / "h.csv"))
    assert list(tmp_path.iterdir()) == []


def test_the_dashboard_links_the_log(client, ranked, alice):
    review, _ = ranked
    client.force_login(alice)
    page = client.get(reverse("review:detail", args=[review.slug])).content.decode()
    assert reverse("screening:handouts_csv", args=[review.slug]) in page
