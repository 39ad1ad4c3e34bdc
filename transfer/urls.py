from django.urls import path

from transfer import views

app_name = "transfer"
urlpatterns = [
    path("new/import/", views.review_import, name="import"),
    path("new/import/<int:pk>/", views.import_job, name="import_job"),
    path("new/import/<int:pk>/rerun/", views.import_job_rerun, name="import_job_rerun"),
    path("new/import/<int:pk>/progress/", views.import_job_progress, name="import_job_progress"),
]
# Pages of one review: served in the review's namespace (sieve/urls.py), like screening's.
review_pages = [
    path("r/<slug:slug>/export/", views.review_export, name="export"),
    path("r/<slug:slug>/jobs/<int:pk>/review.sieve.zip", views.export_download, name="export_download"),
]
