"""What the web server checks before it answers a single request."""

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def refuse_public_development_key():
    """Refuse to serve with the public development SECRET_KEY unless DEBUG is on.

    Anyone can read that key in the source and forge sessions and password-reset links with it.
    The command-line tools don't call this: they run with no SECRET_KEY.
    """
    if not settings.DEBUG and not settings.SECRET_KEY_IS_SET:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set and DEBUG is off: Sieve will not serve web pages with the public "
            "development key. Set SECRET_KEY to a long random value, e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'` "
            "(or DEBUG=true on your own machine only)."
        )


def refuse_uncollected_static():
    """Refuse to serve with SIEVE_COLLECTED_STATIC on before `collectstatic` has run: every page
    would fail on its first stylesheet with "Missing staticfiles manifest entry"."""
    if settings.SIEVE_COLLECTED_STATIC and not (Path(settings.STATIC_ROOT) / "staticfiles.json").exists():
        raise ImproperlyConfigured(
            f"SIEVE_COLLECTED_STATIC is on but {settings.STATIC_ROOT} holds no collected static files: "
            "run `python manage.py collectstatic --noinput` (with the same environment) first."
        )
