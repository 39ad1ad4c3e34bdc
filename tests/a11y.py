"""Helpers for the accessibility browser tests: the pages to visit by URL name, and axe-core.

PAGES names every page a person opens (a GET that answers a whole HTML page), with the URL
arguments to fill it from the test's world; NOT_PAGES names every other URL pattern with the reason
it is not one. A pattern in neither fails `test_every_url_pattern_is_a_page_or_says_why_not`: a new
page is covered by adding its name (and arguments) to PAGES.
"""

import io

from axe_playwright_python.sync_playwright import Axe
from django.core.files.uploadedfile import SimpleUploadedFile

from review import importing
from review import tasks as review_tasks
from review.invitations import invite
from review.models import Role
from review.sources import SourceDetails
from screening.decisions import record_decision
from transfer import tasks as transfer_tasks

TA, FT = "title_abstract", "full_text"

# URL name -> function(world) returning the list of kwargs to visit it with (empty: no arguments).
PAGES = {
    "login": lambda w: [{}],
    "password_change": lambda w: [{}],
    "password_change_done": lambda w: [{}],
    "invitations:show": lambda w: [{"token": w.invitation_token}],
    "review:list": lambda w: [{}],
    "review:create": lambda w: [{}],
    "review:detail": lambda w: [{"slug": w.slug}],
    "review:settings": lambda w: [{"slug": w.slug}],
    "review:delete": lambda w: [{"slug": w.slug}],
    "review:record": lambda w: [{"slug": w.slug, "pk": w.conflict.pk}, {"slug": w.slug, "pk": w.duplicate.pk}],
    "review:members": lambda w: [{"slug": w.slug}],
    "review:search": lambda w: [{"slug": w.slug}],
    "review:import": lambda w: [{"slug": w.slug}],
    "review:searches": lambda w: [{"slug": w.slug}],
    "review:search_edit": lambda w: [{"slug": w.slug, "pk": w.search.pk}],
    "review:search_undo": lambda w: [{"slug": w.slug, "pk": w.search.pk}],
    "review:duplicates": lambda w: [{"slug": w.slug}],
    "review:tags": lambda w: [{"slug": w.slug}],
    "review:jobs": lambda w: [{"slug": w.slug}],
    "review:job": lambda w: [{"slug": w.slug, "pk": w.job.pk}],
    "screening:screen": lambda w: [{"slug": w.slug, "stage": TA}, {"slug": w.slug, "stage": FT}],
    "screening:records": lambda w: [{"slug": w.slug}],
    "screening:conflicts": lambda w: [{"slug": w.slug, "stage": TA}, {"slug": w.slug, "stage": FT}],
    "screening:conflicts_resolved": lambda w: [{"slug": w.slug, "stage": TA}],
    "screening:prisma": lambda w: [{"slug": w.slug}],
    "screening:close_stage": lambda w: [{"slug": w.slug, "stage": TA}],
    "screening:extraction": lambda w: [{"slug": w.slug}],
    "screening:extraction_fields": lambda w: [{"slug": w.slug}],
    "screening:extraction_entry": lambda w: [{"slug": w.slug, "pk": w.included.pk}],
    "screening:charts": lambda w: [{"slug": w.slug}],
    "screening:fulltext_bulk": lambda w: [{"slug": w.slug}],
    "transfer:import": lambda w: [{}],
    "transfer:import_job": lambda w: [{"pk": w.review_import_job.pk}],
}

# Pages only some roles may open: the others get 403/404 (checked by the access tests, not here).
OWNER_ONLY = {
    "review:settings",
    "review:members",
    "review:delete",
    "review:search_edit",
    "review:search_undo",
    "screening:close_stage",
    "screening:conflicts",  # the owner's and resolvers'
    "screening:conflicts_resolved",
    "transfer:import_job",  # the page of alice's own review import
}
NOT_FOR_VIEWERS = OWNER_ONLY | {"review:search", "review:import", "screening:screen", "screening:fulltext_bulk"}

NOT_PAGES = {
    **dict.fromkeys(
        [
            "logout",
            "invitations:accept",
            "invitations:accept_listed",
            "invitations:decline",
            "invitations:decline_listed",
            "invitations:join",
            "review:blinding_lift",
            "review:export",
            "review:import_count",
            "review:invitation_revoke",
            "review:job_rerun",
            "review:member_invite",
            "review:member_remove",
            "review:member_resolver",
            "review:member_role",
            "review:merge",
            "review:unmerge",
            "review:note_add",
            "review:tag_add",
            "review:tag_delete",
            "review:tag_remove",
            "review:tag_rename",
            "screening:decide",
            "screening:reopen_stage",
            "screening:resolve",
            "screening:sample_end",
            "screening:sample_start",
            "screening:screen_order",
            "screening:stopping_targets",
            "transfer:import_job_rerun",
            "screening:fulltext_open_access",
            "screening:fulltext_remove",
            "screening:fulltext_upload",
        ],
        "POST only: its answer is a redirect or a fragment of a page visited here",
    ),
    "screening:records_bulk": "POST only: the records table's selection; it answers a confirmation page",
    **dict.fromkeys(
        ["review:job_progress", "screening:screen_progress", "transfer:import_job_progress", "review:dashboard_jobs"],
        "an htmx fragment, swapped into the job or screening page visited here",
    ),
    **dict.fromkeys(
        [
            "review:audit_csv",
            "review:searches_csv",
            "review:export_download",
            "screening:extraction_export",
            "screening:handouts_csv",
            "screening:methods_text",
            "screening:prisma_download",
            "screening:recall_curve",
            "screening:chart_agreement",
            "screening:chart_progress",
            "screening:chart_recall",
            "screening:fulltext_pdf",
            "screening:records_export",
            "screening:records_export_download",
        ],
        "a download (CSV, XLSX, text, image, PDF or ZIP), not a page",
    ),
}


def add_jobs_and_invitation(world):
    """Records still to screen at both stages, a queued file import, a queued review import and an
    open invitation, for their pages."""
    world.slug = world.review.slug
    ris = "".join(
        f"TY  - JOUR\nTI  - {title}\nAB  - An abstract about {title.lower()}.\nAU  - Diaz, Ana\nPY  - 2021\nER  - \n\n"
        for title in ("Kratom use among veterans", "Sleep after trauma", "Mitragynine and pain", "Opioid tapering")
    )
    importing.import_file(review=world.review, fileobj=io.BytesIO(ris.encode()), filename="more.ris", user=world.alice)
    world.at_full_text = world.records[3]  # both reviewers include it: at full text, no decision there yet
    for reviewer in (world.bob, world.resolver):
        record_decision(record=world.at_full_text, reviewer=reviewer, stage=TA, decision="include")
    world.search = world.review.searches.order_by("pk").first()
    upload = SimpleUploadedFile("kratom.ris", b"TY  - JOUR\nTI  - Kratom\nER  - \n")
    world.job = review_tasks.enqueue_import(
        review=world.review, user=world.alice, upload=upload, details=SourceDetails()
    )
    world.review_import_job = transfer_tasks.enqueue_review_import(
        upload=SimpleUploadedFile("review.sieve.zip", io.BytesIO(b"PK").read()), slug="", user=world.alice
    )
    world.invitation_token = invite(
        world.review, email="newcomer@example.org", role=Role.REVIEWER, by=world.alice
    ).token


def pages_for(world, role):
    """(URL name, kwargs) of every page ``role`` ("owner", "reviewer", "viewer") may open."""
    for name, arguments in PAGES.items():
        if role != "owner" and name in OWNER_ONLY:
            continue
        if role == "viewer" and name in NOT_FOR_VIEWERS:
            continue
        for kwargs in arguments(world):
            yield name, kwargs


_axe = Axe()


def axe_violations(page):
    """axe-core's violations on the page as it is now, one readable line per rule and node.

    The script is run by Playwright's evaluate (DevTools protocol), which the page's
    Content-Security-Policy does not apply to."""
    results = _axe.run(page)
    return [
        f"{v['id']} ({v['impact']}) {' '.join(map(str, node['target']))}: {node['html'][:160]} -- "
        + node.get("failureSummary", "").replace("\n", " ")[:240]
        for v in results.response["violations"]
        for node in v["nodes"]
    ]
