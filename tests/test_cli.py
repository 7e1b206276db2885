"""artsim_compare, artsim_index and artsim_search as a user meets them: output and exit codes on good and bad input,
the index/search round trip on demo data (each variant finds its own original first, with and without a Siamese model
trained on the tiny preset), resuming an index after adding an image, and search results equal to a slow pair loop."""
import json, os, shutil, subprocess, sys, warnings
from pathlib import Path
import numpy as np, pandas as pd
import pytest
from artsim import __version__
from artsim.cli import compare_main, index_main, search_main
from artsim.index import build_index, load_index, search_index
from artsim.runs import STAGES, Run, record_params, stage_params
from artsim.stages import stage_module
from artsim.similarity import compare_described, describe_images, descriptor_similarity, load_calibration

BIN = Path(sys.executable).parent


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """A tiny-preset run of chapters 00-03, 05 and 06: 32 procedural paintings at the demo's 128 px, 32 stand-in variants
    of 8 of them, and a Siamese model trained on their descriptor targets (its encoder starts from random weights instead
    of 04's genre model, so chapter 04 is not run)."""
    run = Run(tmp_path_factory.mktemp('tiny') / 'run')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for s in [s for s in STAGES[:STAGES.index('training') + 1] if s != 'finetune']:
            p = stage_params(s, dict(preset='tiny', run_dir=run.path, encoder_weights='random', image_size=128))
            record_params(run, p)
            stage_module(s).stage(run, p)
    m = run.read_parquet('data/manifest.parquet').set_index('id')
    pairs = run.read_parquet('generated/pairs.parquet')
    return dict(run=run.path, originals=run.path / 'data' / 'images', model=run.path / 'models' / 'siamese.safetensors',
                variants=[(run.path / g, Path(m.path[o]).relative_to('data/images').as_posix(), s)
                          for g, o, s in zip(pairs.generated_path, pairs.original_id, pairs.strength)])


@pytest.fixture(scope='module')
def indexes(tiny, tmp_path_factory):
    "The tiny run's paintings indexed without and with the model, by the console script itself."
    d = tmp_path_factory.mktemp('indexes')
    out = {}
    code, stdout, err = run_main(index_main, tiny['originals'], '--out', d / 'plain', '--jobs', 1)
    assert code == 0, err
    r = cli('artsim_index', tiny['originals'], '--out', d / 'model', '--jobs', 1, '--model', tiny['model'])
    assert r.returncode == 0, r.stderr
    return dict(plain=d / 'plain', model=d / 'model', plain_stdout=stdout, model_stdout=r.stdout)


def cli(name, *args, timeout=300):
    "A console script as a user runs it."
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}
    return subprocess.run([str(BIN / name), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env)


def run_main(main, *argv):
    "Exit code, stdout and stderr of a console script's main, in this process."
    import contextlib, io
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: main([str(a) for a in argv]); code = 0
        except SystemExit as e: code = e.code
    return code, out.getvalue(), err.getvalue()


def one_line_error(code, err, want_code, says):
    lines = err.strip().splitlines()
    assert (code, len(lines)) == (want_code, 1), (code, err)
    assert says in lines[0] and 'Traceback' not in err, err


# -- artsim_compare ---------------------------------------------------------------------------------------------------

def test_compare_table_and_json(tiny):
    from artsim.network import SiameseSimilarity
    variant, original, _ = tiny['variants'][0]
    a = tiny['originals'] / original
    r = cli('artsim_compare', a, variant, '--model', tiny['model'])
    assert r.returncode == 0, r.stderr
    rows = r.stdout.splitlines()
    assert [l.split()[0] for l in rows[3:13]] == ['color', 'texture', 'shape', 'edges', 'semantic', 'combined', 'composition', 'style', 'content', 'siamese'], r.stdout
    assert 'changed most' in rows[-1] or 'every aspect' in rows[-1], r.stdout
    assert r.stderr == '', r.stderr   # nothing to note: the model and the calibration say what they were made from
    code, out, err = run_main(compare_main, a, variant, '--model', tiny['model'], '--json')
    assert code == 0, err
    res = json.loads(out)
    want = descriptor_similarity(a, variant)
    heads = {f'siamese:{a}' for a in SiameseSimilarity.load(tiny['model']).aspect_names}
    assert heads == {'siamese:composition', 'siamese:style', 'siamese:content'}   # the network's aspect heads
    assert set(res['scores']) == set(want) | {'siamese'} | heads and res['scale'] == 'calibrated'
    np.testing.assert_allclose([res['scores'][k] for k in want], [want[k] for k in want], atol=1e-6)
    assert res['scores']['siamese'] == pytest.approx(SiameseSimilarity.load(tiny['model']).similarity(a, variant), abs=1e-6)
    aspects = SiameseSimilarity.load(tiny['model']).aspects(a, variant)
    assert [res['scores'][f'siamese:{k}'] for k in aspects] == pytest.approx(list(aspects.values()), abs=1e-6)
    assert res['verdict'] == rows[-1]
    raw = json.loads(run_main(compare_main, a, variant, '--calibration', 'none', '--json')[1])
    assert raw['scale'] == 'raw' and 'siamese' not in raw['scores'] and raw['scores']['color'] >= res['scores']['color']



# -- a scale of one's own: real photographs --------------------------------------------------------------------------

@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    """Real photographs that ship with scikit-image, scikit-learn (fastai's dependency) and matplotlib: astronaut and
    coffee, to compare, and a folder of the 18 others, each a photograph of its own, to calibrate on."""
    import matplotlib.cbook, skimage.data as data
    from PIL import Image
    from sklearn.datasets import load_sample_image
    d = tmp_path_factory.mktemp('photos')
    (d / 'folder').mkdir()
    for name in ('astronaut', 'coffee'): Image.fromarray(getattr(data, name)()).save(d / f'{name}.png')
    folder = d / 'folder'
    for name in ('chelsea', 'rocket', 'hubble_deep_field', 'immunohistochemistry', 'retina', 'camera', 'clock', 'coins',
                 'moon', 'page', 'brick', 'grass', 'gravel', 'text', 'cell'):
        Image.fromarray(getattr(data, name)()).save(folder / f'{name}.png')
    for name in ('china', 'flower'): Image.fromarray(load_sample_image(f'{name}.jpg')).save(folder / f'{name}.png')
    Image.open(matplotlib.cbook.get_sample_data('grace_hopper.jpg', asfileobj=False)).save(folder / 'grace_hopper.png')
    return d


def test_two_unrelated_photos_on_a_scale_made_from_photos_get_no_edit_verdict(tiny, photos, tmp_path):
    """The shipped scale and the tiny run's network were made from procedural paintings; a scale calibrated on a
    folder of real photographs (with the network's scores of the same pairs) puts two unrelated photos within what
    unrelated photos reach, and no verdict reads an edit into them; the output names what scale and model come from."""
    cal, a, b = tmp_path / 'photos.json', photos / 'astronaut.png', photos / 'coffee.png'
    r = cli('artsim_calibrate', photos / 'folder', '--out', cal, '--model', tiny['model'])
    assert r.returncode == 0 and r.stderr == '', r.stderr
    first = f"artsim_calibrate: 18 images in {photos / 'folder'} -> {cal}: 153 unrelated pairs"
    assert r.stdout.splitlines()[0].startswith(first), r.stdout
    r = cli('artsim_compare', a, b, '--model', tiny['model'], '--calibration', cal)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert f"calibration: {cal}: unrelated pairs of the 18 images of {photos / 'folder'} (153 pairs)" in lines, r.stdout
    made = "model: siamese.safetensors: trained on the demo preset's procedural paintings, drawn in code ("
    assert any(l.startswith(made) for l in lines), r.stdout
    assert "Siamese network (siamese.safetensors), on the calibration's scale" in r.stdout
    assert lines[-1].startswith('no closer than unrelated images (combined '), r.stdout
    assert 'changed most' not in r.stdout and 'kept best' not in r.stdout, r.stdout
    res = json.loads(cli('artsim_compare', a, b, '--model', tiny['model'], '--calibration', cal, '--json').stdout)
    own = load_calibration(cal)
    assert res['siamese_scale'] == 'calibration' and res['verdict'] == lines[-1]
    s = own.unrelated['siamese']   # the network's raw scores of the pairs, put on the scale its score is shown on
    assert res['unrelated_q99'] == pytest.approx(dict(combined=own.unrelated['combined']['q99'],
                                                      siamese=(s['q99'] - s['anchor']) / (1 - s['anchor'])))
    for m in ('combined', 'siamese'):   # within what 1 in 100 unrelated photo pairs reach
        assert res['scores'][m] <= res['unrelated_q99'][m], (m, res['scores'], res['unrelated_q99'])
    # the same pair on the shipped scale, which the output says was made from procedural paintings
    shipped = json.loads(cli('artsim_compare', a, b, '--model', tiny['model'], '--json').stdout)
    assert shipped['calibration_source'].startswith("the calibration shipped with artsim: unrelated pairs of the demo")
    assert shipped['siamese_scale'] == 'training data' and res['scores']['combined'] < shipped['scores']['combined']

# -- bad input, each command -------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def bad(tiny, tmp_path_factory):
    "Things that are not what the commands want."
    d = tmp_path_factory.mktemp('bad')
    (d / 'notes.png').write_text('not an image')
    (d / 'empty').mkdir()
    (d / 'texts').mkdir(); (d / 'texts' / 'readme.txt').write_text('no images here')
    (d / 'model.pkl').write_bytes(b'\x80\x04K\x01.')
    (d / 'fake.safetensors').write_bytes(b'not the weights of a network ' * 8)   # beside a real card
    shutil.copy(tiny['model'].with_suffix('.json'), d / 'fake.json')
    (d / 'not_a_calibration.json').write_text('{"a": 1}')
    (d / 'stuff').mkdir(); (d / 'stuff' / 'x.txt').write_text('x')
    return d


def compare_cases(t, b):
    img, var = t['originals'] / t['variants'][0][1], t['variants'][0][0]
    return [((img,), 2, 'the following arguments are required'), ((img, b / 'nope.png'), 2, 'no such file'),
            ((img, b / 'notes.png'), 1, 'not an image file'), ((img, b / 'empty'), 1, 'a directory'),
            ((img, var, '--model', b / 'model.pkl'), 1, 'never unpickles'), ((img, var, '--model', b / 'fake.safetensors'), 1, 'not a safetensors file'),
            ((img, var, '--model', b / 'nope.safetensors'), 2, 'no such file'), ((img, var, '--model', b / 'notes.png'), 1, 'not a safetensors file'),
            ((img, var, '--calibration', b / 'not_a_calibration.json'), 1, 'not an artsim calibration'),
            ((img, var, '--calibration', b / 'nope'), 2, 'no such file'), ((img, var, '--device', 'gpu'), 2, 'not a torch device'),
            ((img, var, '--colour'), 2, 'unrecognized arguments')]


def test_compare_bad_input(tiny, bad):
    for argv, code, says in compare_cases(tiny, bad):
        one_line_error(*run_main(compare_main, *argv)[::2], code, says)


def test_index_bad_input(tiny, bad, tmp_path):
    orig = tiny['originals']
    cases = [((bad / 'nope', '--out', tmp_path / 'i'), 2, 'no such file'), ((bad / 'notes.png', '--out', tmp_path / 'i'), 2, 'takes a folder'),
             ((bad / 'empty', '--out', tmp_path / 'i'), 1, 'holds no image files'), ((bad / 'texts', '--out', tmp_path / 'i'), 1, 'holds no image files'),
             ((orig,), 2, 'the following arguments are required: --out'), ((orig, '--out', bad / 'stuff'), 1, 'holds other things'),
             ((orig, '--out', bad / 'notes.png'), 2, 'a file; an index is a folder'),
             ((orig, '--out', tmp_path / 'i', '--model', bad / 'model.pkl'), 1, 'never unpickles'),
             ((orig, '--out', tmp_path / 'i', '--calibration', 'none'), 2, 'needs a calibrated scale'),
             ((orig, '--out', tmp_path / 'i', '--jobs', 'two'), 2, 'invalid int value')]
    for argv, code, says in cases:
        one_line_error(*run_main(index_main, *argv)[::2], code, says)
    assert not (tmp_path / 'i').exists()   # nothing was written for any of them


def test_search_bad_input(tiny, bad, indexes, tmp_path):
    var = tiny['variants'][0][0]
    plain, model = indexes['plain'], indexes['model']
    cases = [((bad / 'nope.png', '--index', plain), 2, 'no such file'), ((bad / 'notes.png', '--index', plain), 1, 'not an image file'),
             ((var, '--index', tmp_path / 'nope'), 2, 'no such file'), ((var, '--index', bad / 'stuff'), 1, 'not an artsim index'),
             ((var,), 2, 'required: --index'), ((var, '--index', plain, '-k', 0), 2, 'not a positive whole number'),
             ((var, '--index', plain, '-k', 'five'), 2, 'not a positive whole number'),
             ((var, '--index', plain, '--by', 'siamese'), 2, 'holds no Siamese embeddings'),
             ((var, '--index', plain, '--by', 'colour'), 2, 'invalid choice'),
             ((var, '--index', plain, '--by', 'siamese', '--aspect', 'style'), 2, 'holds no Siamese embeddings'),
             ((var, '--index', model, '--by', 'siamese', '--aspect', 'colour'), 2, "the index's calibration has the aspects"),
             ((var, '--index', plain, '--model', tiny['model']), 2, 'holds no Siamese embeddings'),
             ((var, '--index', model, '--model', bad / 'model.pkl'), 1, 'never unpickles')]
    for argv, code, says in cases:
        one_line_error(*run_main(search_main, *argv)[::2], code, says)


def test_search_refuses_an_index_of_another_version(tiny, indexes, tmp_path):
    var = tiny['variants'][0][0]
    for change, says in [(dict(artsim='0.0.1'), f'artsim 0.0.1 (this is artsim {__version__})'),
                         ('descriptors', 'descriptors color-v0-s128 (now color-v1-s128)'),
                         (dict(model='ab' * 16), 'the Siamese model abababababab'),
                         (dict(complete=False), 'is incomplete'), (dict(format='something/1'), 'is not an artsim index file')]:
        ix = tmp_path / 'ix'
        shutil.rmtree(ix, ignore_errors=True); shutil.copytree(indexes['model'], ix)
        meta = json.loads((ix / 'index.json').read_text())
        meta = meta | ({'descriptors': meta['descriptors'] | {'color': 'color-v0-s128'}} if change == 'descriptors' else change)
        (ix / 'index.json').write_text(json.dumps(meta))
        one_line_error(*run_main(search_main, var, '--index', ix)[::2], 1, says)
    # the calibration copy edited by hand
    shutil.rmtree(ix); shutil.copytree(indexes['plain'], ix)
    cal = json.loads((ix / 'calibration.json').read_text()); cal['families']['color']['anchor'] += 0.1
    (ix / 'calibration.json').write_text(json.dumps(cal))
    one_line_error(*run_main(search_main, var, '--index', ix)[::2], 1, 'another calibration')
    # a model the index was not made with
    shutil.rmtree(ix); shutil.copytree(indexes['model'], ix)
    import torch
    from artsim.network import SiameseSimilarity
    other = SiameseSimilarity.load(tiny['model'])
    with torch.no_grad(): next(other.model.head.parameters()).add_(0.01)
    other.save(tmp_path / 'other')
    one_line_error(*run_main(search_main, var, '--index', ix, '--model', tmp_path / 'other.safetensors')[::2], 1, 'the Siamese model')
    # and artsim_index refuses to add to an index made with another model
    one_line_error(*run_main(index_main, tiny['originals'], '--out', ix, '--model', tmp_path / 'other.safetensors')[::2], 1, 'the Siamese model')


# -- round trip, resume, bad files, and the pair loop ------------------------------------------------------------------

def test_round_trip_each_variant_finds_its_original(tiny, indexes):
    """On demo data the provenance question is answered: every variant at the lower strength (0.3) finds its own
    original first, and so do at least three in four of all variants (the 0.7 edits of some prompts repaint much of
    the painting), with the index made without and with the Siamese model."""
    assert '32 of 32 images in' in indexes['plain_stdout'], indexes['plain_stdout']
    assert 'embedded 32 with the Siamese model' in indexes['model_stdout'], indexes['model_stdout']
    var, orig, _ = min(tiny['variants'], key=lambda v: v[2])   # a variant at the lower strength
    r = cli('artsim_search', var, '--index', indexes['model'], '-k', 3)   # the console script, once
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1].split() == ['rank', 'combined', 'siamese', 'original'] and lines[2].split()[-1] == orig, r.stdout
    assert lines[5].startswith('calibration: the calibration shipped with artsim') and lines[6].startswith('model: ')
    assert lines[7].startswith('1 in 100 unrelated pairs of the calibration reach combined '), r.stdout
    assert len(lines) == 8, r.stdout
    # without a model: every variant, described in one batch and compared with the whole index (what a search computes)
    ix = load_index(indexes['plain'])
    S = compare_described(describe_images([v for v, _, _ in tiny['variants']], ix.calibration), ix.described, calibration=ix.calibration)
    hits = pd.DataFrame([dict(strength=s, first=ix.paths[i] == o) for (_, o, s), i in zip(tiny['variants'], S['combined'].argmax(1))])
    low = hits.strength == hits.strength.min()
    assert hits['first'][low].all() and hits['first'].mean() >= 0.75, hits.groupby('strength')['first'].mean()
    # with the model: a search per variant at the lower strength, as artsim_search does it
    from artsim.network import SiameseSimilarity
    model = SiameseSimilarity.load(tiny['model'])
    ix = load_index(indexes['model'], model)
    for v, o, _ in [t for t, l in zip(tiny['variants'], low) if l]:
        found = search_index(ix, v, k=2, model=model)
        assert found.original[0] == o and list(found.columns[:4]) == ['rank', 'original', 'combined', 'siamese'], found


@pytest.fixture(scope='module')
def small(tiny, tmp_path_factory):
    "One painting per genre of the tiny run, indexed with the model in this process, with progress bars (their stderr kept)."
    import contextlib, io
    from artsim.network import SiameseSimilarity
    d = tmp_path_factory.mktemp('small')
    for f in sorted(tiny['originals'].glob('*/*-0000.png')): shutil.copy(f, d / f.name)
    model = SiameseSimilarity.load(tiny['model'])
    err = io.StringIO()
    with contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        build_index(d, d.parent / 'small_index', model, n_jobs=1, progress=True)
    return dict(folder=d, index=d.parent / 'small_index', model=model, stderr=err.getvalue())


def test_progress_bars(small):
    assert all(f'{bar}: 100%' in small['stderr'] for bar in ('hashing', 'hand-made families', 'semantic', 'siamese')), small['stderr']


def test_search_equals_the_pair_loop(tiny, small):
    model = small['model']
    ix = load_index(small['index'], model)
    assert len(ix) == 8
    var = tiny['variants'][5][0]
    pairs = pd.DataFrame([dict(original=p, combined=descriptor_similarity(var, ix.root / p, calibration=ix.calibration)['combined'],
                               siamese=model.similarity(var, ix.root / p)) for p in ix.paths])
    for by in ('combined', 'siamese'):
        found = search_index(ix, var, k=len(ix), model=model, by=by)
        loop = pairs.sort_values(by, ascending=False, kind='stable').reset_index(drop=True)
        assert list(found.original) == list(loop.original), by
        np.testing.assert_allclose(found.combined, loop.combined, atol=1e-5)
        np.testing.assert_allclose(found.siamese, loop.siamese, atol=1e-5)
    assert list(search_index(ix, var, k=3, model=model).original) == list(found.sort_values('combined', ascending=False).original[:3])
    # each aspect head: its column and its ranking, against `aspects` of the pair, one pair at a time
    assert model.aspect_names and set(ix.aspect_embeddings) == set(model.aspect_names)
    heads = pd.DataFrame([dict(original=p, **{f'siamese:{a}': v for a, v in model.aspects(var, ix.root / p).items()})
                          for p in ix.paths])
    for a in model.aspect_names:
        found = search_index(ix, var, k=len(ix), model=model, by=f'siamese:{a}')
        loop = heads.sort_values(f'siamese:{a}', ascending=False, kind='stable').reset_index(drop=True)
        assert list(found.original) == list(loop.original), a
        np.testing.assert_allclose(found[f'siamese:{a}'], loop[f'siamese:{a}'], atol=1e-5)


def test_search_by_an_aspect_head_and_an_index_made_before_the_heads(tiny, indexes, tmp_path):
    """`--by siamese --aspect A` ranks by the network's head for A; an index whose store lacks the heads'
    embeddings (made before artsim_index kept them) says to index again, and the rerun adds them."""
    var = tiny['variants'][0][0]
    code, out, err = run_main(search_main, var, '--index', indexes['model'], '--by', 'siamese', '--aspect', 'composition', '-k', 2)
    assert code == 0 and 'ranked by siamese:composition' in out.splitlines()[0], out + err
    assert out.splitlines()[1].split() == ['rank', 'combined', 'siamese', 'siamese:composition', 'original'], out
    ix = tmp_path / 'old'
    shutil.copytree(indexes['model'], ix)
    for f in (ix / 'features').glob('siamese-*.parquet'): f.unlink()
    meta = json.loads((ix / 'index.json').read_text()); del meta['model_aspects']
    (ix / 'index.json').write_text(json.dumps(meta))
    assert run_main(search_main, var, '--index', ix, '-k', 2)[0] == 0   # the overall score still searches
    one_line_error(*run_main(search_main, var, '--index', ix, '--by', 'siamese', '--aspect', 'style')[::2], 2,
                   "holds no embeddings of the network's style head: run artsim_index")
    code, out2, err = run_main(index_main, tiny['originals'], '--out', ix, '--model', tiny['model'], '--jobs', 1)
    assert code == 0 and 'embedded 32 with the Siamese model (0 from the cache)' in out2, out2 + err
    code, again, err = run_main(search_main, var, '--index', ix, '--by', 'siamese', '--aspect', 'composition', '-k', 2)
    assert code == 0 and again.splitlines()[1:4] == out.splitlines()[1:4], again + err


def test_resume_does_only_the_new_image_reports_bad_files_and_follows_a_moved_folder(tiny, tmp_path):
    folder = tmp_path / 'paintings'
    shutil.copytree(tiny['originals'], folder)
    new = sorted(folder.rglob('*.png'))[0]
    held = tmp_path / new.name; shutil.move(new, held)
    code, out, err = run_main(index_main, folder, '--out', tmp_path / 'ix', '--model', tiny['model'], '--jobs', 1)
    assert code == 0 and 'described 31 new images (0 from the cache), embedded 31 with the Siamese model (0 from the cache)' in out, out + err
    shutil.move(held, new)
    (folder / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n truncated')
    (folder / 'notes.txt').write_text('about these paintings')
    code, out, err = run_main(index_main, folder, '--out', tmp_path / 'ix', '--model', tiny['model'], '--jobs', 1)
    assert code == 0, err
    assert 'described 1 new image (31 from the cache), embedded 1 with the Siamese model (31 from the cache)' in out, out
    assert '32 of 33 images' in out and 'skipped 1 unreadable file' in out and 'ignored 1 file not named as images' in out, out
    skipped = [l for l in err.splitlines() if 'skipped' in l]
    assert len(skipped) == 1 and skipped[0].startswith('artsim_index: skipped broken.png: ') and str(folder) not in skipped[0], err
    assert 'Traceback' not in err
    assert len(load_index(tmp_path / 'ix')) == 32
    images = pd.read_parquet(tmp_path / 'ix' / 'images.parquet').set_index('path')
    assert isinstance(images.error['broken.png'], str) and images.error.drop('broken.png').isna().all()
    # the folder and its index moved to another disk: the index follows, nothing is described again
    (tmp_path / 'disk2').mkdir()
    shutil.move(folder, tmp_path / 'disk2' / 'paintings'); shutil.move(tmp_path / 'ix', tmp_path / 'disk2' / 'ix')
    code, out, err = run_main(index_main, tmp_path / 'disk2' / 'paintings', '--out', tmp_path / 'disk2' / 'ix', '--model', tiny['model'], '--jobs', 1)
    assert code == 0 and 'described 0 new images (32 from the cache), embedded 0 with the Siamese model (32 from the cache)' in out, out + err
    assert load_index(tmp_path / 'disk2' / 'ix').root == tmp_path / 'disk2' / 'paintings'
    # while the folder it indexed is still there, an index is not taken over by another folder
    code, out, err = run_main(index_main, tiny['originals'], '--out', tmp_path / 'disk2' / 'ix', '--jobs', 1)
    assert code == 1 and 'is the index of' in err, err



def test_index_files_are_readable_by_others_under_umask_022(tiny, tmp_path):
    "An index shared with a colleague or served by a web server can be read: its files follow the umask, not owner-only."
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}
    r = subprocess.run([str(BIN / 'artsim_index'), str(tiny['originals']), '--out', str(tmp_path / 'ix'), '--jobs', '1'],
                       capture_output=True, text=True, timeout=300, env=env, preexec_fn=lambda: os.umask(0o022))
    assert r.returncode == 0, r.stderr
    files = [p for p in (tmp_path / 'ix').rglob('*') if p.is_file()]
    assert files and all(p.stat().st_mode & 0o044 == 0o044 for p in files), [(p.name, oct(p.stat().st_mode)) for p in files]
