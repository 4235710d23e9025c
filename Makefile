# Two entry points (see README): `make demo` runs the main job, `make test` runs the whole suite.
# Each makes the environment it needs in .venv (Python 3.11).
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= ml,site,blender,test
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test browser bench lint clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	touch $(STAMP)

# Debian's chromium for the browser tests (Playwright drives it; it never downloads a browser).
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash demo/run.sh

test: $(STAMP) browser
	$(BIN)/python -m pytest -n 2 -q

# Peers (jrnl, buku, mlflow) get a venv of their own: benchmarks only, never recap's dependencies.
build/peers-venv/.installed:
	$(PY) -m venv build/peers-venv
	build/peers-venv/bin/python -m pip install -q jrnl buku mlflow
	touch $@

bench: $(STAMP) build/peers-venv/.installed
	$(BIN)/python benchmarks/run.py

lint: $(STAMP)
	$(BIN)/ruff check recap tests benchmarks
	$(BIN)/ruff format --check recap tests benchmarks

clean:
	rm -rf $(VENV) build demo-log
