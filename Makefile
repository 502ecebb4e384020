# tf_vesselgan — one target per task. `make help` lists them.
# Every target creates the virtual environment itself when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
VG     := $(BIN)/vesselgan
OUT    ?= out
DATA   ?=
CONFIG ?=

.DEFAULT_GOAL := help
.PHONY: help venv test test-slow test-e2e demo anonymization augmentation transfer cpu-curve dp-study shipped-samples fid tune privacy bench tensorboard clean

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/.installed: setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

venv: $(BIN)/.installed  ## create/update the virtual environment (idempotent)

test: venv  ## the default test run (fast tests, < 15 min on 2 cores)
	$(BIN)/python -m pytest -q -m "not slow" --durations=15 tests

test-slow: venv  ## the slow tests (end-to-end, multi-process)
	$(BIN)/python -m pytest -q -m slow tests

test-e2e: venv  ## the end-to-end `vesselgan run` test (tiny, killed and resumed; part of test-slow)
	$(BIN)/python -m pytest -q -m slow tests/experiments

DEMO   := $(OUT)/demo
DEMOCF := $(if $(CONFIG),$(CONFIG),experiments/demo.yaml)

demo: venv  ## the demo study on the phantom -> OUT/demo/report.md (CONFIG=..., OUT=...; reruns skip finished stages)
	$(VG) run $(DEMOCF) --out $(DEMO)
	@echo; cat $(DEMO)/report.md

anonymization: venv  ## Table 1 + synthetic-only Table 2 on DATA=... (images/labels) -> OUT/anonymization/report.md
	@test -n "$(DATA)" || { echo "make anonymization: set DATA=<folder with images/ and labels/>"; exit 2; }
	$(VG) run $(if $(CONFIG),$(CONFIG),experiments/anonymization.yaml) --data $(DATA) --out $(OUT)/anonymization

augmentation: venv  ## real + synthetic block of Table 2 on DATA=... -> OUT/augmentation/report.md
	@test -n "$(DATA)" || { echo "make augmentation: set DATA=<folder with images/ and labels/>"; exit 2; }
	$(VG) run $(if $(CONFIG),$(CONFIG),experiments/augmentation.yaml) --data $(DATA) --out $(OUT)/augmentation

transfer: venv  ## Fig. 3 study: pre-train on DATA=..., fine-tune on SECOND=... -> OUT/transfer/report.md
	@test -n "$(DATA)" -a -n "$(SECOND)" || { echo "make transfer: set DATA=<pre-training data> SECOND=<second data set>"; exit 2; }
	$(VG) run $(if $(CONFIG),$(CONFIG),experiments/transfer.yaml) --data $(DATA) --transfer-data $(SECOND) --out $(OUT)/transfer

cpu-curve: venv  ## CPU budget study on the ICBM volumes (DATA=...; default ../shared/data/icbm-mra): DCGAN 10, WGAN-GP and WGAN-GP-SN 20 machine-minutes vs the ICBM U-net recipe -> OUT/cpu/report.md, curve.png
	$(VG) run experiments/cpu/icbm.yaml --data $(if $(DATA),$(DATA),../shared/data/icbm-mra) --out $(OUT)/cpu

dp-study: venv  ## privacy-utility study (DATA=...; default ../shared/data/icbm-mra): WGAN-GP-SN per target ε -> OUT/dp/report.md
	$(VG) run experiments/cpu/privacy_utility.yaml --data $(if $(DATA),$(DATA),../shared/data/icbm-mra) --out $(OUT)/dp

SHIPPED ?= saved_models/vessel_pairs_icbm/4
shipped-samples: venv  ## 1,000 pairs from the shipped ICBM generator (no data, no training) -> OUT/shipped/ + a grid PNG
	$(VG) sample --model $(SHIPPED) --n 1000 --seed 0 --out $(OUT)/shipped --overwrite
	$(VG) sample --model $(SHIPPED) --n 32 --seed 0 --format png --out $(OUT)/shipped_grid --overwrite
	@echo "grid: $(OUT)/shipped_grid/samples_000000.png (label in red)"

fid: demo  ## FID/KID of the demo's samples in its real U-net's feature space -> OUT/fid
	$(VG) fid --real $(DEMO)/patches --fake $(DEMO)/samples_dcgan --features unet:$(DEMO)/unet_real --n 1000 --out $(OUT)/fid

tune: demo  ## keras-tuner search of U-net lr/dropout on the demo's patches (CONFIG=...) -> OUT/tune
	$(VG) tune --patches $(DEMO)/patches --out $(OUT)/tune --config $(if $(CONFIG),$(CONFIG),experiments/demo_unet.yaml)

# Privacy audit of a GAN run; by default the demo's (trained first if missing).
# Exit status 1 when the audit fails (a copy, a membership leak or an identifier).
RUN     ?= $(DEMO)/gan_dcgan
PATCHES ?= $(DEMO)/patches
FEATURES ?= $(if $(filter $(DEMO)/gan_dcgan,$(RUN)),unet:$(DEMO)/unet_real)
privacy: venv $(if $(filter $(DEMO)/gan_dcgan,$(RUN)),demo)  ## privacy audit of a GAN (RUN=... PATCHES=...; default the demo's) -> OUT/privacy
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
