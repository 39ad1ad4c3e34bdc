"""SQLite's journal mode is set once in the file, never by every new connection.

Every new connection used to run ``PRAGMA journal_mode=WAL``. Switching the mode needs the file
to itself, and SQLite answers "database is locked" at once (no wait for the timeout) when two
connections try together: the rate-limit proof failed so when its processes opened a new file at
the same instant.
"""

import ast
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WRITER = """
import sys

import django

django.setup()
from django.db import connection

print("ready", flush=True)
sys.stdin.readline()
for n in range(int(sys.argv[1])):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS t (n integer)")
        cursor.execute("INSERT INTO t VALUES (%s)", [n])
    connection.close()  # the next statement opens a new connection, as each request does
print("done", flush=True)
"""

SHOW_OPTIONS = (
    "import django; django.setup(); from django.conf import settings; print(settings.DATABASES['default']['OPTIONS'])"
)


def _environment(path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIEVE_")}
    env.update(DJANGO_SETTINGS_MODULE="sieve.settings", DATABASE_URL=f"sqlite:///{path}")
    return env


def _journal_mode(path):
    with sqlite3.connect(path) as raw:
        return raw.execute("PRAGMA journal_mode").fetchone()[0]


def test_a_new_connection_no_longer_switches_the_journal_mode(tmp_path):
    shown = subprocess.run(
        [sys.executable, "-c", SHOW_OPTIONS],
        cwd=ROOT,
        env=_environment(tmp_path / "unused.sqlite3"),
        capture_output=True,
        text=True,
        check=True,
    )
    options = ast.literal_eval(shown.stdout.strip())
    assert "journal_mode" not in options["init_command"].lower()
    assert "synchronous=normal" in options["init_command"].lower()


def test_the_first_connection_puts_a_new_file_in_wal_mode(tmp_path):
    path = tmp_path / "new.sqlite3"
    sqlite3.connect(path).close()
    assert _journal_mode(path) == "delete"

    subprocess.run(
        [sys.executable, "-c", WRITER, "1"],
        input="go\n",
        cwd=ROOT,
        env=_environment(path),
        capture_output=True,
        text=True,
        check=True,
    )

    assert _journal_mode(path) == "wal"


def test_many_processes_opening_a_new_file_at_once_all_write(tmp_path):
    path = tmp_path / "shared.sqlite3"
    sqlite3.connect(path).close()  # a new file, still in the default (rollback) mode
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, "25"],
            cwd=ROOT,
            env=_environment(path),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    for writer in writers:
        assert writer.stdout.readline().strip() == "ready"
    for writer in writers:  # released together
        writer.stdin.write("go\n")
        writer.stdin.flush()
    results = [writer.communicate(timeout=120) for writer in writers]

    assert [w.returncode for w in writers] == [0] * len(writers), [err[-600:] for _, err in results]
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 8 * 25
    assert _journal_mode(path) == "wal"
