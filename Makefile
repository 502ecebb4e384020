# tf_vesselgan — one target per task. `make help` lists them.
# Every target creates the virtual environment itself when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
VG     := $(BIN)/vesselgan
OUT    ?= out
DATA   ?=
SEED   ?= 1
CONFIG ?=

.DEFAULT_GOAL := help
.PHONY: help venv test test-slow demo bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/.installed: setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

venv: $(BIN)/.installed  ## create/update the virtual environment (idempotent)

test: venv  ## the default test run (fast tests, < 15 min on 2 cores)
	$(BIN)/python -m pytest -q -m "not slow" tests

test-slow: venv  ## the slow tests (end-to-end, multi-process)
	$(BIN)/python -m pytest -q -m slow tests

demo: venv  ## built-in phantom -> patches (OUT=..., SEED=...)
	$(VG) phantom --out $(OUT)/demo/phantom --cases 6 --seed $(SEED)
	$(VG) patches --data $(OUT)/demo/phantom --out $(OUT)/demo/patches --seed $(SEED) $(if $(CONFIG),--config $(CONFIG))

bench: venv  ## data benchmarks on ../shared/data/icbm-mra (DATA=...)
	$(BIN)/python benchmarks/bench_patches.py $(if $(DATA),--data $(DATA))

clean:  ## remove the virtual environment and outputs
	rm -rf $(VENV) $(OUT) *.egg-info
