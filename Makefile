PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export BATCH_PLATFORM_CONFIG ?= $(CURDIR)/config/config.yaml

QUARTERS_FIRST ?= 2024-Q1
QUARTERS_LAST ?= 2025-Q4
CUSTOMERS ?= 2000
SIZE ?= S

.PHONY: setup demo test test-fast ui mlflow-ui bench serve clean

JARS_STAMP := .jars/.fetched

setup: $(STAMP) $(JARS_STAMP)

$(STAMP): setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	touch $(STAMP)

# Delta Lake's jars (every session), and hadoop-aws matching pyspark's Hadoop with its AWS SDK for s3a:// roots;
# fetched again when the pinned versions change (batch_platform/delta_spark.py, setup.py)
$(JARS_STAMP): $(STAMP) scripts/fetch_jars.py batch_platform/delta_spark.py
	$(BIN)/python scripts/fetch_jars.py
	touch $(JARS_STAMP)

$(DAGSTER_HOME)/dagster.yaml: config/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp config/dagster.yaml $(DAGSTER_HOME)/dagster.yaml

demo: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/batch-platform sample-data --customers $(CUSTOMERS) --from $(QUARTERS_FIRST) --to $(QUARTERS_LAST)
	$(BIN)/batch-platform materialize --from $(QUARTERS_FIRST) --to $(QUARTERS_LAST)
	$(BIN)/batch-platform report --from $(QUARTERS_FIRST) --to $(QUARTERS_LAST)
	$(BIN)/batch-platform ml-report --from $(QUARTERS_FIRST) --to $(QUARTERS_LAST)

# Two workers, each module's tests (or the modules sharing a costly fixture) on one (docs/development.md)
XDIST := -n 2 --dist loadgroup --no-loadscope-reorder

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest $(XDIST)

# Everything but the tests that start a server or run the platform through several layers (markers
# set in batch_platform_tests/conftest.py): no S3 server, Spark cluster, Dagster webserver/daemon,
# Chromium or PostgreSQL, and no `slow` test
FAST_MARKERS := not cluster and not s3 and not webserver and not browser and not postgres and not slow

test-fast: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -m "$(FAST_MARKERS)" $(XDIST)

ui: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml

serve: setup
	$(BIN)/batch-platform serve --host $(or $(HOST),127.0.0.1) --port $(or $(PORT),8000)

mlflow-ui: setup
	$(BIN)/batch-platform mlflow-ui

bench: setup
	$(BIN)/python -m benchmarks.run --size $(SIZE) --with-ablation

clean:
	rm -rf $(VENV) .jars .dagster_home data .pytest_cache
