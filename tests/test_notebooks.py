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


WIDTH = 120   # style.md: lines at most 120 characters, in notebooks and so in `artsim/`


def _wide_lines(nbs=NBS, lib=ROOT/'artsim') -> list:
    "Code-cell lines of the notebooks, and lines of the exported modules, longer than `WIDTH` (nbdev's own lines aside)."
    import ast, nbformat
    out = []
    for nb in nbs:
        for c in nbformat.read(nb, as_version=4).cells:
            if c.cell_type != 'code': continue
            out += [f"{nb.name} cell {c.get('id')}: {l[:60]}... ({len(l)})" for l in c.source.splitlines() if len(l) > WIDTH]
    for f in sorted(Path(lib).glob('*.py')):
        if f.name == '_modidx.py': continue   # nbdev's index of the symbols, one per line
        text = f.read_text(encoding='utf-8')
        generated = {i for n in ast.parse(text).body if isinstance(n, ast.Assign) and
                     any(isinstance(t, ast.Name) and t.id == '__all__' for t in n.targets)
                     for i in range(n.lineno, n.end_lineno + 1)}   # nbdev writes `__all__` itself
        out += [f"{f.name}:{i}: {l[:60]}... ({len(l)})" for i, l in enumerate(text.splitlines(), 1)
                if len(l) > WIDTH and i not in generated]
    return out


def test_lines_are_at_most_120_characters():
    "A module docstring (the chapter's `> description`) and every code line fit in 120 characters (style.md)."
    wide = _wide_lines()
    assert not wide, f"{len(wide)} lines over {WIDTH} characters:\n" + '\n'.join(wide[:40])


def test_wide_lines_are_found(tmp_path):
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('x = 1\n' + 'y = ' + '1 + ' * 40 + '1'),
                                         nbformat.v4.new_markdown_cell('words ' * 40)])
    nbformat.write(nb, tmp_path/'a.ipynb')
    (tmp_path/'lib').mkdir()
    (tmp_path/'lib'/'m.py').write_text(f'"""{"a long docstring " * 10}"""\n__all__ = [{", ".join(repr("n" * 9) for _ in range(20))}]\n')
    wide = _wide_lines([tmp_path/'a.ipynb'], tmp_path/'lib')
    assert len(wide) == 2 and wide[0].startswith('a.ipynb cell') and wide[1].startswith('m.py:1:'), wide
