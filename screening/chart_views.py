"""The Charts page and each chart's download (SVG or PNG); figures and drawing in screening/charts.py."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from review.access import review_for_member
from review.models import Stage
from screening import charts

FORMATS = {"svg": "image/svg+xml", "png": "image/png"}


def _stage(value):
    if value not in Stage.values:
        raise Http404("No such screening stage")
    return Stage(value)


def _chart(review, membership, kind, stage):
    """(figures, svg) of one chart; figures None where blinding hides them."""
    if kind == "progress":
        figures = charts.reviewer_progress(review, stage, membership)
        return figures, charts.progress_svg(figures, title=review.title)
    if kind == "recall":
        figures = charts.recall_chart(review, stage)
        return figures, charts.recall_svg(figures, title=review.title)
    figures = charts.shown_pair_agreement(review, stage, membership)
    return figures, None if figures is None else charts.agreement_svg(stage, figures, title=review.title)


@login_required
@require_GET
def charts_page(request, slug):
    review, membership = review_for_member(request, slug)
    sections = [
        (stage, {kind: _chart(review, membership, kind, stage) for kind in ("progress", "recall", "agreement")})
        for stage in Stage
    ]
    return render(request, "screening/charts.html", {"review": review, "membership": membership, "sections": sections})


def _download(request, slug, stage, fmt, kind):
    review, membership = review_for_member(request, slug)
    stage = _stage(stage)
    if fmt not in FORMATS:
        raise Http404("Unknown format")
    _, svg = _chart(review, membership, kind, stage)
    if svg is None:
        raise Http404("Agreement is hidden while this stage is blinded")
    content = svg if fmt == "svg" else charts.png(svg)
    response = HttpResponse(content, content_type=FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{review.slug}-{kind}-{stage.value}.{fmt}"'
    return response


@login_required
@require_GET
def progress_download(request, slug, stage, fmt):
    return _download(request, slug, stage, fmt, "progress")


@login_required
@require_GET
def recall_download(request, slug, stage, fmt):
    return _download(request, slug, stage, fmt, "recall")


@login_required
@require_GET
def agreement_download(request, slug, stage, fmt):
    return _download(request, slug, stage, fmt, "agreement")
