"""The runner: order, parameters, a failing chapter stops the run with its name, a rerun resumes."""
import subprocess, sys
from pathlib import Path
import nbformat
import pandas as pd
import pytest
import yaml
from nbformat.v4 import new_notebook, new_code_cell

from artsim.reproduce import artsim_reproduce, chapters

ROOT = Path(__file__).resolve().parent.parent


def _chapter(path, stage, body):
    "A minimal chapter: default_exp, a parameters cell, a body."
    params = new_code_cell("run_dir = None\npreset = 'demo'\nseed = None\ndevice = None\nn_per_genre = None")
    params.metadata['tags'] = ['parameters']
    nb = new_notebook(cells=[new_code_cell(f'#| default_exp {stage}'), params, new_code_cell(body)])
    nb.metadata['kernelspec'] = dict(name='python3', display_name='python3', language='python')
    nbformat.write(nb, path)


@pytest.fixture
def nbs(tmp_path):
    d = tmp_path/'nbs'; d.mkdir()
    _chapter(d/'00_data.ipynb', 'data', "from pathlib import Path\n"
             "with open(Path(run_dir)/'data_runs.txt', 'a') as f: f.write(f'{n_per_genre}\\n')")
    _chapter(d/'01_generation.ipynb', 'generation', "from pathlib import Path\n"
             "if (Path(run_dir)/'break').exists(): raise ValueError('the generator broke')\n"
             "with open(Path(run_dir)/'gen_runs.txt', 'a') as f: f.write('x\\n')")
    _chapter(d/'05_notastage.ipynb', 'nothing', "raise SystemExit('never run')")
    return d


def test_chapters_found(nbs):
    assert [(c, s) for c, s, _ in chapters(nbs)] == [('00_data', 'data'), ('01_generation', 'generation')]


def test_failure_stops_with_name_then_resume(nbs, tmp_path, capsys):
    run = tmp_path/'run'; run.mkdir(); (run/'break').touch()
    with pytest.raises(SystemExit) as e:
        artsim_reproduce(preset='tiny', run_dir=str(run), nbs=str(nbs), progress=False)
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert 'chapter 01_generation failed' in err and 'ValueError' in err and 'the generator broke' in err
    assert (run/'notebooks'/'01_generation.ipynb').exists()         # the failed notebook is kept to read
    assert (run/'data_runs.txt').read_text().splitlines() == ['4']  # the tiny preset's n_per_genre reached it

    (run/'break').unlink()
    rows = artsim_reproduce(preset='tiny', run_dir=str(run), nbs=str(nbs), progress=False)
    assert [(c, s) for c, s, _ in rows] == [('00_data', 'skipped'), ('01_generation', 'ran')]
    assert (run/'data_runs.txt').read_text().splitlines() == ['4']  # not run again

    # a changed parameter redoes that chapter and everything after it
    rows = artsim_reproduce(preset='tiny', run_dir=str(run), nbs=str(nbs), progress=False, param=['n_per_genre=2'])
    assert [s for _, s, _ in rows] == ['ran', 'ran']
    assert (run/'data_runs.txt').read_text().splitlines() == ['4', '2']
    cfg = yaml.safe_load((run/'config.yaml').read_text())
    assert cfg['overrides'] == {'n_per_genre': 2} and cfg['stages']['data']['n_per_genre'] == 2

    rows = artsim_reproduce(preset='tiny', run_dir=str(run), nbs=str(nbs), progress=False, param=['n_per_genre=2'], only='01', force=True)
    assert rows[0][:2] == ('01_generation', 'ran') and len(rows) == 1


def test_unknown_parameter_is_an_error(nbs, tmp_path):
    with pytest.raises(ValueError, match='typo'):
        artsim_reproduce(preset='tiny', run_dir=str(tmp_path/'r'), nbs=str(nbs), progress=False, param=['typo=1'])


def test_console_script_runs_the_data_chapter(tmp_path):
    "The real 00_data chapter, through the installed console script, on the tiny preset."
    exe = Path(sys.executable).parent/'artsim_reproduce'
    run = tmp_path/'tiny'
    r = subprocess.run([str(exe), '--preset', 'tiny', '--run-dir', str(run), '--only', '00', '--no-progress', '-p', 'n_per_genre=3'],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    m = pd.read_parquet(run/'data'/'manifest.parquet')
    assert m.groupby('genre').size().eq(3).all()
    assert (run/'data'/'bad_files.csv').exists() and (run/'notebooks'/'00_data.ipynb').exists()
    assert 'total' in r.stdout and '00_data' in r.stdout


def test_an_edited_chapter_is_redone_with_what_follows(nbs, tmp_path):
    run = tmp_path/'run'
    assert [s for _, s, _ in artsim_reproduce(preset='tiny', run_dir=str(run), nbs=str(nbs), progress=False)] == ['ran', 'ran']
    nb = nbformat.read(nbs/'00_data.ipynb', as_version=4)
    nb.cells[-1].source += "\n# a changed comment is a changed chapter"
    nbformat.write(nb, nbs/'00_data.ipynb')
    assert [s for _, s, _ in artsim_reproduce(preset='tiny', run_dir=str(run), nbs=str(nbs), progress=False)] == ['ran', 'ran']
    assert [s for _, s, _ in artsim_reproduce(preset='tiny', run_dir=str(run), nbs=str(nbs), progress=False)] == ['skipped', 'skipped']
