# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
# Re-install when pyproject.toml changes.
DEPS   := $(VENV)/.deps-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: deps demo test lint typecheck bench clean chromium

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

# The web UI's browser tests drive Debian's chromium: installed when missing and apt-get is
# usable (root); otherwise they skip locally (and fail in CI, where .ci/run installs it).
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

test: lint typecheck chromium
	$(VENV)/bin/pytest

bench: $(DEPS)
	$(PY) benchmarks/feature_groups.py

clean:
	rm -rf $(VENV) .fti .pytest_cache .mypy_cache .ruff_cache
