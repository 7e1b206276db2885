"""Chapters 05 and 06 on a demo-like run (random-init encoder, 32 px), for what their notebook cells cannot show well:
the whole training stage run again gives the same bytes and another seed other weights, `artsim_compare` refuses a model
of the earlier architecture in one line, and `python -m artsim.training` reports errors as a command does. The API's
checks (identity, symmetry, range, matrix, round trip, refusals) are cells of nbs/pipeline/network.ipynb; the splits and
the teacher are cells of 05; the seeds' heads and the seed the stage trains with are cells of 06."""
import json, shutil, subprocess, sys, warnings
import pandas as pd, pytest, torch
from demo_pairs import stage_p
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
