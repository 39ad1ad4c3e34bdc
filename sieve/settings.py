"""Sieve settings: everything a deployment changes comes from the environment."""

import os
import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent


def _bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = _bool("DEBUG", False)
# Without SECRET_KEY the command-line tools still work (they sign nothing a browser sees), but the
# web server refuses to start unless DEBUG is on: see sieve/serving.py, called by wsgi.py and runserver.
SECRET_KEY_IS_SET = bool(os.environ.get("SECRET_KEY"))
SECRET_KEY = os.environ.get("SECRET_KEY") or "sieve-insecure-development-key-change-me"
ALLOWED_HOSTS = _list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = _list("CSRF_TRUSTED_ORIGINS")
# A refused form explains itself in the site's layout (templates/403_csrf.html).
CSRF_FAILURE_VIEW = "sieve.views.csrf_failure"

# HTTPS: one switch for a production deployment behind TLS.
SIEVE_HTTPS = _bool("SIEVE_HTTPS", False)
SESSION_COOKIE_SECURE = SIEVE_HTTPS
CSRF_COOKIE_SECURE = SIEVE_HTTPS
SECURE_SSL_REDIRECT = SIEVE_HTTPS
SECURE_HSTS_SECONDS = int(os.environ.get("SIEVE_HSTS_SECONDS", 31536000)) if SIEVE_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SIEVE_HTTPS
SECURE_HSTS_PRELOAD = SIEVE_HTTPS and _bool("SIEVE_HSTS_PRELOAD", False)
if _bool("SIEVE_BEHIND_PROXY", False):
    # Only behind a proxy that sets X-Forwarded-Proto itself (and strips the client's copy).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True

# NCBI asks every E-utilities client to identify itself; an API key raises the limit to 10 req/s.
NCBI_EMAIL = os.environ.get("NCBI_EMAIL", "")
NCBI_API_KEY = os.environ.get("NCBI_API_KEY", "")
NCBI_TOOL = "sieve"
NCBI_EUTILS_URL = os.environ.get("NCBI_EUTILS_URL", "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/")
# PubMed Central's OA web service, asked for the PDF of an open-access article (review/pubmed.py).
NCBI_PMC_OA_URL = os.environ.get("NCBI_PMC_OA_URL", "https://www.ncbi.nlm.nih.gov/pmc/utils/oa/oa.fcgi")
# NCBI's limit holds across every web process and worker sharing the database (review/ratelimit.py);
# an empty value keeps it per process.
NCBI_RATE_LIMITER = os.environ.get("NCBI_RATE_LIMITER", "review.ratelimit.DatabaseRateLimiter")

DATA_DIR = Path(os.environ.get("SIEVE_DATA_DIR", BASE_DIR / "data"))
# Uploads wait here for the background worker (default DATA_DIR/uploads): a folder every web
# process and worker of a deployment shares.
SIEVE_UPLOAD_DIR = Path(os.environ["SIEVE_UPLOAD_DIR"]) if os.environ.get("SIEVE_UPLOAD_DIR") else None

INSTALLED_APPS = [
    # First, so that its `runserver` (which refuses an unset SECRET_KEY) wins over staticfiles'.
    "sieve",
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
    "axes",
    "review",
    "screening",
    "demo",
    "transfer",
    "django_tasks",
    "django_tasks_db",
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
    # Last, as django-axes requires: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
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
    # WAL lets readers go on while one connection writes (a long import writes in short chunks,
    # and a login or a decision waits at most for one chunk, well within the timeout).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            # WAL is set once in the file (sieve/sqlite.py), not by every new connection.
            "init_command": "PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # The records table's covering index (Record.Meta, include=...) serves PostgreSQL's index-only
    # count; on SQLite it is a plain index, as intended: not worth a warning at every migrate.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# An import (staged, invisible until it lands) that wrote nothing for this long was killed: the
# next import into its review removes what it staged (review.importing.discard_abandoned_imports).
SIEVE_IMPORT_STALE_SECONDS = int(os.environ.get("SIEVE_IMPORT_STALE_SECONDS", "600"))


def _parse_process_bytes(value):
    """SIEVE_IMPORT_PARSE_PROCESS_BYTES: a size in bytes (0: every file on disk), or "off"."""
    if value.strip().lower() == "off":
        return None
    try:
        size = int(value)
    except ValueError:
        size = -1
    if size < 0:
        raise RuntimeError(
            f'SIEVE_IMPORT_PARSE_PROCESS_BYTES must be a size in bytes (0 or more) or "off", not {value!r}'
        )
    return size


# A file on disk from this size up is parsed in a second process while the importing one
# deduplicates and writes (review.importers.process): on two cores a big import takes about the
# longer of the two instead of their sum. Smaller files and in-memory uploads are parsed in-process
# (starting a Python process costs a few tenths of a second); None ("off") never uses a process.
SIEVE_IMPORT_PARSE_PROCESS_BYTES = _parse_process_bytes(
    os.environ.get("SIEVE_IMPORT_PARSE_PROCESS_BYTES", str(16 * 1024 * 1024))
)

# Background work (retraining the screening model) goes through Django's tasks API (the django-tasks
# backport) into the database; `manage.py db_worker` runs it (`make demo` starts one).
TASKS = {
    "default": {
        "BACKEND": os.environ.get("SIEVE_TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Login throttling (django-axes): the axes backend comes first and refuses a locked-out username or
# address before any password hash is computed.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 10
AXES_COOLOFF_TIME = timedelta(minutes=15)
# Lock a username (from any address) and an address (for any username), each on its own.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# Attempts while locked out neither extend the lock nor get checked: it lifts 15 minutes after the
# last counted failure.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "sieve.throttling.lockout_response"
# The client address is REMOTE_ADDR. Behind a reverse proxy, name the header the proxy overwrites
# with the client's address (e.g. HTTP_X_REAL_IP); never a header a client can set through the proxy.
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    (os.environ["SIEVE_CLIENT_IP_HEADER"], "REMOTE_ADDR")
    if os.environ.get("SIEVE_CLIENT_IP_HEADER")
    else ("REMOTE_ADDR",)
)

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("SIEVE_STATIC_ROOT", DATA_DIR / "static"))
STATICFILES_DIRS = [BASE_DIR / "static"]
# Production (`make serve-prod`): `collectstatic` gathers the files into STATIC_ROOT, compressed and
# named after a hash of their content, and WhiteNoise serves them with a year's caching. Otherwise
# (`make demo`, the tests) WhiteNoise serves the apps' and static/'s files as they are.
SIEVE_COLLECTED_STATIC = _bool("SIEVE_COLLECTED_STATIC", False)
WHITENOISE_USE_FINDERS = not SIEVE_COLLECTED_STATIC
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if SIEVE_COLLECTED_STATIC
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
    # Full-text PDFs (review.fulltexts): under the data directory, never under MEDIA_URL (a view that
    # checks membership serves them). A deployment can point this at object storage (e.g.
    # django-storages' S3 backend) by setting alone; the names stored are the storage's.
    "fulltexts": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": Path(os.environ.get("SIEVE_FULLTEXT_DIR") or DATA_DIR / "fulltexts")},
    },
}
# The largest full-text PDF accepted (uploaded, or fetched from PubMed Central).
try:
    SIEVE_MAX_PDF_SIZE = int(os.environ.get("SIEVE_MAX_PDF_MB", "50")) * 1024 * 1024
except ValueError:
    raise RuntimeError(
        f"SIEVE_MAX_PDF_MB must be a whole number of megabytes, not {os.environ['SIEVE_MAX_PDF_MB']!r}"
    ) from None
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
# Before AxesMiddleware, which must stay last.
MIDDLEWARE.insert(MIDDLEWARE.index("axes.middleware.AxesMiddleware"), "csp.middleware.CSPMiddleware")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        # The full-text PDF is shown in an <iframe> of the review's own origin (nothing else is framed).
        "frame-src": [SELF],
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
# Errors (a 500's traceback from django.request) and warnings (e.g. axes lockouts) go to stderr,
# where gunicorn, systemd or docker keep them; runserver's request lines keep Django's own handler.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": os.environ.get("SIEVE_LOG_LEVEL", "WARNING")},
    "loggers": {
        "django": {"handlers": ["stderr"], "level": os.environ.get("SIEVE_LOG_LEVEL", "WARNING"), "propagate": False},
        # 5xx with their tracebacks; not every 404 or 403 a crawler provokes.
        "django.request": {"level": "ERROR"},
    },
}
