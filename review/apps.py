from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from review import fulltexts, removal

        # A deleted review's PDFs leave the storage with it (rows go by raw DELETEs, without signals).
        removal.on_review_deleted(fulltexts.forget_review_files)
