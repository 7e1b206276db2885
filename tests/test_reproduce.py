"""The runner as a user meets it: order, parameters, usage errors before anything starts, one quiet line per chapter,
a failing chapter named with its cell, reruns that skip what is done and redo what changed (code, parameters, input),
run directories that do not depend on the working directory, and nothing left behind."""
import io, json, os, shlex, shutil, subprocess, sys, time, uuid
from pathlib import Path
import nbformat
import pandas as pd
import pytest
import yaml
from nbformat.v4 import new_notebook, new_code_cell
from PIL import Image

from artsim.painter import demo_painting
from artsim.reproduce import artsim_reproduce, chapters, main, ChapterFailed
from artsim.runs import STAGES
from artsim.numerics import AVX2_FEATURES, ISA_VARS, MARK, numpy_dispatch
from conftest import copy_run
from runfiles import files as _files, differ as _differ

ROOT = Path(__file__).resolve().parent.parent
EXE = Path(sys.executable).parent/'artsim_reproduce'


def _env(**kw):
    "The environment of a user's shell: not under nbdev_test (pytest's process may have IN_TEST set by test_notebooks)."
    env = {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'ARTSIM_RUNS')}
    return {**env, **kw}


def _cli(*args, cwd=ROOT, env=None, timeout=600):
    return subprocess.run([str(EXE), *map(str, args)], cwd=cwd, env=env or _env(), capture_output=True, text=True, timeout=timeout)


def _chapter(path, stage, body):
    "A minimal chapter: default_exp, a parameters cell, a body, and the export hook every chapter ends with."
    params = new_code_cell("run_dir = None\npreset = 'demo'\nseed = None\ndevice = None\nn_per_genre = None")
    params.metadata['tags'] = ['parameters']
    nb = new_notebook(cells=[new_code_cell(f'#| default_exp {stage}'), params, new_code_cell(body),
                             new_code_cell("#| hide\nimport nbdev; nbdev.nbdev_export()")])
    nb.metadata['kernelspec'] = dict(name='python3', display_name='python3', language='python')
    nbformat.write(nb, path)


@pytest.fixture
def nbs(tmp_path):
    d = tmp_path/'nbs'; d.mkdir()
    _chapter(d/'00_data.ipynb', 'data', "from pathlib import Path\nprint('a line for the log')\n"
             "with open(Path(run_dir)/'data_runs.txt', 'a') as f: f.write(f'{n_per_genre}\\n')\n"
             "(Path(run_dir)/'data').mkdir(exist_ok=True); (Path(run_dir)/'data'/'manifest.txt').write_text(f'{n_per_genre}')")
    _chapter(d/'01_generation.ipynb', 'generation', "from pathlib import Path\n"
             "if (Path(run_dir)/'break').exists(): raise ValueError('the generator broke')\n"
             "with open(Path(run_dir)/'gen_runs.txt', 'a') as f: f.write('x\\n')")
    _chapter(d/'05_notastage.ipynb', 'nothing', "raise SystemExit('never run')")
    return d


def test_chapters_found(nbs):
    assert [(c, s) for c, s, _ in chapters(nbs)] == [('00_data', 'data'), ('01_generation', 'generation')]


def test_failure_names_chapter_and_cell_then_resume(nbs, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv('IN_TEST', raising=False)
    run = tmp_path/'run'; run.mkdir(); (run/'break').touch()
    with pytest.raises(SystemExit) as e:
        main(['--preset', 'tiny', '--run-dir', str(run), '--nbs', str(nbs), '--no-progress'])
    assert e.value.code == 1
    out, err = capsys.readouterr()
    assert [l.split()[:2] for l in out.splitlines()[1:]] == [['00_data', 'ran'], ['01_generation', 'FAILED']]   # one line each
    assert "chapter 01_generation failed in cell [4], line 2 (if (Path(run_dir)/'break').exists()" in err
    assert 'ValueError: the generator broke' in err and 'Traceback' not in err
    assert str(run/'logs'/'01_generation.log') in err and str(run/'notebooks'/'01_generation.ipynb') in err
    assert 'the generator broke' in (run/'logs'/'01_generation.log').read_text()                # the traceback is in the log
    assert 'a line for the log' in (run/'logs'/'00_data.log').read_text()                        # cell output: log, not terminal
    assert 'a line for the log' not in out + err
    assert (run/'notebooks'/'01_generation.ipynb').exists()         # the failed notebook is kept to read
    assert (run/'data_runs.txt').read_text().splitlines() == ['4']  # the tiny preset's n_per_genre reached it

    (run/'break').unlink()
    rows = artsim_reproduce(preset='tiny', run_dir=str(run), nbs=str(nbs), progress=False)
    assert [(c, s) for c, s, _ in rows] == [('00_data', 'skipped'), ('01_generation', 'ran')]
    assert (run/'data_runs.txt').read_text().splitlines() == ['4']  # not run again

    # a changed parameter redoes that chapter, and the chapters that read what it wrote differently; each says why
    buf = io.StringIO()
    rows = artsim_reproduce(preset='tiny', run_dir=str(run), nbs=str(nbs), progress=False, param=['n_per_genre=2'], out=buf)
    assert [s for _, s, _ in rows] == ['ran', 'ran']
    lines = buf.getvalue().splitlines()
    # 01 reads 00's manifest, and 00's parameters (Run.params): both changed
    assert lines[1].endswith('(parameters: n_per_genre)'), lines
    assert lines[2].endswith('(input: data/manifest.txt; parameters of data: n_per_genre)'), lines
    assert json.loads((run/'.done'/'01_generation.json').read_text())['because'] == ['input: data/manifest.txt',
                                                                                     'parameters of data: n_per_genre']
    assert (run/'data_runs.txt').read_text().splitlines() == ['4', '2']
    cfg = yaml.safe_load((run/'config.yaml').read_text())
    assert cfg['overrides'] == {'n_per_genre': 2} and cfg['stages']['data']['n_per_genre'] == 2

    rows = artsim_reproduce(preset='tiny', run_dir=str(run), nbs=str(nbs), progress=False, param=['n_per_genre=2'], only='01', force=True)
    assert rows[0][:2] == ('01_generation', 'ran') and len(rows) == 1


def test_an_edited_chapter_is_redone_and_what_follows_only_if_its_input_changed(nbs, tmp_path, monkeypatch):
    monkeypatch.delenv('IN_TEST', raising=False)
    run = tmp_path/'run'
    assert [s for _, s, _ in artsim_reproduce(preset='tiny', run_dir=str(run), nbs=str(nbs), progress=False)] == ['ran', 'ran']
    nb = nbformat.read(nbs/'00_data.ipynb', as_version=4)
    nb.cells[2].source += "\n# a changed comment is a changed chapter"
    nbformat.write(nb, nbs/'00_data.ipynb')
    buf = io.StringIO()
    assert [s for _, s, _ in artsim_reproduce(preset='tiny', run_dir=str(run), nbs=str(nbs), progress=False, out=buf)] == ['ran', 'skipped']
    assert buf.getvalue().splitlines()[1].endswith('(code: 00_data)'), buf.getvalue()   # it wrote what it wrote before: 01 stays done
    assert [s for _, s, _ in artsim_reproduce(preset='tiny', run_dir=str(run), nbs=str(nbs), progress=False)] == ['skipped', 'skipped']
    (run/'data'/'manifest.txt').write_text('edited by hand')   # an artifact changed outside the runner: its chapter redoes it
    buf = io.StringIO()
    assert [s for _, s, _ in artsim_reproduce(preset='tiny', run_dir=str(run), nbs=str(nbs), progress=False, out=buf)] == ['ran', 'skipped']
    assert buf.getvalue().splitlines()[1].endswith('(output changed or missing: data/manifest.txt)'), buf.getvalue()


USAGE_ERRORS = [  # what a user typed -> what the one line says
    (['-p', 'nonsense=1'], 'unknown parameter nonsense'),
    (['--only', '99'], "--only 99: no chapter '99'; the chapters are 00_data, 01_generation"),
    (['--from', 'zz'], "--from zz: no chapter 'zz'"),
    (['-p', 'n_per_genre'], '-p n_per_genre: a parameter is name=value'),
    (['--preset', 'nosuch'], "unknown preset 'nosuch'"),
    (['-p', 'source=folder'], '00_data: source=folder needs source_path'),
    (['-p', 'source=flickr'], "00_data: unknown source 'flickr'; the sources are demo, wikiart, huggan, folder, csv"),
    (['-p', 'source=folder', '-p', 'source_path=/no/such/folder'], '00_data: source_path /no/such/folder does not exist'),
    (['-p', 'source=csv', '-p', 'source_path=/'], 'is a folder'),
    (['-p', 'valid_pct=0.6', '-p', 'test_pct=0.6'], 'valid_pct + test_pct must be below 1'),
    (['--preset', 'full', '-p', 'source=demo'], 'every painting would be left out'),
    (['--seed', 'abc'], "argument --seed: invalid int value: 'abc'"),
    (['--run_dir', 'x'], 'unrecognized arguments: --run_dir'),
]


@pytest.mark.parametrize('argv,says', USAGE_ERRORS, ids=[' '.join(a) for a, _ in USAGE_ERRORS])
def test_usage_errors_are_one_line_exit_2_before_anything_starts(argv, says, tmp_path, capsys):
    run = tmp_path/'run'
    with pytest.raises(SystemExit) as e: main(['--run-dir', str(run), *argv])
    out, err = capsys.readouterr()
    assert e.value.code == 2 and out == '' and len(err.strip().splitlines()) == 1, err
    assert says in err and 'Traceback' not in err, err
    assert not run.exists()   # no failed run directory left behind


def test_usage_errors_from_the_console_script(tmp_path):
    "The same, through the installed command, where they used to print tracebacks."
    for argv, says in [USAGE_ERRORS[0], USAGE_ERRORS[1], USAGE_ERRORS[3], USAGE_ERRORS[7]]:
        r = _cli('--run-dir', tmp_path/'run', *argv)
        assert r.returncode == 2 and r.stdout == '' and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert says in r.stderr and 'Traceback' not in r.stderr
    assert not (tmp_path/'run').exists()


def test_help_says_what_the_options_do():
    r = _cli('--help')
    assert r.returncode == 0
    h = ' '.join(r.stdout.split())
    assert '--run-dir DIR' in h and '--run_dir' not in h and '-p NAME=VALUE, --param NAME=VALUE' in h and '--from CHAPTER' in h
    assert '--no-progress no progress bar' in h and '$ARTSIM_RUNS' in h


def _my_paintings(root):
    "What a user brings: 3 genres of 3 images, a broken file, a nested folder, a stray file at the root."
    for g in ['landscape', 'portrait', 'cityscape']:
        (root/g).mkdir(parents=True)
        for i in range(3): demo_painting(g, i, 80).save(root/g/f'{g}_{i}.jpg')
    (root/'landscape'/'broken.jpg').write_bytes(b'\xff\xd8 not really a jpeg')
    (root/'portrait'/'sketches').mkdir()
    demo_painting('portrait', 7, 80).save(root/'portrait'/'sketches'/'study.png')
    demo_painting('cityscape', 9, 80).save(root/'readme.png')
    (root/'cityscape'/'notes.txt').write_text('where I found these')


def test_own_folder_runs_with_report_and_rerun_redoes_it_when_an_image_is_added(tmp_path):
    src, run = tmp_path/'my_paintings', tmp_path/'run'
    _my_paintings(src)
    args = ['--preset', 'tiny', '--run-dir', run, '--only', '00', '-p', 'source=folder', '-p', f'source_path={src}']
    r = _cli(*args)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 5 and lines[1].split()[:2] == ['00_data', 'ran'] and f'Results in {run}' in lines[-1], r.stdout
    # the chapter's warnings about the user's data, on the console, one line each (and none from the chapter's test cells)
    assert lines[2].startswith('    warning: 10 paintings larger than image_size=64 px shrunk to it on the long side'), r.stdout
    assert lines[3] == "    warning: fewer than n_per_genre=4 good paintings in 2 genres, all kept: {'cityscape': 3, 'landscape': 3}", r.stdout
    assert 'still_life' not in (run/'logs'/'00_data.log').read_text()   # the test cells' own genres stay out of the log too
    assert r.stderr == ''   # no progress bars off a terminal, no kernel warnings
    m = pd.read_parquet(run/'data'/'manifest.parquet')
    assert m.groupby('genre').size().to_dict() == dict(cityscape=3, landscape=3, portrait=4)   # all there is, nested included
    assert 'portrait-sketches-study' in set(m.id)
    bad = pd.read_csv(run/'data'/'bad_files.csv')
    why = dict(zip(bad.src.map(lambda s: Path(s).name), bad.reason))
    assert why['broken.jpg'].startswith('corrupt or truncated') or 'not an image' in why['broken.jpg']
    assert 'not in a <genre>/ folder' in why['readme.png'] and 'not an image file name (.txt)' in why['notes.txt']
    report = json.loads((run/'data'/'report.json').read_text())
    assert report['genres']['landscape'] == dict(candidates=4, looked_at=4, kept=3, left_out=1)
    assert (report['looked_at'], report['kept'], report['skipped']) == (11, 10, 2)
    assert 'lists the 1 file left out of the 11 looked at' in report['bad_files']

    r = _cli(*args)   # nothing changed: skipped
    assert r.returncode == 0 and r.stdout.splitlines()[1].split()[:2] == ['00_data', 'skipped'], r.stdout
    demo_painting('cityscape', 11, 80).save(src/'cityscape'/'new.jpg')
    r = _cli(*args)   # a new image: redone
    assert r.returncode == 0 and r.stdout.splitlines()[1].split()[:2] == ['00_data', 'ran'], r.stdout
    assert "    warning: fewer than n_per_genre=4 good paintings in 1 genre, all kept: {'landscape': 3}" in r.stdout.splitlines(), r.stdout
    assert (pd.read_parquet(run/'data'/'manifest.parquet').genre == 'cityscape').sum() == 4



def _processes_with(marker):
    "Processes alive whose environment carries `marker` (children of the run inherit it)."
    out = []
    for d in Path('/proc').glob('[0-9]*'):
        try:
            if marker.encode() in (d/'environ').read_bytes():
                # state, parent and process group (fields 3-5 of stat) say who should have ended it
                state, ppid, pgrp = (d/'stat').read_text().rsplit(')', 1)[1].split()[:3]
                out.append((d.name, f'state {state} ppid {ppid} pgrp {pgrp}', (d/'cmdline').read_bytes()[:120]))
        except OSError: pass
    return out


@pytest.mark.skipif(not Path('/proc/self/environ').exists(), reason='reads /proc')
def test_a_tiny_run_is_quiet_resumable_and_leaves_no_process(tiny_run, tmp_path):
    """Every chapter on the tiny preset, descriptors with a worker pool (the session's shared run, conftest.py): one line
    each, logs, no process left behind; the run copied elsewhere skips every chapter."""
    run, r = tiny_run.path, tiny_run
    names = [c for c, _, _ in chapters(ROOT/'nbs')]
    lines = r.stdout.splitlines()
    assert len(lines) == len(names) + 2 and [l.split()[:2] for l in lines[1:-1]] == [[n, 'ran'] for n in names], r.stdout
    assert r.stderr == '' and 'TCP' not in r.stdout
    assert sorted(f.stem for f in (run/'logs').glob('*.log')) == names
    assert sorted(f.stem for f in (run/'notebooks').glob('*.ipynb')) == names
    # figures stay in the executed chapters even where the caller's MPLBACKEND (Agg here, from conftest) would hide them
    outs = [o for c in nbformat.read(run/'notebooks'/'03_similarity.ipynb', as_version=4).cells for o in c.get('outputs', [])]
    assert os.environ.get('MPLBACKEND') == 'Agg' and any('image/png' in o.get('data', {}) for o in outs)
    said = ''.join(o.get('text', '') for f in (run/'notebooks').glob('*.ipynb') for c in nbformat.read(f, as_version=4).cells
                   for o in c.get('outputs', []))
    assert 'IProgress not found' not in said   # tqdm's hint about widgets is not printed into every executed chapter
    numerics = yaml.safe_load((run/'config.yaml').read_text())['numerics']   # each kernel started under the pin (tiny is portable)
    assert sorted(numerics) == sorted(s for _, s, _ in chapters(ROOT/'nbs')) and all(n['pinned'] for n in numerics.values()), numerics
    assert _processes_with(f'ARTSIM_TEST_RUN={r.marker}') == []   # kernels and the descriptors' worker pool are gone
    moved = copy_run(run, tmp_path/'moved')
    again = _cli('--preset', 'tiny', '--run-dir', moved, '-p', 'n_jobs=2')
    assert again.returncode == 0 and [l.split()[:2] for l in again.stdout.splitlines()[1:-1]] == [[n, 'skipped'] for n in names], again.stdout
    assert yaml.safe_load((moved/'config.yaml').read_text())['numerics'] == numerics   # still says what each chapter ran with


def test_relative_run_dirs_resolve_against_the_project_root(tmp_path):
    "A chapter opened in JupyterLab (working directory nbs/) reads the runs/demo that make demo wrote."
    code = ("from artsim.runs import stage_params, Run; p = stage_params('similarity', dict(run_dir=None, preset='demo')); print(p.run_dir)\n"
            "try: Run(p.run_dir).require('generated/pairs.parquet')\nexcept FileNotFoundError as e: print(e)")
    for cwd in (ROOT/'nbs', ROOT/'nbs'/'pipeline', ROOT):
        r = subprocess.run([sys.executable, '-c', code], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[0] == str(ROOT/'runs'/'demo')
        if not (ROOT/'runs'/'demo'/'generated'/'pairs.parquet').exists(): assert f'--run-dir {ROOT/"runs"/"demo"} ' in r.stdout
    r = subprocess.run([sys.executable, '-c', code], cwd=ROOT/'nbs', env=_env(ARTSIM_RUNS=str(tmp_path)), capture_output=True, text=True, timeout=120)
    assert r.stdout.splitlines()[0] == str(tmp_path/'demo')
    assert not (ROOT/'nbs'/'runs').exists()


def test_no_temporary_runs_left_by_nbdev_test(tmp_path):
    "Under nbdev_test, a chapter with no run directory runs in artsim-<stage>-*, which is gone when the test ends."
    r = subprocess.run([str(Path(sys.executable).parent/'nbdev_test'), '--path', 'pipeline/runs.ipynb'], cwd=ROOT/'nbs',
                       env=_env(TMPDIR=str(tmp_path)), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert list(tmp_path.iterdir()) == []


def _pool_workers():
    "This process's joblib (loky) worker processes that are still alive."
    import psutil
    out = []
    for c in psutil.Process().children(recursive=True):
        try: cmd = ' '.join(c.cmdline())
        except psutil.Error: continue
        if 'loky' in cmd and 'resource_tracker' not in cmd and c.status() != psutil.STATUS_ZOMBIE: out.append(cmd)
    return out


def test_descriptor_worker_pool_is_shut_down_when_extraction_ends(tmp_path):
    "02_descriptors' worker pool ends with the extraction, also a failed one: no worker outlives the kernel that ran it."
    from artsim.families import HANDMADE
    from artsim.descriptors import extract_features, FeatureStore
    files = []
    for i in range(6):
        files.append(tmp_path/f'{i}.png'); demo_painting('landscape', i, 48).save(files[-1])
    _, stats = extract_features(files, FeatureStore(tmp_path/'a'), HANDMADE, size=32, n_jobs=2, progress=False)
    assert all(v == 6 for v in stats['extracted'].values())
    assert _pool_workers() == []
    with pytest.raises(Exception): extract_features(files, FeatureStore(tmp_path/'b'), HANDMADE, size=-1, n_jobs=2, progress=False)
    assert _pool_workers() == []


TINY_RUN = """
import sys, warnings
warnings.simplefilter('ignore')
from artsim.runs import STAGES, Run, record_params, stage_params
from artsim.stages import stage_module
run, portable, last = Run(sys.argv[1]), sys.argv[2] == 'portable', sys.argv[3]
for s in STAGES[:STAGES.index(last) + 1]:
    p = stage_params(s, dict(preset='tiny', run_dir=run.path, portable=portable))
    record_params(run, p)
    stage_module(s).stage(run, p)
"""

UNPINNED = {k: None for k in (*ISA_VARS, MARK, 'NPY_DISABLE_CPU_FEATURES', 'NPY_ENABLE_CPU_FEATURES')}


def _tiny_run(run, env, portable=True, last='evaluation'):
    "The tiny preset's stages in a fresh process (under the pin when `portable`), with umask 022."
    cmd = [sys.executable, '-c', TINY_RUN, str(run), 'portable' if portable else 'natural', last]
    if portable: cmd = [sys.executable, '-m', 'artsim.numerics', '--', *cmd]
    env = {k: v for k, v in {**env, 'MPLBACKEND': 'Agg'}.items() if v is not None}
    out = subprocess.run(cmd, cwd=run.parent, env=env, capture_output=True, text=True, timeout=900, preexec_fn=lambda: os.umask(0o022))
    assert out.returncode == 0, out.stderr[-3000:]
    return run


@pytest.fixture(scope='module')
def pinned_run(tmp_path_factory):
    "Every stage of the tiny preset under the pin, in a process of its own."
    return _tiny_run(tmp_path_factory.mktemp('pinned')/'run', _env(**UNPINNED, PYTHONHASHSEED='1'))


def test_two_tiny_runs_in_two_processes_write_the_same_bytes(pinned_run, tmp_path):
    """Every chapter, run twice under the pin in separate processes whose host settings differ in what must not matter
    (hash seed, thread counts, numpy's AVX-512 kernels already off as on an AVX2 CPU, oneDNN and MKL capped by the host):
    images, tables, weights files and figures are byte-identical; JSON is equal but for wall-clock fields and the run's
    own directory. Every file is readable by group and others under umask 022."""
    avx512 = ' '.join(f for f in numpy_dispatch() if f not in AVX2_FEATURES)
    host = _env(**{**UNPINNED, 'PYTHONHASHSEED': '2', 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'OPENBLAS_NUM_THREADS': '1',
                   'NPY_DISABLE_CPU_FEATURES': avx512, 'ONEDNN_MAX_CPU_ISA': 'AVX2', 'MKL_ENABLE_INSTRUCTIONS': 'AVX2'})
    runs = [pinned_run, _tiny_run(tmp_path/'b', host)]
    assert _files(runs[0]) == _files(runs[1])
    kinds = {Path(f).suffix for f in _files(runs[0])}
    assert {'.png', '.parquet', '.safetensors', '.json'} <= kinds, kinds
    assert not _differ(*runs, _files(runs[0])), _differ(*runs, _files(runs[0]))
    for r in runs:
        numerics = yaml.safe_load((r/'config.yaml').read_text())['numerics']
        assert list(numerics) == list(STAGES) and all(n['pinned'] and {k for k, v in n['honoured'].items() if not v} == set(n['not_pinnable_here'])
                                                       for n in numerics.values()), numerics
        private = [p.relative_to(r).as_posix() for p in r.rglob('*') if p.stat().st_mode & 0o044 != 0o044]
        assert not private, private   # a run can be shared: nothing is readable by its owner only


def test_without_the_pin_this_machine_describes_with_its_own_kernels(pinned_run, tmp_path):
    """The same stages up to the descriptors with the host's natural dispatch: paintings and variants are the same
    files; the hand-made descriptors, computed by numpy and OpenBLAS, differ where numpy dispatches above AVX2 here."""
    natural = _tiny_run(tmp_path/'natural', _env(**UNPINNED), portable=False, last='descriptors')
    info = yaml.safe_load((natural/'config.yaml').read_text())['numerics']['descriptors']
    assert not info['portable']
    images = [f for f in _files(natural) if f.startswith(('data/', 'generated/'))]
    assert len(images) > 20 and not _differ(pinned_run, natural, images)
    handmade = [f'features/{f}.parquet' for f in ('color', 'texture', 'shape', 'edges')]
    above = set(info['kernels']['numpy']) - AVX2_FEATURES
    if not above: pytest.skip(f"numpy dispatches to nothing above AVX2 on this CPU ({info['kernels']['numpy']}): nothing to tell apart")
    # measured on an AVX-512 machine (numpy X86_V4, AVX512_ICL, AVX512_SPR): all four families differ
    assert _differ(pinned_run, natural, handmade), f'numpy dispatches to {sorted(above)} here, yet the descriptors are the same'


def test_a_stage_run_alone_restarts_under_the_pin(pinned_run, tmp_path):
    "`python -m artsim.training` from an unpinned shell starts again under the pin and writes the pinned run's weights."
    run = tmp_path/'alone'
    shutil.copytree(pinned_run, run, ignore=shutil.ignore_patterns('siamese.*'))
    r = subprocess.run([sys.executable, '-m', 'artsim.training', '--run-dir', str(run), '--preset', 'tiny'], cwd=tmp_path,
                       env={k: v for k, v in _env(**UNPINNED, MPLBACKEND='Agg').items() if v is not None}, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert yaml.safe_load((run/'config.yaml').read_text())['numerics']['training']['pinned']
    assert (run/'models'/'siamese.safetensors').read_bytes() == (pinned_run/'models'/'siamese.safetensors').read_bytes()
