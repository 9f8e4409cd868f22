# Two commands do all the set-up on a fresh machine (Python 3.11, pip; no conda needed):
#   make run    the default study end to end (config/config.yaml), then its report
#   make test   the test suite
# The virtual environment .venv is created on first use from requirements.lock.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= all

.PHONY: run test test-fast test-slurm report dry-run-paper bench clean-venv

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --cores 1 --report results/default/report.html

test: $(STAMP)
	$(BIN)/python -m pytest

# The SLURM integration test alone: installs and starts a one-node SLURM on localhost
# (root on Debian), runs the tiny study through `snakemake --profile slurm`, stops it.
test-slurm: $(STAMP)
	INTRACLASS_REQUIRE_SLURM=1 $(BIN)/python -m pytest -m slurm -rs tests/test_slurm.py

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not slurm"

report: $(STAMP)
	$(BIN)/snakemake --cores 1 --report results/default/report.html

dry-run-paper: $(STAMP)
	$(BIN)/snakemake -n --quiet rules --configfile config/paper.yaml

bench: $(STAMP)
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
