"""The page a locked-out login gets (django-axes calls `lockout_response`)."""

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from django.conf import settings
from django.db.models import Max, Sum
from django.shortcuts import render
from django.utils import timezone


def lockout_response(request, original_response=None, credentials=None):
    cool_off = get_cool_off(request)
    retry_at = timezone.now() + cool_off
    # The lock lifts when the newest failure of the locked username or address is cool_off old.
    locked = [
        attempts.aggregate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
        for attempts in AxesProxyHandler.get_implementation().get_user_attempts(request, credentials)
    ]
    last_failures = [a["last"] for a in locked if a["last"] and (a["failures"] or 0) >= settings.AXES_FAILURE_LIMIT]
    if last_failures:
        retry_at = max(last_failures) + cool_off
    response = render(
        request,
        "registration/lockout.html",
        {
            "retry_at": retry_at,
            "failure_limit": settings.AXES_FAILURE_LIMIT,
            "cool_off_minutes": cool_off.seconds // 60,
        },
        status=429,
    )
    response["Retry-After"] = str(max(1, int((retry_at - timezone.now()).total_seconds())))
    return response
