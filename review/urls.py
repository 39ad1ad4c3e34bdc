from django.urls import path

from review import annotation_views, job_views, removal_views, views

app_name = "review"
# The review's pages that show screening state (its dashboard at r/<slug>/, settings, a record's
# page, members, blinding, the audit trail) are screening's: sieve/urls.py adds
# screening.urls.review_pages to this namespace, so they keep their review: names.
urlpatterns = [
    path("", views.review_list, name="list"),
    path("new/", views.review_create, name="create"),
    path("r/<slug:slug>/search/", views.pubmed_search, name="search"),
    path("r/<slug:slug>/import/", views.import_file, name="import"),
    path("r/<slug:slug>/import/count/", views.import_count, name="import_count"),
    path("r/<slug:slug>/jobs/", job_views.job_list, name="jobs"),
    path("r/<slug:slug>/jobs/live/", job_views.dashboard_jobs, name="dashboard_jobs"),
    path("r/<slug:slug>/jobs/<int:pk>/", job_views.job_detail, name="job"),
    path("r/<slug:slug>/jobs/<int:pk>/progress/", job_views.job_progress, name="job_progress"),
    path("r/<slug:slug>/jobs/<int:pk>/rerun/", job_views.job_rerun, name="job_rerun"),
    path("r/<slug:slug>/searches/", views.searches, name="searches"),
    path("r/<slug:slug>/searches.csv", views.searches_csv, name="searches_csv"),
    path("r/<slug:slug>/searches/<int:pk>/edit/", views.search_edit, name="search_edit"),
    path("r/<slug:slug>/searches/<int:pk>/undo/", removal_views.search_undo, name="search_undo"),
    path("r/<slug:slug>/delete/", removal_views.review_delete, name="delete"),
    path("r/<slug:slug>/duplicates/", views.duplicates, name="duplicates"),
    path("r/<slug:slug>/records/<int:pk>/unmerge/", views.record_unmerge, name="unmerge"),
    path("r/<slug:slug>/records/<int:pk>/merge/", views.record_merge, name="merge"),
    path("r/<slug:slug>/invitations/<int:pk>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    path("r/<slug:slug>/members/<int:pk>/role/", views.member_role, name="member_role"),
    path("r/<slug:slug>/members/<int:pk>/remove/", views.member_remove, name="member_remove"),
    path("r/<slug:slug>/members/<int:pk>/resolver/", views.member_resolver, name="member_resolver"),
    path("r/<slug:slug>/records/<int:pk>/tags/", annotation_views.tag_add, name="tag_add"),
    path("r/<slug:slug>/records/<int:pk>/tags/<int:tag_pk>/remove/", annotation_views.tag_remove, name="tag_remove"),
    path("r/<slug:slug>/records/<int:pk>/notes/", annotation_views.note_add, name="note_add"),
    path("r/<slug:slug>/tags/", annotation_views.tags, name="tags"),
    path("r/<slug:slug>/tags/<int:tag_pk>/rename/", annotation_views.tag_rename, name="tag_rename"),
    path("r/<slug:slug>/tags/<int:tag_pk>/delete/", annotation_views.tag_delete, name="tag_delete"),
]
