"""Sources as the user types them (PRISMA-S items 1-3, 8, 9, 13): the import form, import_records,
counted sources (form and count_records), and what the search log shows of them."""

import csv
import io
from datetime import date, datetime, timedelta
from datetime import timezone as tz

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from review import importers, sources
from review.importing import import_file, record_count, run_search
from review.models import Event, Record, Search
from review.searchlog import search_log_csv
from review.sources import SourceDetails
from tests.eutils_server import eutils_server  # noqa: F401 (fixture)
from tests.shared import shared

OVID = ("fixtures", "exports", "ovid_psycinfo.ris")
SCOPUS = ("fixtures", "exports", "scopus.ris")
TOMORROW_EVERYWHERE = date.today() + timedelta(days=2)
STRATEGY = "1. exp Stress Disorders, Post-Traumatic/\n2. (kratom or mitragyn*).ti,ab.\n3. 1 and 2"


def what_the_file_shows(*parts):
    """The database and platform the importers read from the file itself."""
    with open(shared(*parts), "rb") as stream:
        sniffed = importers.sniff(stream, parts[-1])
    return getattr(sniffed, "database", "") or sniffed.source, getattr(sniffed, "platform", "")


def upload(*parts):
    path = shared(*parts)
    return SimpleUploadedFile(path.name, path.read_bytes())


def log_rows(review):
    return list(csv.DictReader(io.StringIO(search_log_csv(review))))


# --- The pure part ------------------------------------------------------------------------------


def test_a_search_date_must_be_a_real_day_not_in_the_future():
    today = date(2024, 5, 2)
    assert sources.parse_search_date(" 2024-05-02 ", today) == today
    assert sources.parse_search_date("", today) is None
    for typo in ("2024-13-01", "02/05/2024", "yesterday", "2024-02-30"):
        with pytest.raises(ValueError, match=rf"'{typo}' is not a search date: write it as YYYY-MM-DD"):
            sources.parse_search_date(typo, today)
    with pytest.raises(ValueError, match=r"2024-05-03 is in the future \(today is 2024-05-02\)"):
        sources.parse_search_date("2024-05-03", today)


def test_no_timezone_on_earth_sees_its_own_today_as_the_future():
    # The server may be a day behind the person typing (UTC vs Kiribati, UTC+14).
    kiribati = datetime.now(tz(timedelta(hours=14))).date()
    sources.check_search_date(kiribati)
    with pytest.raises(ValueError, match="in the future"):
        sources.check_search_date(kiribati + timedelta(days=1))
    with pytest.raises(ValueError, match="in the future"):
        sources.check_search_date(TOMORROW_EVERYWHERE)


def test_typed_details_are_stripped_and_bounded():
    details = SourceDetails(database="  Embase ", platform=" Ovid ", query=" 1. x\r\n2. y\r\n").checked()
    assert (details.database, details.platform, details.query) == ("Embase", "Ovid", "1. x\n2. y")
    with pytest.raises(ValueError, match="The platform / interface is 101 characters long; at most 100"):
        SourceDetails(platform="p" * 101).checked()
    with pytest.raises(ValueError, match="'library' is not a source type"):
        SourceDetails(source_type="library").checked()


def test_typed_values_win_over_the_file_and_the_file_over_the_file_name():
    typed = SourceDetails(database="APA PsycInfo", platform="Ovid")
    assert typed.search_fields(database="PsycINFO (Ovid)", platform="", default="x.ris")["source"] == "APA PsycInfo"
    blank = SourceDetails()
    shown = blank.search_fields(database="Scopus", platform="Scopus", default="x.ris")
    assert (shown["source"], shown["platform"], shown["source_type"]) == ("Scopus", "Scopus", "database")
    assert blank.search_fields(default="lens-export.ris")["source"] == "lens-export.ris"


def test_trial_registers_are_told_from_databases_unless_the_user_says_otherwise():
    for register in ("ClinicalTrials.gov", "WHO ICTRP", "EU Clinical Trials Register", "ISRCTN registry"):
        assert sources.guess_source_type(register) == sources.REGISTER, register
    for database in ("Embase", "CENTRAL", "PubMed", "Cochrane Central Register of Controlled Trials"):
        assert sources.guess_source_type(database) == sources.DATABASE, database
    typed = SourceDetails(database="ClinicalTrials.gov", source_type="database")
    assert typed.search_fields()["source_type"] == "database"


def test_the_source_types_are_the_models():
    assert tuple(Search.SourceType.values) == sources.SOURCE_TYPES


# --- import_file ----------------------------------------------------------------------------------


def test_alices_typed_details_override_what_the_ovid_file_shows(review, alice):
    file_database, _ = what_the_file_shows(*OVID)
    assert file_database and file_database != "APA PsycInfo 1806 to March Week 4 2024"
    details = SourceDetails(
        database="APA PsycInfo 1806 to March Week 4 2024",
        platform="Ovid SP",
        searched_on=date(2024, 3, 31),
        query=STRATEGY,
        limits="English; 2000 to current",
    )
    result = import_file(review=review, path=shared(*OVID), details=details, user=alice)
    search = Search.objects.get(pk=result.search.pk)
    assert (search.source, search.platform, search.source_type) == (
        "APA PsycInfo 1806 to March Week 4 2024",
        "Ovid SP",
        "database",
    )
    assert (search.searched_on, search.query, search.limits) == (
        date(2024, 3, 31),
        STRATEGY,
        "English; 2000 to current",
    )
    # The records carry the database named by the user, as PRISMA's "records identified from" does.
    assert set(Record.objects.filter(search=search).values_list("source", flat=True)) == {
        "APA PsycInfo 1806 to March Week 4 2024"
    }
    event = Event.objects.get(kind=Event.Kind.IMPORT)
    assert event.detail["platform"] == "Ovid SP" and event.detail["searched_on"] == "2024-03-31"


def test_left_blank_the_database_and_platform_come_from_the_file(review):
    search = import_file(review=review, path=shared(*OVID)).search
    assert (search.source, search.platform) == what_the_file_shows(*OVID)
    assert (search.searched_on, search.query, search.limits, search.source_type) == (None, "", "", "database")


def test_the_platform_the_importers_read_is_used_once_they_read_it(review, monkeypatch):
    # The importers name the database and the platform apart (Sniffed.database/.platform);
    # import_file takes them when the user typed nothing, and typed values still win.
    real_sniff = importers.sniff

    def sniff_with_platform(stream, name):
        sniffed = real_sniff(stream, name)
        sniffed.database, sniffed.platform = "APA PsycInfo", "Ovid"
        return sniffed

    monkeypatch.setattr("review.importing.sniff", sniff_with_platform)
    search = import_file(review=review, path=shared(*OVID)).search
    assert (search.source, search.platform) == ("APA PsycInfo", "Ovid")
    search = import_file(review=review, path=shared(*OVID), details=SourceDetails(platform="OvidSP")).search
    assert (search.source, search.platform) == ("APA PsycInfo", "OvidSP")


def test_a_register_export_is_marked_as_a_register(review):
    search = import_file(review=review, path=shared(*SCOPUS), source="ClinicalTrials.gov").search
    assert search.source_type == Search.SourceType.REGISTER


def test_a_future_search_date_stores_nothing(review):
    with pytest.raises(ValueError, match="in the future"):
        import_file(review=review, path=shared(*SCOPUS), details=SourceDetails(searched_on=TOMORROW_EVERYWHERE))
    assert not Search.objects.exists() and not Record.objects.exists()


# --- The import form ------------------------------------------------------------------------------


def import_url(review):
    return reverse("review:import", args=[review.slug])


def count_url(review):
    return reverse("review:import_count", args=[review.slug])


def test_bob_types_the_source_on_the_import_form(client, review, bob, inline_worker):
    client.force_login(bob)
    data = {
        "file": upload(*OVID),
        "source": "APA PsycInfo",
        "platform": "Ovid",
        "source_type": "database",
        "searched_on": "2024-03-31",
        "query": STRATEGY.replace("\n", "\r\n"),  # as browsers send a textarea
        "limits": "English only",
    }
    response = client.post(import_url(review), data)
    assert response.status_code == 302
    search = Search.objects.get()
    assert (search.source, search.platform, search.searched_on) == ("APA PsycInfo", "Ovid", date(2024, 3, 31))
    assert (search.query, search.limits, search.run_by) == (STRATEGY, "English only", bob)


def test_the_import_form_refuses_a_bad_or_future_date_and_imports_nothing(client, review, bob):
    client.force_login(bob)
    for typed, error in (
        ("31/03/2024", "Write the date as YYYY-MM-DD"),
        ("03/04/2024", "Write the date as YYYY-MM-DD"),  # March or April?
        ("2024-02-30", "Write the date as YYYY-MM-DD"),
        (TOMORROW_EVERYWHERE.isoformat(), "is in the future"),
    ):
        response = client.post(import_url(review), {"file": upload(*SCOPUS), "searched_on": typed})
        assert response.status_code == 200
        assert error in response.content.decode(), typed
    assert not Search.objects.exists() and not Record.objects.exists()


def test_a_blank_date_is_allowed_on_an_import_and_the_file_names_the_source(client, review, bob, inline_worker):
    client.force_login(bob)
    assert client.post(import_url(review), {"file": upload(*SCOPUS), "searched_on": ""}).status_code == 302
    search = Search.objects.get()
    assert search.searched_on is None and search.source == what_the_file_shows(*SCOPUS)[0]


def test_an_overlong_platform_is_refused_by_the_form(client, review, bob):
    client.force_login(bob)
    response = client.post(import_url(review), {"file": upload(*SCOPUS), "platform": "x" * 101})
    assert "at most 100 characters" in response.content.decode()
    assert not Search.objects.exists()


# --- Counted sources --------------------------------------------------------------------------------


COUNT = {
    "count-source": "Citation searching",
    "count-count": "14",
    "count-source_type": "other",
    "count-searched_on": "2024-04-15",
    "count-query": "Backward citation searching of the 12 included studies",
}


def test_alice_records_the_records_citation_searching_identified(client, review, alice):
    client.force_login(alice)
    page = client.get(import_url(review)).content.decode()
    assert count_url(review) in page
    response = client.post(count_url(review), COUNT)
    assert response.status_code == 302 and response["Location"] == reverse("review:searches", args=[review.slug])
    search = Search.objects.get()
    assert (search.kind, search.source, search.source_type, search.hits) == ("count", "Citation searching", "other", 14)
    assert (search.searched_on, search.run_by, search.added, search.fetched) == (date(2024, 4, 15), alice, 0, 0)
    assert not Record.objects.exists()
    event = Event.objects.get()
    assert (event.kind, event.actor, event.detail["counted"], event.detail["source"]) == (
        Event.Kind.IMPORT,
        alice,
        14,
        "Citation searching",
    )


def test_bob_the_reviewer_cannot_forge_a_count_and_dave_cannot_see_it(client, review, bob, dave):
    client.force_login(bob)
    assert count_url(review) not in client.get(import_url(review)).content.decode()
    assert client.post(count_url(review), COUNT).status_code == 403
    client.force_login(dave)
    assert client.post(count_url(review), COUNT).status_code == 404
    assert not Search.objects.exists() and not Event.objects.exists()


def test_a_count_needs_a_get_free_post(client, review, alice):
    client.force_login(alice)
    assert client.get(count_url(review)).status_code == 405


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("count-searched_on", "", "Give the date the source was searched"),
        ("count-searched_on", "15.04.2024", "Write the date as YYYY-MM-DD"),
        ("count-searched_on", TOMORROW_EVERYWHERE.isoformat(), "is in the future"),
        ("count-count", "-3", "greater than or equal to 0"),
        ("count-count", "many", "Enter a whole number"),
        ("count-source", "", "This field is required"),
    ],
)
def test_a_count_with_a_blank_or_bad_field_is_refused(client, review, alice, field, value, error):
    client.force_login(alice)
    response = client.post(count_url(review), {**COUNT, field: value})
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Search.objects.exists()


def test_record_count_refuses_what_the_form_would(review):
    good = SourceDetails(database="Websites", searched_on=date(2024, 4, 1))
    with pytest.raises(ValueError, match="whole number, 0 or more"):
        record_count(review=review, count=-1, details=good)
    with pytest.raises(ValueError, match="Name the source"):
        record_count(review=review, count=3, details=SourceDetails(searched_on=date(2024, 4, 1)))
    assert record_count(review=review, count=0, details=good).source_type == "other"
    assert record_count(review=review, count=2, details=SourceDetails(database="ICTRP")).source_type == "register"


# --- The commands ---------------------------------------------------------------------------------


def run(command, *args):
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_records_takes_the_source_as_typed(review, tmp_path):
    strategy = tmp_path / "strategy.txt"
    strategy.write_text(STRATEGY + "\n", encoding="utf-8")
    out, _ = run(
        "import_records",
        review.slug,
        str(shared(*OVID)),
        "--database",
        "APA PsycInfo",
        "--platform",
        "Ovid",
        "--date",
        "2024-03-31",
        "--query-file",
        str(strategy),
        "--limits",
        "English only",
    )
    assert "source APA PsycInfo" in out
    search = Search.objects.get()
    assert (search.platform, search.searched_on, search.query, search.limits) == (
        "Ovid",
        date(2024, 3, 31),
        STRATEGY,
        "English only",
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--date", "2024-3-31x"), "'2024-3-31x' is not a search date"),
        (("--date", TOMORROW_EVERYWHERE.isoformat()), "in the future"),
        (("--source-type", "library"), "invalid choice: 'library'"),
        (("--platform", "p" * 101), "at most 100 are kept"),
        (("--query-file", "/nonexistent/strategy.txt"), "cannot be read"),
    ],
)
def test_import_records_refuses_bad_details_before_reading_the_file(review, args, error):
    with pytest.raises(CommandError, match=error):
        run("import_records", review.slug, str(shared(*SCOPUS)), *args)
    assert not Search.objects.exists() and not Record.objects.exists()


def test_count_records_logs_a_counted_source(review, alice):
    out, _ = run(
        "count_records", review.slug, "7", "--source", "Organisations", "--date", "2024-04-02", "--user", "alice"
    )
    assert (
        out.strip()
        == "Organisations (other methods, searched 2024-04-02): 7 records identified, counted (not imported)"
    )
    search = Search.objects.get()
    assert (search.kind, search.hits, search.run_by, search.source_type) == ("count", 7, alice, "other")
    assert Event.objects.get().detail["counted"] == 7


def test_count_records_needs_a_source_a_date_and_a_sane_count(review):
    with pytest.raises(CommandError, match="Give the date"):
        run("count_records", review.slug, "7", "--source", "Websites")
    with pytest.raises(CommandError, match="Name the source"):
        run("count_records", review.slug, "7", "--date", "2024-04-02")
    with pytest.raises(CommandError, match="whole number, 0 or more"):
        run("count_records", review.slug, "-7", "--source", "Websites", "--date", "2024-04-02")
    with pytest.raises(CommandError, match="No review with slug 'nope'"):
        run("count_records", "nope", "7", "--source", "Websites", "--date", "2024-04-02")
    assert not Search.objects.exists()


def test_a_pubmed_search_is_logged_as_a_database_searched_today_on_pubmed(eutils_server, review):  # noqa: F811
    search = run_search(review=review, query="biopython").search
    search.refresh_from_db()
    assert (search.source, search.platform, search.source_type) == ("PubMed", "PubMed", "database")
    assert search.searched_on == timezone.localdate()


# --- The search log --------------------------------------------------------------------------------


def test_the_search_log_shows_every_source_as_typed(client, review, alice):
    import_file(
        review=review,
        path=shared(*OVID),
        details=SourceDetails(
            database="APA PsycInfo", platform="Ovid", searched_on=date(2024, 3, 31), query=STRATEGY, limits="English"
        ),
        user=alice,
    )
    record_count(
        review=review,
        count=14,
        details=SourceDetails(database="Citation searching", searched_on=date(2024, 4, 15)),
        user=alice,
    )
    psycinfo, citations = log_rows(review)
    assert (psycinfo["Database / source"], psycinfo["Platform / interface"], psycinfo["Date searched"]) == (
        "APA PsycInfo",
        "Ovid",
        "2024-03-31",
    )
    assert (psycinfo["Source type"], psycinfo["Query"], psycinfo["Limits and restrictions"]) == (
        "Database",
        STRATEGY,
        "English",
    )
    assert int(psycinfo["Records added"]) > 0
    assert citations["Kind"] == "Counted, not imported" and citations["Source type"].startswith("Other method")
    assert (citations["Hits"], citations["Records fetched"], citations["Records added"]) == ("14", "", "")

    client.force_login(alice)
    page = client.get(reverse("review:searches", args=[review.slug])).content.decode()
    for shown in ("APA PsycInfo", "via Ovid", "2024-03-31", "English", "Citation searching", "counted, not imported"):
        assert shown in page, shown
    assert "exp Stress Disorders, Post-Traumatic/<br>2." in page


def test_typed_details_are_escaped_on_the_page_and_defused_in_the_csv(client, review, alice):
    hostile = '<script>alert("x")</script>'
    record_count(
        review=review,
        count=1,
        details=SourceDetails(
            database=hostile, platform=hostile, query=hostile + "\nline 2", limits='=HYPERLINK("http://x")'
        ),
    )
    client.force_login(alice)
    page = client.get(reverse("review:searches", args=[review.slug])).content.decode()
    assert hostile not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    (row,) = log_rows(review)
    assert row["Limits and restrictions"].startswith("'=")


# --- Corrections after the fact ---------------------------------------------------------------------


def edit_url(search):
    return reverse("review:search_edit", args=[search.review.slug, search.pk])


def test_alice_corrects_a_misnamed_database_and_a_forgotten_date(client, review, alice):
    search = import_file(review=review, path=shared(*OVID), user=alice).search
    old_source = search.source
    client.force_login(alice)
    assert client.get(edit_url(search)).status_code == 200
    assert edit_url(search) in client.get(reverse("review:searches", args=[review.slug])).content.decode()
    form = {
        "source": "APA PsycInfo 1806 to March Week 4 2024",
        "platform": "Ovid SP",
        "source_type": "database",
        "searched_on": "2024-03-31",
    }
    response = client.post(edit_url(search), {**form, "query": STRATEGY, "limits": ""}, follow=True)
    assert "database / source, platform / interface, search date, query corrected" in response.content.decode()
    search.refresh_from_db()
    assert (search.source, search.platform, search.searched_on, search.query) == (
        "APA PsycInfo 1806 to March Week 4 2024",
        "Ovid SP",
        date(2024, 3, 31),
        STRATEGY,
    )
    assert set(Record.objects.filter(search=search).values_list("source", flat=True)) == {
        "APA PsycInfo 1806 to March Week 4 2024"
    }
    event = Event.objects.filter(detail__has_key="edited").get()
    assert (event.actor, event.detail["search"]) == (alice, search.pk)
    assert event.detail["edited"]["source"] == [old_source, "APA PsycInfo 1806 to March Week 4 2024"]
    assert event.detail["edited"]["searched_on"] == [None, "2024-03-31"]
    # The same values again change nothing and log nothing.
    client.post(edit_url(search), {**form, "query": STRATEGY, "limits": ""})
    assert Event.objects.filter(detail__has_key="edited").count() == 1


def test_a_count_can_be_corrected(client, review, alice):
    search = record_count(
        review=review, count=14, details=SourceDetails(database="Citation searching", searched_on=date(2024, 4, 15))
    )
    client.force_login(alice)
    data = {"source": "Citation searching", "count": "16", "source_type": "other", "searched_on": "2024-04-15"}
    assert client.post(edit_url(search), data).status_code == 302
    search.refresh_from_db()
    assert search.hits == 16
    assert Event.objects.filter(detail__has_key="edited").get().detail["edited"] == {"hits": [14, 16]}


def test_only_the_limits_of_a_pubmed_search_sieve_ran_can_be_described(client, review, alice):
    search = Search.objects.create(
        review=review, kind="pubmed", source="PubMed", platform="PubMed", query="kratom", searched_on=date(2024, 1, 2)
    )
    client.force_login(alice)
    forged = {"source": "Embase", "query": "other", "searched_on": "2023-01-01", "limits": "Humans"}
    assert client.post(edit_url(search), forged).status_code == 302
    search.refresh_from_db()
    assert (search.source, search.query, search.searched_on, search.limits) == (
        "PubMed",
        "kratom",
        date(2024, 1, 2),
        "Humans",
    )


def test_bob_cannot_correct_the_log_and_dave_cannot_find_it(client, review, other_review, bob, dave):
    search = import_file(review=review, path=shared(*SCOPUS)).search
    before = Search.objects.values().get(pk=search.pk)
    data = {"source": "Forged", "source_type": "database", "searched_on": "2024-01-01"}
    client.force_login(bob)
    assert client.get(edit_url(search)).status_code == 403
    assert client.post(edit_url(search), data).status_code == 403
    assert edit_url(search) not in client.get(reverse("review:searches", args=[review.slug])).content.decode()
    client.force_login(dave)
    assert client.post(edit_url(search), data).status_code == 404
    # Dave owns another review: a search of alice's is not found through his.
    url = reverse("review:search_edit", args=[other_review.slug, search.pk])
    assert client.post(url, data).status_code == 404
    assert Search.objects.values().get(pk=search.pk) == before
    assert not Event.objects.filter(detail__has_key="edited").exists()


def test_a_correction_with_a_bad_date_is_refused(client, review, alice):
    search = import_file(review=review, path=shared(*SCOPUS)).search
    client.force_login(alice)
    data = {"source": "Scopus", "source_type": "database", "searched_on": TOMORROW_EVERYWHERE.isoformat()}
    response = client.post(edit_url(search), data)
    assert response.status_code == 200 and "is in the future" in response.content.decode()
    search.refresh_from_db()
    assert search.searched_on is None


def test_a_counted_source_is_not_offered_as_a_filter_of_the_records_list(client, review, alice):
    import_file(review=review, path=shared(*SCOPUS))
    record_count(review=review, count=3, details=SourceDetails(database="Websites", searched_on=date(2024, 4, 1)))
    client.force_login(alice)
    response = client.get(reverse("screening:records", args=[review.slug]))
    choices = [value for value, _ in response.context["filter"].filters["source"].extra["choices"]]
    assert choices == [what_the_file_shows(*SCOPUS)[0]]
