"""The image loader on a corpus of bad and unusual files, the sources, and the manifest."""
import gc, io, json, os, warnings
from pathlib import Path
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from fastcore.basics import AttrDict

import artsim
from artsim.data import (load_image, ImageLoadError, build_manifest, save_manifest, collect, check_params,
                         input_fingerprint, split_stratified)
from artsim.painter import demo_painting, DEMO_GENRES
from artsim.sources import read_wikiart, read_huggan, read_folder, read_csv_source, read_source, MANIFEST_COLUMNS
from artsim.runs import Run, stage_params, preset_params


def _jpeg(color=(200, 50, 50), size=(40, 30), **kw):
    b = io.BytesIO(); Image.new('RGB', size, color).save(b, 'JPEG', **kw); return b.getvalue()


@pytest.fixture
def corpus(tmp_path):
    "A folder of bad and unusual images, each named for what it is."
    d = tmp_path/'corpus'; d.mkdir()
    (d/'zero.jpg').write_bytes(b'')
    (d/'truncated.jpg').write_bytes(_jpeg(size=(200, 200))[:400])
    (d/'text.jpg').write_text('this is not an image\n')
    Image.new('CMYK', (20, 10), (0, 255, 255, 0)).save(d/'cmyk.jpg')
    Image.new('P', (20, 10), 3).save(d/'palette.png')
    Image.fromarray(np.full((10, 20), 32768, np.uint16)).save(d/'gray16.png')
    Image.new('RGBA', (20, 10), (255, 0, 0, 0)).save(d/'rgba.png')
    Image.new('LA', (20, 10), (0, 128)).save(d/'la.png')
    Image.new('RGB', (1, 1), (1, 2, 3)).save(d/'one.png')
    Image.new('1', (20000, 20000)).save(d/'bomb.png')  # tiny on disk, 400 MP decoded
    im = Image.new('RGB', (40, 20), 'blue'); ex = im.getexif(); ex[0x0112] = 8
    im.save(d/'rotated.jpg', exif=ex)
    return d


def test_loader_modes(corpus):
    for name in ['cmyk.jpg', 'palette.png', 'gray16.png', 'rgba.png', 'la.png', 'one.png', 'rotated.jpg']:
        im = load_image(corpus/name)
        assert im.mode == 'RGB', name
    assert load_image(corpus/'cmyk.jpg').getpixel((0, 0))[0] > 200          # cyan-free: red stays red
    assert load_image(corpus/'rgba.png').getpixel((0, 0)) == (255, 255, 255)  # transparent over white
    g = load_image(corpus/'gray16.png').getpixel((0, 0))
    assert 126 <= g[0] <= 129 and g[0] == g[1] == g[2]                       # 32768/65535 of full scale
    assert load_image(corpus/'rotated.jpg').size == (20, 40)                 # EXIF orientation 8 applied
    assert load_image(corpus/'one.png').size == (1, 1)


@pytest.mark.parametrize('name,reason', [('zero.jpg', 'empty file'), ('truncated.jpg', 'truncated'),
                                         ('text.jpg', 'not an image'), ('bomb.png', 'decompression bomb'),
                                         ('missing.jpg', 'no such file')])
def test_loader_errors_name_the_file(corpus, name, reason):
    with pytest.raises(ImageLoadError) as e: load_image(corpus/name)
    assert name in str(e.value) and reason in e.value.reason


def test_loader_sources():
    a = np.zeros((5, 7, 3), np.uint8); a[..., 2] = 255
    assert load_image(a).getpixel((0, 0)) == (0, 0, 255)
    assert load_image(_jpeg()).size == (40, 30)
    with pytest.raises(ImageLoadError, match='uint8'): load_image(np.zeros((3, 3), np.float32))
    with pytest.raises(ImageLoadError, match='empty bytes'): load_image(b'')
    assert artsim.load_image is load_image


def test_demo_determinism(tmp_path):
    "Same seed, same images, byte for byte, also as written by two separate runs."
    for g in DEMO_GENRES:
        assert demo_painting(g, 3).tobytes() == demo_painting(g, 3).tobytes()
    p = AttrDict(source='demo', source_path=None, genres=None, n_per_genre=3, min_size=16, image_size=48,
                 valid_pct=.34, test_pct=.34, seed=5)
    m1, _, _ = build_manifest(Run(tmp_path/'a'), p); m2, _, _ = build_manifest(Run(tmp_path/'b'), p)
    pd.testing.assert_frame_equal(m1, m2)
    for f in m1.path:
        assert (tmp_path/'a'/f).read_bytes() == (tmp_path/'b'/f).read_bytes()
    assert len(m1) == 3 * len(DEMO_GENRES) and m1.genre.nunique() == len(DEMO_GENRES) >= 6
    m3, _, _ = build_manifest(Run(tmp_path/'c'), AttrDict(p, seed=6))
    assert (tmp_path/'a'/m1.path[0]).read_bytes() != (tmp_path/'c'/m3.path[0]).read_bytes()


def test_demo_genres_are_not_one_pixel():
    "Within a genre the mean colour varies: the genre is not a colour."
    for g in DEMO_GENRES:
        means = np.array([np.asarray(demo_painting(g, s, 64)).reshape(-1, 3).mean(0) for s in range(6)])
        assert means.std(0).max() > 3, g


@pytest.fixture
def artgan(tmp_path):
    "A tiny WikiArt folder in the ArtGAN layout, quirks included."
    root = tmp_path/'wikiart_root'
    imgs = {'Impressionism/claude-monet_water-lilies.jpg': 'landscape', 'Impressionism/claude-monet_haystacks.jpg': 'landscape',
            'Art_Nouveau_Modern/alphonse-mucha_job.jpg': 'portrait', 'Baroque/rembrandt_self-portrait.jpg': 'portrait',
            'Baroque/rembrandt_broken.jpg': 'portrait', 'Baroque/rembrandt_gone.jpg': 'portrait'}
    for rel in imgs:
        f = root/'wikiart'/rel; f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(_jpeg(size=(80, 60)))
    (root/'wikiart'/'Baroque/rembrandt_broken.jpg').write_bytes(b'garbage')
    (root/'wikiart'/'Baroque/rembrandt_gone.jpg').unlink()
    csvd = root/'wikiart_csv'; csvd.mkdir()
    (csvd/'genre_class.txt').write_text('0 landscape\n1 portrait\n')
    (csvd/'style_class.txt').write_text('0 Impressionism\n1 Art_Nouveau\n2 Baroque\n')
    (csvd/'artist_class.txt').write_text('0 Claude_Monet\n1 Rembrandt\n')
    rows = list(imgs.items())
    (csvd/'genre_train.csv').write_text(''.join(f'{r},{0 if g == "landscape" else 1}\n' for r, g in rows[:4]))
    (csvd/'genre_val.csv').write_text(''.join(f'{r},1\n' for r, g in rows[4:]))
    (csvd/'artist_train').write_text('Impressionism/claude-monet_water-lilies.jpg,,0\nBaroque/rembrandt_self-portrait.jpg,,1\n')
    return root


def test_wikiart_artgan_layout(artgan, tmp_path):
    c = read_wikiart(artgan)
    assert len(c) == 6
    row = c.set_index('id').loc['claude-monet_water-lilies']
    assert (row.genre, row.style, row.artist) == ('landscape', 'Impressionism', 'Claude_Monet')
    assert c.set_index('id').loc['alphonse-mucha_job'].style == 'Art_Nouveau_Modern'   # the folder's name wins
    assert c.set_index('id').loc['alphonse-mucha_job'].artist == 'alphonse-mucha'       # not in the artist list: from the file name
    run = Run(tmp_path/'run')
    p = AttrDict(source='wikiart', source_path=str(artgan), genres=None, n_per_genre=3, min_size=10, image_size=None,
                 valid_pct=0., test_pct=.34, seed=0)
    with warnings.catch_warnings(record=True):
        m, bad, _ = build_manifest(run, p)
    reasons = dict(zip(bad.id, bad.reason))
    assert reasons['rembrandt_gone'] == 'no such file' and 'not an image' in reasons['rembrandt_broken']
    assert len(bad) == 2 and set(bad.id) == {'rembrandt_broken', 'rembrandt_gone'}
    assert (m.genre == 'portrait').sum() == 2 and (m.genre == 'landscape').sum() == 2   # everything else kept
    assert all(Path(x).is_absolute() and Path(x).exists() for x in m.path)              # left where they lie


def _hf_shard(path, n=6):
    names = dict(artist=['Unknown Artist', 'claude monet'], genre=['landscape', 'portrait', 'still life'],
                 style=['Impressionism', 'Baroque'])
    imgs = [dict(bytes=_jpeg((i * 30, 100, 50), size=(70, 50)), path=None) for i in range(n)]
    imgs[2] = dict(bytes=b'\x00\x01broken', path=None)
    t = pa.table(dict(image=imgs, artist=[i % 2 for i in range(n)], genre=[i % 3 for i in range(n)], style=[i % 2 for i in range(n)]))
    feats = {'image': {'_type': 'Image'}, **{k: {'names': v, '_type': 'ClassLabel'} for k, v in names.items()}}
    t = t.replace_schema_metadata({'huggingface': json.dumps({'info': {'features': feats}})})
    pq.write_table(t, path, row_group_size=4)


def test_huggan_shards(tmp_path):
    d = tmp_path/'hf'; d.mkdir(); _hf_shard(d/'train-00000-of-00002.parquet'); _hf_shard(d/'train-00001-of-00002.parquet')
    c = read_huggan(d)
    assert len(c) == 12 and set(c.genre) == {'landscape', 'portrait', 'still life'} and 'claude monet' in set(c.artist)
    run = Run(tmp_path/'run')
    p = AttrDict(source='huggan', source_path=str(d), genres=['landscape', 'still life'], n_per_genre=4, min_size=10,
                 image_size=None, valid_pct=0., test_pct=.25, seed=1)
    with warnings.catch_warnings(record=True):   # 2 still lifes of the 4 asked for
        m, bad, _ = build_manifest(run, p)
    assert set(m.genre) == {'landscape', 'still life'} and (m.genre == 'landscape').sum() == 4
    assert (m.genre == 'still life').sum() == 2 and len(bad) == 2   # row 2 of each shard is a broken still life
    for f in m.path: assert load_image(run.resolve(f)).size == (70, 50)


def test_folder_and_csv_sources(tmp_path):
    for g in ['a', 'b']:
        (tmp_path/'imgs'/g).mkdir(parents=True)
        for i in range(3): (tmp_path/'imgs'/g/f'{i}.jpg').write_bytes(_jpeg(size=(30, 30)))
    c = read_folder(tmp_path/'imgs')
    assert len(c) == 6 and set(c.genre) == {'a', 'b'}
    pd.DataFrame(dict(path=['imgs/a/0.jpg', 'imgs/b/1.jpg'], genre=['x', 'y'], artist=['p', 'q'])).to_csv(tmp_path/'list.csv', index=False)
    c = read_csv_source(tmp_path/'list.csv')
    assert list(c.genre) == ['x', 'y'] and Path(c.src[0]).exists()
    with pytest.raises(ValueError, match='unknown source'): read_source('flickr', tmp_path)
    with pytest.raises(FileNotFoundError, match='ArtGAN'): read_wikiart(tmp_path/'nope')


def test_manifest_round_trip(tmp_path):
    run = Run(tmp_path/'r')
    p = stage_params('data', dict(preset='tiny', run_dir=run.path))
    m, bad, report = build_manifest(run, p)
    save_manifest(run, m, bad, report)
    back = run.read_parquet('data/manifest.parquet')
    pd.testing.assert_frame_equal(back, m)
    assert list(back.columns) == MANIFEST_COLUMNS and back.width.dtype == 'int64'
    assert pd.read_csv(run.path/'data/bad_files.csv').columns.tolist() == ['src', 'id', 'genre', 'reason']
    assert not list(run.path.rglob('*.tmp'))


def test_show_samples_works_outside_a_notebook(tmp_path):
    from artsim.data import show_samples
    run = Run(tmp_path/'r')
    m, _, _ = build_manifest(run, stage_params('data', dict(preset='tiny', run_dir=run.path)))
    fig = show_samples(run, m, n=2)
    assert len(fig.axes) == 2 * m.genre.nunique()
    assert sum(len(ax.images) for ax in fig.axes) == 2 * m.genre.nunique()


# ---- a user's own folder of images ----

def _folder(root, counts, size=64):
    "A `<genre>/<image>` folder with `counts[genre]` demo paintings per genre."
    for g, n in counts.items():
        (root/g).mkdir(parents=True, exist_ok=True)
        for i in range(n): demo_painting(g, i, size).save(root/g/f'{g}_{i}.jpg')
    return root


def _p(**kw):
    "The demo preset's data parameters, with a min_size the test folders' 64-pixel paintings pass."
    return AttrDict({**preset_params('demo', 'data'), 'min_size': 32, **kw})


def test_folder_layout_nested_and_skipped_files(tmp_path):
    root = _folder(tmp_path/'imgs', dict(landscape=2, portrait=1))
    (root/'portrait'/'sketches'/'old').mkdir(parents=True)
    demo_painting('portrait', 5, 32).save(root/'portrait'/'sketches'/'old'/'study.png')
    demo_painting('portrait', 6, 32).save(root/'portrait'/'portrait_0.png')   # beside portrait_0.jpg
    (root/'stray.jpg').write_bytes(b'x'); (root/'landscape'/'notes.txt').write_text('n')
    (root/'landscape'/'.ipynb_checkpoints').mkdir(); (root/'landscape'/'.ipynb_checkpoints'/'landscape_0.jpg').write_bytes(b'x')
    (root/'landscape'/'folder.jpg').mkdir()                                  # a folder with an image's name: a folder
    c = read_folder(root)
    assert list(c.id) == ['landscape-landscape_0', 'landscape-landscape_1', 'portrait-portrait_0.jpg', 'portrait-portrait_0.png',
                          'portrait-sketches-old-study']
    assert c.set_index('id').loc['portrait-sketches-old-study'].genre == 'portrait'
    why = {Path(s).name: r for s, r in zip(c.attrs['skipped'].src, c.attrs['skipped'].reason)}
    assert why == {'stray.jpg': "skipped: at the folder's root, not in a <genre>/ folder",
                   'notes.txt': 'skipped: not an image file name (.txt)', 'landscape_0.jpg': 'skipped: a hidden file or folder'}


def test_a_directory_is_named_for_what_it_is(tmp_path):
    (tmp_path/'x.jpg').mkdir()
    with pytest.raises(ImageLoadError, match='x.jpg: a directory, not an image file'): load_image(tmp_path/'x.jpg')
    pd.DataFrame(dict(path=['x.jpg'], genre=['a'])).to_csv(tmp_path/'list.csv', index=False)
    p = _p(source='csv', source_path=str(tmp_path/'list.csv'), n_per_genre=1, valid_pct=0., test_pct=0.)
    with pytest.raises(ValueError, match='1 a directory, not an image file'): build_manifest(Run(tmp_path/'r'), p)
    assert pd.read_csv(tmp_path/'r'/'data'/'bad_files.csv').reason.tolist() == ['a directory, not an image file']


def test_fewer_images_than_n_per_genre_keeps_what_there_is(tmp_path):
    root = _folder(tmp_path/'imgs', dict(landscape=3, portrait=3, cityscape=5))
    (root/'landscape'/'broken.jpg').write_bytes(_jpeg(size=(200, 200))[:300])
    p = _p(source='folder', source_path=str(root), n_per_genre=4)   # the demo preset's shares: 0.2 valid, 0.2 test
    with pytest.warns(UserWarning, match=r"fewer than n_per_genre=4 good paintings in 2 genres, all kept: \{'landscape': 3, 'portrait': 3\}"):
        m, bad, report = build_manifest(Run(tmp_path/'r'), p)
    assert m.groupby('genre').size().to_dict() == dict(cityscape=4, landscape=3, portrait=3)
    assert m.groupby('genre').split.nunique().eq(3).all()   # even 3 paintings give train, valid and test one each
    assert report['genres'] == dict(cityscape=dict(candidates=5, looked_at=4, kept=4, left_out=0),
                                    landscape=dict(candidates=4, looked_at=4, kept=3, left_out=1),
                                    portrait=dict(candidates=3, looked_at=3, kept=3, left_out=0))
    assert (report['candidates'], report['looked_at'], report['not_looked_at']) == (12, 11, 1)
    assert report['bad_files'] == ("data/bad_files.csv lists the 1 file left out of the 11 looked at, and the 0 files of the source "
                                   "skipped as not candidates; 1 more candidate were not looked at: n_per_genre=4 good ones were found without them")
    assert bad.src.map(lambda s: Path(s).name).tolist() == ['broken.jpg'] and 'truncated' in bad.reason[0]


def test_a_genre_too_small_to_split_is_named_with_the_minimum(tmp_path):
    root = _folder(tmp_path/'imgs', dict(landscape=3, portrait=2))
    with pytest.raises(ValueError) as e: build_manifest(Run(tmp_path/'r'), _p(source='folder', source_path=str(root)))
    assert "too few usable paintings to split 'portrait' (2): each genre needs at least 3 (valid_pct=0.2, test_pct=0.2)" in str(e.value)
    assert '-p genres=' in str(e.value)
    with pytest.warns(UserWarning, match='fewer than n_per_genre'):   # needs only 2 then
        m, _, _ = build_manifest(Run(tmp_path/'r2'), _p(source='folder', source_path=str(root), test_pct=0.))
    assert m.groupby('genre').size().to_dict() == dict(landscape=3, portrait=2)


def test_every_candidate_rejected_says_why_and_what_to_change(tmp_path):
    root = _folder(tmp_path/'imgs', dict(landscape=3, portrait=3), size=100)
    (root/'portrait'/'bad.jpg').write_text('no')
    with pytest.raises(ValueError) as e: build_manifest(Run(tmp_path/'r'), _p(source='folder', source_path=str(root), min_size=256))
    msg = str(e.value)
    assert msg.startswith('no painting could be used: all 7 candidates looked at were left out (6 smaller than min_size=256, '
                          '1 not an image file (unidentified format))') and 'lower min_size (-p min_size=' in msg and 'KeyError' not in msg
    bad = pd.read_csv(tmp_path/'r'/'data'/'bad_files.csv')
    assert len(bad) == 7 and json.loads((tmp_path/'r'/'data'/'report.json').read_text())['kept'] == 0
    with pytest.raises(ValueError, match='no candidate paintings in source=folder'):
        build_manifest(Run(tmp_path/'e'), _p(source='folder', source_path=str(tmp_path/'imgs'/'landscape')))   # images at its root
    with pytest.raises(ValueError, match=r"genres \['baroque'\] are not in source=folder"):
        build_manifest(Run(tmp_path/'g'), _p(source='folder', source_path=str(root), genres=['baroque']))


def test_check_params_before_anything_is_read(tmp_path):
    check_params(_p())
    for kw, says in [(dict(source='flickr'), "unknown source 'flickr'; the sources are demo, wikiart, huggan, folder, csv"),
                     (dict(source='folder'), 'source=folder needs source_path'),
                     (dict(source='folder', source_path=str(tmp_path/'nope')), 'does not exist'),
                     (dict(source='csv', source_path=str(tmp_path)), 'is a folder'),
                     (dict(n_per_genre=0), 'n_per_genre must be'),
                     (dict(valid_pct=.5, test_pct=.5), 'below 1'),
                     (dict(min_size=256, image_size=None), 'every painting would be left out')]:
        with pytest.raises((ValueError, FileNotFoundError), match=says.replace('(', r'\(').replace(')', r'\)')): check_params(_p(**kw))


def test_relative_source_path_resolves_against_the_project_root(tmp_path, monkeypatch):
    root = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(root/'nbs')
    from artsim.data import source_path
    assert source_path(_p(source_path='data/wikiart')) == root/'data'/'wikiart'


def test_input_fingerprint_follows_the_files(tmp_path):
    root = _folder(tmp_path/'imgs', dict(landscape=2))
    p = _p(source='folder', source_path=str(root))
    f0 = input_fingerprint(p)
    assert f0 == input_fingerprint(p) and input_fingerprint(_p()) == ''
    demo_painting('landscape', 9, 64).save(root/'landscape'/'new.jpg')
    f1 = input_fingerprint(p); assert f1 != f0                                   # an added image
    os.utime(root/'landscape'/'new.jpg', ns=(1, 1)); assert input_fingerprint(p) != f1   # a touched one
    pd.DataFrame(dict(path=['imgs/landscape/new.jpg'], genre=['x'])).to_csv(tmp_path/'l.csv', index=False)
    pc = _p(source='csv', source_path=str(tmp_path/'l.csv'))
    c0 = input_fingerprint(pc); (root/'landscape'/'new.jpg').write_bytes(b'changed')
    assert input_fingerprint(pc) != c0                                            # a CSV's listed files count too


def test_split_gives_each_share_one_when_it_can():
    d = pd.DataFrame(dict(genre=['a'] * 3 + ['b'] * 2 + ['c']))
    s = split_stratified(d, .2, .2, seed=0)
    assert s[d.genre == 'a'].value_counts().to_dict() == dict(train=1, valid=1, test=1)
    assert s[d.genre == 'b'].value_counts().to_dict() == dict(train=1, test=1) and s[d.genre == 'c'].tolist() == ['train']


def test_loader_closes_the_files_it_cannot_read(corpus):
    "A truncated JPEG used to leak its file handle (ResourceWarning: unclosed file)."
    b = io.BytesIO(); Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 300, 3), np.uint8)).save(b, 'JPEG')
    (corpus/'cut.jpg').write_bytes(b.getvalue()[:len(b.getvalue()) // 2])   # the header whole, the scan cut: "image file is truncated"
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        for name in ['cut.jpg', 'truncated.jpg', 'zero.jpg', 'text.jpg', 'bomb.png', 'missing.jpg']:
            with pytest.raises(ImageLoadError): load_image(corpus/name)
        gc.collect()
    assert [str(x.message) for x in w if issubclass(x.category, ResourceWarning)] == []
