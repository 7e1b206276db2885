"""artsim.similarity: identity, symmetry, bounds, degenerate images, weights, the calibrated scale, the shipped
calibration, all-pairs scoring, and what the demo-like pairs show."""
import json, warnings
import numpy as np, pandas as pd, pytest
from PIL import Image
from demo_pairs import stage_p
from test_descriptors import count_calls
import artsim
import artsim.similarity as SIM
from artsim.runs import Run
from artsim.families import FAMILIES, HANDMADE, describe
from artsim.descriptors import feature_centre, feature_matrix, l2_normalise
from artsim.measures import (SEGMENT_SIMILARITY, combine, cosine_similarity, family_similarity, family_similarity_matrix,
                             histogram_intersection, map_similarity, rms_similarity)
from artsim.similarity import (calibrated, compare_described, describe_images, descriptor_similarity,
                               descriptor_similarity_matrix, descriptor_versions, load_calibration, negative_pairs,
                               null_pairs, run_descriptions, stage, strength_correlations)

KEYS = ['color', 'texture', 'shape', 'edges', 'semantic', 'combined', 'composition', 'style', 'content']
CAL = [f'{f}_calibrated' for f in FAMILIES] + ['combined']
RAW = list(FAMILIES) + ['combined_raw']
rng = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def quiet_random_init():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)  # the random-init ResNet50 of the demo calibration warns by design
        yield


def sim(a, b, **kw): return descriptor_similarity(a, b, **kw)


@pytest.fixture(scope='module')
def scores(described_root):
    run = Run(described_root)
    stage(run, stage_p('similarity'))
    return run.read_parquet('similarity/pairs.parquet')


def test_public_names():
    assert artsim.descriptor_similarity is descriptor_similarity
    assert artsim.descriptor_similarity_matrix is descriptor_similarity_matrix


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
    for calibration in ('default', None):
        s = sim(imgs[a], imgs[b], calibration=calibration)
        assert all(np.isfinite(v) and 0 <= v <= 1 for v in s.values()), s
        if a == b: assert all(abs(v - 1) < 1e-6 for v in s.values()), s


def test_segment_comparisons_are_bounded_symmetric_and_one_on_identity():
    n, d = 50, 64
    A, B = rng.random((n, d)), rng.random((n, d))
    A[0], B[1] = 0, 0  # zero rows: blank images
    H = lambda X: X / np.maximum(X.sum(1, keepdims=True), 1e-12)
    centre = l2_normalise(A).mean(0)
    for kind, f in SEGMENT_SIMILARITY.items():
        a, b = (H(A), H(B)) if kind == 'hist' else (A, B)
        args = (centre,) if kind == 'centred' else ()
        ab, ba, aa = f(a, b, *args), f(b, a, *args), f(a, a, *args)
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
    assert scores[RAW + CAL].notna().all().all() and scores[RAW + CAL].apply(lambda c: c.between(0, 1).all()).all()
    assert scores.pair_id.is_unique
    np.testing.assert_allclose(scores.combined, scores[CAL[:-1]].mean(axis=1))  # the mean of the calibrated families
    np.testing.assert_allclose(scores.combined_raw, scores[RAW[:-1]].mean(axis=1))


def test_stage_is_deterministic(scores, described_root):
    run = Run(described_root)
    stage(run, stage_p('similarity'))
    pd.testing.assert_frame_equal(run.read_parquet('similarity/pairs.parquet'), scores)


def test_every_family_falls_as_strength_rises(scores):
    rho = strength_correlations(scores)
    assert list(rho.index) == KEYS[:6]
    for cols in (None, RAW, CAL):
        rho = strength_correlations(scores, cols)
        assert (rho.rho < 0).all() and (rho.p < 0.01).all(), rho


def test_own_original_beats_another_painting(scores):
    pos, neg = scores[scores.kind == 'positive'], scores[scores.kind == 'negative']
    assert pos.combined.mean() > neg.combined.mean() + 0.2
    assert neg.combined.mean() < 0.15 and pos.combined.mean() > 0.3  # unrelated about 0 on the calibrated scale
    # per original: its own variants, on average, beat another painting's variant
    own = pos.groupby('original_id').combined.mean()
    other = neg.groupby('original_id').combined.mean()
    assert (own > other.reindex(own.index)).mean() >= 0.9


def test_weights_parameter_changes_only_the_combined_value_and_the_weighted_aspects(described_root, scores):
    run = Run(described_root)
    stage(run, stage_p('similarity', weights=dict(color=1)))
    w = run.read_parquet('similarity/pairs.parquet')
    np.testing.assert_allclose(w.combined, w.color_calibrated); np.testing.assert_allclose(w.combined_raw, w.color)
    np.testing.assert_allclose(w['style'], w.color_calibrated)   # the aspects weigh their families as combined does
    # composition and content: none of their families weighs anything, so they keep their families equally
    cols = ['combined', 'combined_raw', 'style']
    pd.testing.assert_frame_equal(w.drop(columns=cols), scores.drop(columns=cols))
    stage(run, stage_p('similarity'))  # leave the run as the other tests expect it


# ---- the calibrated scale

def test_the_stage_writes_its_calibration(scores, described_root):
    run = Run(described_root)
    cal = load_calibration(run)
    assert cal.versions == run.read_json('features/versions.json')
    assert cal.source['run'] == str(run.path) and cal.source['n_pairs'] == {'painting': 40 * 39 // 2, 'variant': 2500}  # every painting pair there is
    assert cal.settings == run.read_json('features/settings.json')
    np.testing.assert_array_equal(cal.centres['semantic'], feature_centre(run, 'semantic'))
    for f in FAMILIES:  # the calibrated column is the calibration of the raw one
        np.testing.assert_allclose(scores[f'{f}_calibrated'], calibrated(scores[f], cal.families[f]['anchor']))


def test_calibration_is_monotone_keeps_identity_and_zeroes_a_typical_unrelated_pair():
    cal = load_calibration('default')
    x = np.linspace(0, 1, 1001)
    for f, s in cal.families.items():
        y = cal.apply(f, x)
        assert (np.diff(y) >= 0).all() and (np.diff(y[x > s['anchor']]) > 0).all(), f
        assert y[-1] == 1 and cal.apply(f, s['anchor']) == 0 and cal.apply(f, s['q05']) == 0, f
        assert 0 < cal.apply(f, s['q95']) < 1, f


def test_unrelated_demo_paintings_are_near_zero_identical_images_one(demo_root):
    paintings = sorted((demo_root / 'data/images').rglob('*.png'))
    A, B = paintings[::2][:12], paintings[1::2][:12]  # 12 x 12 pairs of distinct paintings, genres mixed
    m = descriptor_similarity_matrix(A, B)
    assert all(v.shape == (12, 12) for v in m.values())
    assert m['combined'].mean() < 0.15, m['combined'].mean()
    for f in FAMILIES: assert np.median(m[f]) < 0.2, (f, np.median(m[f]))
    same = descriptor_similarity_matrix(A[:3], A[:3])
    for k in KEYS: np.testing.assert_allclose(np.diag(same[k]), 1, atol=1e-6)
    np.testing.assert_allclose(same['combined'], same['combined'].T, atol=1e-6)


def test_the_centred_semantic_family_spreads(described_root, scores):
    run = Run(described_root)
    neg = scores[scores.kind == 'negative']
    paths, X = feature_matrix(run, 'semantic')
    uncentred = cosine_similarity(X[paths.get_indexer(neg.original_path)], X[paths.get_indexer(neg.generated_path)])
    assert uncentred.min() > 0.99  # the problem: random-init features all point one way
    assert neg.semantic.std() > 0.05 and neg.semantic.max() - neg.semantic.min() > 0.3
    pos = scores[scores.kind == 'positive']
    assert pos.semantic_calibrated.mean() > neg.semantic_calibrated.mean() + 0.2


def test_matrix_equals_the_pair_loop_and_describes_each_image_once(demo_root, monkeypatch):
    A = [demo_root / 'data/images/genre0/g0-000.png', demo_root / 'generated/g0-000_p0_040.png', demo_root / 'data/images/genre3/g3-001.png']
    B = [demo_root / 'data/images/genre3/g3-001.png', np.asarray(Image.open(demo_root / 'generated/g0-000_p1_080.png'))]
    pairs = [[sim(a, b) for b in B] for a in A]
    loop = {k: np.array([[s[k] for s in row] for row in pairs]) for k in KEYS}
    calls = count_calls(monkeypatch, SIM)
    m = descriptor_similarity_matrix(A, B)
    assert calls == {'describe': len(A) + len(B), 'encode': len(A) + len(B)}  # N + M descriptor computations for N x M values
    for k in KEYS:
        assert m[k].shape == (3, 2)
        np.testing.assert_allclose(m[k], loop[k], atol=1e-5, err_msg=k)  # float32 ResNet50 batches differ in the last digits
    np.testing.assert_allclose(m['combined'][2, 0], 1, atol=1e-6)  # the same painting in both lists
    DA, DB = describe_images(A), describe_images(B)
    assert len(DA) == 3 and DA.names[0] == str(A[0]) and DB.names[1] == '#1'
    one = compare_described(DA[1:2], DB)  # one image against many
    np.testing.assert_allclose(one['combined'], compare_described(DA, DB)['combined'][1:2], atol=1e-12)


def test_family_matrix_equals_paired_rows_with_small_blocks(described_root):
    run = Run(described_root)
    for f in FAMILIES:
        paths, X = feature_matrix(run, f)
        A, B, c = X[:7], X[10:15], feature_centre(run, f)
        M = family_similarity_matrix(f, A, B, c, block=64)
        pairs = family_similarity(f, np.repeat(A, len(B), 0), np.tile(B, (len(A), 1)), c).reshape(len(A), len(B))
        np.testing.assert_allclose(M, pairs, atol=1e-12, err_msg=f)


def test_run_descriptions_reproduce_the_stage_values(described_root, scores):
    run = Run(described_root)
    pos = scores[scores.kind == 'positive'].head(25)
    D_o, D_g = run_descriptions(run, pos.original_path), run_descriptions(run, pos.generated_path)
    m = compare_described(D_o, D_g, calibration=run)
    for f in FAMILIES: np.testing.assert_allclose(np.diag(m[f]), pos[f'{f}_calibrated'], atol=1e-9, err_msg=f)
    np.testing.assert_allclose(np.diag(m['combined']), pos.combined, atol=1e-9)
    # and new images described with the run's calibration (its settings) land on the same values
    row = pos.iloc[3]
    s = descriptor_similarity(run.resolve(row.original_path), run.resolve(row.generated_path), calibration=described_root)
    np.testing.assert_allclose([s[f] for f in FAMILIES] + [s['combined']], row[CAL].to_numpy(float), atol=1e-5)
    with pytest.raises(KeyError, match='no descriptors'): run_descriptions(run, ['nope.png'])


def test_settings_that_do_not_match_the_calibration_are_refused(demo_root, monkeypatch):
    a, b = demo_root / 'data/images/genre0/g0-000.png', demo_root / 'generated/g0-000_p1_060.png'
    with pytest.raises(ValueError, match='color-v1-s64.*calibration=None'): sim(a, b, size=64)
    import torchvision
    monkeypatch.setattr(torchvision.models._api.WeightsEnum, 'get_state_dict', lambda *a, **k: (_ for _ in ()).throw(OSError('offline')))
    from artsim.backbone import WeightsUnavailable
    with pytest.raises(WeightsUnavailable, match='resnet50-11ad3fa6.pth'): sim(a, b, semantic_weights='imagenet', seed=0)  # never a silent fallback
    raw = sim(a, b, calibration=None, size=64, semantic_size=64)  # raw values take any settings
    assert set(raw) == set(KEYS) and all(0 <= v <= 1 for v in raw.values())
    with pytest.raises(TypeError, match='list of images'): descriptor_similarity_matrix(str(a), [b])
    with pytest.raises(ValueError, match='an empty one'): descriptor_similarity_matrix([], [b])


def test_bad_calibration_inputs_fail_clearly(tmp_path, demo_root):
    a = demo_root / 'data/images/genre0/g0-000.png'
    with pytest.raises(FileNotFoundError, match='does not exist'): sim(a, a, calibration=tmp_path / 'missing.json')
    (tmp_path / 'bad.json').write_text('not json')
    with pytest.raises(ValueError, match='not an artsim calibration'): sim(a, a, calibration=tmp_path / 'bad.json')
    (tmp_path / 'other.json').write_text('{"x": 1}')
    with pytest.raises(ValueError, match='not an artsim calibration'): load_calibration(tmp_path / 'other.json')
    with pytest.raises(FileNotFoundError, match="run the 'similarity' chapter"): load_calibration(tmp_path)


def test_null_pairs_are_unrelated_distinct_and_seeded(described_root):
    images = SIM.run_images(Run(described_root))
    pairs = null_pairs(images, 1000, seed=5)
    assert pairs.kind.value_counts().to_dict() == {'painting': 500, 'variant': 500}
    src = dict(zip(images.path, images.source))
    assert (pairs.a.map(src) != pairs.b.map(src)).all() and not pairs.duplicated().any()
    assert set(pairs.a) <= set(images.path[images.role == 'original'])
    pd.testing.assert_frame_equal(pairs, null_pairs(images, 1000, seed=5))
    assert len(null_pairs(images, 10 ** 6)) == 40 * 39 // 2 + 40 * 320 - 320  # every unrelated pair, none twice


# ---- the calibration shipped with the package

def test_the_shipped_calibration_matches_the_descriptors():
    "Fails when a family's descriptor version changes and artsim/calibration.json was not regenerated (make calibration)."
    shipped = load_calibration('default')
    assert shipped.versions == descriptor_versions(shipped.settings)
    assert shipped.source['n_pairs'] == {'painting': 2500, 'variant': 2500} and set(shipped.centres) == {'semantic'}


def test_a_descriptor_version_change_is_caught(monkeypatch):
    import dataclasses
    shipped = load_calibration('default')
    monkeypatch.setitem(FAMILIES, 'color', dataclasses.replace(FAMILIES['color'], version=FAMILIES['color'].version + 1))
    assert shipped.versions != descriptor_versions(shipped.settings)
    with pytest.raises(ValueError, match='color-v2-s128'): shipped.check(descriptor_versions(shipped.settings))


# The shipped calibration (artsim/calibration.json) against what `make calibration` computes: `make check-claims` checks
# it on the demo run that CI makes anyway (artsim.claims.demo_calibration_check: the run's chapters 00-02 are the
# calibration's), rather than a second demo run of chapters 00-02 here.


def test_a_run_of_some_families_calibrates_and_scores_those(tmp_path):
    from demo_pairs import make_run
    from artsim.descriptors import stage as describe_stage
    root = make_run(tmp_path / 'run', n_genres=3, n_per_genre=2, size=64, strengths=(0.3, 0.7), prompts={'p0': 'x'})
    run = Run(root)
    describe_stage(run, stage_p('descriptors', families=['color', 'semantic'], size=64, semantic_size=64, n_jobs=1))
    stage(run, stage_p('similarity', calibration_pairs=50))
    cal = load_calibration(run)
    assert list(cal.families) == ['color', 'semantic'] and cal.settings['size'] == 64
    scores = run.read_parquet('similarity/pairs.parquet')
    assert {'color', 'semantic', 'color_calibrated', 'semantic_calibrated', 'combined', 'combined_raw'} <= set(scores) and 'shape' not in scores
    a, b = root / 'data/images/genre0/g0-000.png', root / 'generated/g0-000_p0_030.png'
    s = sim(a, b, calibration=root)
    assert list(s) == ['color', 'semantic', 'combined', 'style', 'content']   # the aspects whose families are there
    row = scores[scores.generated_path == 'generated/g0-000_p0_030.png'].iloc[0]
    np.testing.assert_allclose([s['color'], s['semantic'], s['combined']], row[['color_calibrated', 'semantic_calibrated', 'combined']].to_numpy(float), atol=1e-5)
