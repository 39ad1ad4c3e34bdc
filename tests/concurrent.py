"""Real concurrency for the PostgreSQL proofs: callables released at the same instant."""

import threading

from django.db import close_old_connections, connection


def at_once(*calls):
    """Run each callable in its own thread (and database connection) at the same instant.

    Returns each call's result, or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait(timeout=30)
            results[i] = call()
        except Exception as exc:  # returned to the test, which names it
            results[i] = exc
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def database_url():
    """A URL other processes can open the test's (PostgreSQL) database with; a test that hands it
    over uses ``transactional_db``, so that they see what it wrote."""
    settings = connection.settings_dict
    credentials = settings["USER"] + (f":{settings['PASSWORD']}" if settings["PASSWORD"] else "")
    return f"postgres://{credentials}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}"
