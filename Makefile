PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1:8000
# The suite runs a second time on PostgreSQL (the scale-out database) when this server answers.
PG_TEST_URL ?= postgres://127.0.0.1:5432/test

.PHONY: demo test install serve clean browser lint

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

# The browser tests drive Debian's Chromium (never a downloaded browser build).
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "Chromium not installed: browser tests will be skipped (apt-get install chromium)"; }

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: install browser lint
	$(PY) -m pytest
	@if $(PY) -c "import psycopg; psycopg.connect('$(PG_TEST_URL)', connect_timeout=3).close()" 2>/dev/null; then \
	  echo "--- the same suite on PostgreSQL ($(PG_TEST_URL)) ---"; \
	  DATABASE_URL=$(PG_TEST_URL) $(PY) -m pytest -m "not browser"; \
	elif [ -n "$$CI" ]; then echo "PostgreSQL is not reachable at $(PG_TEST_URL)"; exit 1; \
	else echo "PostgreSQL not reachable at $(PG_TEST_URL): the PostgreSQL run was skipped"; fi

# The web server refuses to start without SECRET_KEY (unless DEBUG): the local demo makes a random
# key once, keeps it in data/ (readable by you only) and uses it unless SECRET_KEY is already set.
KEY_FILE := data/secret_key
RUN_WITH_KEY = SECRET_KEY="$${SECRET_KEY:-$$(cat $(KEY_FILE))}"

$(KEY_FILE):
	mkdir -p $(dir $@)
	umask 077 && $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(50))" > $@

demo: install $(KEY_FILE)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo
	@echo "Sieve is running at http://$(HOST)/  (stop with Ctrl-C)"
	@# The background worker (retraining the screening model) runs beside the server and stops with it.
	$(PY) manage.py db_worker --queue-name '*' --no-reload & worker=$$!; \
	  trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	  $(RUN_WITH_KEY) $(PY) manage.py runserver $(HOST)

serve: install $(KEY_FILE)
	$(RUN_WITH_KEY) $(PY) manage.py runserver $(HOST)

clean:
	rm -rf $(VENV)

# Production on one machine (README, "Production"): PostgreSQL from DATABASE_URL, SECRET_KEY and the
# other settings from the environment; migrations, collected static files, gunicorn with WEB_WORKERS
# processes on BIND and TASK_WORKERS background workers, all stopped together (Ctrl-C or SIGTERM).
WEB_WORKERS ?= 3
TASK_WORKERS ?= 2
BIND ?= 127.0.0.1:8000
GUNICORN_TIMEOUT ?= 120
PROD_ENV := SIEVE_COLLECTED_STATIC=true

.PHONY: serve-prod
serve-prod: install
	@case "$$DATABASE_URL" in postgres://*|postgresql://*) ;; *) \
	  echo "make serve-prod needs DATABASE_URL=postgres://USER@HOST:5432/DBNAME (SQLite serves one machine: make demo)" >&2; \
	  exit 1;; esac
	@test -n "$$SECRET_KEY" || { echo "make serve-prod needs SECRET_KEY: 50+ random characters, the same on every machine" >&2; exit 1; }
	$(PROD_ENV) $(PY) manage.py check --deploy
	$(PROD_ENV) $(PY) manage.py migrate --noinput
	$(PROD_ENV) $(PY) manage.py collectstatic --noinput --verbosity 0
	@workers=; for i in $$(seq $(TASK_WORKERS)); do \
	  $(PROD_ENV) $(PY) manage.py db_worker --queue-name '*' --no-reload & workers="$$workers $$!"; done; \
	  trap 'kill $$workers 2>/dev/null; wait $$workers 2>/dev/null' EXIT INT TERM; \
	  echo "Sieve: gunicorn with $(WEB_WORKERS) workers on http://$(BIND)/ and $(TASK_WORKERS) task workers"; \
	  $(PROD_ENV) $(VENV)/bin/gunicorn sieve.wsgi --bind $(BIND) --workers $(WEB_WORKERS) \
	    --timeout $(GUNICORN_TIMEOUT) --access-logfile -
