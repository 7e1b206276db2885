"""artsim.finetune: a short training through the chapter's functions, safetensors + JSON that reload to the same logits,
refused pickles and mismatching cards, offline ImageNet stopping before training, a same-seed rerun, the stage's artifacts."""
import json, os, subprocess, sys
from pathlib import Path
import numpy as np, pytest, torch
from fastai.vision.all import set_seed
from artsim.runs import WORK_PREFIX, Run, stage_params
import artsim.data
import artsim.finetune as F
from artsim.backbone import GENRE_MODEL, WeightsUnavailable, resnet50_body
from artsim.learning import recompute_bn_stats
from artsim.finetune import (check_genre_card, genre_classifier, genre_dataloaders, genre_learner, load_genre_model, model_card,
                             read_genre_card, save_genre_model, train_genre_model)

ROOT = Path(__file__).resolve().parent.parent


def tiny_params(run_dir, **over):
    "The tiny preset's finetune parameters, as the chapter resolves them."
    p = stage_params('finetune', dict(preset='tiny', run_dir=run_dir))
    p.update(over)
    return p


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    "A run holding chapter 00's tiny manifest: 8 procedural genres x 4 paintings, split 2 / 1 / 1."
    run = Run(tmp_path_factory.mktemp('tiny'))
    artsim.data.stage(run, stage_params('data', dict(preset='tiny', run_dir=run.path)))
    return run


def copy_run(src:Run, dst) -> Run:
    "A new run directory with `src`'s manifest and (linked) images: chapter 00's output, nothing else."
    dst = Run(dst)
    (dst.path/'data').mkdir(parents=True)
    (dst.path/'data'/'manifest.parquet').write_bytes(src.resolve('data/manifest.parquet').read_bytes())
    (dst.path/'data'/'images').symlink_to(src.path/'data'/'images')
    return dst


@pytest.fixture(scope='module')
def staged(tiny_run):
    "The stage run once on the tiny preset: (run, metrics)."
    return tiny_run, F.stage(tiny_run, tiny_params(tiny_run.path))


def test_short_training_reloads_to_the_same_logits(tiny_run, tmp_path):
    m = tiny_run.read_parquet('data/manifest.parquet')
    set_seed(0, reproducible=True)
    dls = genre_dataloaders(tiny_run, m, 32, bs=8, device='cpu')
    learn = genre_learner(dls, resnet50_body('random', seed=0), path=tmp_path)
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    with learn.no_bar(), learn.no_logging():
        hist = train_genre_model(learn, epochs=1, freeze_epochs=0, lr=1e-3, lr_find_iters=0)
    assert len(hist['history']) == 1 and hist['best_epoch'] == 0 and hist['bn_passes'] == [len(dls.train)] == [2]
    assert not torch.equal(before['1.8.weight'], learn.model.state_dict()['1.8.weight'])  # it trained
    save_genre_model(learn.model, tmp_path/'genre.safetensors', model_card(dls.vocab, 32, 'random', 0, 'tiny'))
    back = load_genre_model(tmp_path/'genre.safetensors')
    for (k, v), w in zip(learn.model.state_dict().items(), back.state_dict().values()): assert torch.equal(v, w), k
    x = dls.valid.one_batch()[0].as_subclass(torch.Tensor)
    learn.model.eval().to(memory_format=torch.contiguous_format)  # trained channels-last: the same kernels for both
    with torch.no_grad(): torch.testing.assert_close(back(x), learn.model(x), rtol=0, atol=0)
    assert back.vocab == list(dls.vocab) and not back.training
    assert read_genre_card(tmp_path/'genre.json')['n_classes'] == len(dls.vocab)
    # 02_descriptors' semantic_weights='genre' reads the same file (fastai names, head dropped)
    from artsim.descriptors import SemanticEncoder
    (tmp_path/'models').mkdir()
    for f in ('genre.safetensors', 'genre.json'): (tmp_path/f).rename(tmp_path/'models'/f)
    enc = SemanticEncoder('genre', size=32, run=Run(tmp_path))
    torch.testing.assert_close(enc.backbone.body[7][2].conv3.weight, back[0][7][2].conv3.weight)


def test_dataloader_workers_do_not_change_the_result(tiny_run, tmp_path):
    "Worker processes are seeded from torch's generator at each epoch: 0 and 2 workers train the same network."
    def train(workers):
        set_seed(5, reproducible=True)
        dls = genre_dataloaders(tiny_run, tiny_run.read_parquet('data/manifest.parquet'), 32, bs=8, num_workers=workers, device='cpu')
        learn = genre_learner(dls, resnet50_body('random', seed=5), path=tmp_path)
        with learn.no_bar(), learn.no_logging():
            return train_genre_model(learn, epochs=1, freeze_epochs=1, lr=1e-3, lr_find_iters=0)['iterations']
    assert train(0) == train(2)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    save_genre_model(genre_classifier(3), tmp_path/'genre.safetensors', model_card(['a', 'b', 'c'], 32, 'random', 0, 'tiny'))
    return tmp_path


def test_load_refuses_pickles(saved):
    torch.save(load_genre_model(saved/'genre.safetensors'), saved/'export.pkl')  # a whole pickled model, as Learner.export writes
    torch.save(load_genre_model(saved/'genre.safetensors').state_dict(), saved/'weights.pth')
    for f in ('export.pkl', 'weights.pth'):
        with pytest.raises(ValueError, match='never unpickles'): load_genre_model(saved/f)
    with pytest.raises(ValueError, match='weights_only'): resnet50_body(saved/'export.pkl')


@pytest.mark.parametrize('change, message', [
    (dict(n_classes=4, vocab=['a', 'b', 'c', 'd']), 'does not match'),  # a card from a 4-genre run
    (dict(n_classes=2), 'n_classes is 2 but vocab names 3'),
    (dict(architecture='resnet34'), "architecture 'resnet34'"),
    (dict(vocab=['a', 'a', 'b']), 'distinct'),
    (dict(input_size=0), 'input_size'),
])
def test_load_refuses_mismatching_cards(saved, change, message):
    "An edited card is refused before anything else (the weights record their card's digest); a card saying nonsense is named."
    card = json.loads((saved/'genre.json').read_text())
    (saved/'genre.json').write_text(json.dumps(card | change))
    with pytest.raises(ValueError, match='was edited'): load_genre_model(saved/'genre.safetensors')
    if 'does not match' not in message:
        with pytest.raises(ValueError, match=message.replace('(', r'\(')): check_genre_card(card | change)


def test_load_refuses_a_card_of_other_weights(saved):
    card = json.loads((saved/'genre.json').read_text())
    torch.manual_seed(1)
    save_genre_model(genre_classifier(3), saved/'genre.safetensors', model_card(['a', 'b', 'c'], 32, 'random', 1, 'tiny'))
    (saved/'genre.json').write_text(json.dumps(card))
    with pytest.raises(ValueError, match='SHA-256'): load_genre_model(saved/'genre.safetensors')
    (saved/'genre.json').unlink()
    with pytest.raises(FileNotFoundError, match='genre.json'): load_genre_model(saved/'genre.safetensors')


def offline_env(tmp_path):
    "An environment with an empty torch cache and a proxy that refuses every connection: offline, even where there is internet."
    return os.environ | dict(TORCH_HOME=str(tmp_path/'torch'), https_proxy='http://127.0.0.1:9', HTTPS_PROXY='http://127.0.0.1:9',
                             no_proxy='', NO_PROXY='', IN_TEST='')


def test_offline_imagenet_stops_before_training(tiny_run, tmp_path, monkeypatch):
    run = copy_run(tiny_run, tmp_path/'run')
    monkeypatch.setenv('TORCH_HOME', str(tmp_path/'torch'))
    monkeypatch.setenv('https_proxy', 'http://127.0.0.1:9'); monkeypatch.setenv('HTTPS_PROXY', 'http://127.0.0.1:9')
    monkeypatch.setenv('no_proxy', ''); monkeypatch.setenv('NO_PROXY', '')
    def never(*a, **k): raise AssertionError('reached the data or the training')
    monkeypatch.setattr(F, 'genre_dataloaders', never)
    with pytest.raises(WeightsUnavailable) as e:
        F.stage(run, tiny_params(run.path, start_weights='imagenet'))
    msg = str(e.value)
    assert 'resnet50-11ad3fa6.pth' in msg and str(tmp_path/'torch'/'hub'/'checkpoints') in msg and 'TORCH_HOME' in msg
    assert "'random' weights" in msg
    assert e.value.__cause__ is None and e.value.__suppress_context__  # no urllib traceback chained to it
    assert not (run.path/'models').exists()


def test_offline_imagenet_command_line(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path/'run')
    r = subprocess.run([sys.executable, '-m', 'artsim.finetune', '--run-dir', str(run.path), '--preset', 'tiny',
                        '-p', 'start_weights=imagenet'], capture_output=True, text=True, env=offline_env(tmp_path), timeout=300)
    assert r.returncode == 1, r.stderr
    assert 'Traceback' not in r.stderr and 'resnet50-11ad3fa6.pth' in r.stderr.splitlines()[-1], r.stderr
    assert not (run.path/'models').exists()


@pytest.mark.parametrize('args, text', [(['-p', 'epochs'], 'name=value'), (['-p', 'epoch=1'], 'unknown parameter'),
                                        (['--preset', 'nosuch'], 'unknown preset'), ([], '--run-dir')])
def test_command_line_usage_errors(tiny_run, capsys, args, text):
    with pytest.raises(SystemExit) as e: F.main((['--run-dir', str(tiny_run.path)] if args else []) + args)
    err = capsys.readouterr().err
    assert e.value.code == 2 and text in err and 'Traceback' not in err, err


def test_stage_writes_its_artifacts(staged):
    run, m = staged
    for f in (GENRE_MODEL, 'models/genre.json', 'metrics/genre.json', 'metrics/genre_test.parquet', *m['files']['figures']):
        assert run.resolve(f).is_file(), f
    assert {'figures/genre_confusion.png', 'figures/genre_predictions.png', 'figures/genre_training.png', 'figures/genre_lr_find.png'} <= set(m['files']['figures'])
    saved = run.read_json('metrics/genre.json')
    # each number is what the test split's predictions (metrics/genre_test.parquet) say
    t = run.read_parquet('metrics/genre_test.parquet')
    assert saved['accuracy'] == t.correct.mean()
    f1 = {}
    for g in set(t.genre) | set(t.predicted):
        hit, said, true = ((t.genre == g) & (t.predicted == g)).sum(), (t.predicted == g).sum(), (t.genre == g).sum()
        p_, r_ = (hit / said if said else 0.), (hit / true if true else 0.)
        f1[g] = 2 * p_ * r_ / (p_ + r_) if p_ + r_ else 0.
    assert saved['macro_f1'] == pytest.approx(np.mean(list(f1.values())), abs=1e-12)
    assert saved['accuracy'] <= saved['top3_accuracy'] <= 1   # the first genre is one of the first three
    q = t.genre.value_counts(normalize=True)
    assert saved['chance'] == pytest.approx(dict(accuracy=1 / 8, accuracy_majority=q.max(), top3_accuracy=3 / 8,
                                                 macro_f1=np.mean([2 * x / 8 / (x + 1 / 8) for x in q])), abs=1e-12)
    manifest = run.read_parquet('data/manifest.parquet')
    assert saved['n_test'] == (manifest.split == 'test').sum() == sum(r['support'] for r in saved['per_genre'])
    assert np.asarray(saved['confusion']['matrix']).sum() == saved['n_test']
    assert 'not a thesis result' in saved['note']
    card = read_genre_card(run.resolve('models/genre.json'))
    assert card['vocab'] == sorted(manifest.genre.unique()) and card['preset'] == 'tiny' and card['starting_weights'] == 'random'
    assert card['input_size'] == 32 and card['normalisation']['mean'] == [0.485, 0.456, 0.406]
    table = run.read_parquet('metrics/genre_test.parquet')
    assert set(table.id) == set(manifest.id[manifest.split == 'test'])  # the test split, and only it, is reported
    assert not list((run.path/'models').glob(WORK_PREFIX + '*'))  # the working folder is gone
    assert not list(run.path.rglob('*.pth')) and not list(run.path.rglob('*.pkl'))  # nothing pickled is left behind
    h = saved['training']['history']
    assert [e['phase'] for e in h] == ['frozen', 'unfrozen'] and all(e['valid_accuracy_running_bn'] is not None for e in h)


def test_same_seed_rerun_gives_the_same_metrics(staged, tmp_path):
    "A second CPU run with the same seed, in a fresh process, gives identical metrics and weights."
    run, first = staged
    other = copy_run(run, tmp_path/'again')
    r = subprocess.run([sys.executable, '-m', 'artsim.finetune', '--run-dir', str(other.path), '--preset', 'tiny'],
                       capture_output=True, text=True, timeout=600, env=os.environ | dict(PYTHONHASHSEED='123'))
    assert r.returncode == 0, r.stderr
    second = other.read_json('metrics/genre.json')
    for k in ('accuracy', 'top3_accuracy', 'macro_f1', 'per_genre', 'confusion', 'valid'):
        assert second[k] == first[k], k
    assert second['training']['history'] == first['training']['history']
    assert second['training']['iterations'] == first['training']['iterations']
    a, b = load_genre_model(run.resolve(GENRE_MODEL)), load_genre_model(other.resolve(GENRE_MODEL))
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()): assert torch.equal(v, w), k


def test_recompute_bn_stats_on_the_classifier():
    "One batch through the classifier: the stem's running mean becomes that batch's mean; momentum and mode come back."
    torch.manual_seed(0)
    clf = genre_classifier(4, resnet50_body('random', seed=0))
    x = torch.randn(16, 3, 32, 32) * 2 + 1
    assert recompute_bn_stats(clf, [x]) == 1
    bn = clf[0][1]
    with torch.no_grad(): y = clf[0][0](x)
    torch.testing.assert_close(bn.running_mean, y.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert bn.momentum == 0.1 and clf.training
