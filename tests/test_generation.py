"""Chapter 01_generation: the tiny SDXL refiner through the real code path, the stand-in's properties,
kill -9 and resume, and two-process sharding with accelerate under torchrun. The tiny refiner (`tiny_refiner`)
is a fixture of conftest.py, shared with the full-preset rehearsal."""
import json, os, signal, socket, subprocess, sys, textwrap, time
from pathlib import Path

import numpy as np, pandas as pd, pytest
from PIL import Image
from fastcore.basics import AttrDict

from artsim.runs import Run, derive_seed, preset_params
from artsim import generation as G
from artsim import standin as S

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ['pair_id', 'original_id', 'generated_path', 'prompt_id', 'prompt', 'negative_prompt', 'strength', 'seed', 'steps',
           'guidance', 'model_id', 'revision', 'dtype']


def make_run(path, genres=('landscape', 'portrait'), per_genre=2, size=(48, 32)) -> Run:
    "A run directory holding a small data manifest of block 'paintings'"
    run, rows = Run(path), []
    for g in genres:
        for i in range(per_genre):
            rng = np.random.default_rng(len(rows))
            a = np.kron(rng.integers(0, 256, (4, 6, 3)), np.ones((size[1] // 4, size[0] // 6, 1))).astype(np.uint8)
            f = run.dir(f'data/images/{g}') / f'{g}-{i}.png'
            Image.fromarray(a).save(f)
            rows.append(dict(id=f'{g}-{i}', path=run.rel(f), artist='anon', genre=g, style='s', split='train',
                             width=size[0], height=size[1], source='test'))
    pd.DataFrame(rows).to_parquet(run.resolve('data/manifest.parquet'))
    return run


def params(run, **kw) -> AttrDict:
    "The tiny preset's generation parameters for `run`, every original used, overridden by `kw`"
    p = AttrDict(stage='generation', preset='tiny', run_dir=run.path, **preset_params('tiny', 'generation'))
    p.update(originals_per_genre=None)
    p.update(kw)
    return p


def child_env():
    return {**os.environ, 'PYTHONPATH': f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", 'OMP_NUM_THREADS': '1',
            'HF_HUB_OFFLINE': '1', 'TOKENIZERS_PARALLELISM': 'false'}


def mtimes(run, pairs) -> dict:
    return {p: run.resolve(p).stat().st_mtime_ns for p in pairs.generated_path}


def test_tiny_refiner_runs_the_real_code_path_with_manifest_and_resume(tmp_path, tiny_refiner):
    run = make_run(tmp_path / 'run')
    p = params(run, generator='sdxl', model_dir=str(tiny_refiner), steps=2, guidance=5.0, strengths=[0.5, 1.0],
               prompts=['mythical'], negative_prompt='blurry', batch_size=2, resolution=32)
    G.stage(run, p)
    first = run.read_parquet(G.PAIRS)
    assert len(first) == 4 * 1 * 2
    before = mtimes(run, first)

    # resume with one more prompt: only its pairs are made, the earlier files are left alone
    p.prompts = ['mythical', 'night']
    G.stage(run, p)
    pairs = run.read_parquet(G.PAIRS)
    assert len(pairs) == 4 * 2 * 2 and pairs.pair_id.is_unique
    assert mtimes(run, first) == before
    assert set(COLUMNS) <= set(pairs.columns)
    r = pairs.set_index('pair_id').loc['landscape-1__night__s1000']
    assert tuple(r[['generator', 'model_id', 'revision', 'dtype', 'steps', 'guidance']]) == ('sdxl', str(tiny_refiner), '', 'float32', 2, 5.0)
    assert (r.prompt, r.negative_prompt, r.strength) == (S.load_prompts().loc['night', 'text'], 'blurry', 1.0)
    assert r.seed == derive_seed(p.seed, 'landscape-1', 'night', 1.0)
    # wall-clock timings live apart from the manifest, for the pairs made before the resume too
    secs = run.read_parquet(G.TIMINGS).set_index('pair_id').seconds
    assert 'seconds' not in pairs and sorted(secs.index) == sorted(pairs.pair_id) and (secs > 0).all()
    for f in pairs.generated_path:
        assert Image.open(run.resolve(f)).size == (32, 24)  # 48x32 fitted to 32 on the long side, multiples of 8
    assert not list(run.resolve(G.JOURNALS).glob('*.jsonl'))

    # a third run does nothing; one pair regenerated alone from its manifest row is the same image
    again = mtimes(run, pairs)
    G.stage(run, p)
    assert mtimes(run, pairs) == again
    gen = G.make_generator(p, S.load_prompts(), 'cpu')
    orig = Image.open(run.resolve(r.original_path)).convert('RGB').resize((32, 24), Image.LANCZOS)
    alone = np.asarray(gen([orig], ['night'], 1.0, [r.seed])[0]).astype(int)
    assert np.abs(alone - np.asarray(Image.open(run.resolve(r.generated_path)))).max() <= 2


def test_refiner_strength_needs_a_step(tmp_path):
    run = make_run(tmp_path / 'run')
    with pytest.raises(ValueError, match='steps'):  # refused before anything is loaded
        G.make_generator(params(run, generator='sdxl', steps=2, strengths=[0.3]), S.load_prompts(), 'cpu')


def test_missing_weights_stop_before_any_work_with_a_clear_message(tmp_path):
    run = make_run(tmp_path / 'run')
    with pytest.raises(G.WeightsMissing) as e:
        G.stage(run, params(run, generator='sdxl', model_dir=str(tmp_path / 'no-refiner-here')))
    assert 'no-refiner-here' in str(e.value) and 'model_dir=' in str(e.value)
    assert not list(run.path.glob('generated/*.png')) and not run.resolve(G.PAIRS).exists()
    with pytest.raises(G.WeightsMissing) as e:
        G.refiner_files(G.REFINER_ID, local_files_only=True, cache_dir=tmp_path / 'empty-cache')
    msg = str(e.value)
    for needed in [G.REFINER_ID, 'empty-cache', 'HF_HOME', 'model_dir=', "generator='standin'"]: assert needed in msg


@pytest.mark.parametrize('prompt_id', list(S.load_prompts().index))
def test_standin_identity_monotone_deterministic(prompt_id):
    rng = np.random.default_rng(1)
    orig = Image.fromarray(np.kron(rng.integers(0, 256, (6, 8, 3)), np.ones((8, 8, 1))).astype(np.uint8))
    a = np.asarray(orig).astype(float)
    def out(s, seed=7): return np.asarray(S.standin_img2img(orig, prompt_id, s, seed))
    np.testing.assert_array_equal(out(0), a)
    dist = [np.abs(out(s) - a).mean() for s in (0.1, 0.3, 0.5, 0.7, 0.9, 1.0)]
    assert dist[0] > 0 and all(x < y for x, y in zip(dist, dist[1:])), dist
    np.testing.assert_array_equal(out(0.6), out(0.6))
    with pytest.raises(ValueError): S.standin_img2img(orig, prompt_id, 1.2, 0)


def test_standin_seed_changes_the_edit():
    orig = Image.new('RGB', (64, 48), (120, 160, 90))
    for pid in ['mythical', 'night', 'cubist', 'underwater']:
        assert not np.array_equal(np.asarray(S.standin_img2img(orig, pid, 1, 1)), np.asarray(S.standin_img2img(orig, pid, 1, 2)))


KILLED_CHILD = '''
import json, sys, time
from fastcore.basics import AttrDict
from artsim.runs import Run
from artsim import generation as G
from artsim import standin as S
fast = S.StandinGenerator.__call__
def slow(self, *args):  # slow enough that the kill lands mid-run
    time.sleep(0.02)
    return fast(self, *args)
S.StandinGenerator.__call__ = slow
G.stage(Run(sys.argv[1]), AttrDict(json.loads(sys.argv[2])))
'''


def test_kill_9_then_rerun_makes_every_pair_exactly_once(tmp_path):
    run = make_run(tmp_path / 'run', per_genre=3)
    p = params(run, prompts=None, strengths=[0.2, 0.4, 0.6, 0.8])
    plan_size = 6 * len(S.load_prompts()) * 4
    script = tmp_path / 'child.py'
    script.write_text(KILLED_CHILD)
    child = subprocess.Popen([sys.executable, str(script), str(run.path), json.dumps({**p, 'run_dir': str(run.path)})],
                             env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal = run.resolve(G.JOURNALS) / 'rank-000.jsonl'
    deadline = time.time() + 60
    while not (journal.exists() and journal.read_text().count('\n') >= 30):
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        assert time.time() < deadline, 'the child made no progress'
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not run.resolve(G.PAIRS).exists()
    made = len(G.read_journal(journal))
    assert 30 <= made < plan_size
    with open(journal, 'a') as f: f.write('{"pair_id": "landscape-0__night__s0')  # and a torn record on top

    G.stage(run, p)
    pairs = run.read_parquet(G.PAIRS)
    assert len(pairs) == plan_size and pairs.pair_id.is_unique
    assert set(f.name for f in run.path.glob('generated/*.png')) == set(Path(x).name for x in pairs.generated_path)
    assert not list(run.resolve(G.JOURNALS).glob('*.jsonl'))
    bank = S.load_prompts()
    for r in pairs.itertuples():  # every recorded image is complete and is exactly its pair
        orig = Image.open(run.resolve(r.original_path)).convert('RGB')
        im = Image.open(run.resolve(r.generated_path)); im.load()
        np.testing.assert_array_equal(np.asarray(im), np.asarray(S.standin_img2img(orig, r.prompt_id, r.strength, r.seed, bank)))


SHARD_CHILD = '''
import json, sys
import torch.distributed as dist
from accelerate import PartialState
from fastcore.basics import AttrDict
from artsim.runs import Run
from artsim import generation as G
state = PartialState(cpu=True)
G.stage(Run(sys.argv[1]), AttrDict(json.loads(sys.argv[2])))
print(f'rank {state.process_index} of {state.num_processes} on {state.backend}', flush=True)
dist.destroy_process_group()
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_processes_share_the_work_under_torchrun(tmp_path, tiny_refiner):
    run = make_run(tmp_path / 'run')
    p = params(run, generator='sdxl', model_dir=str(tiny_refiner), steps=2, strengths=[0.5, 1.0], prompts=['mythical', 'winter'],
               resolution=32, batch_size=2, run_dir=str(run.path))
    script = tmp_path / 'shard.py'
    script.write_text(SHARD_CHILD)
    res = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_addr', '127.0.0.1',
                          '--master_port', str(free_port()), str(script), str(run.path), json.dumps(p)],
                         env=child_env(), capture_output=True, text=True, timeout=170)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'rank 0 of 2 on gloo' in res.stdout and 'rank 1 of 2 on gloo' in res.stdout
    pairs = run.read_parquet(G.PAIRS)
    assert len(pairs) == 4 * 2 * 2 and pairs.pair_id.is_unique
    assert sorted(pairs['rank'].unique()) == [0, 1]
    assert all(run.resolve(f).is_file() for f in pairs.generated_path)


def test_show_variants_works_outside_a_notebook(tmp_path):
    run = make_run(tmp_path / 'run')
    G.stage(run, params(run))
    pairs = G.read_pairs(run)
    fig = G.show_variants(run, pairs, originals=['landscape-0'])
    n_strengths, n_prompts = pairs.strength.nunique(), pairs.prompt_id.nunique()
    assert len(fig.axes) == n_prompts * (1 + n_strengths)
    assert all(len(ax.images) == 1 for ax in fig.axes)


@pytest.mark.parametrize('fmt', ['webp', 'webp_q90', 'jpeg_q95'])
def test_storage_format_names_records_and_is_read_back(tmp_path, fmt):
    run = make_run(tmp_path / 'run')
    p = params(run, variant_format=fmt)
    G.stage(run, p)
    pairs = run.read_parquet(G.PAIRS)
    suffix = G.VARIANT_FORMATS[fmt]
    assert set(pairs.variant_format) == {fmt} and all(x.endswith(suffix) for x in pairs.generated_path)
    assert not list(run.path.glob('generated/*.png'))
    expected = {'webp': 'WEBP', 'webp_q90': 'WEBP', 'jpeg_q95': 'JPEG'}[fmt]
    bank = S.load_prompts()
    for r in pairs.itertuples():
        with Image.open(run.resolve(r.generated_path)) as im: assert im.format == expected
        made = np.asarray(S.standin_img2img(Image.open(run.resolve(r.original_path)).convert('RGB'), r.prompt_id, r.strength, r.seed, bank))
        got = np.asarray(G.load_image(run.resolve(r.generated_path)))
        if fmt == 'webp': np.testing.assert_array_equal(got, made)   # lossless: the generator's pixels exactly
        else: assert 0 < np.abs(got.astype(int) - made).mean() < 10   # lossy, and close (of 255; WebP halves the colour resolution)
    # a later chapter finds the variants through pairs.parquet, whatever their suffix
    from artsim.descriptors import image_table
    t = image_table(run)
    assert set(t.path[t.role == 'generated']) == set(pairs.generated_path)


def test_changing_the_storage_format_makes_the_variants_again_in_it(tmp_path):
    run = make_run(tmp_path / 'run')
    G.stage(run, params(run))
    png = run.read_parquet(G.PAIRS)
    assert set(png.variant_format) == {'png'}
    G.stage(run, params(run, variant_format='webp'))
    webp = run.read_parquet(G.PAIRS)
    assert list(webp.pair_id) == list(png.pair_id) and set(webp.variant_format) == {'webp'}
    assert all(run.resolve(x).is_file() and x.endswith('.webp') for x in webp.generated_path)
    for a, b in zip(png.generated_path, webp.generated_path):  # the same pixels, losslessly
        np.testing.assert_array_equal(np.asarray(Image.open(run.resolve(a)).convert('RGB')), np.asarray(Image.open(run.resolve(b)).convert('RGB')))
    before = mtimes(run, webp)
    G.stage(run, params(run, variant_format='webp'))   # and once made, a rerun does nothing
    assert mtimes(run, webp) == before


def test_an_unknown_storage_format_is_refused_before_any_work(tmp_path):
    run = make_run(tmp_path / 'run')
    with pytest.raises(ValueError, match='variant_format must be one of png, webp, webp_q90, jpeg_q95'):
        G.stage(run, params(run, variant_format='tiff'))
    assert not run.resolve('generated').exists()
