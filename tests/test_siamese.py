"""artsim.siamese and artsim.training: exact symmetry, the matrix against the pair loop, the safetensors round trip and
its refusals, no painting in two splits, and short trainings on demo-like pairs (random-init encoder, 32 px)."""
import json, pickle, shutil, subprocess, sys, warnings
import numpy as np, pandas as pd, pytest, torch
from demo_pairs import stage_p
import artsim
from artsim.runs import Run
from artsim.siamese import (ModelFileError, SiameseSimilarity, build_siamese, pair_counts, pair_dls, paintings_by_subset,
                            siamese_pairs)
from artsim.training import siamese_learner, train_siamese

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


@pytest.fixture(scope='module')
def pairs(split_root):
    return siamese_pairs(Run(split_root), 'combined', 0.5, seed=0)


@pytest.fixture(scope='module')
def sim():
    net, stats = build_siamese('random', embed_dim=16, hidden=8, seed=3)
    return SiameseSimilarity(net, dict(input_size=SIZE, normalisation=stats, target='combined'), batch_size=4)


def images(root, n, kind='original'):
    m = pd.read_parquet(root / 'data/manifest.parquet')
    g = pd.read_parquet(root / 'generated/pairs.parquet')
    return [root / p for p in (m.path if kind == 'original' else g.generated_path)][:n]


def test_public_name():
    assert artsim.SiameseSimilarity is SiameseSimilarity
    from artsim import SiameseSimilarity as S
    assert S is SiameseSimilarity


def test_symmetry_is_exact(sim, demo_root):
    a, b = images(demo_root, 3), images(demo_root, 3, 'variant')
    for x, y in zip(a, b):
        assert sim.similarity(x, y) == sim.similarity(y, x)
    net = sim.model
    xa, xb = torch.rand(5, 3, SIZE, SIZE), torch.rand(5, 3, SIZE, SIZE)
    with torch.no_grad(): assert torch.equal(net(xa, xb), net(xb, xa))


def test_similarity_in_unit_interval_and_inputs_of_every_kind(sim, demo_root):
    from PIL import Image
    f, g = images(demo_root, 1)[0], images(demo_root, 1, 'variant')[0]
    ref = sim.similarity(f, g)
    assert 0 <= ref <= 1
    for x in (str(f), f.read_bytes(), Image.open(f), np.asarray(Image.open(f).convert('RGB'))):
        assert sim.similarity(x, g) == ref


def test_matrix_equals_pair_loop(sim, demo_root):
    A, B = images(demo_root, 3), images(demo_root, 4, 'variant')
    M = sim.similarity_matrix(A, B)
    assert M.shape == (3, 4) and M.dtype == np.float32
    loop = np.array([[sim.similarity(a, b) for b in B] for a in A])
    np.testing.assert_allclose(M, loop, atol=1e-5)
    np.testing.assert_allclose(sim.similarity_matrix(A), sim.similarity_matrix(A, A), atol=0)
    with pytest.raises(ValueError, match='an empty one'): sim.similarity_matrix([], B)  # the contract of tests/test_image_lists.py
    assert sim.embed(A).shape == (3, 16)


def test_save_load_round_trip_is_identical(sim, demo_root, tmp_path):
    A, B = images(demo_root, 3), images(demo_root, 3, 'variant')
    wf, cf = sim.save(tmp_path / 'models' / 'siamese')
    assert wf.name == 'siamese.safetensors' and cf.name == 'siamese.json'
    for path in (wf, cf, tmp_path / 'models' / 'siamese', tmp_path):  # either file, the stem, or the run directory
        again = SiameseSimilarity.load(path)
        np.testing.assert_array_equal(again.similarity_matrix(A, B), sim.similarity_matrix(A, B))
    assert json.loads(cf.read_text())['input_size'] == SIZE


def test_load_refuses_pickles(sim, tmp_path):
    sim.save(tmp_path / 'siamese')
    torch.save(sim.model.state_dict(), tmp_path / 'siamese.pth')
    with pytest.raises(ModelFileError, match='never unpickles'): SiameseSimilarity.load(tmp_path / 'siamese.pth')
    (tmp_path / 'model.pkl').write_bytes(pickle.dumps({'x': 1}))
    with pytest.raises(ModelFileError, match='never unpickles'): SiameseSimilarity.load(tmp_path / 'model.pkl')
    # a pickle under the right name: refused by its bytes, before anything is read from it
    shutil.copy(tmp_path / 'siamese.json', tmp_path / 'renamed.json')
    (tmp_path / 'renamed.safetensors').write_bytes(pickle.dumps(sim.model.state_dict()))
    with pytest.raises(ModelFileError, match='never unpickles'): SiameseSimilarity.load(tmp_path / 'renamed')
    torch.save(sim.model.state_dict(), tmp_path / 'renamed.safetensors')  # a torch.save zip archive
    with pytest.raises(ModelFileError, match='never unpickles'): SiameseSimilarity.load(tmp_path / 'renamed')


@pytest.mark.parametrize('change', ['input_size', 'embed_dim', 'mean', 'format', 'not json'])
def test_load_refuses_a_card_that_does_not_match(sim, tmp_path, change):
    wf, cf = sim.save(tmp_path / 'siamese')
    card = json.loads(cf.read_text())
    if change == 'input_size': card['input_size'] = 64
    elif change == 'embed_dim': card['architecture']['embed_dim'] = 32
    elif change == 'mean': card['normalisation']['mean'] = [0.5, 0.5, 0.5]
    elif change == 'format': card['format'] = 'something-else/1'
    cf.write_text('{not json' if change == 'not json' else json.dumps(card))
    with pytest.raises(ModelFileError): SiameseSimilarity.load(wf)


def test_load_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match='siamese.safetensors'): SiameseSimilarity.load(tmp_path / 'siamese')


def test_no_painting_in_two_splits(pairs):
    by = paintings_by_subset(pairs)
    assert set(by) == {'train', 'valid', 'test'}
    for s in by:
        for t in by:
            if s < t: assert not by[s] & by[t], (s, t)
    assert (pairs.split == pairs.variant_split).all() and (pairs.subset == pairs.split).all()
    assert pairs.attrs['straddling'] > 0  # the split above makes some negatives straddle, and they are left out
    counts = pair_counts(pairs)
    assert counts.loc['left out (straddling)', 'negative'] == pairs.attrs['straddling']
    train = pairs[pairs.subset == 'train']
    assert (train.kind == 'negative').sum() == round(0.5 * (train.kind == 'positive').sum())


def test_unknown_target_is_named(split_root):
    with pytest.raises(ValueError, match="target 'colour'.*combined"): siamese_pairs(Run(split_root), 'colour')
    assert siamese_pairs(Run(split_root), 'color').y.between(0, 1).all()


def small_learner(root, pairs, seed=0, n=None, **kw):
    "A learner on the first `n` training and `n // 2` validation pairs (all of them: None), random-init encoder, 32 px."
    net, stats = build_siamese('random', embed_dim=16, hidden=8, seed=seed)
    sub = pd.concat([pairs[pairs.subset == 'train'].head(n), pairs[pairs.subset == 'valid'].head(n and n // 2)], ignore_index=True)
    dls = pair_dls(Run(root), sub, SIZE, 16, stats, 'same', 'cpu', seed)
    return siamese_learner(dls, net, **kw)


def test_short_training_lowers_validation_loss(split_root, pairs):
    learn = small_learner(split_root, pairs)
    before = learn.validate()[0]
    with learn.no_bar(), learn.no_logging():
        h = train_siamese(learn, frozen_epochs=4, unfrozen_epochs=1, head_lr=3e-3, unfrozen_pairs=32, seed=0)
    after = learn.validate()[0]
    assert after < before, (before, after)
    assert set(h.phase) == {'frozen', 'unfrozen'} and h.attrs['best_valid_loss'] == pytest.approx(after, rel=1e-4)
    assert h.valid_loss.min() == pytest.approx(after, rel=1e-4)  # the weights kept are the best epoch's


def test_an_unfrozen_sample_smaller_than_a_batch_is_one_batch(split_root, pairs):
    "The training loader drops its incomplete last batch; a per-epoch sample below a batch must still train."
    learn = small_learner(split_root, pairs, n=40)   # 40 training pairs, 16 a batch: the last 8 are dropped
    assert learn.dls.train.drop_last and len(learn.dls.train.dataset) > 16
    with learn.no_bar(), learn.no_logging():
        h = train_siamese(learn, frozen_epochs=0, unfrozen_epochs=1, head_lr=3e-3, unfrozen_pairs=8, seed=0)
    assert h.phase.tolist() == ['unfrozen'] and np.isfinite(h.train_loss).all()


def test_same_seed_same_numbers(split_root, pairs):
    def once():
        learn = small_learner(split_root, pairs, seed=5, n=32, loss='huber')
        with learn.no_bar(), learn.no_logging():
            return train_siamese(learn, frozen_epochs=2, unfrozen_epochs=1, head_lr=1e-2, seed=5)
    a, b = once(), once()
    np.testing.assert_array_equal(a[['train_loss', 'valid_loss', 'mae', 'mse']].to_numpy(), b[['train_loss', 'valid_loss', 'mae', 'mse']].to_numpy())


def test_training_command_line_errors(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, '-m', 'artsim.training', *args], capture_output=True, text=True, timeout=300)
    r = cli('--run-dir', str(tmp_path), '--preset', 'tiny')
    assert r.returncode == 1 and 'Traceback' not in r.stderr, r.stderr
    assert r.stderr.strip().count('\n') == 0 and 'similarity/pairs.parquet' in r.stderr, r.stderr
    for args in (('--run-dir', str(tmp_path), '--preset', 'nope'), ('--run-dir', str(tmp_path), '-p', 'epochs=3'), ()):
        r = cli(*args)
        assert r.returncode == 2 and 'Traceback' not in r.stderr, (args, r.stderr)
    assert 'unknown parameter' in cli('--run-dir', str(tmp_path), '-p', 'epochs=3').stderr
