from django.apps import AppConfig


class ScreeningConfig(AppConfig):
    name = "screening"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from review.signals import records_added
        from screening import tasks

        records_added.connect(tasks.on_records_added, dispatch_uid="screening.prepare_ranking")
