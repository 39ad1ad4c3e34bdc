"""Reading a big file in a second process, so the parse runs beside the import's dedup and writes.

The importers are pure (a file in, Articles out), so a child process can run ``read_articles``
while the importing process deduplicates and writes what it already has: on two cores the
import's wall time approaches the longer of the two instead of their sum. The child is started
with the *spawn* method, never fork: the worker and the web process have threads (the job
heartbeat) whose locks a forked child would inherit held. It needs no Django: the importers
import none of its settings, and the few values they take come as arguments.

What the child reads comes back exactly as ``read_articles`` gives it in-process: the same
Articles in the same order, in pickled batches; the ``warn`` messages, passed to the parent's
``warn`` before the batch read after them; and the same exception (an ImportFileError naming the
file, record and line) after the articles read before it. Memory stays bounded: the child parses
at most ``ahead`` batches ahead of the importer, then waits.

Failure modes: the child dies (killed, out of memory) -> the parent raises ``ParserStopped``
naming the file; the parent dies -> the child's next send finds the pipe closed and it exits;
the parent stops reading (its import failed, or was cancelled) -> leaving the ``with`` block
kills the child and reaps it, so no process lingers and none is left a zombie.
"""

import logging
import multiprocessing
import os
import pickle
import queue
import resource
import signal
import sys
import threading
import time
import traceback

from review.article import ImportFileError
from review.importers import read_articles

BATCH = 200  # Articles per message: a few hundred KB pickled
AHEAD = 16  # batches the child may read ahead of the importer (a CHUNK of importing.py, and more)
STOP_SECONDS = 5
# The child's GIL switch interval (Python's default is 5 ms). The postman thread needs the GIL
# back after each blocking send while the parse thread holds it: at 5 ms a turn, the importer
# waited 9.7 s for batches the child had already read (100,000 RIS records, bench/ingest.py), and
# both processes spent a third of the import waiting for each other. At 50 us: 2.3-2.6 s.
SWITCH_INTERVAL = 50e-6

logger = logging.getLogger(__name__)


class ParserStopped(ImportFileError):
    """The parser process ended without reporting the end of the file or an error."""


class ParsedInProcess:
    """The Articles of the file at ``path`` (sniffed as ``sniffed``), read in a child process.

    Use as a context manager, whose value iterates the articles: leaving it stops the child,
    however the import ended.
    """

    def __init__(self, path, sniffed, name, warn=None, *, batch=BATCH, ahead=AHEAD):
        self.path, self.sniffed, self.name, self.warn = os.fspath(path), sniffed, name, warn
        self.batch, self.ahead = batch, ahead
        self.process = self.receiver = None
        # Wall seconds the importer spent waiting for the parser's next batch (in the pipe's
        # read and unpickling it): the figures bench/ingest.py prints to tell which side is the bound.
        self.waited = 0.0

    def __enter__(self):
        context = multiprocessing.get_context("spawn")
        self.receiver, sender = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_child,
            args=(sender, self.path, self.sniffed, self.name, self.batch, self.ahead),
            name="sieve-import-parser",
            daemon=True,  # killed by multiprocessing's exit handler should the parent exit first
        )
        self.process.start()
        # The parent keeps no copy of the sending end: the child's death then reads as end of file.
        sender.close()
        return self._articles()

    def __exit__(self, *exc):
        self.receiver.close()
        _stop(self.process)
        return False

    def _articles(self):
        while True:
            kind, payload, warnings = self._receive()
            if self.warn is not None:
                for message in warnings:
                    self.warn(message)
            if kind == "articles":
                yield from payload
            elif kind == "done":
                self.process.join(STOP_SECONDS)  # it ends once it has sent this: reaped now, not at the landing
                payload["importer_waited"] = self.waited
                logger.info(
                    "%s: read in a parser process: %.1f s CPU, peak RSS %.0f MB; the parser waited %.1f s "
                    "for the importer, the importer %.1f s for the parser",
                    self.name,
                    payload["cpu"],
                    payload["peak_mb"],
                    payload["waited"],
                    self.waited,
                    extra={"parser": payload},
                )
                return
            else:
                raise payload

    def _receive(self):
        started = time.perf_counter()
        try:
            return self.receiver.recv()
        except (EOFError, OSError):
            pass
        finally:
            self.waited += time.perf_counter() - started
        self.process.join(STOP_SECONDS)
        raise ParserStopped(
            f"{self.name}: the parser process stopped before the end of the file ({_exit(self.process.exitcode)}); "
            "nothing was imported. Import the file again; if this repeats, the server may lack the memory for it."
        )


def _exit(code):
    if code is None:
        return "it did not answer"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _stop(process):
    """Kill ``process`` if it still runs, and reap it."""
    if process.is_alive():
        process.kill()
    process.join(STOP_SECONDS)
    if process.exitcode is not None:
        process.close()


# --- The child -----------------------------------------------------------------------------------


def _child(sender, path, sniffed, name, batch, ahead):
    """Read the file, putting batches on a bounded queue that a thread sends to the parent: the
    parse goes on while a batch is pickled and waits in the pipe, yet never runs more than
    ``ahead`` batches ahead."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    outbox = _Outbox(maxsize=ahead)
    postman = threading.Thread(target=_send_all, args=(sender, outbox), daemon=True)
    postman.start()
    warnings, read = [], []
    try:
        with open(path, "rb") as stream:
            for article in read_articles(stream, sniffed, name, warnings.append):
                read.append(article)
                if len(read) == batch:
                    outbox.put(("articles", read, _taken(warnings)))
                    read = []
        outbox.put(("articles", read, _taken(warnings)))
        done = {"cpu": time.process_time(), "peak_mb": _peak_mb(), "waited": outbox.waited}
        outbox.put(("done", done, _taken(warnings)))
    except BaseException as exc:  # noqa: BLE001 (every error goes back to the parent, to raise there)
        # The articles read before the error go first, as in-process they reach the importer first.
        outbox.put(("articles", read, _taken(warnings)))
        outbox.put(("error", _sendable(exc, name), _taken(warnings)))
    outbox.put(None)
    postman.join()


class _Outbox(queue.Queue):
    """The child's bounded queue of batches, counting the wall seconds the parse waited on it
    (the importer was behind)."""

    waited = 0.0

    def put(self, item):
        started = time.perf_counter()
        super().put(item)
        self.waited += time.perf_counter() - started


def _peak_mb():
    """This process's peak RSS since it started Python. Not ru_maxrss: that counts the parent's
    pages the process shared between its fork and its exec."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _taken(warnings):
    taken = warnings[:]
    warnings.clear()
    return taken


def _send_all(sender, outbox):
    while (message := outbox.get()) is not None:
        try:
            sender.send(message)
        except OSError:
            # The parent is gone (killed, or it stopped reading): nobody needs the rest.
            os._exit(1)
        except BaseException:
            traceback.print_exc()
            os._exit(2)  # the parent reads the end of the pipe and raises ParserStopped
    sender.close()


def _sendable(exc, name):
    """``exc`` itself when it pickles (an ImportFileError always does), with the child's traceback
    as a note on anything else; otherwise a RuntimeError saying what it was."""
    if not isinstance(exc, ImportFileError):
        exc.add_note("In the parser process:\n" + "".join(traceback.format_exception(exc)))
    try:
        pickle.dumps(exc)
        return exc
    except Exception:  # noqa: BLE001 (whatever stops it pickling)
        return RuntimeError(
            f"{name}: the parser process failed: {type(exc).__name__}: {exc}\n{''.join(traceback.format_exception(exc))}"
        )
