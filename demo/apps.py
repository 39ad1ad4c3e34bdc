from django.apps import AppConfig


class DemoConfig(AppConfig):
    """`make demo`'s data (manage.py load_demo): built on review and screening, imported by neither."""

    name = "demo"
    default_auto_field = "django.db.models.BigAutoField"
