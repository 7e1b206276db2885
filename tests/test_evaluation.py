"""artsim.evaluation: metrics with known answers, the painting bootstrap, the baselines' matrices against pair loops,
and the whole evaluation on a small run with a stand-in network (a test double, not a trained model)."""
import json, math, warnings
import numpy as np, pandas as pd, pytest
from scipy import stats
from demo_pairs import make_run, stage_p
from artsim.runs import Run
from artsim.descriptors import FAMILIES
from artsim.similarity import compare_described, load_calibration, run_descriptions
from artsim.evaluation import (FIGURES, PROVENANCE_FIELDS, PaintingBootstrap, auc_blocks, average_precision, check_descriptor_scores,
                               descriptor_scores, evaluate_run, evaluation_set, hash_similarity, headline_table, hypothesis,
                               load_siamese, own_ranks, pearson, perceptual_hash, recall_at_k, regression_metrics, report_markdown,
                               resampled_auc, roc_auc, siamese_scores, spearman, ssim_matrix, ssim_similarity, strength_trend,
                               weighted_means, weighted_ranks, write_report)

rng = np.random.default_rng(0)


# --- metrics with known answers -------------------------------------------------------------------------------------

def test_regression_metrics_perfect_constant_and_known():
    y = np.array([.2, .4, .6, .8])
    assert regression_metrics(y, y) == dict(mse=0, mae=0, rmse=0, r2=1, pearson=1, spearman=1)
    m = regression_metrics(y, np.full(4, .5))  # the test mean: R² 0, no correlation defined
    assert m['r2'] == pytest.approx(0, abs=1e-12) and m['mae'] == pytest.approx(.2) and m['mse'] == pytest.approx(.05)
    assert math.isnan(m['pearson']) and math.isnan(m['spearman'])
    m = regression_metrics(y, np.full(4, .9))  # a constant worse than the mean: negative R²
    assert m['r2'] < 0 and m['mae'] == pytest.approx(.4)
    m = regression_metrics([0., 1, 2, 3], [1., 1, 3, 3])
    assert (m['mse'], m['mae'], m['r2']) == pytest.approx((.5, .5, .6))
    assert m['rmse'] == pytest.approx(math.sqrt(.5))


@pytest.mark.parametrize('y,pred,msg', [([1., 2], [1.], 'one length'), ([], [], 'no pairs'), ([1., np.nan], [1., 1], 'finite')])
def test_regression_metrics_refuse_bad_input(y, pred, msg):
    with pytest.raises(ValueError, match=msg): regression_metrics(np.array(y), np.array(pred))


def test_weights_equal_repeated_rows():
    for _ in range(20):
        n = 12
        y, p, w = rng.random(n).round(1), rng.random(n).round(1), rng.integers(0, 4, n)
        if (w > 0).sum() < 3: continue
        Y, P = np.repeat(y, w), np.repeat(p, w)
        for k, v in regression_metrics(y, p, w).items():
            ref = regression_metrics(Y, P)[k]
            assert (math.isnan(v) and math.isnan(ref)) or v == pytest.approx(ref), k
        assert spearman(y, p, w) == pytest.approx(stats.spearmanr(Y, P)[0]) or np.ptp(Y) == 0 or np.ptp(P) == 0
        assert roc_auc(p, y > .5, w) == pytest.approx(roc_auc(P, Y > .5), nan_ok=True)


def test_weighted_ranks_are_the_average_ranks_of_the_repeated_sample():
    x, w = np.array([3., 1, 3, 2, 5]), np.array([2, 1, 1, 0, 3])
    X = np.repeat(x, w)
    ranks = dict(zip(X, stats.rankdata(X)))  # equal values share one average rank
    np.testing.assert_allclose(weighted_ranks(x, w)[w > 0], [ranks[v] for v in x[w > 0]])
    np.testing.assert_allclose(weighted_ranks(x), stats.rankdata(x))
    assert math.isnan(pearson([1., 1, 1], [1., 2, 3]))


def test_roc_auc_known_values():
    assert roc_auc([.9, .8, .7, .1], [1, 0, 1, 0]) == .75
    assert roc_auc([1, 1, 0, 0], [1, 1, 0, 0]) == 1 and roc_auc([0, 0, 1, 1], [1, 1, 0, 0]) == 0
    assert roc_auc(np.full(6, .3), [1, 0, 1, 0, 1, 0]) == .5  # all tied: chance
    assert math.isnan(roc_auc([.1, .2], [0, 0]))


def test_auc_blocks_give_the_weighted_auc_of_any_resample():
    q, k = 30, 6
    painting = rng.integers(0, k, q)
    S = rng.random((q, 9)).round(2)  # rounded: ties
    own = np.zeros_like(S, bool); own[np.arange(q), painting] = True
    S[own] += .2
    C, P, N = auc_blocks(S, own, painting, k)
    counts = rng.integers(0, 3, (5, k)).astype(float)
    for m, got in zip(counts, resampled_auc(C, P, N, counts)):
        w = np.broadcast_to(m[painting][:, None], S.shape)
        assert got == pytest.approx(roc_auc(S, own, w)) if w[own].sum() and w[~own].sum() else math.isnan(got)
    assert resampled_auc(C, P, N, np.ones(k))[0] == pytest.approx(roc_auc(S, own))


def test_recall_and_map_known_values_and_ties():
    S = np.array([[.9, .1, .5], [.2, .8, .3], [.4, .6, .1]])
    truth = [0, 0, 2]
    assert own_ranks(S, truth)[0].tolist() == [0, 2, 2]
    assert recall_at_k(S, truth, 1).tolist() == [1, 0, 0] and recall_at_k(S, truth, 2).tolist() == [1, 0, 0]
    np.testing.assert_allclose(average_precision(S, truth), [1, 1 / 3, 1 / 3])
    T = np.full((1, 4), .5)  # everything ties: the own painting is equally likely at each rank
    np.testing.assert_allclose([recall_at_k(T, [2], k)[0] for k in (1, 2, 3, 4)], [.25, .5, .75, 1])
    np.testing.assert_allclose(average_precision(T, [2]), [(1 + 1 / 2 + 1 / 3 + 1 / 4) / 4])
    with pytest.raises(ValueError, match='finite'): own_ranks(np.array([[np.nan, 1.]]), [0])


def test_strength_trend_known_values():
    t = pd.DataFrame(dict(original_id=['a'] * 3 + ['b'] * 3 + ['c'], prompt_id='x', strength=[.2, .5, .8, .2, .5, .8, .5],
                          up=[.1, .2, .3, .1, .2, .3, .5], flat=.4, down=[.9, .5, .1, .8, .7, .6, .5]))
    tr = strength_trend(t, ['up', 'flat', 'down'])
    assert tr.original_id.tolist() == ['a', 'b']  # c has one strength: no trend to measure
    assert tr.up.tolist() == [-1, -1] and tr.flat.tolist() == [0, 0] and tr.down.tolist() == [1, 1]


# --- the painting bootstrap ------------------------------------------------------------------------------------------

def test_bootstrap_is_seeded_resamples_paintings_and_contains_the_estimate():
    ids = np.repeat([f'p{i}' for i in range(15)], 4)
    x = np.repeat(rng.normal(0, 1, 15), 4) + rng.normal(0, .1, 60)
    stat = lambda w: np.average(x, weights=w)
    a, b = PaintingBootstrap(ids, n=400, seed=3), PaintingBootstrap(ids, n=400, seed=3)
    np.testing.assert_array_equal(a.counts, b.counts)
    assert not np.array_equal(a.counts, PaintingBootstrap(ids, n=400, seed=4).counts)
    r = a.estimate(stat, ids)
    assert r == b.estimate(stat, ids) and r['lo'] <= r['value'] <= r['hi'] and r['value'] == pytest.approx(x.mean())
    W = a.weights(ids)
    assert (W.reshape(400, 15, 4) == W.reshape(400, 15, 4)[..., :1]).all()  # a painting's rows are drawn together
    assert (W.sum(1) == 60).all()
    np.testing.assert_allclose(weighted_means(W, x), [stat(w) for w in W])
    with pytest.raises(KeyError, match='outside the bootstrap'): a.weights(['nobody'])
    with pytest.raises(ValueError, match='no paintings'): PaintingBootstrap([])


def test_hypothesis_on_hand_made_scores():
    from artsim.evaluation import EvaluationSet
    paintings, strengths = list('abcdefg'), [.25, .5, .75]
    queries = pd.DataFrame([dict(path=f'{o}-{s}', painting=o, prompt_id='x', strength=s, genre='g') for o in paintings for s in strengths])
    es = EvaluationSet(pd.DataFrame(dict(id=paintings + ['z'], path='', genre='g')), queries, None, None, 0)
    es.pairs = queries.rename(columns=dict(painting='original_id')).assign(kind='positive', q=np.arange(len(queries)), g=es.truth)
    perfect = np.where(es.own, 2 - queries.strength.to_numpy()[:, None], rng.random(es.own.shape))
    h = hypothesis(es, dict(perfect=perfect, noise=rng.random(es.own.shape)), PaintingBootstrap(paintings, 300), reference='perfect')
    assert all(h['measures']['perfect'][c]['value'] == 1 for c in h['criteria'])
    assert h['versus']['noise']['recall@1']['verdict'] == 'worse' and h['versus']['noise']['auc']['verdict'] == 'worse'
    assert h['chance']['recall@5'] == 5 / 8 and h['gallery'] == 8 and h['groups'] == 7


# --- baselines: bulk comparisons equal pair-by-pair ones -------------------------------------------------------------

@pytest.fixture(scope='module')
def eval_run(tmp_path_factory):
    "A small run through chapters 00-03 with a test split: 4 genres x 4 paintings at 64 px, 2 prompts x 3 strengths."
    root = make_run(tmp_path_factory.mktemp('evalrun'), n_genres=4, n_per_genre=4, size=64, strengths=(.2, .5, .8))
    m = pd.read_parquet(root / 'data/manifest.parquet')
    m['split'] = np.tile(['train', 'train', 'valid', 'test'], 4)
    m.to_parquet(root / 'data/manifest.parquet', index=False)
    g = pd.read_parquet(root / 'generated/pairs.parquet')  # what 01_generation records about the stand-in
    g.assign(generator='standin', model_id='artsim/classical-standin', revision='test').to_parquet(root / 'generated/pairs.parquet', index=False)
    from artsim.descriptors import stage as describe_stage
    from artsim.similarity import stage as similarity_stage
    run = Run(root)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # random-init ResNet50 warns by design
        describe_stage(run, stage_p('descriptors', 'tiny', size=64, semantic_size=64))
    similarity_stage(run, stage_p('similarity', 'tiny', negatives_per_original=2))
    return run


def test_evaluation_set_keeps_only_test_pairs(eval_run):
    es = evaluation_set(eval_run)
    assert len(es.gallery) == 4 and len(es.queries) == 4 * 6 and es.queries.painting.nunique() == 4
    assert (es.pairs.split == 'test').all() and (es.pairs.variant_split == 'test').all()
    assert es.own.sum(1).tolist() == [1] * 24 and es.straddling > 0
    assert (es.gallery.id[es.pairs.g].to_numpy() == es.pairs.original_id.to_numpy()).all()
    assert len(evaluation_set(eval_run, max_paintings=2, seed=1).gallery) == 2


def test_evaluation_set_without_test_pairs_says_what_to_do(tmp_path, eval_run):
    import shutil
    shutil.copytree(eval_run.path, tmp_path / 'r')
    s = pd.read_parquet(tmp_path / 'r/similarity/pairs.parquet')
    s.assign(split='train', variant_split='train').to_parquet(tmp_path / 'r/similarity/pairs.parquet', index=False)
    with pytest.raises(ValueError, match='test_pct'): evaluation_set(Run(tmp_path / 'r'))


def test_ssim_and_hash_matrices_equal_pair_loops(eval_run):
    es = evaluation_set(eval_run)
    Q, G = [eval_run.resolve(x) for x in es.queries.path[:4]], [eval_run.resolve(x) for x in es.gallery.path]
    np.testing.assert_allclose(ssim_matrix(Q, G, 32), [[ssim_similarity(a, b, 32) for b in G] for a in Q])
    np.testing.assert_allclose(np.diag(ssim_matrix(G, G, 32)), 1)
    HQ, HG = np.stack([perceptual_hash(x) for x in Q]), np.stack([perceptual_hash(x) for x in G])
    np.testing.assert_array_equal(hash_similarity(HQ, HG), [[np.mean(a == b) for b in HG] for a in HQ])
    with pytest.raises(ValueError, match='7 x 7'): ssim_matrix(Q, G, 4)


def test_perceptual_hash_is_robust_to_small_changes_not_to_other_images():
    from artsim.data import demo_painting
    x, other = np.asarray(demo_painting('landscape', 1, 128)), np.asarray(demo_painting('cityscape', 2, 128))
    brighter = np.clip(x.astype(int) + 12, 0, 255).astype(np.uint8)
    h = lambda im: perceptual_hash(im)[None]
    assert hash_similarity(h(x), h(x))[0, 0] == 1 and perceptual_hash(x).shape == (64,)
    assert hash_similarity(h(x), h(brighter))[0, 0] > .9 > .7 > hash_similarity(h(x), h(other))[0, 0]


def test_descriptor_scores_reproduce_chapter_03(eval_run):
    es = evaluation_set(eval_run)
    scores, info = descriptor_scores(eval_run, es)
    assert set(scores) == {*(f'{f}_calibrated' for f in FAMILIES), 'combined', 'combined_raw'} and set(info) == set(scores)
    for m, S in scores.items():
        assert S.shape == (len(es.queries), len(es.gallery))
        np.testing.assert_allclose(S[es.pairs.q, es.pairs.g], es.pairs[m], atol=1e-6, err_msg=m)
    check_descriptor_scores(es, scores)
    with pytest.raises(ValueError, match='rerun 03_similarity'): check_descriptor_scores(es, dict(scores, combined=scores['combined'] * .9))


# --- the whole evaluation, with a stand-in network (test double) -----------------------------------------------------

class HashNet:
    "Test double for the Siamese network: embeds each image once (a perceptual hash) and compares embeddings in bulk."
    def __init__(self): self.embedded = 0
    def embed(self, images):
        self.embedded += len(images)
        return np.stack([perceptual_hash(x) for x in images])
    def similarity(self, a, b): return float(np.mean(perceptual_hash(a) == perceptual_hash(b)))
    def similarity_matrix(self, A, B): return hash_similarity(self.embed(A), self.embed(B))


class OracleNet:
    "Test double that returns chapter 03's combined value exactly: a network with no error."
    def __init__(self, run): self.run = run
    def similarity_matrix(self, A, B):
        described = [run_descriptions(self.run, [self.run.rel(x) for x in X]) for X in (A, B)]
        return compare_described(*described, calibration=load_calibration(self.run))['combined']


def test_retrieval_through_similarity_matrix_equals_a_pair_loop(eval_run):
    es, net = evaluation_set(eval_run), HashNet()
    S = siamese_scores(net, eval_run, es)
    assert net.embedded == len(es.queries) + len(es.gallery)  # each image embedded once
    loop = np.array([[net.similarity(eval_run.resolve(q), eval_run.resolve(g)) for g in es.gallery.path] for q in es.queries.path])
    np.testing.assert_array_equal(S, loop)
    boot = PaintingBootstrap(es.queries.painting, 100)
    a, b = hypothesis(es, dict(siamese=S), boot), hypothesis(es, dict(siamese=loop), boot)
    assert a['measures'] == b['measures']


def params(**over):
    from fastcore.basics import AttrDict
    return AttrDict(stage='evaluation', preset='tiny', **(stage_p('evaluation', 'tiny').__dict__ | dict(n_bootstrap=100, resnet_weights=['random']) | over))


@pytest.fixture(scope='module')
def evaluated(eval_run):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        ev = evaluate_run(eval_run, params(), OracleNet(eval_run), dict(target='combined', encoder_weights='random (test)', input_size=32))
    return eval_run, ev


def test_no_report_without_a_recorded_generator(eval_run, tmp_path):
    import shutil
    shutil.copytree(eval_run.path, tmp_path / 'r')
    run = Run(tmp_path / 'r')
    run.read_parquet('generated/pairs.parquet').drop(columns='generator').to_parquet(run.resolve('generated/pairs.parquet'), index=False)
    with warnings.catch_warnings(), pytest.raises(ValueError, match='generator missing'):
        warnings.simplefilter('ignore')
        evaluate_run(run, params(), OracleNet(run), dict(target='combined', encoder_weights='random (test)', input_size=32))
    assert run.resolve('metrics/eval.json').exists() and not run.resolve('report.md').exists()


def test_evaluate_run_writes_strict_json_figures_and_report(evaluated):
    run, ev = evaluated
    text = run.resolve('metrics/eval.json').read_text()
    assert 'NaN' not in text and json.loads(text) == ev  # strict JSON, and what the stage returned is what it wrote
    for f in FIGURES: assert run.resolve(f).stat().st_size > 1000, f
    assert ev['counts']['own_pairs'] == 24 and ev['counts']['test_paintings'] == 4
    assert set(PROVENANCE_FIELDS) <= set(ev['provenance']) and ev['provenance']['data_source'] == 'test'
    report = run.resolve('report.md').read_text().splitlines()
    assert report[2].startswith('**Data:**') and report[2].index('**Generator:**') > 0
    assert any('Not a WikiArt/SDXL result' in line for line in report[:6])


def test_a_network_with_no_error_scores_perfectly_and_ties_its_teacher(evaluated):
    _, ev = evaluated
    net = ev['agreement']['metrics']['siamese']
    assert net['mse']['value'] == pytest.approx(0, abs=1e-12) and net['r2']['value'] == pytest.approx(1)
    assert ev['agreement']['metrics']['training mean']['mse']['value'] > 1e-4
    vs = ev['hypothesis']['versus']['combined']  # the oracle is the combined value: identical on every criterion
    assert all(v['value'] == pytest.approx(0, abs=1e-9) and v['verdict'] == 'no clear difference' for v in vs.values())
    table = headline_table(ev)
    assert table.measure.iloc[0] == 'Siamese network' and table.measure.iloc[-1] == 'chance'
    for m in ('SSIM', 'perceptual hash', 'ResNet50 cosine (random init)', 'descriptors: combined'): assert m in set(table.measure)


def test_report_refuses_without_provenance_and_writes_nothing(evaluated, tmp_path):
    _, ev = evaluated
    for f in PROVENANCE_FIELDS:
        for bad in (None, ''):
            with pytest.raises(ValueError, match=f):
                write_report(ev | dict(provenance=ev['provenance'] | {f: bad}), tmp_path / 'report.md')
    with pytest.raises(ValueError, match='refusing'): report_markdown({k: v for k, v in ev.items() if k != 'provenance'})
    assert not (tmp_path / 'report.md').exists()
    real = report_markdown(ev | dict(provenance=ev['provenance'] | dict(data_source='wikiart', generator='sdxl')))
    assert 'Not a WikiArt/SDXL result' not in real and 'WikiArt' in real.splitlines()[2] and 'Stable Diffusion XL' in real.splitlines()[2]


def test_a_baseline_that_beats_the_network_is_named(eval_run):
    "A network that is pure noise: every sensible baseline beats it, and the report says so."
    class NoiseNet:
        def similarity_matrix(self, A, B): return np.random.default_rng(0).random((len(A), len(B)))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        ev = evaluate_run(eval_run, params(), NoiseNet(), dict(target='combined', encoder_weights='random (test)', input_size=32))
    assert ev['hypothesis']['versus']['ssim']['strength']['verdict'] == 'better'
    assert 'beats it on' in headline_table(ev).set_index('measure').loc['SSIM', 'against the Siamese network']
    said = [l for l in eval_run.resolve('report.md').read_text().splitlines() if l.startswith('**Baselines.**')]
    assert len(said) == 1 and 'Where a baseline beats the Siamese network' in said[0] and 'SSIM' in said[0], said


def test_stage_with_a_real_siamese_network(eval_run, tmp_path):
    "The stage end to end through `SiameseSimilarity.load`, on a small untrained network saved the way chapter 06 saves one."
    import shutil
    from artsim.evaluation import stage
    from artsim.siamese import SiameseSimilarity, build_siamese
    shutil.copytree(eval_run.path, tmp_path / 'r')
    run = Run(tmp_path / 'r')
    model, stats = build_siamese('random', embed_dim=16, hidden=8, seed=3)
    card = dict(input_size=32, normalisation=stats, target='combined', encoder_weights='random', seed=3, preset='tiny',
                siamese_params=dict(validate_on='valid'))
    SiameseSimilarity(model, card, batch_size=8).save(run.path / 'models' / 'siamese')
    ev = stage(run, params())
    assert ev['provenance']['backbone_weights'] == 'random init (seed 3)' and ev['provenance']['model']['validated_on'] == 'valid'
    assert ev['agreement']['target'] == 'combined' and ev['counts']['variants'] == 24
    net, _ = load_siamese(run)
    es = evaluation_set(run)
    S = siamese_scores(net, run, es)
    loop = np.array([[net.similarity(run.resolve(q), run.resolve(g)) for g in es.gallery.path] for q in es.queries.path])
    np.testing.assert_allclose(S, loop, atol=1e-5)  # the matrix (one backbone pass per image) is the pair loop
    boot = PaintingBootstrap(es.queries.painting, 100)
    a, b = hypothesis(es, dict(siamese=S), boot)['measures']['siamese'], hypothesis(es, dict(siamese=loop), boot)['measures']['siamese']
    for c in a: assert a[c]['value'] == pytest.approx(b[c]['value'], abs=1e-4), c
    assert 'not fully held out' not in run.resolve('report.md').read_text()


def test_missing_model_names_the_chapter_that_makes_it(eval_run):
    with pytest.raises(FileNotFoundError, match="'training' chapter"): load_siamese(eval_run, 'models/siamese.safetensors')
