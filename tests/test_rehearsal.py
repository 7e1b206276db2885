"""The thesis' own setting rehearsed end to end on the CPU: `artsim_reproduce --preset full` through all eight chapters,
as a user types it, with only sizes overridden. Its inputs are made here in miniature (tests/miniatures.py): WikiArt in
the ArtGAN layout, a randomly initialised SDXL refiner saved as diffusers files (`model_dir`), and a ResNet50 state
dict where torchvision looks for its ImageNet weights, with the network unreachable. Each chapter is then checked to
have taken the full preset's branch (generator, 224 px, weights source, worker settings, numerics) and not the demo's."""
import json, os, subprocess, sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from artsim.backbone import WeightsUnavailable, imagenet_state_dict
from artsim.numerics import ISA_VARS, MARK
from artsim.reproduce import chapters
from artsim.runs import PRESETS, STAGES, preset_params
from miniatures import IMAGENET_FILE, make_artgan, make_imagenet_stand_in

ROOT = Path(__file__).resolve().parent.parent
EXE = Path(sys.executable).parent / 'artsim_reproduce'
GENRES = ('cityscape', 'landscape', 'portrait', 'still_life')
PER_GENRE = 3  # above min_size; one more per genre below it. With full's 10% shares: 1 train, 1 valid, 1 test each
PROMPTS = ['mythical']  # one prompt: the variants (and all that follows from them) are 12 x 3 strengths

# Sizes only: how many prompts, pixels of the variants, denoising steps, epochs and iterations. The full preset's bs
# (64) is more than the 4 training paintings here, which 04 refuses: 4 is the miniature's batch. 06 keeps full's three
# seeds and its whole ablation, each head trained for `frozen_epochs` epochs.
SIZES = dict(prompts=PROMPTS, resolution=64, steps=4, epochs=1, lr_find_iters=2, bs=4, frozen_epochs=2)
# What decides a chapter's branch: each keeps the full preset's value
BRANCH = ['source', 'min_size', 'image_size', 'n_per_genre', 'generator', 'variant', 'dtype', 'negative_prompt',
          'strengths', 'originals_per_genre', 'variant_format', 'size', 'semantic_weights', 'semantic_size', 'n_jobs',
          'start_weights', 'input_size', 'num_workers', 'bn_batches', 'probe_stale_bn', 'lr', 'encoder_weights',
          'siamese_size', 'pooling', 'embed_dim', 'sketch_dim', 'target', 'validate_on', 'augmented_copies', 'seeds',
          'pca_fit_images', 'ablation', 'ablation_seeds', 'resnet_weights',
          'resnet_size', 'max_paintings', 'n_bootstrap', 'portable', 'seed']
# The chapters' own environment variables for the pin: a user's shell has none of them (make test sets them)
PIN_VARS = {*ISA_VARS, MARK, 'NPY_DISABLE_CPU_FEATURES'}


def same(name, value):
    "A parameter as it compares: pooling's stages are ints in the preset and strings once written to YAML or JSON."
    return {int(k): int(v) for k, v in value.items()} if name == 'pooling' else value


def offline_env(torch_home, **kw) -> dict:
    "A user's shell with no way out: every HTTP(S) request goes to a closed local port, the Hub is offline."
    env = {k: v for k, v in os.environ.items() if k not in {'IN_TEST', 'ARTSIM_RUNS', 'no_proxy', 'NO_PROXY', *PIN_VARS}}
    closed = 'http://127.0.0.1:9'
    return env | dict(TORCH_HOME=str(torch_home), HF_HUB_OFFLINE='1', http_proxy=closed, https_proxy=closed,
                      HTTP_PROXY=closed, HTTPS_PROXY=closed, TOKENIZERS_PARALLELISM='false') | kw


@pytest.fixture(scope='module')
def torch_home(tmp_path_factory):
    "TORCH_HOME holding a random-init ResNet50 state dict under the name of torchvision's ImageNet file."
    home = tmp_path_factory.mktemp('torch-home')
    make_imagenet_stand_in(home)
    return home


@pytest.fixture(scope='module')
def rehearsal(tmp_path_factory, tiny_refiner, torch_home):
    "One full-preset run of all eight chapters through the console script: (run directory, the finished process)."
    d = tmp_path_factory.mktemp('rehearsal')
    src, run = make_artgan(d / 'wikiart', GENRES, PER_GENRE), d / 'run'
    args = ['--preset', 'full', '--run-dir', run, '--device', 'cpu', '-p', f'source_path={src}',
            '-p', f'model_dir={tiny_refiner}', *[a for k, v in SIZES.items() for a in ('-p', f'{k}={json.dumps(v)}')]]
    r = subprocess.run([str(EXE), *map(str, args)], cwd=d, env=offline_env(torch_home, HF_HOME=str(d / 'hf')),
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, f'the full preset broke:\n{r.stdout}\n{r.stderr}'
    return run, r


def test_the_network_is_unreachable_so_imagenet_comes_from_the_file(monkeypatch, tmp_path):
    "Without the file, 'imagenet' is an error in the rehearsal's environment: the run's ImageNet weights are the file."
    for k, v in offline_env(tmp_path / 'empty-torch-home').items(): monkeypatch.setenv(k, v)
    with pytest.raises(WeightsUnavailable, match=IMAGENET_FILE): imagenet_state_dict()


def test_only_sizes_are_overridden():
    assert not set(SIZES) & set(BRANCH)
    params = {k for s in STAGES for k in preset_params('full', s)}
    assert set(SIZES) <= params and set(BRANCH) <= params
    assert PRESETS['full']['common']['portable'] is False and PRESETS['demo']['common']['portable'] is True


def test_all_eight_chapters_run_quietly_through_the_console_script(rehearsal, torch_home):
    run, r = rehearsal
    names = [c for c, _, _ in chapters(ROOT / 'nbs')]
    lines = r.stdout.splitlines()
    ran = [l.split()[:2] for l in lines[1:-1] if not l.lstrip().startswith('warning:')] # the chapters' warnings echoed under them
    assert len(names) == 8 and ran == [[n, 'ran'] for n in names], r.stdout
    # the one warning the miniature earns: fewer paintings per genre than the full preset's n_per_genre, shown on the console
    assert [l.split()[0] for l in lines if 'warning:' in l and 'fewer than n_per_genre' in l] == ['warning:'], r.stdout
    assert r.stderr == ''
    cfg = yaml.safe_load((run / 'config.yaml').read_text())
    assert cfg['preset'] == 'full' and set(cfg['overrides']) == {*SIZES, 'source_path', 'model_dir', 'device'}
    for stage, p in cfg['stages'].items():   # every branch-deciding parameter is the full preset's own
        full = preset_params('full', stage)
        assert {k: same(k, p[k]) for k in BRANCH if k in p} == {k: same(k, full[k]) for k in BRANCH if k in full}, stage
    # full's numerics: not portable, so each chapter's kernel ran with this machine's own kernels, unpinned
    assert {s: (n['portable'], n['isa']) for s, n in cfg['numerics'].items()} == {s: (False, None) for s in STAGES}
    assert sorted(f.name for f in (torch_home / 'hub' / 'checkpoints').iterdir()) == [IMAGENET_FILE]  # nothing fetched


def test_00_read_wikiart_in_the_artgan_layout_above_min_size(rehearsal):
    run, _ = rehearsal
    m, report = pd.read_parquet(run / 'data/manifest.parquet'), json.loads((run / 'data/report.json').read_text())
    assert set(m.source) == {'wikiart'} and m.groupby('genre').size().to_dict() == dict.fromkeys(GENRES, PER_GENRE)
    assert m[['width', 'height']].min(axis=1).min() >= 256      # min_size=256
    assert all(Path(p).is_absolute() and Path(p).suffix == '.jpg' for p in m.path)   # image_size=None: the files as they are
    assert m.split.value_counts().to_dict() == dict(train=len(GENRES), valid=len(GENRES), test=len(GENRES))
    bad = pd.read_csv(run / 'data/bad_files.csv')
    assert len(bad) == len(GENRES) and bad.reason.str.startswith('smaller than min_size=256').all()
    assert (report['n_per_genre'], report['kept']) == (1000, len(GENRES) * PER_GENRE)


def test_01_made_the_variants_with_the_sdxl_refiner(rehearsal, tiny_refiner):
    run, _ = rehearsal
    pairs = pd.read_parquet(run / 'generated/pairs.parquet')
    full = preset_params('full', 'generation')
    assert len(pairs) == len(GENRES) * PER_GENRE * len(PROMPTS) * len(full['strengths'])
    assert set(pairs.generator) == {'sdxl'} and set(pairs.model_id) == {str(tiny_refiner)}
    assert set(pairs.dtype) == {'float32'}   # dtype 'auto' on the CPU; the fp16 files are what variant='fp16' loads
    assert set(pairs.negative_prompt) == {full['negative_prompt']} and set(pairs.steps) == {SIZES['steps']}
    assert sorted(set(pairs.strength)) == full['strengths'] and set(pairs.variant_format) == {'png'}
    assert (pairs[['width', 'height']].max(axis=1) == SIZES['resolution']).all()


def test_02_described_with_imagenet_weights_at_224_px_in_worker_processes(rehearsal):
    run, _ = rehearsal
    from joblib import cpu_count
    semantic = json.loads((run / 'features/semantic.json').read_text())
    assert (semantic['requested'], semantic['weights'], semantic['size'], semantic['note']) == ('imagenet', 'imagenet1k_v2', 224, None)
    settings = json.loads((run / 'features/settings.json').read_text())
    assert (settings['size'], settings['semantic_weights'], settings['semantic_size']) == (256, 'imagenet', 224)
    extraction = json.loads((run / 'features/extraction.json').read_text())
    assert extraction['workers'] == cpu_count() and extraction['errors'] == 0   # n_jobs=-1: every core
    assert extraction['versions']['semantic'] == 'semantic-v1-imagenet1k_v2-s224'


def test_04_fine_tuned_from_imagenet_at_224_px_with_loader_workers(rehearsal):
    run, _ = rehearsal
    card = json.loads((run / 'models/genre.json').read_text())
    assert (card['starting_weights'], card['input_size'], card['preset']) == ('imagenet', 224, 'full')
    metrics = json.loads((run / 'metrics/genre.json').read_text())
    t = metrics['training']
    assert (t['starting_weights'], t['input_size'], t['device']) == ('imagenet', 224, 'cpu')
    assert t['num_workers'] == (0 if sys.platform == 'darwin' else 8)
    assert len(t['lr_find']['lrs']) == SIZES['lr_find_iters']   # the finder ran its iterations
    # BatchNorm statistics recomputed after each epoch (full's one frozen, then the unfrozen), over every training batch:
    # 4 training paintings make one batch of bs=4
    assert t['precise_bn_passes'] == [1] * (preset_params('full', 'finetune')['freeze_epochs'] + SIZES['epochs'])
    assert metrics['note'] == 'full preset'   # the demo's note calls its result a check of the pipeline


def test_05_06_trained_the_siamese_network_on_the_genre_encoder_at_224_px(rehearsal):
    run, _ = rehearsal
    from artsim.siamese import load_siamese_data
    from artsim.runs import Run
    card = json.loads((run / 'models/siamese.json').read_text())
    assert (card['input_size'], card['encoder_weights'], card['preset'], card['device']) == (224, 'genre', 'full', 'cpu')
    full = preset_params('full', 'siamese')
    sp = card['siamese_params']
    assert (sp['embed_dim'], same('pooling', sp['pooling']), sp['validate_on'], sp['portable']) == (128, full['pooling'], 'valid', False)
    assert card['numerics']['portable'] is False and card['seeds'] == [42, 43, 44] and len(card['history']) == SIZES['frozen_epochs']
    data, made = load_siamese_data(Run(run))
    assert (made['input_size'], made['validate_on']) == (224, 'valid') and data['train'].n_paintings == len(GENRES)
    assert data['train'].augmented.shape[0] == full['augmented_copies'] * len(GENRES)
    training = json.loads((run / 'metrics/training.json').read_text())
    assert training['seeds'] == [42, 43, 44] and len(training['ablation']) == 8   # full's whole ablation, on validation


def test_07_reports_the_full_presets_rows(rehearsal):
    run, _ = rehearsal
    results = json.loads((run / 'metrics/eval.json').read_text())
    prov = results['provenance']
    assert (prov['data_source'], prov['generator'], prov['preset']) == ('wikiart', 'sdxl', 'full')
    assert set(prov['baseline_weights']) == {'resnet50:imagenet', 'resnet50:genre'}
    assert prov['baseline_weights']['resnet50:imagenet'] == 'torchvision IMAGENET1K_V2'
    assert prov['backbone_weights'].endswith('fine-tuned on genres from imagenet weights')
    assert prov['model']['input_size'] == 224
    text = (run / 'report.md').read_text()
    assert '**Data:** WikiArt' in text and '(`sdxl`, ' in text and 'Not a WikiArt/SDXL result' not in text
    rows = [l.split(' | ')[0].lstrip('| ') for l in text.splitlines() if l.startswith('| ')]
    for row in ['Siamese network', 'SSIM', 'perceptual hash', 'ResNet50 cosine (ImageNet weights)',
                "ResNet50 cosine (chapter 04's genre model, from imagenet weights)"]:
        assert row in rows, row
