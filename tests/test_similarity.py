"""artsim.similarity: identity, symmetry, bounds, degenerate images, weights, and what the demo-like pairs show."""
import warnings
import numpy as np, pandas as pd, pytest
from PIL import Image
from demo_pairs import stage_p
import artsim
from artsim.runs import Run
from artsim.descriptors import FAMILIES, HANDMADE, describe
from artsim.similarity import (SEGMENT_SIMILARITY, combine, cosine_similarity, descriptor_similarity, family_similarity,
                               histogram_intersection, map_similarity, negative_pairs, rms_similarity, stage,
                               strength_correlations)

KEYS = ['color', 'texture', 'shape', 'edges', 'semantic', 'combined']
OPTS = dict(semantic_weights='random', size=64, semantic_size=64)
rng = np.random.default_rng(0)


def sim(a, b, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # random-init ResNet50 warns by design
        return descriptor_similarity(a, b, **(OPTS | kw))


@pytest.fixture(scope='module')
def scores(described_root):
    run = Run(described_root)
    stage(run, stage_p('similarity'))
    return run.read_parquet('similarity/pairs.parquet')


def test_public_name():
    assert artsim.descriptor_similarity is descriptor_similarity


def test_identity_symmetry_bounds(demo_root):
    a, b = demo_root / 'data/images/genre0/g0-000.png', demo_root / 'generated/g0-000_p1_060.png'
    same = sim(a, a)
    assert list(same) == KEYS and all(abs(v - 1) < 1e-6 for v in same.values()), same
    ab, ba = sim(a, b), sim(b, a)
    assert all(0 <= v <= 1 for v in ab.values()) and ab['combined'] < 0.99
    np.testing.assert_allclose([ab[k] for k in KEYS], [ba[k] for k in KEYS], atol=1e-6)


def test_inputs_of_every_kind(demo_root):
    f = demo_root / 'data/images/genre2/g2-001.png'
    g = demo_root / 'generated/g2-001_p0_040.png'
    ref = sim(f, g)
    for a in (str(f), f.read_bytes(), Image.open(f), np.asarray(Image.open(f).convert('RGB'))):
        np.testing.assert_allclose(list(sim(a, g).values()), list(ref.values()), atol=1e-6)


@pytest.mark.parametrize('a,b', [('black', 'black'), ('black', 'white'), ('pixel', 'huge'), ('gray', 'black'), ('noise', 'white')])
def test_degenerate_images_give_finite_bounded_values(a, b):
    imgs = dict(black=np.zeros((30, 40, 3), np.uint8), white=np.full((30, 40, 3), 255, np.uint8),
                pixel=np.full((1, 1, 3), 40, np.uint8), huge=rng.integers(0, 256, (2000, 3000, 3), dtype=np.uint8),
                gray=rng.integers(0, 256, (50, 50), dtype=np.uint8), noise=rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    s = sim(imgs[a], imgs[b])
    assert all(np.isfinite(v) and 0 <= v <= 1 for v in s.values()), s
    if a == b: assert all(abs(v - 1) < 1e-6 for v in s.values()), s


def test_segment_comparisons_are_bounded_symmetric_and_one_on_identity():
    n, d = 50, 64
    A, B = rng.random((n, d)), rng.random((n, d))
    A[0], B[1] = 0, 0  # zero rows: blank images
    H = lambda X: X / np.maximum(X.sum(1, keepdims=True), 1e-12)
    for kind, f in SEGMENT_SIMILARITY.items():
        a, b = (H(A), H(B)) if kind == 'hist' else (A, B)
        ab, ba, aa = f(a, b), f(b, a), f(a, a)
        assert ab.shape == (n,) and np.all((0 <= ab) & (ab <= 1)), kind
        np.testing.assert_allclose(ab, ba, atol=1e-12, err_msg=kind)
        np.testing.assert_allclose(aa, 1, atol=1e-9, err_msg=kind)


def test_family_similarity_of_real_vectors(demo_root):
    d = [describe(demo_root / f'data/images/genre{g}/g{g}-000.png') for g in range(4)]
    for f in HANDMADE:
        A = np.stack([x[f] for x in d]); B = A[::-1]
        s = family_similarity(f, A, B)
        assert np.all((0 <= s) & (s <= 1)) and np.allclose(s, s[::-1])
        np.testing.assert_allclose(family_similarity(f, A, A), 1, atol=1e-9)


def test_combine_weights():
    s = dict(color=np.array([1., 0.]), shape=np.array([.5, .5]))
    np.testing.assert_allclose(combine(s), [.75, .25])
    np.testing.assert_allclose(combine(s, dict(color=3, shape=1)), [.875, .125])
    np.testing.assert_allclose(combine(s, dict(color=1, texture=5)), [1, 0])  # absent families drop out
    with pytest.raises(ValueError, match='non-negative'): combine(s, dict(color=-1, shape=1))
    with pytest.raises(ValueError, match='no positive weight'): combine(s, dict(edges=1))
    with pytest.raises(ValueError, match='unknown families'): combine(s, dict(colour=1, shape=1))


def test_negative_pairs_never_pair_a_painting_with_its_own_variant(described_root):
    from artsim.generation import read_pairs
    pairs = read_pairs(Run(described_root))
    neg = negative_pairs(pairs, 3, seed=7)
    assert len(neg) == 3 * pairs.original_id.nunique() and (neg.original_id != neg.variant_of).all()
    pd.testing.assert_frame_equal(neg, negative_pairs(pairs, 3, seed=7))
    assert not neg.equals(negative_pairs(pairs, 3, seed=8))


def test_stage_scores_every_pair_in_bounds(scores):
    assert len(scores) == 320 + 40 and set(scores.kind) == {'positive', 'negative'}
    assert scores[KEYS].notna().all().all() and scores[KEYS].apply(lambda c: c.between(0, 1).all()).all()
    assert scores.pair_id.is_unique


def test_stage_is_deterministic(scores, described_root):
    run = Run(described_root)
    stage(run, stage_p('similarity'))
    pd.testing.assert_frame_equal(run.read_parquet('similarity/pairs.parquet'), scores)


def test_every_family_falls_as_strength_rises(scores):
    rho = strength_correlations(scores)
    assert list(rho.index) == KEYS
    assert (rho.rho < 0).all() and (rho.p < 0.01).all(), rho


def test_own_original_beats_another_painting(scores):
    pos, neg = scores[scores.kind == 'positive'], scores[scores.kind == 'negative']
    assert pos.combined.mean() > neg.combined.mean() + 0.05
    # per original: its own variants, on average, beat another painting's variant
    own = pos.groupby('original_id').combined.mean()
    other = neg.groupby('original_id').combined.mean()
    assert (own > other.reindex(own.index)).mean() >= 0.9


def test_weights_parameter_changes_only_the_combined_value(described_root, scores):
    run = Run(described_root)
    stage(run, stage_p('similarity', weights=dict(color=1)))
    w = run.read_parquet('similarity/pairs.parquet')
    np.testing.assert_allclose(w.combined, w.color)
    pd.testing.assert_frame_equal(w.drop(columns='combined'), scores.drop(columns='combined'))
    stage(run, stage_p('similarity'))  # leave the run as the other tests expect it
