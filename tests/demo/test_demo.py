"""`make demo`: the dataset download is verified and cached, and load_demo works offline and twice.

No test here reaches the network: downloads come from file:// addresses or a pre-filled cache,
and PubMed is pointed at a closed local port.
"""

import csv
import io
import tarfile
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from demo import dataset, reviews
from review.models import Event, Membership, Record, Review, Search, Stage
from screening import prisma, queue, retrain
from screening.models import Decision, ExtractionField, ExtractionValue, HandOut, Resolution, ScreeningOrder
from tests.eutils_server import eutils_server, fixture_records  # noqa: F401 (fixture)
from tests.shared import shared

DATASET = shared("datasets", "van_de_Schoot_2018.csv")
CLOSED_PORT = "http://127.0.0.1:9/"


def _sdist(path, csv_bytes):
    """A small tar.gz laid out like the asreview-makita 0.9 sdist, holding ``csv_bytes``."""
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(dataset.MAKITA_CSV_MEMBER)
        info.size = len(csv_bytes)
        tar.addfile(info, io.BytesIO(csv_bytes))
    return path


def _labels():
    with open(DATASET, encoding="utf-8", newline="") as fh:
        return [row["label_included"] == "1" for row in csv.DictReader(fh)]


@pytest.fixture
def offline_pubmed(settings):
    # Nothing listens on port 9 of this machine: the PubMed client fails at once, as offline.
    settings.NCBI_EUTILS_URL = CLOSED_PORT
    settings.NCBI_MAX_TRIES = 1
    settings.NCBI_EMAIL = "alice@example.org"
    return settings


def _load_file(path, **options):
    out = StringIO()
    call_command("load_demo", dataset=str(path), stdout=out, **options)
    return out.getvalue()


def _load(**options):
    return _load_file(DATASET, **options)


# --- download, checksum and cache -----------------------------------------------------------


def test_a_tampered_download_is_refused_and_nothing_is_cached(tmp_path):
    tampered = tmp_path / "asreview_makita-0.9.tar.gz"
    tampered.write_bytes(b"these are not the bytes PyPI published")
    cache = tmp_path / "cache"

    with pytest.raises(dataset.DemoDataError, match=r"SHA-256 .* refusing it") as caught:
        dataset.dataset_csv(cache_dir=cache, url=tampered.as_uri())

    assert dataset.MAKITA_SDIST_SHA256 in str(caught.value)
    assert dataset.sha256_of(tampered) in str(caught.value)
    assert not cache.exists() or not any(cache.iterdir())


def test_a_tampered_csv_inside_a_genuine_archive_is_refused(tmp_path):
    real = DATASET.read_bytes()
    archive = _sdist(tmp_path / "upload.tar.gz", real.replace(b"Resilience", b"Resiliance", 1))
    cache = tmp_path / "cache"

    with pytest.raises(dataset.DemoDataError, match="van_de_Schoot_2018.csv in .* refusing it"):
        dataset.dataset_csv(
            cache_dir=cache,
            url=archive.as_uri(),
            sdist_sha256=dataset.sha256_of(archive),
            csv_sha256=dataset.sha256_of(DATASET),
        )

    assert not (cache / dataset.DATASET_NAME).exists()


def test_a_verified_download_is_cached_and_reused_without_network(tmp_path):
    archive = _sdist(tmp_path / "upload.tar.gz", DATASET.read_bytes())
    digests = {"sdist_sha256": dataset.sha256_of(archive), "csv_sha256": dataset.sha256_of(DATASET)}
    cache = tmp_path / "cache"

    first = dataset.dataset_csv(cache_dir=cache, url=archive.as_uri(), **digests)
    archive.unlink()
    # The second call finds the cache: the address it is given would refuse any connection.
    second = dataset.dataset_csv(cache_dir=cache, url=CLOSED_PORT, **digests)

    assert first == second == cache / dataset.DATASET_NAME
    assert second.read_bytes() == DATASET.read_bytes()
    assert sorted(p.name for p in cache.iterdir()) == [dataset.MAKITA_SDIST, dataset.DATASET_NAME]


def test_a_cached_archive_is_unpacked_without_network(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    archive = _sdist(cache / dataset.MAKITA_SDIST, DATASET.read_bytes())

    path = dataset.dataset_csv(
        cache_dir=cache, url=CLOSED_PORT, sdist_sha256=dataset.sha256_of(archive), csv_sha256=dataset.sha256_of(DATASET)
    )

    assert len(dataset.read_rows(path)) == len(_labels()) == 4544


def test_a_damaged_cache_file_is_named_not_used(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / dataset.DATASET_NAME).write_text("record_id,title,label_included\n1,Half a file,0\n")

    with pytest.raises(dataset.DemoDataError, match=f"{dataset.DATASET_NAME} does not match .* delete it"):
        dataset.dataset_csv(cache_dir=cache, url=CLOSED_PORT)


def test_an_unreachable_download_says_so(tmp_path):
    with pytest.raises(dataset.DemoDataError, match=f"Could not download {CLOSED_PORT}"):
        dataset.dataset_csv(cache_dir=tmp_path / "cache", url=CLOSED_PORT, timeout=5)
    assert not (tmp_path / "cache").exists()


# --- load_demo ------------------------------------------------------------------------------


def test_load_demo_offline_leaves_both_reviews_with_content(db, offline_pubmed):
    out = _load()

    assert "PubMed is not reachable" in out
    assert "Search page" in out
    assert "http://127.0.0.1:8000/" in out and reviews.PASSWORD in out
    for name in ("alice", "bob", "carol", "victor"):
        assert name in out
    assert get_user_model().objects.get(username="victor").check_password(reviews.PASSWORD)

    kratom = Review.objects.get(slug="kratom-ptsd")
    assert kratom.title == "Kratom for PTSD symptoms"
    assert kratom.pubmed_query == reviews.KRATOM["pubmed_query"]
    assert "Animal or in vitro study" in kratom.reasons_list()
    assert "kratom" in kratom.include_keywords_list() and "mice" in kratom.exclude_keywords_list()
    assert dict(kratom.memberships.values_list("user__username", "role")) == {
        "alice": "owner",
        "bob": "reviewer",
        "carol": "reviewer",
        "victor": "viewer",
    }

    review = Review.objects.get(slug="ptsd-trajectories")
    labels = _labels()
    records = list(Record.objects.for_review(review).order_by("pk"))
    assert len(records) == len(labels) == 4544

    # Every record the review's authors included was screened and passed title/abstract.
    labelled = [r for r, included in zip(records, labels) if included and not r.is_duplicate]
    assert len(labelled) == sum(labels) == 38
    assert {r.ta_outcome for r in labelled} == {Record.Outcome.INCLUDE}
    # ... and every record they excluded that reached a final outcome was excluded or is a conflict.
    assert Record.objects.for_review(review).filter(ta_outcome=Record.Outcome.CONFLICT).exists()
    assert Resolution.objects.filter(record__review=review).exists()

    counts = prisma.compute(review)
    assert counts.total_identified == 4544
    assert counts.records_screened > 400
    assert counts.reports_not_retrieved == 1
    assert counts.awaiting_screening > 0 and counts.awaiting_full_text > 0
    assert 0 < counts.studies_included < 38
    assert set(counts.reports_excluded) <= set(review.reasons_list())
    assert counts.total_reports_excluded > 0
    included = {r.pk for r in records if r.ft_outcome == Record.Outcome.INCLUDE}
    assert included <= {r.pk for r in labelled}

    # carol has screened a batch alone: those records wait for a second reviewer.
    carols = Decision.objects.filter(record__review=review, reviewer__username="carol")
    assert carols.exists()
    assert not carols.exclude(record__ta_outcome="").exists()

    fields = {f.name: f.kind for f in review.extraction_fields.all()}
    assert fields == {"Country": "text", "Sample size": "number", "Design": "choice", "Trauma type": "text"}
    # "Peace and War" (Danish soldiers, 746 in its abstract) is among the extracted studies.
    peace = Record.objects.get(review=review, title="Peace and War")
    values = dict(ExtractionValue.objects.filter(record=peace).values_list("field__name", "value"))
    assert values["Country"] == "Denmark"
    assert values["Sample size"] == "746"
    assert ExtractionValue.objects.filter(record__review=review).exclude(record__pk__in=included).count() == 0


def test_load_demo_twice_adds_nothing_the_second_time(db, eutils_server):  # noqa: F811
    # PubMed answers (the stand-in serving shared/fixtures/entrez): the kratom search runs once.
    first = _load()

    def snapshot():
        return {
            model.__name__: model.objects.count()
            for model in (
                get_user_model(),
                Review,
                Membership,
                Search,
                Record,
                Decision,
                Resolution,
                Event,
                ExtractionField,
                ExtractionValue,
            )
        }

    before = snapshot()
    requests = len(eutils_server.seen)
    second = _load()

    kratom = Review.objects.get(slug="kratom-ptsd")
    search = Search.objects.get(review=kratom)
    assert (search.kind, search.query, search.run_by.username) == ("pubmed", kratom.pubmed_query, "alice")
    assert Record.objects.filter(review=kratom).count() == search.added == len(fixture_records())
    assert f"PubMed searched: PubMed: {search.added} records added" in first
    assert snapshot() == before
    assert "already imported" in second
    assert "already searched PubMed" in second
    assert requests > 0 and len(eutils_server.seen) == requests


def test_no_search_skips_pubmed(db, offline_pubmed):
    out = _load(no_search=True)

    assert "PubMed search skipped (--no-search)" in out
    assert "not reachable" not in out
    assert not Search.objects.filter(review__slug="kratom-ptsd").exists()


def test_a_dataset_without_labels_is_refused_by_name(db, offline_pubmed):
    path = shared("fixtures", "exports", "embase.csv")

    with pytest.raises(CommandError, match=r"embase\.csv: no label_included column"):
        _load_file(path)

    assert not Record.objects.filter(review__slug="ptsd-trajectories").exists()


def test_the_demo_hands_out_its_first_record_from_a_trained_model(db, offline_pubmed):
    # Carol's first screening page must not wait for the worker: the demo ranks once as it loads.
    _load()
    review = Review.objects.get(slug="ptsd-trajectories")
    carol = get_user_model().objects.get(username="carol")

    record = queue.next_record(review, carol, Stage.TITLE_ABSTRACT)

    handout = HandOut.objects.get(record=record, reviewer=carol)
    assert (handout.order, handout.rank) == (ScreeningOrder.RANKED, 1)
    assert handout.model_version == retrain.latest_run(review, Stage.TITLE_ABSTRACT).version
