"""Sieve settings: everything a deployment changes comes from the environment."""

import os
import warnings
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent


def _bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = _bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and os.environ.get("SIEVE_REQUIRE_SECRET_KEY"):
        raise RuntimeError("SECRET_KEY must be set in production")
    # A development key: fine for the embedded SQLite set-up, never for a public server.
    SECRET_KEY = "sieve-insecure-development-key-change-me"
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]

# NCBI asks every E-utilities client to identify itself; an API key raises the limit to 10 req/s.
NCBI_EMAIL = os.environ.get("NCBI_EMAIL", "")
NCBI_API_KEY = os.environ.get("NCBI_API_KEY", "")
NCBI_TOOL = "sieve"
NCBI_EUTILS_URL = os.environ.get("NCBI_EUTILS_URL", "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/")

DATA_DIR = Path(os.environ.get("SIEVE_DATA_DIR", BASE_DIR / "data"))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_tables2",
    "django_filters",
    "django_htmx",
    "js_lib_htmx",
    "review",
    "screening",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "sieve.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "sieve.wsgi.application"

if not os.environ.get("DATABASE_URL"):
    DATA_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'sieve.sqlite3'}",
        conn_max_age=60,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several requests write at once (two reviewers screening): wait for the lock, don't fail.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve static files from the apps and static/ directly (no collectstatic step for `make demo`);
# STATIC_ROOT exists only after a `collectstatic` for a production server.
WHITENOISE_USE_FINDERS = True
warnings.filterwarnings("ignore", message="No directory at: ")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "review:list"
LOGOUT_REDIRECT_URL = "login"

DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

DJANGO_TABLES2_TEMPLATE = "django_tables2/bootstrap5.html"

# --- Content-Security-Policy (django-csp) ----------------------------------------------------
# No inline script or style anywhere: scripts and stylesheets come from static/ only, so text a
# user typed or imported can never run even if a template forgot to escape it. Keep it that way
# rather than adding 'unsafe-inline' (style="..." attributes count as inline style too).
INSTALLED_APPS += ["csp"]
MIDDLEWARE += ["csp.middleware.CSPMiddleware"]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
# --- end Content-Security-Policy -------------------------------------------------------------
# --- Upload size limit (input) ------------------------------------------------------------
# The largest file an import accepts; review.uploads stops a larger upload while it streams in.
try:
    MAX_UPLOAD_SIZE = int(os.environ.get("SIEVE_MAX_UPLOAD_MB", "200")) * 1024 * 1024
except ValueError:
    raise RuntimeError(
        f"SIEVE_MAX_UPLOAD_MB must be a whole number of megabytes, not {os.environ['SIEVE_MAX_UPLOAD_MB']!r}"
    ) from None
if MAX_UPLOAD_SIZE <= 0:
    raise RuntimeError("SIEVE_MAX_UPLOAD_MB must be at least 1")
FILE_UPLOAD_HANDLERS = [
    "review.uploads.SizeLimitUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# --- end of upload size limit --------------------------------------------------------------
