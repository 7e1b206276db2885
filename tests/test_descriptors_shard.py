"""Chapter 02_descriptors under `torchrun`: two CPU processes (gloo) share the hand-made images and the semantic
batches of a tiny run and write the same bytes as one process. The child script and the launch follow
`tests/test_generation.py::test_two_processes_share_the_work_under_torchrun` (`tests/launch.py`)."""
import json, shutil

import pandas as pd

from demo_pairs import make_run
from launch import launch
from artsim.families import FAMILIES


CHILD = '''
import json, sys, warnings
import torch.distributed as dist
from fastcore.basics import AttrDict
from artsim.runs import Run
from artsim import descriptors as D
warnings.simplefilter('ignore')   # random-init ResNet50 and the unreadable files warn by design
D.stage(Run(sys.argv[1]), AttrDict(json.loads(sys.argv[2])))
if dist.is_initialized():
    print(f'rank {dist.get_rank()} of {dist.get_world_size()} on {dist.get_backend()}', flush=True)
    dist.destroy_process_group()
else: print('alone, no process group', flush=True)
'''

# the tiny preset's descriptors, with semantic batches of 3: 10 readable images make 4 batches (3, 3, 3, 1)
PARAMS = dict(size=32, families=None, semantic_weights='random', semantic_size=32, batch_size=3, n_jobs=1,
              chunk_size=4, seed=42, device='cpu')


def describe(script, run, nproc):
    return launch(script, [run, json.dumps(PARAMS)], nproc, timeout=120)


def test_two_processes_write_the_bytes_of_one(tmp_path):
    one = make_run(tmp_path / 'one', n_genres=2, n_per_genre=3, size=48, strengths=(0.5,), prompts={'p0': 'x'})
    # unreadable files in both halves of the work: each process finds one, the merged table has both
    for f in ('data/images/genre0/g0-000.png', 'generated/g1-002_p0_050.png'): (one / f).write_bytes(f'{f}'.encode())
    two = shutil.copytree(one, tmp_path / 'two')
    script = tmp_path / 'describe.py'
    script.write_text(CHILD)

    assert 'alone, no process group' in describe(script, one, 1)
    out = describe(script, two, 2)
    assert 'rank 0 of 2 on gloo' in out and 'rank 1 of 2 on gloo' in out

    for name in [f'{f}.parquet' for f in FAMILIES] + ['centres.parquet', 'versions.json', 'settings.json',
                                                      'semantic.json']:
        assert (one / 'features' / name).read_bytes() == (two / 'features' / name).read_bytes(), name
    # the errors name the unreadable files, each in its own run
    bad = (one / 'features/bad_files.csv').read_text().replace(str(one), str(two))
    assert bad == (two / 'features/bad_files.csv').read_text()
    assert not list((two / 'features/parts').glob('*'))
    a, b = (pd.read_parquet(r / 'features/images.parquet') for r in (one, two))
    a['error'] = a.error.str.replace(str(one), str(two), regex=False)
    pd.testing.assert_frame_equal(a.drop(columns='mtime_ns'), b.drop(columns='mtime_ns'))
    assert a.error.notna().sum() == 2 and (a.mtime_ns == b.mtime_ns).all()   # the copy keeps the files' times

    alone, shared = (json.loads((r / 'features/extraction.json').read_text()) for r in (one, two))
    assert 'processes' not in alone and len(shared['processes']) == 2
    assert shared['extracted'] == alone['extracted'] == dict.fromkeys(FAMILIES, 10)
    # both did work: 6 images each, one unreadable in each share; the semantic batches split whole, (3, 3) and (3, 1)
    hand = dict.fromkeys([f for f in FAMILIES if f != 'semantic'], 5)
    assert shared['processes'] == [{**hand, 'semantic': 6}, {**hand, 'semantic': 4}]
