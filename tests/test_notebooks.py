"""Every notebook under nbdev's own test runner, one pytest test per notebook (IN_TEST=1: the tiny preset)."""
import os
from pathlib import Path
import pytest
from nbdev.config import get_config
from nbdev.doclinks import nbglob
from nbdev.test import test_nb as run_nb

ROOT = Path(__file__).resolve().parent.parent
cfg = get_config(path=ROOT)
NBS = sorted(Path(f).resolve() for f in nbglob(cfg.nbs_path, as_path=True))


@pytest.mark.parametrize('nb', NBS, ids=[str(f.relative_to(cfg.nbs_path)) for f in NBS])
def test_notebook(nb, monkeypatch):
    monkeypatch.chdir(cfg.nbs_path)
    ok, secs = run_nb(nb, skip_flags=cfg.tst_flags.split(), basepath=cfg.config_path)
    assert ok, f"{nb.name} failed under nbdev_test (its traceback is printed above)"


def test_all_notebooks_found():
    names = {f.name for f in NBS}
    assert {'00_data.ipynb', 'index.ipynb', 'runs.ipynb', 'reproduce.ipynb'} <= names, names
