"""artsim.descriptors: fixed-length finite vectors, determinism, the cache, the worker pool, the semantic weights."""
import json, warnings
import numpy as np, pandas as pd, pytest
from PIL import Image
from demo_pairs import make_run, stage_p
from artsim.runs import Run
import artsim.descriptors as D
from artsim.families import FAMILIES, HANDMADE, describe, working_image
from artsim.descriptors import (FeatureStore, SemanticEncoder, extract_features, family_centre, feature_centre, feature_matrix,
                                l2_normalise)
from artsim.backbone import WeightsUnavailable, resnet50, resnet50_state_dict

rng = np.random.default_rng(0)
DEGENERATE = {
    'black': np.zeros((40, 30, 3), np.uint8), 'white': np.full((40, 30, 3), 255, np.uint8),
    'one pixel': np.full((1, 1, 3), 90, np.uint8), 'one row': rng.integers(0, 256, (1, 500, 3), dtype=np.uint8),
    'huge': rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8), 'grayscale array': rng.integers(0, 256, (50, 50), dtype=np.uint8),
    'grayscale PIL': Image.new('L', (64, 48), 17), 'RGBA': Image.new('RGBA', (20, 20), (255, 0, 0, 0)),
}


@pytest.fixture(scope='module')
def random_encoder(): return SemanticEncoder('random', size=64, seed=0)


@pytest.mark.parametrize('name', DEGENERATE)
def test_degenerate_images_give_finite_fixed_length_vectors(name, random_encoder):
    vecs = describe(DEGENERATE[name], size=64) | {'semantic': random_encoder.encode([DEGENERATE[name]])[0]}
    for fam, v in vecs.items():
        assert v.shape == (FAMILIES[fam].dim,) and v.dtype == np.float32, fam
        assert np.isfinite(v).all(), (name, fam)


def test_vector_lengths_do_not_depend_on_size():
    img = DEGENERATE['huge'][:300, :200]
    for size in (32, 64, 96, 256):
        assert {f: v.shape for f, v in describe(img, size).items()} == {f: (FAMILIES[f].dim,) for f in HANDMADE}


def test_segments_add_up_and_histograms_sum_to_one(demo_root):
    x = working_image(demo_root / 'data/images/genre0/g0-000.png', 128)
    for fam in HANDMADE:
        v = FAMILIES[fam].fn(x)
        assert sum(s.dim for s in FAMILIES[fam].segments) == len(v)
        for s in FAMILIES[fam].segments:
            if s.kind == 'hist': assert abs(FAMILIES[fam].parts(v)[s.name].sum() - 1) < 1e-4, (fam, s.name)


def test_deterministic(demo_root, random_encoder):
    f = demo_root / 'data/images/genre3/g3-002.png'
    a, b = describe(f), describe(str(f))
    for fam in HANDMADE: np.testing.assert_array_equal(a[fam], b[fam])
    other = SemanticEncoder('random', size=64, seed=0)
    x = [f]
    np.testing.assert_allclose(random_encoder.encode(x), other.encode(x), rtol=1e-5, atol=1e-5)


def test_input_kinds_agree(demo_root):
    f = demo_root / 'data/images/genre1/g1-001.png'
    ref = describe(f)
    for src in (f.read_bytes(), Image.open(f), np.asarray(Image.open(f).convert('RGB'))):
        for fam in HANDMADE: np.testing.assert_array_equal(describe(src)[fam], ref[fam])


def test_unreadable_images_raise_a_named_error(tmp_path):
    from artsim.data import ImageLoadError
    bad = tmp_path / 'broken.png'; bad.write_bytes(b'not a png')
    with pytest.raises(ImageLoadError, match='broken.png'): describe(bad)


def count_calls(monkeypatch, module=D):
    "Count the images `module`'s `describe` and `SemanticEncoder.encode` are given (test_similarity uses it too)."
    calls = {'describe': 0, 'encode': 0}
    real_describe, real_encode = module.describe, SemanticEncoder.encode
    def describe_(*a, **k): calls['describe'] += 1; return real_describe(*a, **k)
    def encode_(self, images): calls['encode'] += len(images); return real_encode(self, images)
    monkeypatch.setattr(module, 'describe', describe_)
    monkeypatch.setattr(SemanticEncoder, 'encode', encode_)
    return calls


def test_second_extraction_does_no_work(tmp_path, monkeypatch, random_encoder):
    root = make_run(tmp_path / 'run', n_genres=2, n_per_genre=2, size=64, strengths=(0.5,), prompts={'p0': 'x'})
    files = sorted(root.rglob('*.png'))
    store = FeatureStore(tmp_path / 'features')
    calls = count_calls(monkeypatch)
    kw = dict(size=64, encoder=random_encoder, n_jobs=1, progress=False)
    index, stats = extract_features(files, store, **kw)
    assert calls == {'describe': len(files), 'encode': len(files)}
    assert stats['extracted'] == dict.fromkeys(FAMILIES, len(files)) and stats['errors'] == 0
    known = {(f, b, m): h for f, b, m, h in zip(index.file, index.bytes, index.mtime_ns, index.hash)}
    index2, stats2 = extract_features(files, store, known=known, **kw)
    assert calls == {'describe': len(files), 'encode': len(files)}  # nothing more was described or encoded
    assert stats2['extracted'] == dict.fromkeys(FAMILIES, 0)
    assert index2.hash.tolist() == index.hash.tolist()
    # an edited file is described again, and only it; a copy of a known image is not
    Image.new('RGB', (64, 64), 'red').save(files[0])
    (root / 'copy.png').write_bytes(files[1].read_bytes())
    _, stats3 = extract_features(files + [root / 'copy.png'], store, known=known, **kw)
    assert stats3['extracted'] == dict.fromkeys(FAMILIES, 1) and calls['describe'] == len(files) + 1


def test_bad_files_are_reported_and_skipped(tmp_path, random_encoder):
    root = make_run(tmp_path / 'run', n_genres=2, n_per_genre=1, size=64, strengths=(0.5,), prompts={'p0': 'x'})
    files = sorted(root.rglob('*.png'))
    (root / 'bad.png').write_bytes(b'\x89PNG garbage'); missing = root / 'missing.png'
    index, stats = extract_features(files + [root / 'bad.png', missing], FeatureStore(tmp_path / 'f'), size=64,
                                    encoder=random_encoder, n_jobs=1, progress=False)
    assert stats['errors'] == 2 and stats['extracted']['color'] == len(files)
    errors = dict(zip(index.file, index.error))
    assert 'bad.png' in errors[str(root / 'bad.png')] and 'No such file' in errors[str(missing)]


def test_worker_pool_matches_serial(tmp_path):
    root = make_run(tmp_path / 'run', n_genres=3, n_per_genre=2, size=64, strengths=(0.5,), prompts={'p0': 'x'})
    files = sorted(root.rglob('*.png'))
    out = {}
    for n_jobs in (1, 2):
        store = FeatureStore(tmp_path / f'f{n_jobs}')
        extract_features(files, store, HANDMADE, size=64, n_jobs=n_jobs, chunk_size=5, progress=False)
        out[n_jobs] = {f: dict(zip(*store.read(f, D.descriptor_version(f, 64)))) for f in HANDMADE}
    for f in HANDMADE:
        assert len(out[1][f]) == len(files)
        for h, v in out[1][f].items(): np.testing.assert_array_equal(out[2][f][h], v)


def test_stage_writes_features_and_a_rerun_is_free(described_root):
    run = Run(described_root)
    images = run.read_parquet('features/images.parquet')
    assert len(images) == 40 + 320 and images.error.isna().all() and set(images.role) == {'original', 'generated'}
    versions = json.loads(run.resolve('features/versions.json').read_text())
    assert set(versions) == set(FAMILIES)
    sem = json.loads(run.resolve('features/semantic.json').read_text())
    assert sem['weights'] == 'random42' and 'random-init' in sem['note']   # recorded, not warned: it was asked for
    for fam in FAMILIES:
        paths, X = feature_matrix(run, fam)
        assert X.shape == (360, FAMILIES[fam].dim) and np.isfinite(X).all()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        D.stage(run, stage_p('descriptors'))
    stats = json.loads(run.resolve('features/extraction.json').read_text())
    assert stats['last_pass']['extracted'] == dict.fromkeys(FAMILIES, 0)   # the warm rerun extracted nothing
    assert all(stats['extracted'].values())                                # the record of the pass that did the work stays
    assert not list(run.resolve('features/parts').glob('*.parquet'))
    p = stage_p('descriptors')
    assert run.read_json('features/settings.json') == dict(size=p.size, semantic_weights=p.semantic_weights, semantic_size=p.semantic_size, seed=p.seed)


def test_the_stage_keeps_the_semantic_centre_of_the_paintings(described_root):
    run = Run(described_root)
    paths, X = feature_matrix(run, 'semantic')
    originals = paths.str.startswith('data/')
    assert originals.sum() == 40
    c = feature_centre(run, 'semantic')
    np.testing.assert_allclose(c, l2_normalise(X[originals]).mean(0), atol=1e-6)
    assert feature_centre(run, 'color') is None and [f for f in FAMILIES if FAMILIES[f].centred] == ['semantic']
    store = FeatureStore(run.resolve('features'))
    assert store.centre('semantic', 'semantic-v1-other') is None


def test_family_centre_and_the_centre_store(tmp_path):
    X = rng.random((5, 2048)) * 10
    c = family_centre('semantic', X)
    assert c.dtype == np.float32 and c.shape == (2048,)
    np.testing.assert_allclose(c, (X / np.linalg.norm(X, axis=1, keepdims=True)).mean(0), rtol=1e-5)
    with pytest.raises(ValueError, match='no vectors'): family_centre('semantic', X[:0])
    store = FeatureStore(tmp_path / 'f')
    store.put_centre('semantic', 'v1', c, 5)
    store.put_centre('semantic', 'v2', np.zeros(2048), 1)
    store.put_centre('semantic', 'v1', 2 * c, 6)  # replaces v1, keeps v2
    np.testing.assert_array_equal(store.centre('semantic', 'v1'), 2 * c)
    np.testing.assert_array_equal(store.centre('semantic', 'v2'), np.zeros(2048, np.float32))
    import pyarrow.parquet as pq
    assert pq.read_table(tmp_path / 'f/centres.parquet').num_rows == 2


def test_a_missing_centre_says_which_chapter_to_rerun(tmp_path, described_root):
    import shutil
    run = Run(tmp_path / 'copy')
    shutil.copytree(described_root / 'features', run.path / 'features')
    (run.path / 'features/centres.parquet').unlink()
    with pytest.raises(FileNotFoundError, match="run the 'descriptors' chapter"): feature_centre(run, 'semantic')


# ---- the semantic family's weights ----

def test_imagenet_unavailable_is_an_error_not_a_fallback(monkeypatch):
    import torchvision
    monkeypatch.setattr(torchvision.models._api.WeightsEnum, 'get_state_dict', lambda *a, **k: (_ for _ in ()).throw(OSError('offline')))
    with pytest.raises(WeightsUnavailable, match='resnet50-11ad3fa6.pth'): SemanticEncoder('imagenet', size=32, seed=3)


def test_local_state_dict_torchvision_and_fastai_names(tmp_path, random_encoder):
    import torch
    from safetensors.torch import save_file
    sd = {k: v.contiguous().clone() for k, v in resnet50('random', seed=0).state_dict().items() if not k.startswith('fc.')}
    save_file(sd, tmp_path / 'tv.safetensors')
    names = {'conv1': 0, 'bn1': 1, 'layer1': 4, 'layer2': 5, 'layer3': 6, 'layer4': 7}
    fastai = {f'0.{names[k.split(".")[0]]}.{k.split(".", 1)[1]}': v for k, v in sd.items()} | {'1.2.weight': torch.zeros(3)}
    torch.save(fastai, tmp_path / 'fastai.pth')
    assert resnet50_state_dict(fastai).keys() == sd.keys()
    x = [DEGENERATE['huge'][:100, :100]]
    ref = random_encoder.encode(x)
    for f in ('tv.safetensors', 'fastai.pth'):
        with warnings.catch_warnings():
            warnings.simplefilter('error')  # a file loads without any warning
            enc = SemanticEncoder(tmp_path / f, size=64, seed=99)
        assert enc.weights_id.startswith('file-') and enc.note is None
        np.testing.assert_allclose(enc.encode(x), ref, rtol=1e-4, atol=1e-4)


def test_bad_weights_fail_clearly(tmp_path):
    import torch
    with pytest.raises(FileNotFoundError, match='no such file'): SemanticEncoder(tmp_path / 'nope.safetensors')
    torch.save({'conv1.weight': torch.zeros(1)}, tmp_path / 'partial.pt')
    with pytest.raises(ValueError, match='not a ResNet50 state dict'): SemanticEncoder(tmp_path / 'partial.pt')
    with pytest.raises(FileNotFoundError): SemanticEncoder('genre', run=Run(tmp_path / 'run'))
