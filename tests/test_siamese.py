"""artsim.siamese and artsim.training on a demo-like run (random-init encoder, 32 px): identical images score 1, exact
symmetry, the matrix against the pair loop, the safetensors round trip and its refusals (an earlier format among
them), no painting in two splits, the seeds' file, and the training's seed: the stage trains with the seed it records,
the same seed gives byte-identical weights and another seed different ones."""
import json, pickle, shutil, subprocess, sys, warnings
from dataclasses import replace
import numpy as np, pandas as pd, pytest, torch
from demo_pairs import stage_p
import artsim
from artsim.runs import Run, record_params
from artsim.modelfile import load_model
from artsim.siamese import (SIAMESE_KIND, ModelFileError, SiameseSimilarity, fit_inputs, load_seed_models, load_siamese_data,
                            split_tables, teacher_matrix)
from artsim.training import head_scores, train_head, training_recipe, weights_equal

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
    record_params(run, siamese_p())   # what the runner records: chapter 06 reads chapter 05's parameters from there
    siamese.stage(run, siamese_p())
    res = training.stage(run, training_p(seed=5))
    return dict(run=run, res=res, model=root / 'models' / 'siamese.safetensors')


@pytest.fixture(scope='module')
def sim(trained): return SiameseSimilarity.load(trained['model'], batch_size=4)


def images(root, n, kind='original'):
    m = pd.read_parquet(root / 'data/manifest.parquet')
    g = pd.read_parquet(root / 'generated/pairs.parquet')
    return [root / p for p in (m.path if kind == 'original' else g.generated_path)][:n]


def test_public_name():
    assert artsim.SiameseSimilarity is SiameseSimilarity
    from artsim import SiameseSimilarity as S
    assert S is SiameseSimilarity


def test_identical_images_score_one(sim, demo_root):
    A = images(demo_root, 3) + images(demo_root, 2, 'variant')
    for x in A: assert sim.similarity(x, x) == pytest.approx(1, abs=1e-4)
    np.testing.assert_allclose(np.diag(sim.similarity_matrix(A)), 1, atol=1e-4)
    np.testing.assert_allclose(np.diag(sim.similarity_matrix(A, list(A))), 1, atol=1e-4)


def test_symmetry(sim, demo_root):
    a, b = images(demo_root, 3), images(demo_root, 4, 'variant')
    for x, y in zip(a, b): assert sim.similarity(x, y) == sim.similarity(y, x)  # exactly, pair by pair
    np.testing.assert_allclose(sim.similarity_matrix(a, b), sim.similarity_matrix(b, a).T, atol=1e-6)
    M = sim.similarity_matrix(a + b)
    np.testing.assert_allclose(M, M.T, atol=1e-6)
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
    e = sim.embed(A)
    assert e.shape == (3, sim.head.dim) and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(sim.pair_scores(e, e[::-1]), np.diag(sim.scores(e, e[::-1])), atol=1e-6)


def test_save_load_round_trip_is_identical(sim, demo_root, tmp_path):
    A, B = images(demo_root, 3), images(demo_root, 3, 'variant')
    wf, cf = sim.save(tmp_path / 'models' / 'siamese')
    assert wf.name == 'siamese.safetensors' and cf.name == 'siamese.json'
    for path in (wf, cf, tmp_path / 'models' / 'siamese', tmp_path):  # either file, the stem, or the run directory
        again = SiameseSimilarity.load(path)
        np.testing.assert_array_equal(again.similarity_matrix(A, B), sim.similarity_matrix(A, B))
    card = json.loads(cf.read_text())
    assert card['input_size'] == SIZE and card['format'] == 'artsim-siamese/2' and card['seed'] == 5


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


def test_a_model_of_the_earlier_architecture_is_refused_in_one_line(sim, demo_root, tmp_path):
    "A card of format artsim-siamese/1 (the MLP head on layer4): one line saying to run chapter 06 again."
    wf, cf = sim.save(tmp_path / 'siamese')
    cf.write_text(json.dumps(json.loads(cf.read_text()) | dict(format='artsim-siamese/1', architecture=dict(name='siamese-resnet50'))))
    with pytest.raises(ModelFileError) as e: SiameseSimilarity.load(wf)
    msg = str(e.value)
    assert '\n' not in msg and 'artsim-siamese/1' in msg and 'run chapter 06_training again' in msg, msg
    from artsim.cli import compare_main
    import contextlib, io
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as code:
        compare_main([str(images(demo_root, 1)[0]), str(images(demo_root, 1, 'variant')[0]), '--model', str(wf)])
    said = err.getvalue().strip().splitlines()
    assert code.value.code == 1 and len(said) == 1 and 'run chapter 06_training again' in said[0], err.getvalue()


def test_load_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match='siamese.safetensors'): SiameseSimilarity.load(tmp_path / 'siamese')


def test_no_painting_in_two_splits(split_root):
    tables = split_tables(Run(split_root))
    assert set(tables) == {'train', 'valid', 'test'}
    for s, t in tables.items():
        assert (t.queries.truth >= 0).all() and set(t.queries.painting) <= set(t.gallery.id), s
        for u in tables:
            if s < u: assert not set(t.gallery.id) & set(tables[u].gallery.id), (s, u)


def test_teacher_is_chapter_03s_value(split_root):
    run, tables = Run(split_root), split_tables(Run(split_root))
    pairs = run.read_parquet('similarity/pairs.parquet')
    for s in ('train', 'valid'):
        t, scored = tables[s], pairs[(pairs.split == s) & (pairs.variant_split == s)]
        T = teacher_matrix(run, t, 'combined')
        qi, gi = pd.Index(t.queries.path).get_indexer(scored.generated_path), pd.Index(t.gallery.id).get_indexer(scored.original_id)
        np.testing.assert_allclose(T[qi, gi], scored.combined, atol=1e-9)
    with pytest.raises(ValueError, match="target 'colour'.*combined"): teacher_matrix(run, tables['train'], 'colour')


def test_the_stage_trains_with_the_seed_it_records(trained):
    """The saved network is the one `train_head` gives with the run's seed, bit for bit (the previous stage handed the
    seed to another parameter and trained every seed with seed 0's draws)."""
    run, res = trained['run'], trained['res']
    sd, card = load_model(trained['model'], SIAMESE_KIND)
    assert card['seed'] == 5 and card['seeds'] == [5, 6, 7]
    data, _ = load_siamese_data(run)
    r = training_recipe(run.params('siamese'), training_p(seed=5))
    head, _ = train_head(r, data['train'], fit_inputs(data['train'].features, r.pca_dim, r.pca_fit_images, 5), 5)
    for k, v in head.state_dict().items(): assert torch.equal(sd[f'head.{k}'], v), k


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


def test_seed_heads_rebuild_every_seed(trained):
    run, res = trained['run'], trained['res']
    main = SiameseSimilarity.load(trained['model'])
    others = load_seed_models(run.path / 'models' / 'siamese_seeds', main)
    assert sorted(others) == [6, 7] and all(o.model.encoder is main.model.encoder for o in others.values())
    data, _ = load_siamese_data(run)
    held = data['valid']
    for s, o in others.items():
        assert weights_equal(o.head, res.heads[s])
        np.testing.assert_allclose(head_scores(o.head, held), head_scores(res.heads[s], held), atol=0)


def test_training_lowers_the_loss_and_weighs_only_its_terms(trained):
    run, res = trained['run'], trained['res']
    assert set(res.histories[5].columns) == {'epoch', 'loss', 'mse', 'nce', 'augmented'}
    data, _ = load_siamese_data(run)
    r = replace(training_recipe(run.params('siamese'), training_p(seed=5)), epochs=20, lr=3e-3)
    _, h = train_head(r, data['train'], fit_inputs(data['train'].features, r.pca_dim), 5)
    assert h.loss.iloc[-3:].mean() < h.loss.iloc[:3].mean(), h
    assert set(res.ablation) == {'MSE alone (no provenance terms)'}
    assert res.ablation['MSE alone (no provenance terms)']['changes'] == dict(nce=0.0, augmented=0.0)
    assert json.loads((trained['run'].path / 'metrics/training.json').read_text())['seeds'] == [5, 6, 7]


def test_bad_parameters_are_refused(split_root):
    from artsim import siamese, training
    with pytest.raises(ValueError, match='pooling must map'): siamese.check_params(siamese_p(pooling={5: 1}))
    with pytest.raises(ValueError, match='unknown ablation rows'): training.check_params(training_p(ablation=['nothing']))
    with pytest.raises(ValueError, match='seeds must be at least 1'): training.check_params(training_p(seeds=0))


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
