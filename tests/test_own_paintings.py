"""Your own paintings end to end: the README's command for a small folder of one's own ("Your own paintings"), on a
generated folder of 4 genres x 8 images, runs all eight chapters on the first try."""

import json, shlex
import pytest
from miniatures import make_own_folder
from test_reproduce import ROOT, _cli

pytestmark = pytest.mark.claims   # minutes of chapters: make check-claims runs it (CI), make test leaves it out

# Lengths that no count of the collection depends on (epochs, bootstrap draws), cut so that the test takes a minute:
# what could stop a small collection (its splits, batch sizes, pairs) is decided by the command's own values
SHORTER = ['-p', 'epochs=1', '-p', 'frozen_epochs=10', '-p', 'n_bootstrap=100']


def test_a_folder_of_4_genres_x_8_images_runs_every_chapter_with_the_readmes_command(tmp_path):
    """The README's command for a small folder of one's own ("Your own paintings"), on a generated folder of 4 genres x
    8 images: all eight chapters on the first try, the evaluation's report written."""
    lines = (ROOT/'README.md').read_text().splitlines()
    cmd = next(l for l in lines if l.startswith('.venv/bin/artsim_reproduce ') and 'source=folder' in l
               and ' -p bs=' in l and '--plan' not in l)
    src = make_own_folder(tmp_path/'my_paintings')
    args = [a.replace('source_path=my_paintings', f'source_path={src}') for a in shlex.split(cmd)[1:]]
    assert f'source_path={src}' in args, cmd
    args[args.index('--run-dir') + 1] = str(tmp_path/'runs'/'mine')
    r = _cli(*args, *SHORTER, '--no-progress', timeout=3600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ran = [l.split()[:2] for l in r.stdout.splitlines() if l.startswith('  0')]
    assert ran == [[c, 'ran'] for c in ('00_data', '01_generation', '02_descriptors', '03_similarity', '04_finetune',
                                         '05_siamese', '06_training', '07_evaluation')], r.stdout
    run = tmp_path/'runs'/'mine'
    assert json.loads((run/'metrics'/'eval.json').read_text())['counts']['test_paintings'] == 8
    assert (run/'report.md').is_file()
