"""The two demo reviews that `make demo` loads (`manage.py load_demo`).

- "Kratom for PTSD symptoms" (kratom-ptsd): criteria and a ready PubMed query, searched live
  when PubMed answers; otherwise the search waits on the review's Search page (demo/reviews.py).
- "PTSD symptom trajectories" (ptsd-trajectories): the 4,544 records of the SYNERGY
  van_de_Schoot_2018 dataset (CC0, demo/dataset.py), part-screened by demo reviewers so every
  page has content (demo/story.py, demo/extraction.py).

Everything is idempotent: running it again adds no user, review, record or decision twice.
"""

from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from demo.dataset import DATASET_SOURCE, DemoDataError, dataset_csv, read_rows
from demo.extraction import ensure_extraction_fields, extract_some
from demo.reviews import BASE_URL, KRATOM, TRAJECTORIES, ensure_people, ensure_review, search_kratom
from demo.story import aligned, screen_trajectories
from review.article import ImportFileError
from review.importing import import_file
from review.models import Search, Stage
from screening import retrain
from screening.models import Decision


@dataclass
class DemoResult:
    messages: list = field(default_factory=list)  # what was done or skipped, one line each


def load_trajectories(review, users, result, *, dataset=None, cache_dir=None):
    if review.searches.filter(kind=Search.Kind.FILE).exists():
        result.messages.append(f"{review.title}: records already imported; left as they are.")
        return
    path = Path(dataset) if dataset else dataset_csv(cache_dir=cache_dir)
    rows = read_rows(path)
    with transaction.atomic():
        try:
            imported = import_file(review=review, path=path, source=DATASET_SOURCE, user=users["alice"])
        except ImportFileError as exc:
            raise DemoDataError(str(exc)) from exc
        records = aligned(imported.search, rows, path)
        included = screen_trajectories(review, rows, records, users)
        extracted = extract_some(review, included, users["alice"])
    decisions = Decision.objects.for_review(review).count()
    result.messages.append(
        f"{review.title}: {imported.summary()}; {decisions} screening decisions and {extracted} extraction values added."
    )


def load_demo(*, search=True, dataset=None, cache_dir=None, base_url=BASE_URL) -> DemoResult:
    """Create (or complete) the demo users and both demo reviews; see the module docstring."""
    result = DemoResult()
    users = ensure_people()
    kratom = ensure_review(KRATOM, users)
    search_kratom(kratom, users["alice"], result, search=search, base_url=base_url)
    trajectories = ensure_review(TRAJECTORIES, users)
    ensure_extraction_fields(trajectories)
    load_trajectories(trajectories, users, result, dataset=dataset, cache_dir=cache_dir)
    rank_now(trajectories, result)
    return result


def rank_now(review, result):
    """Train the prioritisation model once, so the first screening page already hands out records
    most-likely-relevant first (after this the worker retrains as decisions come in)."""
    for stage in Stage:
        run = retrain.retrain_now(review, stage)
        result.messages.append(
            f"{review.title}: {stage.label} model version {run.version} ranked {run.scored} records."
        )
