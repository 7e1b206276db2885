"""artsim.evaluation and what it draws on (artsim.metrics, artsim.baselines, artsim.report), where the notebooks'
examples cannot show it well: randomised checks of the weighted statistics, the raw ResNet50 cosine against the plain
pooled features, and the whole evaluation on a small run with stand-in networks (test doubles, not trained models).
The known-value cases are the notebooks' examples."""
import json, math, warnings
import numpy as np, pandas as pd, pytest
from scipy import stats
from demo_pairs import make_run, stage_p
from artsim.runs import Run
from artsim.families import FAMILIES
from artsim.similarity import compare_described, load_calibration, run_descriptions
from artsim.metrics import PaintingBootstrap, auc_blocks, regression_metrics, resampled_auc, roc_auc, spearman
from artsim.baselines import hash_similarity, perceptual_hash, resnet_cosine_matrix
from artsim.report import FIGURES, PROVENANCE_FIELDS, hypothesis_table, report_markdown, write_report
from artsim.evaluation import (check_descriptor_scores, descriptor_scores, evaluate_run, evaluation_set, hypothesis,
                               load_siamese, siamese_matrix)

rng = np.random.default_rng(0)


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


def test_resnet_cosine_is_the_cosine_of_plain_pooled_features():
    "The raw ResNet50 baseline through `Backbone` is the recipe 07 used before it: contiguous input, the mean over the grid."
    import torch
    from artsim.backbone import Backbone, IMAGENET_STATS, input_image, resnet50_body
    from artsim.painter import demo_painting
    from artsim.descriptors import l2_normalise
    images = [np.asarray(demo_painting(g, seed=i, size=48)) for i, g in enumerate(['landscape', 'cityscape', 'portrait'])]
    backbone = Backbone('random', seed=5, size=32, batch_size=2)
    body = resnet50_body('random', seed=5).eval()
    mean, std = (torch.tensor(IMAGENET_STATS[k]).view(1, 3, 1, 1) for k in ('mean', 'std'))
    with torch.inference_mode():
        batches = [torch.stack([input_image(x, 32) for x in images[i:i + 2]]).float() / 255 for i in (0, 2)]
        E = torch.cat([body((x - mean) / std).mean((2, 3)) for x in batches]).numpy()
    np.testing.assert_array_equal(backbone(images), E)  # bit for bit: the demo's numbers stay what they were
    S = resnet_cosine_matrix(images[:1], images[1:], backbone)
    np.testing.assert_array_equal(S, l2_normalise(E[:1]) @ l2_normalise(E[1:]).T)


# --- a small run: the test set, the descriptors' matrices --------------------------------------------------------------

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
    test_set = evaluation_set(eval_run)
    assert len(test_set.gallery) == 4 and len(test_set.queries) == 4 * 6 and test_set.queries.painting.nunique() == 4
    assert (test_set.pairs.split == 'test').all() and (test_set.pairs.variant_split == 'test').all()
    assert test_set.own.sum(1).tolist() == [1] * 24 and test_set.straddling > 0
    assert (test_set.gallery.id[test_set.pairs.g].to_numpy() == test_set.pairs.original_id.to_numpy()).all()
    assert len(evaluation_set(eval_run, max_paintings=2, seed=1).gallery) == 2


def test_evaluation_set_without_test_pairs_says_what_to_do(tmp_path, eval_run):
    import shutil
    shutil.copytree(eval_run.path, tmp_path / 'r')
    s = pd.read_parquet(tmp_path / 'r/similarity/pairs.parquet')
    s.assign(split='train', variant_split='train').to_parquet(tmp_path / 'r/similarity/pairs.parquet', index=False)
    with pytest.raises(ValueError, match='test_pct'): evaluation_set(Run(tmp_path / 'r'))


def test_descriptor_scores_reproduce_chapter_03(eval_run):
    test_set = evaluation_set(eval_run)
    scores, info = descriptor_scores(eval_run, test_set)
    aspects = load_calibration(eval_run).aspect_families
    assert set(scores) == {*(f'{f}_calibrated' for f in FAMILIES), 'combined', 'combined_raw', *aspects} and set(info) == set(scores)
    for m, S in scores.items():
        assert S.shape == (len(test_set.queries), len(test_set.gallery))
        np.testing.assert_allclose(S[test_set.pairs.q, test_set.pairs.g], test_set.pairs[m], atol=1e-6, err_msg=m)
    check_descriptor_scores(test_set, scores)
    with pytest.raises(ValueError, match='rerun 03_similarity'): check_descriptor_scores(test_set, dict(scores, combined=scores['combined'] * .9))


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
    test_set, net = evaluation_set(eval_run), HashNet()
    S = siamese_matrix(net, eval_run, test_set)
    assert net.embedded == len(test_set.queries) + len(test_set.gallery)  # each image embedded once
    loop = np.array([[net.similarity(eval_run.resolve(q), eval_run.resolve(g)) for g in test_set.gallery.path] for q in test_set.queries.path])
    np.testing.assert_array_equal(S, loop)
    boot = PaintingBootstrap(test_set.queries.painting, 100)
    a, b = hypothesis(test_set, dict(siamese=S), boot), hypothesis(test_set, dict(siamese=loop), boot)
    assert a['measures'] == b['measures']


def params(**over):
    from fastcore.basics import AttrDict
    return AttrDict(stage='evaluation', preset='tiny', **(stage_p('evaluation', 'tiny').__dict__ | dict(n_bootstrap=100, resnet_weights=['random']) | over))


@pytest.fixture(scope='module')
def evaluated(eval_run):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        results = evaluate_run(eval_run, params(), OracleNet(eval_run), dict(target='combined', encoder_weights='random (test)', input_size=32))
    return eval_run, results


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
    run, results = evaluated
    text = run.resolve('metrics/eval.json').read_text()
    assert 'NaN' not in text and json.loads(text) == results  # strict JSON, and what the stage returned is what it wrote
    for f in FIGURES: assert run.resolve(f).stat().st_size > 1000, f
    assert results['counts']['own_pairs'] == 24 and results['counts']['test_paintings'] == 4
    assert set(PROVENANCE_FIELDS) <= set(results['provenance']) and results['provenance']['data_source'] == 'test'
    report = run.resolve('report.md').read_text().splitlines()
    assert report[2].startswith('**Data:**') and report[2].index('**Generator:**') > 0
    assert any('Not a WikiArt/SDXL result' in line for line in report[:6])


def test_a_network_with_no_error_scores_perfectly_and_ties_its_teacher(evaluated):
    _, results = evaluated
    net = results['agreement']['metrics']['siamese']
    assert net['mse']['value'] == pytest.approx(0, abs=1e-12) and net['r2']['value'] == pytest.approx(1)
    assert results['agreement']['metrics']['training mean']['mse']['value'] > 1e-4
    vs = results['hypothesis']['versus']['combined']  # the oracle is the combined value: identical on every criterion
    assert all(v['value'] == pytest.approx(0, abs=1e-9) and v['verdict'] == 'no clear difference' for v in vs.values())
    table = hypothesis_table(results)
    assert table.measure.iloc[0] == 'Siamese network' and table.measure.iloc[-1] == 'chance'
    for m in ('SSIM', 'perceptual hash', 'ResNet50 cosine (random init)', 'descriptors: combined'): assert m in set(table.measure)


def test_report_refuses_without_provenance_and_writes_nothing(evaluated, tmp_path):
    _, results = evaluated
    for f in PROVENANCE_FIELDS:
        for bad in (None, ''):
            with pytest.raises(ValueError, match=f):
                write_report(results | dict(provenance=results['provenance'] | {f: bad}), tmp_path / 'report.md')
    with pytest.raises(ValueError, match='refusing'): report_markdown({k: v for k, v in results.items() if k != 'provenance'})
    assert not (tmp_path / 'report.md').exists()
    real = report_markdown(results | dict(provenance=results['provenance'] | dict(data_source='wikiart', generator='sdxl')))
    assert 'Not a WikiArt/SDXL result' not in real and 'WikiArt' in real.splitlines()[2] and 'Stable Diffusion XL' in real.splitlines()[2]


def test_captions_follow_the_level(eval_run, tmp_path):
    import shutil
    shutil.copytree(eval_run.path, tmp_path / 'r')
    run = Run(tmp_path / 'r')
    card = dict(target='combined', encoder_weights='random', input_size=32)
    results = evaluate_run(run, params(level=.9, resnet_weights=[]), OracleNet(run), card)
    text = run.resolve('report.md').read_text()
    assert results['bootstrap']['level'] == .9 and '95%' not in text, [l for l in text.splitlines() if '95%' in l]
    assert '*Every measure on the hypothesis criteria, with 90% bootstrap intervals over paintings; dashed: chance.*' in text
    assert 'Intervals: 90% percentile bootstrap' in text and not any(m.startswith('resnet50') for m in results['measures'])


def test_a_baseline_that_beats_the_network_is_named(eval_run):
    "A network that is pure noise: every sensible baseline beats it, and the report says so."
    class NoiseNet:
        def similarity_matrix(self, A, B): return np.random.default_rng(0).random((len(A), len(B)))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        results = evaluate_run(eval_run, params(), NoiseNet(), dict(target='combined', encoder_weights='random (test)', input_size=32))
    assert results['hypothesis']['versus']['ssim']['strength']['verdict'] == 'better'
    assert 'beats it on' in hypothesis_table(results).set_index('measure').loc['SSIM', 'against the Siamese network']
    said = [l for l in eval_run.resolve('report.md').read_text().splitlines() if l.startswith('**Baselines.**')]
    assert len(said) == 1 and 'Where a baseline beats the Siamese network' in said[0] and 'SSIM' in said[0], said


def test_stage_with_a_real_siamese_network(eval_run, tmp_path):
    """The stage end to end through `SiameseSimilarity.load`, on a small untrained network and a second seed's head saved
    the way chapter 06 saves them: the seeds' spread and the fidelity to the teacher are in eval.json and report.md."""
    import shutil, torch
    from artsim.evaluation import stage
    from artsim.backbone import IMAGENET_STATS, feature_dim, resnet50_body
    from artsim.network import SiameseNet, SiameseSimilarity, build_head, fit_inputs, save_seed_heads
    shutil.copytree(eval_run.path, tmp_path / 'r')
    run, pooling = Run(tmp_path / 'r'), {1: 4, 2: 4, 3: 1, 4: 1}
    fitted = fit_inputs(torch.randn(20, feature_dim(pooling), generator=torch.Generator().manual_seed(0)), 8)
    card = dict(input_size=32, normalisation=IMAGENET_STATS, target='combined', encoder_weights='random', encoder_seed=3, seed=3,
                seeds=[3, 4], preset='tiny', siamese_params=dict(validate_on='valid'))
    sim = SiameseSimilarity(SiameseNet(resnet50_body('random', seed=3), pooling, build_head(fitted, 8, 16, seed=3)), card, batch_size=8)
    sim.save(run.path / 'models' / 'siamese')
    save_seed_heads(run.path / 'models' / 'siamese_seeds', {4: build_head(fitted, 8, 16, seed=4)}, sim)
    results = stage(run, params())
    assert results['provenance']['backbone_weights'] == 'random init (seed 3)' and results['provenance']['model']['validated_on'] == 'valid'
    assert results['agreement']['target'] == 'combined' and results['counts']['variants'] == 24
    net, _ = load_siamese(run)
    test_set = evaluation_set(run)
    S = siamese_matrix(net, run, test_set)
    loop = np.array([[net.similarity(run.resolve(q), run.resolve(g)) for g in test_set.gallery.path] for q in test_set.queries.path])
    np.testing.assert_allclose(S, loop, atol=1e-5)  # the matrix (one backbone pass per image) is the pair loop
    boot = PaintingBootstrap(test_set.queries.painting, 100)
    a, b = hypothesis(test_set, dict(siamese=S), boot)['measures']['siamese'], hypothesis(test_set, dict(siamese=loop), boot)['measures']['siamese']
    for c in a: assert a[c]['value'] == pytest.approx(b[c]['value'], abs=1e-4), c
    seeds, h = results['seeds'], results['hypothesis']['measures']['siamese']
    assert seeds['seeds'] == [3, 4] and seeds['main'] == 3
    for c in h: assert seeds['criteria'][c]['values'][0] == pytest.approx(h[c]['value'], abs=1e-9), c  # the saved seed's values
    T = descriptor_scores(run, test_set)[0]['combined']   # the teacher's matrix on the same cells
    assert results['fidelity']['teacher'] == 'combined' and results['fidelity']['entries'] == S.size
    # fidelity is Spearman's ρ of the network against its teacher over every cell, and the share of top-1s that agree
    assert results['fidelity']['spearman']['value'] == pytest.approx(stats.spearmanr(S.ravel(), T.ravel()).statistic, abs=1e-6)
    assert results['fidelity']['top1']['value'] == pytest.approx((S.argmax(1) == T.argmax(1)).mean(), abs=1e-12)
    assert seeds['fidelity']['spearman']['values'][0] == pytest.approx(results['fidelity']['spearman']['value'], abs=1e-9)
    text = run.resolve('report.md').read_text()
    assert 'Siamese network, 2 training seeds: mean (range)' in text and '## Fidelity to the teacher' in text
    assert 'not fully held out' not in text


def test_missing_model_names_the_chapter_that_makes_it(eval_run):
    with pytest.raises(FileNotFoundError, match="'training' chapter"): load_siamese(eval_run, 'models/siamese.safetensors')


def test_the_error_per_genre_chart_gives_each_genre_a_label_of_its_own():
    "07's MAE per genre with the demo's eight genres (geometric_abstraction, color_field, ...): no two labels overlap."
    import matplotlib; matplotlib.use('Agg')
    from artsim.painter import DEMO_GENRES
    from artsim.report import plot_breakdown
    genres = list(DEMO_GENRES) + ['other painting']
    table = pd.DataFrame(dict(genre=genres, paintings=2, mae=np.linspace(.05, .2, len(genres)), mae_lo=.03, mae_hi=.25))
    fig = plot_breakdown(table, 'genre', 'genre')
    fig.canvas.draw()
    r, ax = fig.canvas.get_renderer(), fig.axes[0]
    labels = [t for t in ax.get_xticklabels() + ax.get_yticklabels() if any(g in t.get_text() for g in genres)]
    assert len(labels) == len(genres)
    boxes = [t.get_window_extent(r) for t in labels]
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]
    assert all(fig.bbox.contains(b.x0, b.y0) and fig.bbox.contains(b.x1, b.y1) for b in boxes)   # none cut off
