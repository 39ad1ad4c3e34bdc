"""Signals the review app sends, so that apps built on it (screening) can react without review
importing them (apps depend one way: screening imports review, never the reverse)."""

import logging
from functools import partial

from django.db import transaction
from django.dispatch import Signal

log = logging.getLogger(__name__)

# Sent once per import or search that stored new unique records, after its transaction commits
# (never for one rolled back). Keyword arguments: review, search, added (new unique records).
records_added = Signal()


def announce_records_added(*, review, search, added):
    """Send ``records_added`` once the current transaction commits (at once outside of one).

    A receiver that fails is logged, never raised: the records are stored whatever it does.
    """
    transaction.on_commit(partial(_send, review=review, search=search, added=added))


def _send(**kwargs):
    for receiver, outcome in records_added.send_robust(sender=type(kwargs["search"]), **kwargs):
        if isinstance(outcome, Exception):
            log.error("records_added receiver %r failed", receiver, exc_info=outcome)
