from django.urls import path

from screening import chart_views, closing_views, fulltext_views, review_views, views

app_name = "screening"
urlpatterns = [
    path("r/<slug:slug>/screen/<str:stage>/", views.screen, name="screen"),
    path("r/<slug:slug>/screen/<str:stage>/order/", views.screen_order, name="screen_order"),
    path("r/<slug:slug>/screen/<str:stage>/progress/", views.screen_progress, name="screen_progress"),
    path("r/<slug:slug>/screen/<str:stage>/<int:pk>/decide/", views.decide, name="decide"),
    path("r/<slug:slug>/records/", views.records, name="records"),
    path("r/<slug:slug>/records/export.<str:fmt>", views.records_export, name="records_export"),
    path(
        "r/<slug:slug>/records/exports/<int:pk>/download/",
        views.records_export_download,
        name="records_export_download",
    ),
    path("r/<slug:slug>/records/bulk/", views.records_bulk, name="records_bulk"),
    path("r/<slug:slug>/conflicts/<str:stage>/", views.conflicts, name="conflicts"),
    path("r/<slug:slug>/conflicts/<str:stage>/resolved/", views.conflicts_resolved, name="conflicts_resolved"),
    path("r/<slug:slug>/conflicts/<str:stage>/<int:pk>/resolve/", views.resolve_conflict, name="resolve"),
    path("r/<slug:slug>/prisma/", views.prisma, name="prisma"),
    path("r/<slug:slug>/prisma/download.<str:fmt>", views.prisma_download, name="prisma_download"),
    path("r/<slug:slug>/stopping/<str:stage>/curve.<str:fmt>", views.recall_curve, name="recall_curve"),
    path("r/<slug:slug>/stopping/<str:stage>/targets/", views.stopping_targets, name="stopping_targets"),
    path("r/<slug:slug>/stopping/<str:stage>/sample/start/", views.sample_start, name="sample_start"),
    path("r/<slug:slug>/stopping/<str:stage>/sample/end/", views.sample_end, name="sample_end"),
    path("r/<slug:slug>/stopping/<str:stage>/close/", closing_views.close_stage, name="close_stage"),
    path("r/<slug:slug>/stopping/<str:stage>/reopen/", closing_views.reopen_stage, name="reopen_stage"),
    path("r/<slug:slug>/charts/", chart_views.charts_page, name="charts"),
    path("r/<slug:slug>/charts/progress-<str:stage>.<str:fmt>", chart_views.progress_download, name="chart_progress"),
    path("r/<slug:slug>/charts/recall-<str:stage>.<str:fmt>", chart_views.recall_download, name="chart_recall"),
    path(
        "r/<slug:slug>/charts/agreement-<str:stage>.<str:fmt>", chart_views.agreement_download, name="chart_agreement"
    ),
    path("r/<slug:slug>/methods.txt", views.methods_text, name="methods_text"),
    path("r/<slug:slug>/handouts.csv", views.handouts_csv, name="handouts_csv"),
    path("r/<slug:slug>/extraction/", views.extraction, name="extraction"),
    path("r/<slug:slug>/extraction/fields/", views.extraction_fields, name="extraction_fields"),
    path("r/<slug:slug>/extraction/<int:pk>/", views.extraction_entry, name="extraction_entry"),
    path("r/<slug:slug>/extraction/export.<str:fmt>", views.extraction_export, name="extraction_export"),
    # Full texts (screening/fulltext_views.py)
    path("r/<slug:slug>/records/<int:pk>/fulltext.pdf", fulltext_views.fulltext_pdf, name="fulltext_pdf"),
    path("r/<slug:slug>/records/<int:pk>/fulltext/upload/", fulltext_views.fulltext_upload, name="fulltext_upload"),
    path("r/<slug:slug>/records/<int:pk>/fulltext/remove/", fulltext_views.fulltext_remove, name="fulltext_remove"),
    path("r/<slug:slug>/fulltexts/upload/", fulltext_views.fulltext_bulk, name="fulltext_bulk"),
    path("r/<slug:slug>/fulltexts/open-access/", fulltext_views.fulltext_open_access, name="fulltext_open_access"),
]

# Review-level pages that show screening state: named in the review: namespace (sieve/urls.py
# mounts them there), because their addresses are the review's own.
review_pages = [
    path("r/<slug:slug>/", review_views.review_detail, name="detail"),
    path("r/<slug:slug>/settings/", review_views.review_settings, name="settings"),
    path("r/<slug:slug>/records/<int:pk>/", review_views.record_detail, name="record"),
    path("r/<slug:slug>/members/", review_views.members, name="members"),
    path("r/<slug:slug>/members/invite/", review_views.member_invite, name="member_invite"),
    path("r/<slug:slug>/blinding/<str:stage>/lift/", review_views.blinding_lift, name="blinding_lift"),
    path("r/<slug:slug>/audit.csv", review_views.audit_csv, name="audit_csv"),
]
