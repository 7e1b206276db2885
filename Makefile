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

.PHONY: venv test demo calibration export clean-nbs check-clean docs-preview docs benchmark clean

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

test: check-clean
	$(BIN)/python -m pytest tests/ -p no:cacheprovider

demo: venv
	$(BIN)/artsim_reproduce --preset demo

# The calibration shipped in the package (artsim/calibration.json): the demo preset's chapters 00-02, then calibrate.
calibration: venv
	$(BIN)/python -c "from artsim.similarity import build_default_calibration as b; c = b(); print('artsim/calibration.json:', c.source['n_pairs'], 'unrelated pairs')"

# Quarto renders the docs where it is installed; docs-preview needs no Quarto.
docs: venv
	$(BIN)/nbdev_docs

docs-preview: venv
	rm -rf _proc _docs_preview
	$(BIN)/nbdev_proc_nbs
	$(BIN)/jupyter nbconvert --log-level WARN --to html --output-dir _docs_preview _proc/*.ipynb
	$(BIN)/jupyter nbconvert --log-level WARN --to html --output-dir _docs_preview/pipeline _proc/pipeline/*.ipynb
	echo "Open _docs_preview/index.html"

benchmark: venv
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f; done

clean:
	rm -rf _docs _proc _docs_preview build dist *.egg-info
