"""Files a background job wrote for its user to download: where they wait, and when they go.

A job writes its file under ``export_dir()`` as ``<name>.part`` and renames it when whole (a killed
job leaves no file that looks finished), and keeps the name in ``job.result["file"]``. A file older
than ``keep_seconds()`` (SIEVE_EXPORT_KEEP_HOURS, default 24) is gone: ``remove_expired`` deletes
every such file and marks its job's result ``removed`` (its page then says so instead of offering a
link that 404s), and ``open_kept`` never hands one out, swept or not.

The records table's exports (screening/tasks.py) live here; the whole-review export
(transfer/tasks.py) writes to the same folder under the same settings.
"""

import os
import time
from pathlib import Path

from django.conf import settings
from django.db import transaction

from review.models import Job


def export_dir():
    """Where finished exports wait for their download: under the data directory, shared by every web
    process and worker of a deployment (SIEVE_EXPORT_DIR overrides it)."""
    configured = getattr(settings, "SIEVE_EXPORT_DIR", None) or os.environ.get("SIEVE_EXPORT_DIR")
    return Path(configured or Path(settings.DATA_DIR) / "exports")


def keep_seconds():
    hours = getattr(settings, "SIEVE_EXPORT_KEEP_HOURS", None) or os.environ.get("SIEVE_EXPORT_KEEP_HOURS") or 24
    return float(hours) * 3600


def is_expired(path):
    return path.stat().st_mtime < time.time() - keep_seconds()


def job_file(job, kind):
    """The finished file of ``job`` (of ``kind``), or None: not done, removed, or a name we did not write."""
    name = (job.result or {}).get("file") or ""
    if job.kind != kind or job.status != Job.Status.DONE or job.result.get("removed"):
        return None
    if not name or Path(name).name != name or name.startswith("."):
        return None
    return export_dir() / name


def open_kept(path):
    """``path`` opened for reading, or None when it is missing or expired (an expired file is removed)."""
    if path is None:
        return None
    try:
        stream = open(path, "rb")  # noqa: SIM115 (the caller's FileResponse closes it once sent)
    except FileNotFoundError:
        return None
    if is_expired(path):
        stream.close()
        remove(path)
        return None
    return stream


def remove(path):
    """Delete ``path`` and mark the job whose file it was as removed."""
    path.unlink(missing_ok=True)
    with transaction.atomic():
        for job in Job.objects.select_for_update().filter(result__file=path.name):
            job.result = {**job.result, "removed": True}
            job.save(update_fields=["result"])


def remove_expired():
    """Remove every file (or abandoned part file) under export_dir() older than keep_seconds();
    returns the names removed."""
    folder = export_dir()
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        if path.is_file() and is_expired(path):
            remove(path)
            removed.append(path.name)
    return removed
