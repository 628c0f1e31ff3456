# The two commands of the README: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed
SOURCES := lbie_tf keras_layers data_builders experiments tests benchmarks

.PHONY: demo test test-fast lint format table2 bench clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m experiments.demo --workdir=runs/demo

# Lint first: a formatting or lint error fails in seconds, before the suite.
test: lint
	$(BIN)/python -m pytest -n 2 --dist=loadfile --no-loadscope-reorder

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist=loadfile --no-loadscope-reorder -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

format: $(STAMP)
	$(BIN)/ruff format $(SOURCES)
	$(BIN)/ruff check --fix $(SOURCES)

table2: $(STAMP)
	$(BIN)/python -m experiments.table2 --cells=all --workdir=runs/table2

# About 20 minutes on 2 cores: every model of every registered task (one
# process per oneDNN setting), the profile of a training step, then the
# README's table from the JSON.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench --out=results/bench.json
	$(BIN)/python -m benchmarks.profile_step --out=results/bench_profile.md
	$(BIN)/python -m benchmarks.readme_table --bench=results/bench.json --readme=README.md

clean:
	rm -rf $(VENV) runs
