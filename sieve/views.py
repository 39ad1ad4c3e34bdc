from django.middleware.csrf import REASON_NO_CSRF_COOKIE
from django.shortcuts import render


def csrf_failure(request, reason=""):
    """Django's CSRF refusal, in the site's layout (Django's own renders its template without the
    request, so no page around it)."""
    return render(
        request, "403_csrf.html", {"reason": reason, "no_cookie": reason == REASON_NO_CSRF_COOKIE}, status=403
    )
