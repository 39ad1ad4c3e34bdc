"""Apps depend one way: screening imports review, demo imports both, and never the reverse.

Two checks: every module's import statements, read with ``ast`` (so an import inside a function,
which a plain import of the module would not run, is caught too), and a fresh interpreter that
loads the review app without screening and demo installed and imports every review module.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# app -> the first-party apps it must never import
FORBIDDEN = {
    "review": {"screening", "demo", "transfer"},
    "screening": {"demo", "transfer"},
}


def imported_modules(path):
    """Every module name ``path`` imports (absolute imports; relative ones stay in their app)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            yield node.args[0].value


def violations(app):
    found = []
    for path in sorted((ROOT / app).rglob("*.py")):
        for name in imported_modules(path):
            if name.split(".")[0] in FORBIDDEN[app]:
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


@pytest.mark.parametrize("app", sorted(FORBIDDEN))
def test_no_module_imports_an_app_built_on_it(app):
    assert violations(app) == []


def test_the_ast_check_sees_an_import_hidden_in_a_function(tmp_path):
    # The check above would pass vacuously if it missed this shape (review/importing.py had it).
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from screening.decisions import lock_records\n    import demo.load\n")
    assert list(imported_modules(module)) == ["screening.decisions", "demo.load"]


LOAD_REVIEW_ALONE = """
import importlib, json, pkgutil, sys
import django
from django.conf import settings
import sieve.settings as base

values = {name: getattr(base, name) for name in dir(base) if name.isupper()}
values["INSTALLED_APPS"] = [app for app in base.INSTALLED_APPS if app not in ("screening", "demo")]
settings.configure(**values)
django.setup()
import review
for module in pkgutil.walk_packages(review.__path__, "review."):
    importlib.import_module(module.name)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("screening", "demo", "review"))))
"""


def test_the_review_app_loads_without_screening_or_demo_installed():
    done = subprocess.run(
        [sys.executable, "-c", LOAD_REVIEW_ALONE], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "review.views" in loaded and "review.importing" in loaded  # it did import them all
    assert [m for m in loaded if not m.startswith("review")] == []


@pytest.mark.parametrize(
    ("name", "args", "path"),
    [
        ("review:detail", ["kratom"], "/r/kratom/"),
        ("review:settings", ["kratom"], "/r/kratom/settings/"),
        ("review:record", ["kratom", 7], "/r/kratom/records/7/"),
        ("review:members", ["kratom"], "/r/kratom/members/"),
        ("review:member_invite", ["kratom"], "/r/kratom/members/invite/"),
        ("review:blinding_lift", ["kratom", "full_text"], "/r/kratom/blinding/full_text/lift/"),
        ("review:audit_csv", ["kratom"], "/r/kratom/audit.csv"),
    ],
)
def test_the_review_pages_screening_serves_keep_their_addresses_and_names(name, args, path):
    from django.urls import resolve, reverse

    assert reverse(name, args=args) == path
    assert resolve(path).func.__module__ == "screening.review_views"
