"""The full-text panel of a record (its PDF, the open-access search's answer, upload forms)."""

from django import template

from review.models import FullText

register = template.Library()


@register.inclusion_tag("screening/_fulltext.html", takes_context=True)
def fulltext_panel(context, record, next=""):
    """The panel for ``record``: shown on the full-text screening card and the record's page."""
    membership = context.get("membership")
    return {
        "review": context.get("review"),
        "record": record,
        "fulltext": FullText.objects.filter(record=record).first(),
        "can_change": bool(membership and membership.can_screen),
        "next": next,
        "csrf_token": context.get("csrf_token"),
    }
