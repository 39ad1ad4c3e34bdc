import pytest
from django.core.files.storage import FileSystemStorage

from review.models import FullText


@pytest.fixture(autouse=True)
def pdf_storage(tmp_path, monkeypatch):
    """Full texts' PDFs stored in the test's own folder (the field's storage, STORAGES["fulltexts"],
    is fixed when the model loads)."""
    store = FileSystemStorage(location=tmp_path / "fulltexts")
    monkeypatch.setattr(FullText._meta.get_field("file"), "storage", store)
    return store


def stored_files(store):
    """Every file in the storage, as "<folder>/<name>"."""
    try:
        folders = store.listdir("")[0]
    except FileNotFoundError:
        return set()
    return {f"{folder}/{name}" for folder in folders for name in store.listdir(folder)[1]}
