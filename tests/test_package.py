"""What `pip install` gives: the exported modules, the presets and the chapters, and an `artsim_reproduce` that works
away from the clone with the `reproduce` extra and says what to install without it."""
import json, os, subprocess, sys, sysconfig, zipfile
from pathlib import Path
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXTRA = ('papermill', 'nbformat', 'nbclient', 'ipykernel')  # the reproduce extra, and nbclient that papermill brings


def _run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=kw.pop('timeout', 600), **kw)


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    d = tmp_path_factory.mktemp('wheel')
    r = _run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '-w', d, ROOT])
    assert r.returncode == 0, r.stderr
    return next(d.glob('artsim-*.whl'))


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {'artsim/__init__.py', 'artsim/data.py', 'artsim/runs.py', 'artsim/reproduce.py', 'artsim/presets.yaml', 'artsim/calibration.json'} <= names
    chapters = sorted(f.name for f in (ROOT/'nbs').glob('[0-9][0-9]_*.ipynb'))   # whatever chapters there are today
    assert len(chapters) >= 4 and {f'artsim/chapters/{c}' for c in chapters} <= names
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith('/METADATA'))).decode()
    for dep in ('papermill', 'nbformat', 'ipykernel'): assert f'Requires-Dist: {dep}' in meta and f'extra == "reproduce"' in meta
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith('entry_points.txt'))).decode()
    assert 'artsim_reproduce = artsim.reproduce:main' in entry


def _fresh_venv(path):
    """A new virtual environment that sees this one's packages (torch and all, never installed twice) except artsim
    itself and the reproduce extra: a folder of links to them, named in a .pth file."""
    r = _run([sys.executable, '-m', 'venv', '--without-pip', path])
    assert r.returncode == 0, r.stderr
    here = Path(sysconfig.get_paths()['purelib'])
    hidden = {'__pycache__'}
    import importlib.metadata as md
    for name in EXTRA: hidden |= {f.parts[0] for f in md.distribution(name).files if not f.parts[0].startswith('..')}
    deps = path/'deps'; deps.mkdir()
    for f in here.iterdir():
        if f.name in hidden or f.suffix == '.pth' or f.name.startswith(('artsim', '__editable__', '_artsim')): continue
        (deps/f.name).symlink_to(f)
    py = path/'bin'/'python'
    site = _run([py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])']).stdout.strip()
    (Path(site)/'local_deps.pth').write_text(f'{deps}\n')
    return py


def test_pip_install_runs_the_chapters_outside_the_clone(wheel, tmp_path):
    py = _fresh_venv(tmp_path/'venv')
    exe = tmp_path/'venv'/'bin'/'artsim_reproduce'
    away = tmp_path/'elsewhere'; away.mkdir()   # no settings.ini above: not a clone
    env = {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'ARTSIM_RUNS', 'PYTHONPATH', 'VIRTUAL_ENV')}
    # the package alone: every runtime requirement is already there, so nothing is downloaded
    r = _run([py, '-m', 'pip', 'install', '-q', '--no-index', wheel], env=env)
    assert r.returncode == 0, r.stderr
    r = _run([py, '-c', 'import artsim, numpy as np; print(artsim.__file__); print(artsim.load_image(np.zeros((3, 5, 3), np.uint8)).size)'],
             cwd=away, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(str(tmp_path/'venv')) and r.stdout.splitlines()[-1] == '(5, 3)', r.stdout
    r = _run([exe, '--help'], cwd=away, env=env)
    assert r.returncode == 0 and '--run-dir' in r.stdout and '--no-progress' in r.stdout, r.stdout + r.stderr
    r = _run([exe, '--preset', 'tiny', '--only', '00'], cwd=away, env=env)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert 'pip install "artsim[reproduce]"' in r.stderr and 'Traceback' not in r.stderr
    assert not (away/'runs').exists()
    # with the extra: the chapters shipped in the package run into ./runs/<preset>
    r = _run([py, '-m', 'pip', 'install', '-q', f'{wheel}[reproduce]'], env=env)
    assert r.returncode == 0, r.stderr
    r = _run([exe, '--preset', 'tiny', '--only', '00', '-p', 'n_per_genre=3'], cwd=away, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    run = away/'runs'/'tiny'
    assert pd.read_parquet(run/'data'/'manifest.parquet').groupby('genre').size().eq(3).all()
    log = (run/'logs'/'00_data.log').read_text()
    assert f"{tmp_path/'venv'}" in log and 'artsim/chapters/00_data.ipynb' in log   # the shipped chapter ran


# -- the import graph: one place per concern --------------------------------------------------------------------------

def _artsim_imports() -> list:
    "(importing module, imported module, names) for every import of an artsim module by another, at any depth of the code."
    import ast
    out = []
    for f in sorted((ROOT/'artsim').glob('*.py')):
        if f.name == '_modidx.py': continue
        for n in ast.walk(ast.parse(f.read_text(encoding='utf-8'))):
            if isinstance(n, ast.ImportFrom) and n.module is not None and (n.level == 1 or n.module.startswith('artsim.')):
                out.append((f.stem, n.module.removeprefix('artsim.'), [a.name for a in n.names]))
            elif isinstance(n, ast.Import):
                out += [(f.stem, a.name.removeprefix('artsim.'), []) for a in n.names if a.name.startswith('artsim.')]
    return out


def test_the_import_graph_is_found():
    edges = {(a, b) for a, b, _ in _artsim_imports()}
    assert ('siamese', 'backbone') in edges and ('cli', 'index') in edges, sorted(edges)


def test_no_module_imports_another_modules_private_names():
    private = [(a, b, n) for a, b, names in _artsim_imports() for n in names
               if n.startswith('_') and not n.endswith('__') and a != b]   # `__version__` is public
    assert not private, f"modules import private names of others: {private}"


def test_the_genre_chapter_is_imported_only_where_the_genre_model_itself_is_needed():
    """Chapter 04's module is the genre story: what later chapters share (backbone, model files, training glue) lives
    elsewhere. The plan and the table of stages are the exceptions by design: the plan checks a run against each
    chapter's own checks, and `artsim.stages` holds every stage's module."""
    importers = sorted({a for a, b, _ in _artsim_imports() if b == 'finetune' and a not in ('finetune', 'plan', 'stages')})
    assert importers == [], f"artsim.finetune is imported by {importers}: move what they use to the module of its concern"


def test_torch_deprecation_of_jit_script_is_not_shown_to_users():
    "fastai's layers trigger torch's `torch.jit.script` FutureWarning at import: `import artsim` keeps that one message quiet."
    def stderr(code): return subprocess.run([sys.executable, '-W', 'default', '-c', code], capture_output=True, text=True, timeout=300).stderr
    assert 'torch.jit.script` is deprecated' in stderr('import fastai.layers')   # what users would see without artsim's filter
    said = stderr('import artsim; artsim.SiameseSimilarity; import fastai.vision.all')
    assert 'jit.script' not in said, said
