from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import replace_url
from django_tables2 import RequestConfig
from django_tables2.columns.base import LinkTransform

from review import exportfiles, jobs
from review.access import SCREENING_ROLES, review_for_member
from review.annotations import AnnotationError
from review.models import Job, Record, Role, Stage
from screening import (
    bulk,
    handouts,
    prisma_svg,
    progress_report,
    queue,
    records_out,
    retrain,
    sampling,
    stages,
    tasks,
    visibility,
)
from screening import conflicts as conflicting
from screening import extraction as extracting
from screening import prisma as prisma_counts
from screening.decisions import DecisionError, NotInConflict, RecordFull, record_decision, resolve
from screening.filters import RecordFilter
from screening.forms import BulkForm, DecisionForm, ExtractionEntryForm, ExtractionFieldForm, StoppingTargetsForm
from screening.models import Decision, ExtractionField, ExtractionValue, RecordScore, ScreeningOrder
from screening.stages import OUTCOME_FIELD
from screening.tables import RECORD_COLUMNS, RecordTable, SelectableRecordTable, count_listed, paginate_options
from screening.templatetags.closing import panel_tag

PRISMA_FORMATS = {
    "svg": "image/svg+xml",
    "png": "image/png",
    "pdf": "application/pdf",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
}
# Work still open beside the diagram (PrismaCounts attributes), never part of it.
OPEN_WORK = [
    ("awaiting_screening", "awaiting title/abstract screening"),
    ("screening_conflicts", "title/abstract conflicts to resolve"),
    ("undecided_maybe", "maybes"),
    ("awaiting_full_text", "awaiting full-text screening"),
    ("full_text_conflicts", "full-text conflicts to resolve"),
]
EXTRACTION_FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _stage(value):
    if value not in Stage.values:
        raise Http404("No such screening stage")
    return Stage(value)


def _download(content, content_type, filename):
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# Screening --------------------------------------------------------------------------------------


def _my_vote(record, user, stage):
    if record is None:
        return None
    return Decision.objects.filter(record=record, reviewer=user, stage=stage, is_current=True).first()


def _ranking(run, record, mine):
    """What the model says about ``record`` (band and the words that raised its score), shown only
    on a record the reviewer has not voted on: on one they have, the score could have learnt
    another reviewer's vote on it."""
    if record is None or mine is not None or run is None:
        return None
    if hasattr(record, "model_rank"):
        rank = record.model_rank  # read with the record by the hand-out, in ranked order
    else:
        rank = RecordScore.objects.filter(run=run, record=record).values_list("rank", flat=True).first()
    if rank is None:
        return None
    return {"band": retrain.band(rank, run.scored), "terms": retrain.terms_in(record, run.terms), "run": run}


def _card_context(review, stage, record, plan, *, mine=None, form=None):
    """What every screening card shows about ``record``: the record, the reviewer's vote on it
    (``mine``), what the model says, the decision form, the review's keywords."""
    ranking = _ranking(plan.run, record, mine)
    return {
        "review": review,
        "stage": stage,
        "record": record,
        "mine": mine,
        "ranking": ranking,
        "order": plan.order,
        "orders": ScreeningOrder.choices,
        "sampling": plan.sample is not None,
        "form": form or DecisionForm.from_decision(mine, review=review, stage=stage),
        "keywords": (review.include_keywords_list(), review.exclude_keywords_list()),
        "marks": (review.include_keywords_list(), review.exclude_keywords_list(), ranking["terms"] if ranking else ()),
        "other_stage": Stage.FULL_TEXT if stage == Stage.TITLE_ABSTRACT else Stage.TITLE_ABSTRACT,
    }


def _prefetched(request, membership, stage, record, plan, after):
    """The card of ``record``, the one after ``after`` (the card on screen), rendered for the page
    to keep in a <template> and show the moment a decision is sent (static/app.js). Its back link
    goes to ``after``; its progress bar is fetched once that decision is in."""
    if record is None:
        return ""
    context = _card_context(membership.review, stage, record, plan)
    context.update(membership=membership, prefetched=True, previous=after, next_card="")
    return render_to_string("screening/_card.html", context, request=request)


def _card(request, membership, stage, record=None, form=None, notice="", *, lazy_progress=False):
    """Context for the screening card: ``record`` (default: the next one), its form and progress;
    ``notice`` says why the card is not the one the reviewer expected. ``lazy_progress``: the
    card fetches its progress bar after it is shown (an htmx swap), unless it has no record.
    ``next_card``: the card after it, claimed and rendered ahead (queue.HOLD: at most two held).

    Blinding: only the user's own vote is ever read here.
    """
    review, user = membership.review, request.user
    plan = queue.plan_for(review, user, stage)
    if record is None:
        held = queue.next_records(review, user, stage, plan)
        record, following = (held + [None, None])[:2]
        mine = None  # handed out: a record still waiting for this reviewer's vote
    else:
        mine = _my_vote(record, user, stage)
        # A revisit: after it comes the record the reviewer holds first.
        following = next((r for r in queue.next_records(review, user, stage, plan) if r.pk != record.pk), None)
    lazy_progress = lazy_progress and record is not None
    context = _card_context(review, stage, record, plan, mine=mine, form=form)
    context.update(
        membership=membership,
        notice=notice,
        # Read only when the template shows them (a decision answered with the next card alone does not).
        back=SimpleLazyObject(lambda: queue.previous_decision(review, user, stage, before=mine)),
        progress=None if lazy_progress else queue.progress(review, user, stage),
        following=following,
        next_card=mark_safe(_prefetched(request, membership, stage, following, plan, record)),
    )
    return context


def _revisit(request, review, stage):
    """The record asked for with ?record=<pk>: one the user voted on or still has to screen."""
    pk = request.GET.get("record", "")
    if not pk:
        return None
    if not pk.isdigit():
        raise Http404("No such record")
    record = get_object_or_404(stages.in_stage(review, stage), pk=pk)
    if not (_my_vote(record, request.user, stage) or queue.pending(review, request.user, stage).filter(pk=pk).exists()):
        raise Http404("This record does not need your vote at this stage")
    return record


@login_required
@require_GET
def screen(request, slug, stage):
    review, membership = review_for_member(request, slug, roles=SCREENING_ROLES)
    stage = _stage(stage)
    # The first visit trains the first model (in the background; this page does not wait for it).
    tasks.request_retrain(review, stage)
    context = _card(request, membership, stage, record=_revisit(request, review, stage))
    return render(request, "screening/screen.html", context)


@login_required
@require_GET
def screen_progress(request, slug, stage):
    review, _ = review_for_member(request, slug, roles=SCREENING_ROLES)
    stage = _stage(stage)
    context = {"progress": queue.progress(review, request.user, stage), "stage": stage}
    return render(request, "screening/_progress.html", context)


@login_required
@require_POST
def screen_order(request, slug, stage):
    review, _ = review_for_member(request, slug, roles=SCREENING_ROLES)
    stage = _stage(stage)
    order = request.POST.get("order", "")
    if order not in ScreeningOrder.values:
        return HttpResponse("Unknown screening order.", status=400, content_type="text/plain")
    queue.set_order(review, request.user, order)
    # The record on screen stays held for a while: let it go so the next one follows the new order.
    queue.release_held(review, request.user, stage)
    return redirect("screening:screen", review.slug, stage)


# The page sends the record of the prefetched card it shows while a decision is on its way.
SHOWING_HEADER = "X-Sieve-Showing"
# ... and the answer says it holds only the card after that one.
NEXT_ONLY_HEADER = "X-Sieve-Next-Only"


@login_required
@require_POST
def decide(request, slug, stage, pk):
    review, membership = review_for_member(request, slug, roles=SCREENING_ROLES)
    stage = _stage(stage)
    record = get_object_or_404(Record, review=review, pk=pk)
    form = DecisionForm(request.POST, review=review, stage=stage)
    template = "screening/_card.html" if request.htmx else "screening/screen.html"
    if form.is_valid():
        try:
            record_decision(record=record, reviewer=request.user, stage=stage, review=review, **form.decision_kwargs())
            tasks.request_retrain(review, stage)
        except RecordFull as error:
            # Others cast the last vote first: nothing to correct on this card, so on to the next one.
            return render(request, template, _card(request, membership, stage, notice=str(error)), status=400)
        except DecisionError as error:
            form.add_error(None, str(error))
    if form.errors:
        return render(request, template, _card(request, membership, stage, record, form), status=400)
    screen_url = reverse("screening:screen", args=[review.slug, stage])
    if not request.htmx:
        return redirect(screen_url)
    # The next record replaces the card; the address bar drops any ?record= of a revisit.
    context = _card(request, membership, stage, lazy_progress=True)
    if context["record"] is not None and request.headers.get(SHOWING_HEADER) == str(context["record"].pk):
        # The page shows that card already (prefetched): it only needs the one after it.
        response = render(request, "screening/_next_card.html", context)
        response[NEXT_ONLY_HEADER] = "1"
    else:
        response = render(request, "screening/_card.html", context)
    return replace_url(response, screen_url)


# Conflicts --------------------------------------------------------------------------------------

CONFLICTS_PER_PAGE = 25


def _resolver(request, slug):
    """The review and membership of an owner or designated resolver: the only ones who see the votes."""
    review, membership = review_for_member(request, slug)
    if not membership.resolves_conflicts:
        raise PermissionDenied("Only the owner and designated resolvers see and resolve conflicts.")
    return review, membership


def _resolve_form(review, stage, record, data=None):
    # One form per record on the page: ids carry the record, names stay plain for the POST.
    return DecisionForm(data, review=review, stage=stage, auto_id=f"id_r{record.pk}_%s")


def _conflicts_page(request, review, stage, tab, bound=None, status=200):
    """The open (or resolved) conflicts at ``stage``; ``bound`` is (record, form with errors)."""
    if tab == "open":
        records = conflicting.open_conflicts(review, stage)
    else:
        records = conflicting.resolved_conflicts(review, stage)
    page = Paginator(records, CONFLICTS_PER_PAGE).get_page(request.GET.get("page"))
    page_records = list(page)
    if bound is not None and bound[0] not in page_records:
        page_records.insert(0, bound[0])  # the record with the errors leads, whatever page it is on
    items = [
        (row, bound[1] if bound is not None and bound[0] == row.record else _resolve_form(review, stage, row.record))
        for row in conflicting.rows(page_records, stage)
    ]
    return render(
        request,
        "screening/conflicts.html",
        {
            "review": review,
            "stage": stage,
            "tab": tab,
            "page": page,
            "items": items,
            "open_counts": conflicting.open_counts(review),
        },
        status=status,
    )


@login_required
@require_GET
def conflicts(request, slug, stage):
    review, _ = _resolver(request, slug)
    return _conflicts_page(request, review, _stage(stage), "open")


@login_required
@require_GET
def conflicts_resolved(request, slug, stage):
    review, _ = _resolver(request, slug)
    return _conflicts_page(request, review, _stage(stage), "resolved")


def _resolve_failed(request, review, stage, tab, record, form):
    if request.htmx:
        (row,) = conflicting.rows([record], stage)
        context = {"review": review, "stage": stage, "tab": tab, "row": row, "form": form}
        return render(request, "screening/_conflict.html", context, status=400)
    return _conflicts_page(request, review, stage, tab, bound=(record, form), status=400)


def _no_longer_open(request, review, stage, record, form):
    # Another resolver got there first, or the votes changed: never overwrite a resolution unawares.
    message = f"Record #{record.pk} is no longer an open conflict; see the resolved tab."
    if request.htmx:
        form.is_valid()
        form.add_error(None, message)
        return _resolve_failed(request, review, stage, "open", record, form)
    messages.error(request, message)
    return redirect("screening:conflicts_resolved", review.slug, stage)


@login_required
@require_POST
def resolve_conflict(request, slug, stage, pk):
    review, _ = _resolver(request, slug)
    stage = _stage(stage)
    record = get_object_or_404(stages.in_stage(review, stage), pk=pk)
    tab = "resolved" if request.POST.get("tab") == "resolved" else "open"
    form = _resolve_form(review, stage, record, request.POST)
    if tab == "open" and getattr(record, OUTCOME_FIELD[stage]) != Record.Outcome.CONFLICT:
        return _no_longer_open(request, review, stage, record, form)
    if form.is_valid():
        try:
            resolve(
                record=record, stage=stage, user=request.user, only_if_conflict=tab == "open", **form.decision_kwargs()
            )
        except NotInConflict:
            return _no_longer_open(request, review, stage, record, form)
        except DecisionError as error:
            form.add_error(None, str(error))
    if form.errors:
        return _resolve_failed(request, review, stage, tab, record, form)
    if request.htmx:
        # The row goes (an empty swap); the counts in the tabs follow out of band.
        context = {"review": review, "stage": stage, "tab": tab, "open_counts": conflicting.open_counts(review)}
        return render(request, "screening/_conflict_counts.html", {**context, "oob": True})
    return redirect("screening:conflicts_resolved" if tab == "resolved" else "screening:conflicts", review.slug, stage)


# Records table ----------------------------------------------------------------------------------


@login_required
@require_GET
def records(request, slug):
    review, membership = review_for_member(request, slug)
    base = Record.objects.for_review(review).only(*RECORD_COLUMNS)
    filters = RecordFilter(request.GET or None, queryset=base, review=review, user=request.user, membership=membership)
    # Screeners get a checkbox per row for the bulk actions; viewers change nothing.
    table_class = SelectableRecordTable if membership.can_screen else RecordTable
    table = table_class(filters.qs, review=review, membership=membership, highlight=filters.text_query)
    total = count_listed(filters.qs, text_search=filters.text_search)
    RequestConfig(request, paginate=paginate_options(total, per_page=50)).configure(table)
    context = {
        "review": review,
        "membership": membership,
        "filter": filters,
        "table": table,
        "total": total,
        "export_formats": list(records_out.FORMATS),
        "bulk_form": BulkForm(review=review, membership=membership) if membership.can_screen else None,
        "filter_fields": [(k, v) for k, values in request.GET.lists() if k != "page" for v in values],
    }
    return render(request, "screening/records.html", context)


def _filter_data(post):
    """The records table's filter fields carried in a bulk action's POST (all but the bulk form's)."""
    data = QueryDict(mutable=True)
    for key, values in post.lists():
        if not key.startswith("bulk-") and key != "csrfmiddlewaretoken":
            data.setlist(key, values)
    return data


def _bulk_selection(request, review, membership, form):
    """The records a bulk action is for: those ticked, or every record the POSTed filter matches."""
    if form.cleaned_data["scope"] == "selected":
        return form.cleaned_data["records"]
    filters = RecordFilter(
        _filter_data(request.POST),
        queryset=Record.objects.for_review(review),
        review=review,
        user=request.user,
        membership=membership,
    )
    if not filters.is_valid():
        errors = " ".join(e for errors in filters.form.errors.values() for e in errors)
        raise bulk.BulkError(f"The filter is not valid: {errors}")
    return filters.qs


@login_required
@require_POST
def records_bulk(request, slug):
    review, membership = review_for_member(request, slug, roles=SCREENING_ROLES)
    form = BulkForm(request.POST, review=review, membership=membership)
    query = _filter_data(request.POST).urlencode()
    back = reverse("screening:records", args=[review.slug]) + (f"?{query}" if query else "")
    context = {"review": review, "form": form, "back": back}
    template = "screening/bulk_confirm.html"
    if not form.is_valid():
        context["error"] = " ".join(e for errors in form.errors.values() for e in errors)
        return render(request, template, context, status=400)
    try:
        selected = _bulk_selection(request, review, membership, form)
        action = context["action"] = bulk.check(review, membership, form.bulk_action())
        if not form.cleaned_data["confirm"]:
            context["counts"] = bulk.plan(review, membership, selected, action)
            return render(request, template, context)
        counts = bulk.apply(review, membership, selected, action, expected=form.cleaned_data["count"])
    except bulk.SelectionChanged as error:
        # Ask again, with the numbers as they are now.
        context.update(error=str(error), counts=bulk.plan(review, membership, selected, action))
        return render(request, template, context, status=409)
    except (bulk.BulkError, AnnotationError, DecisionError) as error:
        context["error"] = str(error)
        return render(request, template, context, status=400)
    if action.kind == "exclude":
        tasks.request_retrain(review, action.stage)
    messages.success(request, f"Done: {action.describe()}: {counts.sentence(action)}.")
    return redirect(back)


@login_required
@require_http_methods(["GET", "POST"])
def records_export(request, slug, fmt):
    # Every member may download what the table shows them (a viewer too); the votes in the file
    # are those its reader may see (screening/records_out.py follows screening/visibility.py).
    # A set bigger than records_out.inline_limit() is written by the worker: a GET (which changes
    # nothing) asks to confirm, and the POST of that page queues the job, whose page answers.
    review, membership = review_for_member(request, slug)
    if fmt not in records_out.FORMATS:
        raise Http404("Unknown format")
    query = request.GET.copy()
    with_decisions = query.pop("decisions", [""])[-1] == "1"
    try:
        records = records_out.filtered(review, query, user=request.user, membership=membership)
    except records_out.ExportError as error:
        return HttpResponse(str(error), status=400, content_type="text/plain")
    if records_out.is_big(records):
        if request.method != "POST":
            context = {"review": review, "membership": membership, "fmt": fmt, "limit": records_out.inline_limit()}
            return render(request, "screening/records_export_confirm.html", context)
        try:
            job = tasks.enqueue_records_export(
                review=review, user=request.user, fmt=fmt, query=query, with_decisions=with_decisions
            )
        except jobs.JobNotQueued:
            messages.error(request, "The export could not be queued (the task queue did not answer); try again.")
            return redirect(
                reverse("screening:records", args=[review.slug]) + (f"?{query.urlencode()}" if query else "")
            )
        return redirect(job)
    pieces = records_out.export(review, records, fmt, membership=membership, with_decisions=with_decisions)
    response = StreamingHttpResponse(pieces, content_type=records_out.FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{review.slug}-records.{fmt}"'
    return response


@login_required
@require_GET
def records_export_download(request, slug, pk):
    # The file holds what its starter may see: theirs alone (anyone else, an owner too, gets 404).
    review, _ = review_for_member(request, slug)
    job = get_object_or_404(Job, review=review, pk=pk, kind=Job.Kind.RECORDS_EXPORT, created_by_id=request.user.pk)
    stream = exportfiles.open_kept(tasks.records_export_path(job))
    if stream is None:
        raise Http404("This export's file is not there (not finished, or removed since: download again).")
    fmt = job.result["format"]
    name = f"{review.slug}-records.{fmt}"
    return FileResponse(stream, as_attachment=True, filename=name, content_type=records_out.FORMATS[fmt])


# PRISMA -----------------------------------------------------------------------------------------


@login_required
@require_GET
def prisma(request, slug):
    review, membership = review_for_member(request, slug)
    counts = prisma_counts.compute(review)
    svg = prisma_svg.render_svg(counts, title=review.title)
    shown = visibility.shown_open_work(counts, membership)
    open_work = [f"{shown[key]} {label}" for key, label in OPEN_WORK if shown.get(key)]
    return render(
        request,
        "screening/prisma.html",
        {"review": review, "counts": counts, "svg": svg, "formats": list(PRISMA_FORMATS), "open_work": open_work},
    )


@login_required
@require_GET
def prisma_download(request, slug, fmt):
    review, _ = review_for_member(request, slug)
    if fmt not in PRISMA_FORMATS:
        raise Http404("Unknown format")
    counts = prisma_counts.compute(review)
    content = prisma_svg.render(counts, "prisma2020-csv" if fmt == "csv" else fmt, title=review.title)
    name = f"{review.slug}-prisma2020.csv" if fmt == "csv" else f"{review.slug}-prisma.{fmt}"
    return _download(content, PRISMA_FORMATS[fmt], name)


# Stopping: recall curve and methods paragraph ----------------------------------------------------

CURVE_FORMATS = {"svg": "image/svg+xml", "png": "image/png"}


@login_required
@require_GET
def recall_curve(request, slug, stage, fmt):
    review, _ = review_for_member(request, slug)
    if stage not in Stage.values or fmt not in CURVE_FORMATS:
        raise Http404("No such curve")
    svg = progress_report.recall_curve_svg(progress_report.stage_progress(review, stage), title=review.title)
    content = svg if fmt == "svg" else progress_report.recall_curve_png(svg)
    return _download(content, CURVE_FORMATS[fmt], f"{review.slug}-recall-{stage}.{fmt}")


@login_required
@require_GET
def methods_text(request, slug):
    review, _ = review_for_member(request, slug)
    text = progress_report.methods_paragraph(review)
    return _download(text, "text/plain; charset=utf-8", f"{review.slug}-methods.txt")


@login_required
@require_GET
def handouts_csv(request, slug):
    review, membership = review_for_member(request, slug)
    chunks = handouts.handout_csv_chunks(review, membership)
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{review.slug}-handouts.csv"'
    return response


def _stopping_panel(review, stage):
    return redirect(reverse("review:detail", args=[review.slug]) + f"#{panel_tag(stage)}")


@login_required
@require_POST
def stopping_targets(request, slug, stage):
    review, _ = review_for_member(request, slug, (Role.OWNER,))
    stage = _stage(stage)
    form = StoppingTargetsForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Stopping rule not changed. {form.error_text()}", extra_tags=panel_tag(stage))
        return _stopping_panel(review, stage)
    recall_target, confidence = form.fractions()
    sampling.set_targets(review, stage, recall_target=recall_target, confidence=confidence, by=request.user)
    running = sampling.open_sample(review, stage)
    messages.success(
        request,
        f"{stage.label}: the stopping test now asks for {form.cleaned_data['recall_target']}% recall at "
        f"{form.cleaned_data['confidence']}% confidence"
        + (
            f"; the random sample running now keeps {100 * running.recall_target:.3g}% recall at "
            f"{100 * running.confidence:.3g}% confidence until it ends."
            if running
            else "."
        ),
        extra_tags=panel_tag(stage),
    )
    return _stopping_panel(review, stage)


def stopping_action(request, slug, stage, act, error, success):
    """An owner's action on a stage's stopping panel: ``act(review, stage)``; its ``error`` or
    ``success(stage, result)`` shown in that stage's panel, where the dashboard scrolls back to."""
    review, _ = review_for_member(request, slug, (Role.OWNER,))
    stage = _stage(stage)
    try:
        result = act(review, stage)
    except error as e:
        messages.error(request, str(e), extra_tags=panel_tag(stage))
    else:
        messages.success(request, success(stage, result), extra_tags=panel_tag(stage))
    return _stopping_panel(review, stage)


@login_required
@require_POST
def sample_start(request, slug, stage):
    return stopping_action(
        request,
        slug,
        stage,
        lambda review, stage: sampling.start_sample(review, stage, by=request.user),
        sampling.SamplingError,
        lambda stage, sample: (
            f"{stage.label}: random sample started over the {sample.remainder} records left; every reviewer now "
            "gets records in the sample's order."
        ),
    )


@login_required
@require_POST
def sample_end(request, slug, stage):
    return stopping_action(
        request,
        slug,
        stage,
        lambda review, stage: sampling.end_sample(review, stage, by=request.user),
        sampling.SamplingError,
        lambda stage, _: f"{stage.label}: random sample ended; reviewers get their chosen order again.",
    )


# Extraction -------------------------------------------------------------------------------------


def _included_record(review, pk):
    """A study included at full text, or 404: only those are extracted."""
    return get_object_or_404(extracting.included_records(review), pk=pk)


@login_required
@require_GET
def extraction(request, slug):
    review, membership = review_for_member(request, slug)
    table = extracting.build_table(review, request=request)
    # Each study label opens its entry form.
    table.columns["study_id"].link = LinkTransform(
        url=lambda record: reverse("screening:extraction_entry", args=[review.slug, record["record_id"]])
    )
    return render(
        request,
        "screening/extraction.html",
        {
            "review": review,
            "table": table,
            "can_edit": membership.role in SCREENING_ROLES,
            "is_owner": membership.role == Role.OWNER,
            "fields": ExtractionField.objects.filter(review=review),
        },
    )


@login_required
@require_GET
def extraction_export(request, slug, fmt):
    review, _ = review_for_member(request, slug)
    if fmt not in EXTRACTION_FORMATS:
        raise Http404("Unknown format")
    return _download(extracting.export(review, fmt), EXTRACTION_FORMATS[fmt], f"{review.slug}-extraction.{fmt}")


def _field_action(request, review):
    """Apply one POSTed change to the field list; returns a bound form with errors, or None."""
    action = request.POST.get("action", "save")
    field = None
    if request.POST.get("field"):
        field = get_object_or_404(ExtractionField, review=review, pk=request.POST["field"])
    if action == "delete" and field:
        extracting.delete_field(field, user=request.user)
    elif action in ("up", "down") and field:
        _move(review, field, -1 if action == "up" else 1)
    else:
        form = ExtractionFieldForm(request.POST, instance=field, review=review)
        if not form.is_valid():
            return form
        extracting.save_field(form, user=request.user)
    return None


def _delete_needs_confirming(request, review):
    """The field a POST asks to delete, when it has values and the POST is not yet the confirmation."""
    if request.POST.get("action") != "delete" or request.POST.get("confirm") or not request.POST.get("field"):
        return None
    field = get_object_or_404(ExtractionField, review=review, pk=request.POST["field"])
    return field if field.values.exists() else None


def _move(review, field, step):
    with transaction.atomic():
        fields = list(ExtractionField.objects.select_for_update().filter(review=review))
        i = fields.index(field)
        j = i + step
        if 0 <= j < len(fields):
            fields[i], fields[j] = fields[j], fields[i]
        for position, f in enumerate(fields, start=1):
            f.position = position
        ExtractionField.objects.bulk_update(fields, ["position"])


@login_required
@require_http_methods(["GET", "POST"])
def extraction_fields(request, slug):
    review, membership = review_for_member(request, slug, roles=None if request.method == "GET" else (Role.OWNER,))
    form = None
    if request.method == "POST":
        doomed = _delete_needs_confirming(request, review)
        if doomed is not None:
            context = {"review": review, "field": doomed, "count": doomed.values.count()}
            return render(request, "screening/extraction_field_delete.html", context)
        form = _field_action(request, review)
        if form is None:
            return redirect("screening:extraction_fields", review.slug)
    fields = ExtractionField.objects.filter(review=review)
    editing = fields.filter(pk=request.GET.get("edit")).first() if request.GET.get("edit", "").isdigit() else None
    if form is None:
        form = ExtractionFieldForm(instance=editing, review=review)
    is_owner = membership.role == Role.OWNER
    return render(
        request,
        "screening/extraction_fields.html",
        {
            "review": review,
            "fields": fields,
            "form": form,
            "editing": form.instance if form.instance.pk else None,
            "is_owner": is_owner,
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def extraction_entry(request, slug, pk):
    roles = None if request.method == "GET" else SCREENING_ROLES
    review, membership = review_for_member(request, slug, roles=roles)
    record = _included_record(review, pk)
    fields = list(ExtractionField.objects.filter(review=review))
    values = dict(ExtractionValue.objects.filter(record=record).values_list("field_id", "value"))
    read_only = membership.role not in SCREENING_ROLES
    form = ExtractionEntryForm(request.POST or None, fields=fields, values=values, read_only=read_only)
    if request.method == "POST" and form.is_valid():
        try:
            extracting.save_values(record, form.values(), request.user, seen=form.seen())
        except ValidationError as error:
            # Shown again from the stored values (what changed meanwhile), keeping what was typed.
            data = request.POST.copy()
            now = dict(ExtractionValue.objects.filter(record=record).values_list("field_id", "value"))
            for field in fields:
                data[form.seen_key(field)] = now.get(field.pk, "")
            form = ExtractionEntryForm(data, fields=fields, values=now, read_only=read_only)
            form.is_valid()
            _add_errors(form, error)
        else:
            return redirect("screening:extraction", review.slug)
    return render(
        request,
        "screening/extraction_entry.html",
        {
            "review": review,
            "record": record,
            "form": form,
            "read_only": read_only,
            "history": extracting.value_history(record),
        },
        status=400 if form.errors else 200,
    )


def _add_errors(form, error):
    """Attach save_values' errors to the matching inputs (a dict keyed by field, or one message)."""
    if hasattr(error, "error_dict"):
        by_name = {f.name: form.key(f) for f in form.extraction_fields}
        by_pk = {str(f.pk): form.key(f) for f in form.extraction_fields}
        for key, messages in error.error_dict.items():
            name = by_name.get(key) or by_pk.get(str(key)) or (key if key in form.fields else None)
            for message in messages:
                form.add_error(name, message)
    else:
        form.add_error(None, error)
