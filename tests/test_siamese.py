"""Chapters 05 and 06 on a demo-like run (random-init encoder, 32 px), for what their notebook cells cannot show well:
the whole training stage run again gives the same bytes and another seed other weights, `artsim_compare` refuses a model
of the earlier architecture in one line, and `python -m artsim.training` reports errors as a command does. The API's
checks (identity, symmetry, range, matrix, round trip, refusals) are cells of nbs/pipeline/network.ipynb; the splits and
the teacher are cells of 05; the seeds' heads and the seed the stage trains with are cells of 06. Chapter 05 under
`torchrun` (two CPU processes, gloo) writes the bytes of one process, launched as in tests/test_descriptors_shard.py."""
import json, shutil, subprocess, sys, warnings
import pandas as pd, pytest, torch
from demo_pairs import stage_p
from launch import child_env, launch
from artsim.runs import Run, record_params
from artsim.modelfile import SIAMESE_KIND, load_model
from artsim.network import SiameseSimilarity

SIZE = 32


@pytest.fixture(scope='module')
def split_root(described_root, tmp_path_factory):
    "`described_root` with its paintings split 3:1:1 into train/valid/test and chapter 03's pairs scored."
    from artsim.similarity import stage
    root = tmp_path_factory.mktemp('split') / 'run'
    shutil.copytree(described_root, root, ignore=shutil.ignore_patterns('similarity'))
    m = pd.read_parquet(root / 'data/manifest.parquet')
    m['split'] = [('train', 'train', 'train', 'valid', 'test')[i % 5] for i in range(len(m))]
    m.to_parquet(root / 'data/manifest.parquet', index=False)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        stage(Run(root), stage_p('similarity', negatives_per_original=3))
    return root


def siamese_p(**over):
    "Chapter 05's parameters: the tiny preset's, on a random-init encoder (chapter 04 is not run), validated on valid."
    from fastcore.basics import AttrDict
    return AttrDict(stage_p('siamese', 'tiny', encoder_weights='random', validate_on='valid', **over).__dict__, stage='siamese',
                    preset='tiny')


def training_p(**over):
    from fastcore.basics import AttrDict
    return AttrDict(stage_p('training', 'tiny', **over).__dict__, stage='training', preset='tiny')


@pytest.fixture(scope='module')
def trained(split_root, tmp_path_factory):
    "Chapters 05 and 06 (tiny preset, seed 5) on the split run, in a copy of it."
    from artsim import siamese, training
    root = tmp_path_factory.mktemp('trained') / 'run'
    shutil.copytree(split_root, root)
    run = Run(root)
    record_params(run, siamese_p())   # as the runner records it: 06's model card copies 05's parameters
    siamese.stage(run, siamese_p())
    res = training.stage(run, training_p(seed=5))
    return dict(run=run, res=res, model=root / 'models' / 'siamese.safetensors')


@pytest.fixture(scope='module')
def sim(trained): return SiameseSimilarity.load(trained['model'], batch_size=4)


def images(root, n, kind='original'):
    m = pd.read_parquet(root / 'data/manifest.parquet')
    g = pd.read_parquet(root / 'generated/pairs.parquet')
    return [root / p for p in (m.path if kind == 'original' else g.generated_path)][:n]


def test_compare_refuses_a_model_of_the_earlier_architecture_in_one_line(sim, demo_root, tmp_path):
    "A card of format artsim-siamese/1 (the MLP head on layer4): `artsim_compare` says in one line to run 06 again."
    wf, cf = sim.save(tmp_path / 'siamese')
    card = json.loads(cf.read_text()) | dict(format='artsim-siamese/1', architecture=dict(name='siamese-resnet50'))
    cf.write_text(json.dumps(card))
    from artsim.cli import compare_main
    import contextlib, io
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as code:
        compare_main([str(images(demo_root, 1)[0]), str(images(demo_root, 1, 'variant')[0]), '--model', str(wf)])
    said = err.getvalue().strip().splitlines()
    assert code.value.code == 1 and len(said) == 1 and 'run chapter 06_training again' in said[0], err.getvalue()


def test_same_seed_same_bytes_other_seed_other_weights(trained, tmp_path):
    from artsim import training
    root = tmp_path / 'run'
    shutil.copytree(trained['run'].path, root)
    run = Run(root)
    training.stage(run, training_p(seed=5))
    assert (root / 'models/siamese.safetensors').read_bytes() == trained['model'].read_bytes()
    assert (root / 'models/siamese_seeds.safetensors').read_bytes() == (trained['run'].path / 'models/siamese_seeds.safetensors').read_bytes()
    training.stage(run, training_p(seed=8))
    a, b = load_model(trained['model'], SIAMESE_KIND)[0], load_model(root / 'models/siamese.safetensors', SIAMESE_KIND)[0]
    learned = [k for k in a if k.startswith('head.') and k.split('.')[1] in ('projection', 'score_map', 'log_beta')]
    assert learned and all(not torch.equal(a[k], b[k]) for k in learned if k != 'head.score_map.knots')
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith('encoder.'))  # the frozen encoder is the same


def test_training_command_line_errors(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, '-m', 'artsim.training', *args], capture_output=True, text=True, timeout=300)
    r = cli('--run-dir', str(tmp_path), '--preset', 'tiny')
    assert r.returncode == 1 and 'Traceback' not in r.stderr, r.stderr
    assert r.stderr.strip().count('\n') == 0 and 'siamese/data.safetensors' in r.stderr, r.stderr
    for args in (('--run-dir', str(tmp_path), '--preset', 'nope'), ('--run-dir', str(tmp_path), '-p', 'epochs=3'), ()):
        r = cli(*args)
        assert r.returncode == 2 and 'Traceback' not in r.stderr, (args, r.stderr)
    assert 'unknown parameter' in cli('--run-dir', str(tmp_path), '-p', 'epochs=3').stderr


ENCODE_CHILD = '''
import os, sys, warnings
import torch.distributed as dist
from artsim import siamese as S
warnings.simplefilter('ignore')   # the random-init encoder warns by design
chunks, encode = [], S.encode_images
def counted(body, images, *args, **kw):
    chunks.append(len(images))
    return encode(body, images, *args, **kw)
S.encode_images = counted   # `siamese_data` encodes each chunk it reads, features and augmented copies, in one call
S.main(sys.argv[1:])
group = f'on {dist.get_backend()}' if dist.is_initialized() else 'no process group'
print(f"rank {os.environ.get('RANK', 0)} of {os.environ.get('WORLD_SIZE', 1)}, {group}: chunks {chunks}", flush=True)
if dist.is_initialized(): dist.destroy_process_group()
'''

# the tiny preset on the random-init encoder, in batches of 2: chunks of ENCODE_CHUNK * 2 = 64 images, so that every
# split and the augmented copies make more than one chunk (train 24 + 192 images, test 8 + 64, 3 x 24 copies)
ENCODE_ARGS = ('--preset', 'tiny', '-p', 'encoder_weights=random', '-p', 'encode_batch_size=2',
               '-p', 'augmented_copies=3')


def encode_run(script, run, nproc):
    return launch(script, ['--run-dir', run, *ENCODE_ARGS], nproc)


def test_two_processes_encode_the_bytes_of_one(split_root, tmp_path):
    "`main` alone and under torchrun (2 processes): the same data file, each process encoding its chunks i % 2."
    from artsim.siamese import ENCODE_CHUNK, SIAMESE_DATA
    one, two = (shutil.copytree(split_root, tmp_path / n) for n in ('one', 'two'))
    script = tmp_path / 'encode.py'
    script.write_text(ENCODE_CHILD)
    alone, shared = encode_run(script, one, 1), encode_run(script, two, 2)

    assert (one / SIAMESE_DATA).read_bytes() == (two / SIAMESE_DATA).read_bytes(), 'two processes wrote other bytes'
    a, b = (pd.read_parquet(r / 'siamese/images.parquet') for r in (one, two))
    pd.testing.assert_frame_equal(a, b)
    assert sorted(p.name for p in (two / 'siamese').iterdir()) == ['data.safetensors', 'images.parquet']
    # the chunks of each split and of the augmented copies, i to the process i % 2; rank 0 alone reports what it wrote
    copies = 3 * int(((a.split == 'train') & (a.role == 'painting')).sum())
    chunk, n = ENCODE_CHUNK * 2, [*a.groupby('split', sort=False).size(), copies]
    sizes = [[min(chunk, k - i) for i in range(0, k, chunk)] for k in n]
    assert n == [216, 72, 72] and all(len(s) > 1 for s in sizes)
    assert f'rank 0 of 1, no process group: chunks {sum(sizes, [])}' in alone
    for r in (0, 1): assert f'rank {r} of 2, on gloo: chunks {sum((s[r::2] for s in sizes), [])}' in shared, shared
    assert alone.count('train: 216 images, test: 72 images; wrote') == shared.count('train: 216 images') == 1


def test_siamese_command_line_errors(tmp_path):
    "A run without chapters 00-04 fails in one line (exit 1); a preset that does not exist is a usage error (exit 2)."
    def cli(*args):
        return subprocess.run([sys.executable, '-m', 'artsim.siamese', *args], env=child_env(), capture_output=True,
                              text=True, timeout=120)
    r = cli('--run-dir', str(tmp_path / 'nowhere'), '--preset', 'tiny')
    assert r.returncode == 1 and r.stderr.strip().count('\n') == 0 and 'Traceback' not in r.stderr, r.stderr
    assert 'data/manifest.parquet does not exist' in r.stderr
    r = cli('--run-dir', str(tmp_path), '--preset', 'nope')
    assert r.returncode == 2 and r.stderr.strip().count('\n') == 0 and 'Traceback' not in r.stderr, r.stderr


def test_aspect_heads_in_the_files_identity_at_one_old_cards_refused(trained, sim, demo_root, tmp_path):
    """The card names each aspect with its families; every seed's aspect heads, rebuilt from the two files, score as 06
    trained them and give identical images 1; a card without aspects (a model trained before them) is refused, by
    `SiameseSimilarity.load` and by `artsim_compare` in one line, naming chapter 06."""
    import contextlib, io
    import numpy as np
    from artsim.cli import compare_main
    from artsim.modelfile import ModelFileError, save_model
    from artsim.network import SiameseNet, load_seed_models
    res = trained['res']
    assert sim.card['architecture']['aspects'] == {a: v['families'] for a, v in res.aspects.items()}
    assert sim.aspect_names == list(res.aspects) == ['composition', 'style', 'content']
    A, B = images(demo_root, 3), images(demo_root, 2, 'variant')
    others = load_seed_models(trained['run'].path / 'models' / 'siamese_seeds', sim)
    assert sorted(others) == res.seeds[1:]
    for s, m in {res.seeds[0]: sim, **others}.items():
        fa, fb, got = m.features(A), m.features(B), m.aspect_matrix(A, B)
        for a, heads in res.aspect_heads.items():
            with torch.inference_mode(): want = heads[s].scores(heads[s].embed(fa), heads[s].embed(fb)).numpy()
            np.testing.assert_allclose(got[a], want, atol=1e-5, err_msg=f'seed {s}, {a}')
        for a, M in m.aspect_matrix(A).items(): np.testing.assert_allclose(np.diag(M), 1, atol=1e-4, err_msg=a)
        assert all(abs(v - 1) < 1e-4 for v in m.aspects(B[0], B[0]).values())
    card = {k: v for k, v in sim.card.items() if k not in ('weights_file', 'weights_sha256', 'format')}
    card['architecture'] = {k: v for k, v in card['architecture'].items() if k != 'aspects'}
    old = SiameseNet(sim.model.encoder, sim.model.pooling, sim.head)
    wf, _ = save_model(tmp_path / 'old' / 'siamese', old.state_dict(), card, SIAMESE_KIND)
    with pytest.raises(ModelFileError, match='run chapter 06_training again$'): SiameseSimilarity.load(wf)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as code:
        compare_main([str(A[0]), str(B[0]), '--model', str(wf)])
    said = err.getvalue().strip().splitlines()
    assert code.value.code == 1 and len(said) == 1 and 'run chapter 06_training again' in said[0], err.getvalue()
