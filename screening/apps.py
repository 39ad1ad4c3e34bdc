from django.apps import AppConfig


def closure_log_rows(review):
    """The search log's rows for stage closures (screening/closing.py), imported when asked for:
    closing pulls in the ranking stack, which a management command should not load at start."""
    from screening import closing

    return closing.search_log_rows(review)


def forget_review(review_pk):
    """After a review's deletion: its ranking features cached on disk go too."""
    from screening import retrain

    retrain.forget_review(review_pk)


class ScreeningConfig(AppConfig):
    name = "screening"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from review import removal, searchlog
        from review.signals import records_added
        from screening import tasks

        records_added.connect(tasks.on_records_added, dispatch_uid="screening.prepare_ranking")

        # The search log lives in review, which never imports screening: it asks through a hook.
        searchlog.register_rows(closure_log_rows)

        # Undoing an import (review/removal.py) stops at any screening work on its records, but a
        # claim, a hand-out or a rank is no work: they go with the records. A deleted review's
        # cached files go after it.
        removal.register_disposable("screening.Claim", "screening.HandOut", "screening.RecordScore")
        removal.on_review_deleted(forget_review)
