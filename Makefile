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
.PHONY: help venv test test-slow demo privacy bench tensorboard clean

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

DEMO   := $(OUT)/demo
DEMOCF := $(if $(CONFIG),$(CONFIG),experiments/demo.yaml)

demo: venv $(DEMO)/eval_real/summary.md $(DEMO)/eval_synthetic/summary.md $(DEMO)/fid/fid.md  ## the demo chain on the phantom (OUT=..., SEED=..., CONFIG=...)
	@echo; cat $(DEMO)/eval_real/summary.md $(DEMO)/eval_synthetic/summary.md $(DEMO)/fid/fid.md

# Each stage is a file target, so a rerun skips the stages that finished.
$(DEMO)/phantom/images:
	$(VG) phantom --out $(DEMO)/phantom --cases 8 --seed $(SEED) --overwrite
$(DEMO)/patches/manifest.json: $(DEMO)/phantom/images
	$(VG) patches --data $(DEMO)/phantom --out $(DEMO)/patches --seed $(SEED) --config $(DEMOCF) --overwrite
$(DEMO)/gan/generator.keras: $(DEMO)/patches/manifest.json
	$(VG) train-gan --patches $(DEMO)/patches --out $(DEMO)/gan --config $(DEMOCF) $(if $(wildcard $(DEMO)/gan/config.yaml),--resume)
$(DEMO)/samples/samples.npz: $(DEMO)/gan/generator.keras
	$(VG) sample --run $(DEMO)/gan --n 2000 --out $(DEMO)/samples --seed $(SEED) --overwrite
$(DEMO)/unet_real/.complete: $(DEMO)/patches/manifest.json
	rm -rf $(DEMO)/unet_real && $(VG) train-unet --train real --patches $(DEMO)/patches --out $(DEMO)/unet_real --config $(DEMOCF) && touch $@
$(DEMO)/unet_synthetic/.complete: $(DEMO)/samples/samples.npz
	rm -rf $(DEMO)/unet_synthetic && $(VG) train-unet --train synthetic --patches $(DEMO)/patches --samples $(DEMO)/samples --out $(DEMO)/unet_synthetic --config $(DEMOCF) && touch $@
$(DEMO)/eval_%/summary.md: $(DEMO)/unet_%/.complete
	$(VG) evaluate --model $(DEMO)/unet_$* --data $(DEMO)/phantom --cases test --out $(DEMO)/eval_$* --overwrite
$(DEMO)/fid/fid.md: $(DEMO)/samples/samples.npz $(DEMO)/unet_real/.complete
	$(VG) fid --real $(DEMO)/patches --fake $(DEMO)/samples --features unet:$(DEMO)/unet_real --n 1000 --out $(DEMO)/fid

# Privacy audit of a GAN run; by default the demo's (trained first if missing).
# Exit status 1 when the audit fails (a copy, a membership leak or an identifier).
RUN     ?= $(DEMO)/gan
PATCHES ?= $(DEMO)/patches
FEATURES ?= $(if $(filter $(DEMO)/gan,$(RUN)),unet:$(DEMO)/unet_real)
privacy: venv $(if $(filter $(DEMO)/gan,$(RUN)),$(DEMO)/gan/generator.keras $(DEMO)/unet_real/.complete)  ## privacy audit of a GAN (RUN=... PATCHES=...; default the demo's) -> OUT/privacy
	$(VG) privacy --run $(RUN) --patches $(PATCHES) --out $(OUT)/privacy --overwrite $(if $(FEATURES),--features $(FEATURES))

tensorboard: venv  ## TensorBoard over every run under OUT
	$(BIN)/tensorboard --logdir $(OUT)

bench: venv  ## benchmarks: data stage and hd95 on ../shared/data/icbm-mra (DATA=...), GAN steps, neighbours, serving, oneDNN
	$(BIN)/python benchmarks/bench_patches.py $(if $(DATA),--data $(DATA))
	$(BIN)/python benchmarks/bench_hd95.py $(if $(DATA),--data $(DATA))
	$(BIN)/python benchmarks/bench_gan_step.py --widths 0.0625
	$(BIN)/python benchmarks/bench_neighbours.py
	$(BIN)/python benchmarks/bench_serving.py
	$(BIN)/python benchmarks/bench_speed.py --width 0.25

clean:  ## remove the virtual environment and outputs
	rm -rf $(VENV) $(OUT) *.egg-info
