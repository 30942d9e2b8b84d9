# ccshortlink — the two everyday commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: all demo check test test-live venv system-deps bench-deps bench install clean

all: test

SMSC   := tests/smsc/node_modules/.installed

$(STAMP): pyproject.toml setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# The tests' SMSC is the npm `smpp` package (a real SMPP server we did not write): only
# `make test` and `make bench` need Node.js and npm, not `make demo`.
$(SMSC): tests/smsc/package.json
	@command -v npm >/dev/null || { echo "make test needs Node.js 20+ and npm (Debian: apt-get install nodejs npm)" >&2; exit 1; }
	cd tests/smsc && npm install --no-audit --no-fund --silent
	touch $(SMSC)

# Debian packages the tests and benchmarks drive for real (headless Chromium, wrk).
system-deps:
	sh scripts/install-system-deps

# Debian packages only the benchmarks drive (nginx serving the card as a static file).
bench-deps:
	sh scripts/install-bench-deps

demo: venv
	$(VENV)/bin/ccshortlink demo

# The contracts, in seconds, before the tests: lint (ruff), types (mypy --strict on the
# package, configured in pyproject.toml) and the layers (import-linter: arrows point down,
# one adapter per library). The tools come with the `test` extras; `make demo` needs none.
check: venv
	$(PY) -m ruff check ccshortlink tests bench
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

# The live tests place real SIP calls through a real Asterisk (tests/live): the one named by
# CCS_ASTERISK_PREFIX, else ../shared/asterisk/asterisk-*.tar.xz unpacked into build/, else an
# `asterisk` on the PATH; without any of them they are skipped with a one-line hint.
ASTERISK = CCS_ASTERISK_PREFIX="$$(sh scripts/find-asterisk)"

test: check $(SMSC) system-deps
	$(ASTERISK) $(PY) -m pytest

test-live: venv $(SMSC) system-deps
	$(ASTERISK) $(PY) -m pytest -m live

bench: venv $(SMSC) system-deps bench-deps
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) -m bench

install:
	sh scripts/install-service

clean:
	rm -rf $(VENV) tests/smsc/node_modules build *.egg-info test-output
