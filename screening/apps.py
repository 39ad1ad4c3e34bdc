from django.apps import AppConfig


class ScreeningConfig(AppConfig):
    name = "screening"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from review import searchlog
        from screening import closing

        # The search log lives in review, which never imports screening: it asks through a hook.
        searchlog.register_rows(closing.search_log_rows)
