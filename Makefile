# Two entry points do all the set-up on a fresh machine:
#   make study   create .venv if needed, then run the offline default study
#   make test    create .venv if needed, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CORES  ?= all
STAMP  := $(VENV)/.installed

.PHONY: study test lint venv clean-results report

venv: $(STAMP)

# torch is pinned to 2.13.0 in envs/requirements.txt: pip takes the CPU wheel
# where one is provided locally; never install it unpinned.
$(STAMP): envs/requirements.txt envs/requirements-nodeps.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r envs/requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -r envs/requirements-nodeps.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

study: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --cores 1 --report results/report.html

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests workflow/scripts benchmarks
	$(BIN)/snakemake --lint

report: $(STAMP)
	$(BIN)/snakemake --cores 1 --report results/report.html

clean-results:
	rm -rf results logs .snakemake
