# The two commands the README leads with: `make serve` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup serve test lint

$(STAMP): pyproject.toml sdk/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: any other torch requirement pulls several GB of CUDA wheels.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[worker,dev]"
	# compat mode: a path-based editable install that mypy can follow.
	$(PY) -m pip install -q -e ./sdk --config-settings editable_mode=compat
	touch $(STAMP)

setup: $(STAMP)

serve: setup
	$(VENV)/bin/rushes-server serve

test: setup
	$(PY) -m pytest -n 2 --dist loadfile --max-worker-restart=0

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy core service worker trainer sdk/rushes
	$(VENV)/bin/lint-imports
