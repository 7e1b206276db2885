# Two commands do everything on a fresh machine (see README):
#   make demo   set up .venv, then run the whole pipeline on the embedded demo preset
#   make test   set up .venv, then check export/clean, run every notebook and tests/ under pytest
.ONESHELL:
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.artsim-installed
# Portable numerics (artsim.numerics): tests, the calibration and JupyterLab's kernels start with numpy, MKL, OpenBLAS and
# PyTorch capped at AVX2, so that they compute what any x86-64 machine computes. PORTABLE=0: the machine's own kernels.
# (make demo needs none of this: artsim_reproduce starts each chapter's kernel pinned when the preset is portable.)
PORTABLE ?= 1
PIN = $(if $(filter 1,$(PORTABLE)),$(BIN)/python -m artsim.numerics --,)

.PHONY: venv test demo check-claims calibration export clean-nbs check-clean docs-preview docs readme lab benchmark rates scale clean

# The stamp is newer than every install input once set-up has run: then `venv` takes a second.
$(STAMP): setup.py settings.ini constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing artsim and its dev tools into $(VENV) (first time: a few minutes)"
	$(BIN)/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import artsim, nbdev, papermill, torch, fastai; print('artsim', artsim.__version__, '| torch', torch.__version__, '| fastai', fastai.__version__, '| nbdev', nbdev.__version__)"
	$(BIN)/python -m ipykernel install --sys-prefix --name artsim --display-name "Python (artsim)" >/dev/null
	touch $(STAMP)

venv: $(STAMP)

export: venv
	$(BIN)/nbdev_export

clean-nbs: venv
	$(BIN)/nbdev_clean

# Notebooks are the source of truth: export + clean on a committed tree must change nothing.
check-clean: venv
	before=$$(git status --porcelain -- artsim nbs; git diff -- artsim nbs | sha1sum)
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	after=$$(git status --porcelain -- artsim nbs; git diff -- artsim nbs | sha1sum)
	if [ "$$before" != "$$after" ]; then
	  echo "nbdev_export / nbdev_clean changed the tree: notebooks and artsim/ disagree, or notebooks are not clean."
	  git status --porcelain -- artsim nbs; git --no-pager diff --stat -- artsim nbs
	  exit 1
	fi
	echo "nbdev_export and nbdev_clean leave the tree unchanged."

# The tests in TEST_WORKERS processes (pytest-xdist; 1: in pytest's own), the longest modules first. They share one run
# of every chapter on the tiny preset, made in the background as they start (tests/conftest.py). PYTEST_ARGS: more
# options for pytest, e.g. PYTEST_ARGS=--durations=30 for the slowest tests.
TEST_WORKERS ?= 2
PYTEST_ARGS ?=
test: check-clean
	$(PIN) $(BIN)/python -m pytest tests/ -p no:cacheprovider -m "not claims" $(if $(filter-out 1,$(TEST_WORKERS)),-n $(TEST_WORKERS)) $(PYTEST_ARGS)

demo: venv
	$(BIN)/artsim_reproduce --preset demo

# What the README says about the demo (its headline table, the student against its teacher, the aspect tables, the
# layout weight chapter 06 chose, its time, the shipped calibration), checked against the run `make demo` made
# (nbs/pipeline/claims.ipynb); then the tests that run a README command whole as a user types it (marked `claims`:
# minutes of chapters, or the demo run's model, which make test leaves out). CI runs it after make demo.
CLAIMS_RUN ?= runs/demo
check-claims: venv
	$(PIN) $(BIN)/python -m artsim.claims --run-dir "$(CLAIMS_RUN)"
	ARTSIM_CLAIMS_RUN="$(CLAIMS_RUN)" $(PIN) $(BIN)/python -m pytest tests/ -p no:cacheprovider -m claims $(PYTEST_ARGS)

# The calibration shipped in the package (artsim/calibration.json): the demo preset's chapters 00-02, then calibrate.
calibration: venv
	$(PIN) $(BIN)/python -c "from artsim.similarity import build_default_calibration as b; c = b(); print('artsim/calibration.json:', c.source['n_pairs'], 'unrelated pairs')"

# Two sites: the chapters with their API (nbs/_quarto.yml) and the results of a run (_quarto.yml).
# Quarto renders them where it is on PATH; without it, a static preview of both (nbs/pipeline/docs.ipynb).
# nbdev_proc_nbs / nbdev_preview / nbdev_docs without Quarto run nbdev's installer (sudo, pip outside
# .venv): nothing here calls them unless `quarto` is on PATH.
RUN ?=
DOCS_PREVIEW ?= _docs_preview
docs: venv
	@if command -v quarto >/dev/null 2>&1; then
	  $(BIN)/nbdev_docs
	  ARTSIM_RUN="$(RUN)" quarto render
	  echo "Open _docs/index.html (chapters and API) and _site/index.html (results)"
	else
	  echo "quarto is not on PATH: building the static preview instead"
	  $(MAKE) --no-print-directory -o $(STAMP) docs-preview
	fi

docs-preview: venv
	@$(BIN)/python -m artsim.docs preview --out "$(DOCS_PREVIEW)" $(if $(RUN),--run "$(RUN)")

# README.md is generated from nbs/index.ipynb: edit the notebook, then `make readme` (with or without Quarto:
# nbdev_readme would link every name to doc_host, which settings.ini leaves empty until the docs are published).
readme: venv
	@$(BIN)/python -m artsim.docs readme

# JupyterLab on this machine only, with the project's kernel (`artsim`, registered by `make venv`).
LAB_PORT ?= 8888
LAB_ARGS ?=
lab: venv
	$(PIN) $(BIN)/jupyter lab --no-browser --ip=127.0.0.1 --port=$(LAB_PORT) --ServerApp.root_dir="$(CURDIR)" \
	  --MappingKernelManager.default_kernel_name=artsim $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

benchmark: venv
	for f in benchmarks/bench_*.py; do
	  case $$f in *bench_rates.py|*bench_scale.py) continue;; esac   # `make rates` and `make scale`: they take longer and write elsewhere
	  echo "== $$f"; $(BIN)/python $$f
	done

# artsim/rates.json, which `artsim_reproduce --plan` estimates times from: measure on a quiet machine
rates: venv
	$(BIN)/python benchmarks/bench_rates.py

# The README's Scale table: the CPU stages at 1000, 4000 and 16000 paintings (about two hours on two quiet cores)
scale: venv
	$(BIN)/python benchmarks/bench_scale.py

clean:
	rm -rf _docs _proc _docs_preview _site results build dist *.egg-info
