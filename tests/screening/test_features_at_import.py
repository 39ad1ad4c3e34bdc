"""Ranking features built when records arrive (review.signals.records_added -> screening.tasks),
not at the first retrain after an import; and a features cache that racing builders cannot corrupt."""

import io
import threading
from types import SimpleNamespace

import pytest
from django.db import transaction

from review import importing
from review.article import ImportFileError
from review.importing import import_file, run_search
from review.models import Record, Stage
from review.signals import records_added
from screening import ranking, retrain, tasks
from screening.models import RankingRun, RecordScore
from tests import eutils_server as stand_in
from tests.shared import shared

TA, FT = Stage.TITLE_ABSTRACT, Stage.FULL_TEXT
RIS = ("fixtures", "exports", "baseline_zotero.ris")
eutils_server = stand_in.eutils_server  # the fixture, where pytest looks for it


@pytest.fixture(autouse=True)
def own_cache(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    retrain._FEATURES.clear()
    yield
    retrain._FEATURES.clear()


@pytest.fixture
def heard():
    """Every records_added signal sent, as (review pk, search pk, added)."""
    calls = []

    def receiver(sender, *, review, search, added, **kwargs):
        calls.append((review.pk, search.pk, added))

    records_added.connect(receiver, dispatch_uid="test-heard")
    yield calls
    records_added.disconnect(dispatch_uid="test-heard")


@pytest.fixture
def no_queue(monkeypatch):
    """The screening receiver's enqueue, recorded instead of run."""
    queued = []

    def enqueue(review_id, job_id=None):
        queued.append(review_id)
        return SimpleNamespace(id=f"task-{len(queued)}")

    monkeypatch.setattr(tasks, "prepare_ranking", SimpleNamespace(enqueue=enqueue))
    return queued


def cache_files():
    return sorted(retrain._cache_dir().glob("*.npz"))


def test_an_import_announces_its_records_once_after_it_commits(
    review, alice, heard, no_queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        result = import_file(review=review, path=shared(*RIS), user=alice)
        assert heard == []  # not while the import's transaction could still roll back
    assert len(callbacks) == 1
    callbacks[0]()
    assert heard == [(review.pk, result.search.pk, 100)]
    assert no_queue == [review.pk]  # screening's receiver enqueued the features build


def test_an_import_of_nothing_new_announces_nothing(review, alice, heard, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        import_file(review=review, path=shared(*RIS), user=alice)
    with django_capture_on_commit_callbacks(execute=True) as again:
        result = import_file(review=review, path=shared(*RIS), user=alice)
    assert result.unique == 0 and again == []
    assert len(heard) == 1


def test_a_failed_import_announces_nothing(review, tmp_path, heard, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(importing, "CHUNK", 10)  # 99 records stored before record 100 fails
    lines = shared(*RIS).read_text(encoding="utf-8").splitlines()
    last_ty = max(i for i, line in enumerate(lines) if line.startswith("TY  -"))
    path = tmp_path / "cut.ris"
    path.write_text("\n".join(lines[: last_ty + 5]) + "\n", encoding="utf-8")
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(ImportFileError):
        import_file(review=review, path=path)
    assert callbacks == [] and heard == []


def test_an_import_rolled_back_by_its_caller_announces_nothing(review, heard, django_capture_on_commit_callbacks):
    rolled_back = pytest.raises(RuntimeError)
    with django_capture_on_commit_callbacks(execute=True) as callbacks, rolled_back, transaction.atomic():
        import_file(review=review, path=shared(*RIS))
        raise RuntimeError("the caller changes its mind")
    assert Record.objects.filter(review=review).count() == 0
    assert callbacks == [] and heard == []


def test_a_pubmed_search_announces_its_records(
    eutils_server, review, alice, heard, no_queue, django_capture_on_commit_callbacks, settings
):
    settings.NCBI_EMAIL, settings.NCBI_BATCH_SIZE = "alice@example.org", 3
    with django_capture_on_commit_callbacks(execute=True):
        result = run_search(review=review, query="biopython", user=alice)
    assert heard == [(review.pk, result.search.pk, 8)]


def test_a_receiver_that_fails_does_not_undo_or_break_the_import(
    review, alice, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(review_id, job_id=None):
        raise ConnectionError("queue is down")

    monkeypatch.setattr(tasks, "prepare_ranking", SimpleNamespace(enqueue=broken))
    with django_capture_on_commit_callbacks(execute=True):
        result = import_file(review=review, path=shared(*RIS), user=alice)
    assert result.added == 100 == Record.objects.filter(review=review).count()


def test_the_task_builds_the_cache_and_ranks_the_new_records(review, alice):
    review.question = "Radiologic imaging for congenital hyperinsulinism"
    review.save()
    import_file(review=review, path=shared(*RIS), user=alice)
    assert cache_files() == []
    outcome = tasks.prepare_ranking.call(review.pk)
    assert list(outcome["built"]) == [TA]  # nothing takes part in full text yet
    (path,) = cache_files()
    assert path.name.startswith(f"review{review.pk}-{TA}-")
    run = retrain.latest_run(review, TA)
    assert run.status == RankingRun.Status.DONE and run.scored == 100
    assert RecordScore.objects.filter(run=run).count() == 100


def test_the_retrain_after_the_task_uses_its_features_and_builds_none(review, alice, bob, monkeypatch):
    import_file(review=review, path=shared(*RIS), user=alice)
    tasks.prepare_ranking.call(review.pk)
    first = retrain.latest_run(review, TA)
    before = dict(RecordScore.objects.filter(run=first).values_list("record_id", "score"))

    def no_build(*args, **kwargs):
        raise AssertionError("build_features called: the cached features were not used")

    monkeypatch.setattr(ranking, "build_features", no_build)
    run = retrain.retrain_now(review, TA)  # same process: from memory
    retrain._FEATURES.clear()
    again = retrain.retrain_now(review, TA)  # another process (`manage.py rank`): from the disk cache
    assert run.status == again.status == RankingRun.Status.DONE and again.scored == 100
    after = dict(RecordScore.objects.filter(run=again).values_list("record_id", "score"))
    assert after == pytest.approx(before)


def test_a_task_with_nothing_new_builds_nothing_and_leaves_a_queued_run_alone(review, alice):
    import_file(review=review, path=shared(*RIS), user=alice)
    tasks.prepare_ranking.call(review.pk)
    assert tasks.prepare_ranking.call(review.pk) == {"built": {}}
    assert RankingRun.objects.filter(review=review).count() == 1
    # New records while a run is queued: built, and that run (which reads them when it starts) ranks them.
    queued = retrain.start_run(review, TA)
    import_file(review=review, path=shared("fixtures", "exports", "scopus.ris"), user=alice)
    assert list(tasks.prepare_ranking.call(review.pk)["built"]) == [TA]
    assert list(RankingRun.objects.filter(review=review).values_list("pk", flat=True).order_by("pk")) == [
        retrain.latest_run(review, TA).pk,
        queued.pk,
    ]


def test_racing_builders_leave_a_whole_cache_file(review, alice, monkeypatch):
    """Two workers write the same features at once: the first is half way through when the second
    starts; the first finishes while the second is still writing. A reader then must find a whole
    file (each writer has its own temporary file, renamed into place when complete)."""
    import_file(review=review, path=shared(*RIS), user=alice)
    pks, features = retrain.features_for(review, TA)
    (path,) = cache_files()
    path.unlink()
    whole = io.BytesIO()
    retrain.save_features(whole, features)
    content = whole.getvalue()
    half = len(content) // 2
    first_half_written, second_started, first_done = threading.Event(), threading.Event(), threading.Event()

    def first_writer(handle, stored):
        handle.write(content[:half])
        handle.flush()
        first_half_written.set()
        assert second_started.wait(10)
        handle.write(content[half:])

    def second_writer(handle, stored):
        handle.write(content[:10])
        handle.flush()
        second_started.set()
        assert first_done.wait(10)
        handle.write(content[10:])

    writers = iter([first_writer, second_writer])
    monkeypatch.setattr(retrain, "save_features", lambda handle, stored: next(writers)(handle, stored))
    first = threading.Thread(target=retrain._store_features, args=(path, review, TA, features))
    first.start()
    assert first_half_written.wait(10)
    second = threading.Thread(target=retrain._store_features, args=(path, review, TA, features))
    second.start()
    first.join(10)
    try:
        seen_meanwhile = retrain.load_features(path)  # a retrain reading while the second still writes
    finally:
        first_done.set()
        second.join(10)
    assert (seen_meanwhile.matrix != features.matrix).nnz == 0
    assert (retrain.load_features(path).matrix != features.matrix).nnz == 0
    assert [p.name for p in retrain._cache_dir().iterdir()] == [path.name]  # no temporary file left


def test_an_unwritable_cache_leaves_no_temporary_file(review, alice, monkeypatch):
    import_file(review=review, path=shared(*RIS), user=alice)

    def fails(handle, features):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(retrain, "save_features", fails)
    retrain.features_for(review, TA)  # still answers, from memory
    assert list(retrain._cache_dir().iterdir()) == []


def test_an_import_through_the_task_queue_leaves_ranked_records_and_cached_features(
    review, alice, settings, django_capture_on_commit_callbacks
):
    # The worker, run in-line: the import's commit -> records_added -> prepare_ranking.
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    with django_capture_on_commit_callbacks(execute=True):
        import_file(review=review, path=shared(*RIS), user=alice)
    assert len(cache_files()) == 1
    run = retrain.latest_run(review, TA)
    assert run is not None and run.status == RankingRun.Status.DONE and run.scored == 100


def test_with_the_database_queue_the_import_leaves_the_work_to_the_worker(
    review, alice, settings, django_capture_on_commit_callbacks
):
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
    with django_capture_on_commit_callbacks(execute=True):
        import_file(review=review, path=shared(*RIS), user=alice)
    (queued,) = DBTaskResult.objects.all()
    assert queued.task_path == "screening.tasks.prepare_ranking" and queued.args_kwargs["args"] == [review.pk]
    assert cache_files() == [] and not RankingRun.objects.exists()  # the import itself did not build


def test_the_preparation_after_an_import_reports_as_a_reranking_job_with_its_stages(
    review, alice, settings, django_capture_on_commit_callbacks, monkeypatch
):
    from django_tasks_db.models import DBTaskResult

    from review import jobs
    from review.models import Job

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
    review.question = "Radiologic imaging for congenital hyperinsulinism"
    review.save()
    with django_capture_on_commit_callbacks(execute=True):
        import_file(review=review, path=shared(*RIS), user=alice)
    job = Job.objects.get(kind=Job.Kind.RERANK)  # a re-ranking: hidden from blinded reviewers
    (queued,) = DBTaskResult.objects.all()
    assert queued.args_kwargs == {"args": [review.pk], "kwargs": {"job_id": job.pk}}
    stages_seen = []
    original = jobs.Progress.stage

    def spy(self, label, **kwargs):
        stages_seen.append(label)
        original(self, label, **kwargs)

    monkeypatch.setattr(jobs.Progress, "stage", spy)
    tasks.prepare_ranking.call(review.pk, job_id=job.pk)  # what the worker does
    job.refresh_from_db()
    assert stages_seen == ["Building features for title/abstract", "Ranking title/abstract"]
    assert job.status == "done" and job.summary == "Title/abstract: 100 records ranked"
    assert list(job.result["built"]) == [TA]
