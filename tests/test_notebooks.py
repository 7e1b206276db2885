"""Every notebook under nbdev's own test runner, one pytest test per notebook (IN_TEST=1: the tiny preset)."""
import os, re
from pathlib import Path
import pytest
from nbdev.config import get_config
from nbdev.doclinks import nbglob
from nbdev.test import test_nb as run_nb
from artsim.stages import UPSTREAM_ENV

ROOT = Path(__file__).resolve().parent.parent
cfg = get_config(path=ROOT)
NBS = sorted(Path(f).resolve() for f in nbglob(cfg.nbs_path, as_path=True))


@pytest.mark.parametrize('nb', NBS, ids=[str(f.relative_to(cfg.nbs_path)) for f in NBS])
def test_notebook(nb, monkeypatch, request):
    monkeypatch.chdir(cfg.nbs_path)
    if re.match(r'\d\d_', nb.name):   # a chapter: the earlier stages' artifacts come from the session's tiny run
        monkeypatch.setenv(UPSTREAM_ENV, str(request.getfixturevalue('tiny_run').path))
    ok, secs = run_nb(nb, skip_flags=cfg.tst_flags.split(), basepath=cfg.config_path)
    assert ok, f"{nb.name} failed under nbdev_test (its traceback is printed above)"


def test_all_notebooks_found():
    names = {f.name for f in NBS}
    assert {'00_data.ipynb', 'index.ipynb', 'runs.ipynb', 'reproduce.ipynb'} <= names, names


def _mixes_imports(src:str) -> bool:
    "A cell nbdev would run when it builds the docs because it imports, though it also does other work."
    import ast
    try: tree = ast.parse('\n'.join(l for l in src.splitlines() if not l.lstrip().startswith(('%', '!'))))
    except SyntaxError: return False
    # nbdev's rule (processors._do_eval): an import anywhere in the cell, even inside a `with` or a function, runs it.
    # Harmless when the rest only imports or defines; not when it does work at the top level.
    imports = any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree))
    quiet = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return imports and any(not isinstance(n, quiet) for n in tree.body)


def test_imports_stay_in_their_own_cells():
    "nbdev executes every cell holding an import when it builds the docs: a test cell that also imports runs there too (style.md)."
    import nbformat
    bad = []
    for nb in NBS:
        for c in nbformat.read(nb, as_version=4).cells:
            directives = {l.split()[1].rstrip(':') for l in c.source.splitlines() if l.startswith('#|') and len(l.split()) > 1}
            if c.cell_type == 'code' and not directives & {'export', 'exports', 'exporti', 'exec_doc'} and 'nbdev_export()' not in c.source and _mixes_imports(c.source):
                bad.append(f"{nb.name} cell {c.get('id')}: {c.source.splitlines()[0]}")
    assert not bad, bad


def test_mixed_import_cells_are_found():
    assert _mixes_imports('import tempfile\ntmp = 1') and not _mixes_imports('import os\nfrom x import y')
    assert _mixes_imports('with x:\n    from y import z\n    z()')  # nested: nbdev runs it all the same
    assert not _mixes_imports('def f():\n    import os\n    return os.sep')  # defining f does no work
