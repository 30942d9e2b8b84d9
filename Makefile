# ccshortlink — the two everyday commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: all demo test venv system-deps bench-deps bench install clean

all: test

$(STAMP): pyproject.toml setup.cfg tests/smsc/package.json
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	cd tests/smsc && npm install --no-audit --no-fund --silent
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the tests and benchmarks drive for real (headless Chromium, wrk).
system-deps:
	sh scripts/install-system-deps

# Debian packages only the benchmarks drive (nginx serving the card as a static file).
bench-deps:
	sh scripts/install-bench-deps

demo: venv
	$(VENV)/bin/ccshortlink demo

test: venv system-deps
	$(PY) -m pytest

bench: venv system-deps bench-deps
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) -m bench

install:
	sh scripts/install-service

clean:
	rm -rf $(VENV) tests/smsc/node_modules build *.egg-info test-output
