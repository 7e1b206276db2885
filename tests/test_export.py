"""artsim_export: a run as a dataset (Parquet shards with embedded images, the card) that `datasets` and pandas load, and
a run seeded from it that reproduces the exporting run's evaluation."""
import json, os, re, shutil, subprocess, sys, warnings
from pathlib import Path

import numpy as np, pandas as pd, pyarrow.parquet as pq, pytest, yaml
from PIL import Image

from artsim.datacard import CONFIGS, STRADDLING
from artsim.sources import STATE
from artsim.runs import STAGES, Run, file_sha256, record_params, stage_params
from artsim.stages import stage_module

# Faster than the preset and the same for both runs: the comparison needs equal settings, not the preset's.
QUICK = dict(lr_find_iters=0, probe_stale_bn=False, n_bootstrap=50)
WALL_CLOCK = ('created', 'run_dir', 'seconds')


def run_stages(path, stages, **over):
    "The tiny preset's `stages` in-process into `path`, with `QUICK`'s overrides where a stage takes them."
    run = Run(path)
    for s in stages:
        base = stage_params(s, dict(preset='tiny', run_dir=run.path))
        p = stage_params(s, dict(preset='tiny', run_dir=run.path, **{k: v for k, v in {**QUICK, **over}.items() if k in base}))
        record_params(run, p)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # the tiny preset's random-init ResNet50 warns by design
            stage_module(s).stage(run, p)
    return run


def export_cli(*args, cwd=None):
    "`artsim_export ARGS` in a subprocess (as `python -m artsim.export`, the console script's `main`)."
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}
    return subprocess.run([sys.executable, '-m', 'artsim.export', *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def export_main(*args):
    "`artsim_export ARGS` in this process: its exit code, stdout and stderr."
    import contextlib, io, types
    from artsim.export import main
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: main([str(a) for a in args])
        except SystemExit as e: code = e.code or 0
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


@pytest.fixture(scope='session')
def exported(tmp_path_factory):
    "A tiny run through every chapter (so with a Siamese model), exported with small shards: (run, export folder, stdout)."
    root = tmp_path_factory.mktemp('export')
    run = run_stages(root/'run', STAGES)
    r = export_cli(run.path, '--out', root/'out', '--shard-size', '40kB', '--no-progress')
    assert r.returncode == 0 and r.stderr == '', r.stderr
    return run, root/'out', r.stdout


@pytest.fixture(scope='session')
def loaded(exported, tmp_path_factory):
    "The export's two configurations loaded with `datasets.load_dataset('parquet', data_dir=...)`."
    datasets = pytest.importorskip('datasets')
    cache = tmp_path_factory.mktemp('hf-cache')
    _, out, _ = exported
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return {c: datasets.load_dataset('parquet', data_dir=str(out/c), cache_dir=str(cache)) for c in CONFIGS}


def test_the_command_says_what_it_wrote(exported):
    run, out, stdout = exported
    lines = stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('artsim_export: 32 paintings and 40 pairs of'), stdout
    assert 'Siamese scores' in lines[0] and 'README.md' in lines[0]
    assert {p.name for p in out.iterdir()} == {'README.md', STATE, 'pairs', 'paintings'}


def test_datasets_loads_the_pairs_with_images_and_the_runs_values(exported, loaded):
    datasets = pytest.importorskip('datasets')
    run, out, _ = exported
    scores = run.read_parquet('similarity/pairs.parquet').set_index('pair_id')
    pairs = loaded['pairs']
    assert set(pairs) <= {'train', 'valid', 'test', STRADDLING} and 'train' in pairs
    assert sum(len(d) for d in pairs.values()) == len(scores)
    sims = [c for c in scores.columns if c.endswith('_calibrated')] + ['color', 'texture', 'shape', 'edges', 'semantic', 'combined_raw', 'combined']
    for split, d in pairs.items():
        df = d.remove_columns('image').to_pandas().set_index('pair_id')
        assert (df.split == split).all()
        assert np.array_equal(df[sims].to_numpy(), scores.loc[df.index, sims].to_numpy())  # the same values, bit for bit
        assert df.siamese.between(0, 1).all()
    gen = run.read_parquet('generated/pairs.parquet').set_index('pair_id')
    row = pairs['train'][0]
    im = row['image']  # decoded by datasets: a PIL image, the run's file's pixels
    assert im.size == (row['width'], row['height'])
    assert np.array_equal(np.asarray(im.convert('RGB')), np.asarray(Image.open(run.resolve(gen.generated_path[row['pair_id']])).convert('RGB')))
    raw = pairs['train'].cast_column('image', datasets.Image(decode=False))[0]['image']
    assert raw['bytes'] == run.resolve(gen.generated_path[row['pair_id']]).read_bytes()  # and the file's bytes
    assert len(loaded['paintings']['train']) + len(loaded['paintings']['valid']) + len(loaded['paintings']['test']) == 32


def test_the_siamese_column_is_the_models_score(exported):
    from artsim import SiameseSimilarity
    run, out, _ = exported
    df = pd.read_parquet(out/'pairs'/'data')
    m = run.read_parquet('data/manifest.parquet').set_index('id')
    model = SiameseSimilarity.load(run.path/'models'/'siamese')
    for r in df.iloc[[0, -1]].itertuples():  # a positive and a negative pair
        want = model.similarity(run.resolve(m.path[r.original_id]), r.image['bytes'])
        assert abs(r.siamese - want) < 1e-5, (r.pair_id, r.siamese, want)


def test_pandas_reads_the_same_shards(exported, loaded):
    run, out, _ = exported
    for c in CONFIGS:
        df = pd.read_parquet(out/c/'data')
        assert len(df) == sum(len(d) for d in loaded[c].values())
        assert isinstance(df.image.iloc[0]['bytes'], bytes) and df.image.iloc[0]['path'].startswith(('data/', 'generated/'))
    paintings = pd.read_parquet(out/'paintings'/'data').sort_values('run_index')
    manifest = run.read_parquet('data/manifest.parquet')
    assert paintings.id.tolist() == manifest.id.tolist() and paintings.split.tolist() == manifest.split.tolist()
    for r in paintings.itertuples():
        assert r.image['bytes'] == run.resolve(manifest.set_index('id').path[r.id]).read_bytes()


def test_run_index_is_a_whole_number_in_both_configurations_as_the_card_says(exported):
    run, out, _ = exported
    head = yaml.safe_load((out/'README.md').read_text().split('---\n')[1])
    for c, info in zip(CONFIGS, head['dataset_info']):
        assert {'name': 'run_index', 'dtype': 'int64'} in info['features']
        assert pd.read_parquet(out/c/'data').run_index.dtype == np.int64, c   # not floats with NaN
    pairs = pd.read_parquet(out/'pairs'/'data')
    pos = pairs.kind == 'positive'
    assert sorted(pairs.run_index[pos]) == list(range(pos.sum())) and (pairs.run_index[~pos] == -1).all()


def test_a_run_without_a_siamese_model_is_exported_and_says_so(exported, tmp_path):
    run, _, _ = exported
    other = tmp_path/'before-06'   # the run as it was after chapter 03
    for d in ('data', 'generated', 'features', 'similarity'): shutil.copytree(run.path/d, other/d)
    shutil.copy(run.path/'config.yaml', other/'config.yaml')
    r = export_main(other, '--out', tmp_path/'o', '--shard-size', '40kB', '--no-progress')
    assert r.returncode == 0 and 'Siamese' not in r.stdout, r.stdout + r.stderr
    assert r.stderr.splitlines() == ["artsim_export: note: no `siamese` column: not in this export: the run had no "
                                     "Siamese network (chapter 06's models/siamese.safetensors) when it was exported; "
                                     "run chapters 04-06, then export it again to add the column"], r.stderr
    card = (tmp_path/'o'/'README.md').read_text()
    assert "- `siamese`: not in this export: the run had no Siamese network" in card
    assert 'siamese' not in pd.read_parquet(tmp_path/'o'/'pairs'/'data').columns


def test_the_card_names_a_licence_and_the_repository_has_its_own(exported):
    from artsim.datacard import card_licence
    _, out, _ = exported
    card = (out/'README.md').read_text()
    head = yaml.safe_load(card.split('---\n')[1])
    assert head['license'] == 'cc0-1.0' and 'license_name' not in head   # the demo's images: artsim's code's alone
    licensing = card.split('## Licensing\n')[1]
    assert licensing.lstrip().startswith('CC0 1.0 Universal') and 'Apache License 2.0' in licensing
    full = card_licence(pd.DataFrame(dict(source=['wikiart'])), pd.DataFrame(dict(generator=['sdxl'])))
    assert (full['license'], full['license_name']) == ('other', 'research-only')
    assert 'non-commercial research only' in full['text'] and 'CreativeML Open RAIL++-M' in full['text']
    text = (Path(__file__).resolve().parent.parent/'LICENSE').read_text()
    assert text.split()[:4] == ['Apache', 'License', 'Version', '2.0,'] and 'END OF TERMS AND CONDITIONS' in text
    settings = (Path(__file__).resolve().parent.parent/'settings.ini').read_text()
    assert re.search(r'^license = apache2$', settings, re.M)


def test_the_plan_of_a_run_seeded_from_the_export_counts_the_exports_rows(exported, tmp_path):
    "`--plan -p source=export`, which the runner accepts: the export's paintings and variants, as they are."
    run, out, _ = exported
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}
    r = subprocess.run([str(Path(sys.executable).parent/'artsim_reproduce'), '--plan', '--preset', 'tiny', '--run-dir',
                        str(tmp_path/'r'), '-p', 'source=export', '-p', f'source_path={out}'],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0 and r.stderr == '', r.stderr
    gen, m = run.read_parquet('generated/pairs.parquet'), run.read_parquet('data/manifest.parquet')
    lines = r.stdout.splitlines()
    assert f'paintings: the paintings of the export {out}, with their split' in lines, r.stdout
    data, made = (f'00_data         {len(m)} paintings in {m.genre.nunique()} genres',
                  f'01_generation   {len(gen)} variants of {gen.original_id.nunique()} originals taken from the export')
    assert any(l.startswith(data) for l in lines) and any(l.startswith(made) for l in lines), r.stdout
    assert not (tmp_path/'r').exists()

def test_no_painting_crosses_splits(exported):
    _, out, _ = exported
    paintings = pd.read_parquet(out/'paintings'/'data', columns=['id', 'split'])
    assert paintings.id.is_unique
    split = paintings.set_index('id').split
    pairs = pd.read_parquet(out/'pairs'/'data', columns=['pair_id', 'kind', 'original_id', 'variant_of', 'split'])
    a, b = split[pairs.original_id].to_numpy(), split[pairs.variant_of].to_numpy()
    assert (pairs.split.to_numpy() == np.where(a == b, a, STRADDLING)).all()
    assert (pairs[pairs.kind == 'positive'].split != STRADDLING).all()
    for s, d in pairs[pairs.split != STRADDLING].groupby('split'):  # within a split, every painting a pair touches is of that split
        assert set(split[d.original_id]) == {s} and set(split[d.variant_of]) == {s}


def test_the_cards_counts_and_hashes_match_the_shards(exported):
    _, out, _ = exported
    card = (out/'README.md').read_text()
    head = yaml.safe_load(card.split('---\n')[1])
    assert head['license'] and head['task_categories'] and head['size_categories'] == ['n<1K'] and head['pretty_name']
    assert 'This dataset is synthetic' in card and 'synthetic' in head['tags']
    listed = dict((m.group(1), (int(m.group(2)), int(m.group(3)), m.group(4)))
                  for m in re.finditer(r'^\| `([^`]+\.parquet)` \| (\d+) \| (\d+) \| `([0-9a-f]{64})` \|$', card, re.M))
    files = sorted(p.relative_to(out).as_posix() for p in out.glob('*/data/*.parquet'))
    assert sorted(listed) == files and len(files) > len(CONFIGS)  # every shard listed, several per configuration
    for f, (rows, size, sha) in listed.items():
        assert (pq.ParquetFile(out/f).metadata.num_rows, (out/f).stat().st_size, file_sha256(out/f)) == (rows, size, sha), f
    for info in head['dataset_info']:
        for s in info['splits']:
            shards = [f for f in files if f.startswith(f"{info['config_name']}/data/{s['name']}-")]
            assert s['num_examples'] == sum(listed[f][0] for f in shards) and s['num_bytes'] == sum(listed[f][1] for f in shards)
    for cfg in head['configs']:  # each data_files pattern names that split's shards
        for d in cfg['data_files']: assert any(f.startswith(d['path'].rstrip('*')) for f in files)
    # the paintings per genre and split, as the card's table says and as the shards hold
    paintings = pd.read_parquet(out/'paintings'/'data', columns=['genre', 'split'])
    table = card.split('Paintings per genre and split:')[1].split('\n\n')[1].splitlines()
    cols = [c.strip() for c in table[0].strip('|').split('|')]
    for line in table[2:]:
        cells = [c.strip() for c in line.strip('|').split('|')]
        g, counts = cells[0], dict(zip(cols[1:], map(int, cells[1:])))
        sub = paintings if g == 'all' else paintings[paintings.genre == g]
        assert counts == {**sub.split.value_counts().to_dict(), 'all': len(sub)} | {k: 0 for k in counts if k not in ('all', *sub.split)}, g


def test_a_rerun_finishes_what_is_missing(exported, tmp_path):
    run, out, _ = exported
    copy = tmp_path/'out'; shutil.copytree(out, copy)
    shards = sorted((copy/'pairs'/'data').iterdir())
    sha = file_sha256(shards[0])
    shards[0].unlink()
    (copy/'pairs'/'data'/f'.{shards[1].name}.x1y2.tmp').write_bytes(b'half a shard')  # what a killed write leaves
    r = export_cli(run.path, '--out', copy, '--shard-size', '40kB', '--no-progress')
    assert r.returncode == 0 and '(1 written, ' in r.stdout, r.stdout + r.stderr
    assert file_sha256(shards[0]) == sha and not list((copy/'pairs'/'data').glob('.*.tmp'))
    assert (copy/'README.md').read_text() == (out/'README.md').read_text()


@pytest.mark.parametrize('case, code, says', [
    ('no run', 2, 'no such run directory'), ('a folder that is not a run', 2, 'not an artsim run'),
    ('a non-empty foreign folder', 2, 'not empty, and not an artsim export'), ('a run without similarity', 1, 'run chapters 02,03 first'),
    ('another run into an export', 2, 'holds an export of another run'), ('a bad shard size', 2, 'not a size'),
    ('an export inside the run', 2, 'inside the run')])
def test_bad_inputs_are_one_clear_line(exported, tmp_path, case, code, says):
    run, out, _ = exported
    other = tmp_path/'other'
    if case == 'a run without similarity':
        for d in ('data', 'generated'): shutil.copytree(run.path/d, other/d)
    if case == 'another run into an export':
        for d in ('data', 'generated', 'similarity'): shutil.copytree(run.path/d, other/d)
    (tmp_path/'mine').mkdir(); (tmp_path/'mine'/'notes.txt').write_text('mine')
    args = {'no run': (tmp_path/'nope', '--out', tmp_path/'o'), 'a folder that is not a run': (tmp_path/'mine', '--out', tmp_path/'o'),
            'a non-empty foreign folder': (run.path, '--out', tmp_path/'mine'), 'a run without similarity': (other, '--out', tmp_path/'o'),
            'another run into an export': (other, '--out', out), 'a bad shard size': (run.path, '--out', tmp_path/'o', '--shard-size', 'big'),
            'an export inside the run': (run.path, '--out', run.path/'export')}[case]
    r = export_main(*args) if case != 'no run' else export_cli(*args)  # in-process but one: the same `main`, without a Python start each
    assert r.returncode == code and r.stdout == '', (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and lines[0].startswith('artsim_export:'), r.stderr
    assert not (tmp_path/'o').exists() and not (run.path/'export').exists()


def test_a_run_seeded_from_the_export_reproduces_the_evaluation(exported, tmp_path):
    "Chapters 00-01 from the export (as artsim_reproduce runs them), then 02-07: the exporting run's eval.json."
    run, out, _ = exported
    seeded = tmp_path/'seeded'
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}
    r = subprocess.run([str(Path(sys.executable).parent/'artsim_reproduce'), '--preset', 'tiny', '--only', '00,01', '--run-dir', str(seeded),
                        '-p', 'source=export', '-p', f'source_path={out}', '--no-progress'], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    seeded = Run(seeded)
    assert seeded.read_parquet('data/manifest.parquet').equals(run.read_parquet('data/manifest.parquet'))
    a, b = (x.read_parquet('generated/pairs.parquet').drop(columns=['rank']) for x in (run, seeded))
    norm = lambda d: d.astype(object).where(d.notna(), None).to_dict('records')
    assert list(a.columns) == list(b.columns) and norm(a) == norm(b)
    for p in list(run.read_parquet('data/manifest.parquet').path) + list(a.generated_path):
        assert seeded.resolve(p).read_bytes() == run.resolve(p).read_bytes(), p
    run_stages(seeded.path, STAGES[2:])
    strip = lambda o: ({k: strip(v) for k, v in o.items() if k not in WALL_CLOCK} if isinstance(o, dict) else
                       [strip(v) for v in o] if isinstance(o, list) else o)
    ev_a, ev_b = (strip(x.read_json('metrics/eval.json')) for x in (run, seeded))
    # the export does not carry chapter 00's twins (they are painted for the procedural source only): the seeded run has
    # none, so its aspect tests have no twins part; everything else is the exporting run's
    assert 'twins' in ev_a['aspects'] and 'twins' not in ev_b['aspects']
    ev_a['aspects'].pop('twins')
    assert ev_a == ev_b
    # and the seeded run's own export is the same dataset: the same shards, byte for byte
    r = export_cli(seeded.path, '--out', tmp_path/'again', '--shard-size', '40kB', '--no-progress')
    assert r.returncode == 0, r.stderr
    for f in sorted(out.glob('*/data/*.parquet')):
        assert file_sha256(f) == file_sha256(tmp_path/'again'/f.relative_to(out)), f
