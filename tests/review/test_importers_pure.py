"""review/importers/ is pure (file in, articles out); review/importing.py is the workflow that writes."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A fresh interpreter, so that what pytest-django has already loaded does not hide an import.
PROBE = """
import json, sys
import review.importers
print(json.dumps(sorted(sys.modules)))
"""


def _modules_loaded_by_importing_the_importers():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "sieve.settings"}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout))


def test_the_importers_package_loads_neither_the_models_nor_the_import_workflow():
    loaded = _modules_loaded_by_importing_the_importers()
    assert "review.importers" in loaded  # the probe did import the package
    writers = {"review.models", "review.importing", "django.db.models"}
    assert not loaded & writers
    assert not {m for m in loaded if m == "screening" or m.startswith("screening.")}


def test_import_file_lives_in_the_workflow_module():
    import review.importers
    import review.importing

    assert callable(review.importing.import_file)
    assert not hasattr(review.importers, "import_file")
