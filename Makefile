PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1:8000

.PHONY: demo test install serve clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest

demo: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo
	@echo "Sieve is running at http://$(HOST)/  (stop with Ctrl-C)"
	$(PY) manage.py runserver $(HOST)

serve: install
	$(PY) manage.py runserver $(HOST)

clean:
	rm -rf $(VENV)
