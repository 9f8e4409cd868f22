# Two commands do all the set-up on a fresh machine (Python 3.11, pip; no conda needed):
#   make run    the default study end to end (config/config.yaml), then its report
#   make test   the test suite
# The virtual environment .venv is created on first use from requirements.lock.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= all

.PHONY: run test lint lock test-fast test-slurm report dry-run-paper budget bench evidence designs clean-venv

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --progress-bar off -r requirements.lock 2>&1 \
		| grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import torch, snakemake, ruff" # the install above must have worked
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --cores 1 --report results/default/report.html

test: lint
	$(BIN)/python -m pytest

# ruff (rules in pyproject.toml), snakefmt --check and snakemake --lint; any finding fails
lint: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH tools/lint

# Re-resolve requirements.lock for every platform (Linux, macOS, Windows markers) from
# pyproject.toml; versions already in the lock are kept unless they no longer fit.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 \
		--custom-compile-command "make lock" -o requirements.lock
	$(BIN)/python tools/conda_env_from_lock.py

# The SLURM integration test alone: installs and starts a one-node SLURM on localhost
# (root on Debian), runs the tiny study through `snakemake --profile slurm`, stops it.
test-slurm: $(STAMP)
	INTRACLASS_REQUIRE_SLURM=1 $(BIN)/python -m pytest -m slurm -rs tests/test_slurm.py

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not slurm"

report: $(STAMP)
	$(BIN)/snakemake --cores 1 --report results/default/report.html

# Dry run of the paper study under --profile slurm: its jobs, the time to build the DAG
# and the number of cluster submissions (group jobs and ungrouped non-local jobs)
dry-run-paper: $(STAMP)
	$(BIN)/python benchmarks/dag.py --configfile config/paper.yaml

# The paper study's GPU-hours (computed from FLOPs at an assumed GPU throughput) and disk
budget: $(STAMP)
	$(BIN)/python benchmarks/paper_budget.py

bench: $(STAMP)
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# The CPU evidence study (config/evidence.yaml: the full Fashion-MNIST, see its header for
# the data), then its tables and Figures 3-5 copied into docs/evidence/<study>/, and its
# tables of the models that fit alone into docs/evidence/<study>/fitting/ (docs/evidence.md)
evidence: $(STAMP)
	$(BIN)/python tools/publish_evidence.py --cores $(CORES)

# The default study's candidate designs, each run end to end and compared (benchmarks/README.md)
designs: $(STAMP)
	$(BIN)/python benchmarks/default_designs.py --run

clean-venv:
	rm -rf $(VENV)
