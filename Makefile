# The two commands: `make reproduce [PRESET=smoke|quick]` and `make test`. Both set up .venv first
# (once: the stamp files skip the install on a set-up machine).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PRESET ?=
CORES ?= all
# A PRESET that names no file in workflow/presets/ stops make here, before any target runs (Snakemake would end
# in a traceback, after data-deps).
PRESETS := $(sort $(basename $(notdir $(wildcard workflow/presets/*.yaml))))
ifneq ($(PRESET),)
ifneq ($(words $(PRESET))$(filter $(PRESET),$(PRESETS)),1$(PRESET))
$(error PRESET=$(PRESET) is not a preset; choose one of: $(PRESETS) (workflow/presets/<name>.yaml), or leave PRESET unset for config.yaml alone (paper scale))
endif
endif
PRESET_ARGS := $(if $(PRESET),--configfile workflow/presets/$(PRESET).yaml)
CONFIG_ARGS := --config config.yaml $(if $(PRESET),--config workflow/presets/$(PRESET).yaml)
FASHION_DIR := /usr/share/datasets/fashion-mnist
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: reproduce reference costs test test-unit lint dvc.yaml report data-deps bench clean-results push pull

# What the run is (jobs, expected time here), then the whole DAG (ending with results/REPORT.md), the HTML
# gallery of every figure (results/report.html) and what each rule cost (results/costs/; a tree that DVC built
# or pulled has no records: the run still succeeds).
reproduce: $(VENV)/.runtime data-deps
	python -m tempered preflight $(CONFIG_ARGS)
	snakemake --cores $(CORES) $(PRESET_ARGS)
	snakemake --cores 1 $(PRESET_ARGS) --report results/report.html
	-python -m tempered costs $(CONFIG_ARGS)

# After `make reproduce PRESET=<p>`: its REPORT.md, the figures it shows and its tables replace those of
# docs/reference/<p>/ (its README.md and experiments/ stay: say there what the run was). Nothing of an older run
# survives beside the new one.
reference: $(VENV)/.runtime
	@test -n "$(PRESET)" || { echo "make reference needs PRESET=<the preset the run used>"; exit 2; }
	python -m tempered publish-reference --results results --out docs/reference/$(PRESET) --preset $(PRESET)

# Per-rule wall time, CPU time and peak memory of the last run (Snakemake's records under logs/benchmarks/).
costs: $(VENV)/.runtime
	python -m tempered costs $(CONFIG_ARGS)

report: $(VENV)/.runtime
	snakemake --cores 1 $(PRESET_ARGS) --report results/report.html

# Both tiers: tests/unit (the package, minutes) and tests/workflow (the DAG under Snakemake, DVC, Slurm, faults).
test: $(VENV)/.test data-deps lint
	pytest -q --durations=15 tests/unit tests/workflow

# The inner loop: the unit tier alone, no lint.
test-unit: $(VENV)/.test data-deps
	pytest -q tests/unit

lint: $(VENV)/.test
	ruff check src tests bench
	snakemake --lint $(PRESET_ARGS)
	python -m tempered export-dvc --config config.yaml --check

# dvc.yaml is generated from the Snakemake DAG; `make dvc.yaml PRESET=quick` targets a preset.
dvc.yaml: $(VENV)/.runtime
	python -m tempered export-dvc $(CONFIG_ARGS) --out dvc.yaml

# Artifacts through the DVC remote (workflow/scripts/share.sh says what each does).
push: $(VENV)/.runtime
	workflow/scripts/share.sh push $(PRESET_ARGS)

pull: $(VENV)/.runtime
	workflow/scripts/share.sh pull $(PRESET_ARGS)

bench: $(VENV)/.runtime data-deps
	python bench/train_throughput.py

$(VENV)/.runtime: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.test: $(VENV)/.runtime requirements-test.txt
	$(BIN)/pip install --quiet -r requirements-test.txt
	$(BIN)/pip install --quiet --no-deps torchattacks==3.5.1
	touch $@

# Fashion-MNIST (OOD data) from Debian when running as root and it is missing; otherwise the
# configured sources (torchvision, a local directory) are tried at run time and a failure names them.
data-deps:
	@if [ ! -d $(FASHION_DIR) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian package dataset-fashion-mnist"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	fi

clean-results:
	rm -rf results/data results/models results/eval results/metrics results/figures logs .snakemake/metadata
