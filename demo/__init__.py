"""The demo that `make demo` loads (`manage.py load_demo`); see demo/load.py."""
