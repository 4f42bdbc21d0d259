# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
# Re-install when pyproject.toml changes.
DEPS   := $(VENV)/.deps-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: deps demo test lint typecheck bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(DEPS): pyproject.toml | $(PY)
	rm -f $(VENV)/.deps-*
	$(PY) -m pip install -q -e '.[dev,ml]'
	touch $@

deps: $(DEPS)

demo: $(DEPS)
	$(PY) examples/flights/demo.py
	$(PY) examples/flights/serve_demo.py --root .fti-demo

lint: $(DEPS)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/lint-imports

typecheck: $(DEPS)
	$(VENV)/bin/mypy

test: lint typecheck
	$(VENV)/bin/pytest

bench: $(DEPS)
	$(PY) benchmarks/feature_groups.py

clean:
	rm -rf $(VENV) .fti .pytest_cache .mypy_cache .ruff_cache
