"""SQLite's write-ahead log, set once per database file.

WAL lets readers go on while one connection writes (a long import writes in short chunks, and a
login or a decision waits at most for one chunk). The mode is kept in the file itself, so it is
set when a connection finds the file in another mode, not on every connection: switching the
journal mode needs the whole file to itself, and SQLite answers "database is locked" at once,
without waiting for the timeout, when two connections try it together (seen when several
processes opened a new file at the same instant). The switch is retried until the timeout.
"""

import contextlib
import sqlite3
import time

from django.db.backends.signals import connection_created

RETRY_PAUSE = 0.05


def use_write_ahead_log(sender, connection, **kwargs):
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        return
    deadline = time.monotonic() + connection.settings_dict.get("OPTIONS", {}).get("timeout", 5)
    with contextlib.closing(connection.connection.cursor()) as cursor:
        while True:
            try:
                if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                    return
                cursor.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(RETRY_PAUSE)


def connect():
    connection_created.connect(use_write_ahead_log, dispatch_uid="sieve.sqlite.use_write_ahead_log")
