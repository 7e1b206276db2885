"""`artsim_reproduce --plan`: its counts are what a run then makes (the tiny preset, every chapter), its mirrors of chapters
05-07 agree with their own functions, a source not on disk is estimated and said to be, and nothing is written."""
import io, json, os, subprocess, sys, warnings
from pathlib import Path
import numpy as np, pandas as pd, pytest
from PIL import Image

from artsim.plan import plan_run, print_plan, siamese_plan, evaluation_plan, estimate_time, load_rates, KNOWN_SOURCES
from artsim.reproduce import artsim_reproduce, resolve_config
from fastcore.basics import AttrDict
from artsim.runs import STAGES, Run, stage_params

ROOT = Path(__file__).resolve().parent.parent
EXE = Path(sys.executable).parent / 'artsim_reproduce'


def _env():
    return {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'ARTSIM_RUNS')}


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    "Every chapter of the tiny preset, through the runner."
    run = tmp_path_factory.mktemp('plan') / 'tiny'
    old = os.environ.pop('IN_TEST', None)
    try: artsim_reproduce(preset='tiny', run_dir=str(run), progress=False, out=io.StringIO())
    finally:
        if old is not None: os.environ['IN_TEST'] = old
    return run


def compare_plan_with_run(plan, run:Path) -> dict:
    "Every count of `plan` next to what the run at `run` made: name -> (planned, made)."
    r = Run(run)
    c, out = plan.counts, {}
    m = r.read_parquet('data/manifest.parquet')
    cols = ['id', 'path', 'genre', 'split', 'width', 'height']
    out['manifest'] = (plan.manifest[cols].astype(str).values.tolist(), m[cols].astype(str).values.tolist())
    pairs = r.read_parquet('generated/pairs.parquet')
    out['pairs'] = (plan.pairs.pair_id.tolist(), pairs.pair_id.tolist())
    out['generated_paths'] = (plan.pairs.generated_path.tolist(), pairs.generated_path.tolist())
    out['images described'] = (c['02_descriptors']['images'], len(r.read_parquet('features/images.parquet')))
    scores = r.read_parquet('similarity/pairs.parquet')
    out['similarity pairs'] = ((c['03_similarity']['positive'], c['03_similarity']['negative']),
                               (int((scores.kind == 'positive').sum()), int((scores.kind == 'negative').sum())))
    cal = r.read_json('similarity/calibration.json')
    out['calibration pairs'] = (c['03_similarity']['calibration_pairs'], sum(cal['source']['n_pairs'].values()))
    g = r.read_json('metrics/genre.json')
    out['genre training'] = ((c['04_finetune']['train'], c['04_finetune']['valid'], c['04_finetune']['test']), (g['n_train'], g['n_valid'], g['n_test']))
    card = json.loads((run / 'models/siamese.json').read_text())['pairs']
    sp = c['05_siamese']
    out['siamese pairs'] = ({s: {k: sp['splits'][s][k] for k in ('positive', 'negative', 'identical', 'paintings')} for s in ('train', 'valid', 'test')},
                            {s: {k: int(card[s][k]) for k in ('positive', 'negative', 'identical', 'paintings')} for s in ('train', 'valid', 'test')})
    out['straddling'] = (sp['straddling'], int(card['left out (straddling)']['negative']))
    ev = r.read_json('metrics/eval.json')['counts']
    out['evaluation'] = ({k: c['07_evaluation'][k] for k in ev}, ev)
    return out


def test_the_plan_of_tiny_is_what_the_tiny_run_made(tiny_run, tmp_path):
    cfg = resolve_config('tiny', tmp_path / 'elsewhere', list(STAGES), {})
    plan = plan_run(cfg, tmp_path / 'elsewhere')   # nothing there: the manifest is planned, not read back
    assert plan.how['kind'] == 'demo' and plan.how['exact']
    for name, (planned, made) in compare_plan_with_run(plan, tiny_run).items():
        assert planned == made, name
    # the run's own directory gives the same plan, its manifest read back
    again = plan_run(resolve_config('tiny', tiny_run, list(STAGES), {}), tiny_run)
    assert again.how['kind'] == 'run' and again.counts['07_evaluation'] == plan.counts['07_evaluation']


def test_the_mirrors_of_chapters_05_to_07_agree_with_their_functions(tiny_run):
    warnings.simplefilter('ignore')
    from artsim.siamese import siamese_pairs, pair_counts
    from artsim.evaluation import evaluation_set
    run = Run(tiny_run)
    table = run.read_parquet('similarity/pairs.parquet')
    manifest = run.read_parquet('data/manifest.parquet')
    for ratio in (None, 0.25, 1.0, 3.0):
        for identical in (True, False):
            sp = stage_params('siamese', dict(preset='tiny', run_dir=run.path)) | dict(negatives_per_positive=ratio, identical_pairs=identical)
            mine = siamese_plan(table, AttrDict(sp), 42)
            pairs = siamese_pairs(run, 'combined', ratio, 42, identical)
            counts = pair_counts(pairs)
            for s in ('train', 'valid', 'test'):
                assert mine['splits'][s] == {k: int(counts.loc[s, k]) for k in ('positive', 'negative', 'identical', 'paintings')}, (ratio, s)
            used = pairs[pairs.subset.isin(['train', sp['validate_on']])]
            assert mine['bank_images'] == len(set(used.original_path) | set(used.generated_path))
    for bound in (None, 1, 2, 3, 100):
        es = evaluation_set(run, bound, seed=7)
        mine = evaluation_plan(table, manifest, bound, seed=7)
        assert (mine['test_pairs'], mine['variants'], mine['test_paintings'], mine['straddling_pairs'], mine['training_pairs']) == \
               (len(es.pairs), len(es.queries), len(es.gallery), es.straddling, len(es.train)), bound


def test_times_come_from_recorded_rates_and_are_never_invented(tiny_run, tmp_path):
    plan = plan_run(resolve_config('tiny', tmp_path / 'x', list(STAGES), {}), tmp_path / 'x')
    none = estimate_time(plan, 'cpu', rates={})
    assert all(s is None and 'no rates recorded' in why for s, why, _ in none['chapters'].values())
    rates = dict(devices=dict(cpu=dict(name='a CPU', measured='today', chapter_fixed_s={ch: 1.0 for ch in plan.work},
                                       rates={k: 0.5 for k in ('paint_s_per_mpx', 'standin_s_per_mpx', 'handmade_s_per_image', 'forward_s_per_mpx',
                                                              'train_s_per_mpx', 'load_s_per_image', 'pair_s', 'ssim_s_per_cell',
                                                              'descriptor_s_per_cell', 'hash_s_per_image')})))
    t = estimate_time(plan, 'cpu', rates=rates)
    w = plan.work['03_similarity']['pairs']
    assert t['chapters']['03_similarity'][0] == pytest.approx(1.0 + 0.5 * w)
    assert t['chapters']['05_siamese'][0] == 1.0
    # a CUDA device with no rates recorded for it: the GPU chapters are not measured, and say why
    gpu = estimate_time(plan, 'cuda', rates=rates)
    assert gpu['chapters']['04_finetune'][0] is None and 'CUDA' in gpu['chapters']['04_finetune'][1]


def test_full_before_the_download_is_estimated_and_said_to_be(tmp_path):
    out = io.StringIO()
    plan = print_plan('full', tmp_path / 'run', param=[f'source_path={tmp_path}/wikiart'], out=out)
    text = out.getvalue()
    assert plan.how['kind'] == 'known' and 'not on disk yet' in text and 'rounded to hundreds' in text
    n = sum(min(1000, k) for k in KNOWN_SOURCES['wikiart']['genres'].values())
    assert plan.counts['00_data']['paintings'] == n == 10_000
    assert plan.counts['01_generation']['variants'] == n * 10 * 3 and '300,000 variants' in text
    assert plan.counts['07_evaluation']['test_paintings'] == 200   # full's max_paintings
    if 'cuda' not in load_rates()['devices']:   # no chapter has a rate: the total says so, not '0 s'
        assert 'time, all chapters: not measured (no chapter has rates for this device)' in text
    assert not (tmp_path / 'run').exists()
    # a thesis-sized run: 200 paintings per genre, four prompts
    small = print_plan('full', tmp_path / 'run', param=[f'source_path={tmp_path}/wikiart', 'n_per_genre=200',
                                                         'prompts=[mythical, futuristic, winter, night]'], out=io.StringIO())
    assert small.counts['01_generation']['variants'] == 2000 * 4 * 3


def test_a_source_on_disk_is_counted_from_its_files(tmp_path):
    src = tmp_path / 'paintings'
    for g in ('a', 'b'):
        (src / g).mkdir(parents=True)
        for i in range(5): Image.new('RGB', (300, 200), (i * 40, 0, 0)).save(src / g / f'{i}.png')
    plan = print_plan('demo', tmp_path / 'run', param=['source=folder', f'source_path={src}', 'n_per_genre=4', 'originals_per_genre=2'], out=io.StringIO())
    assert plan.how['kind'] == 'disk' and not plan.how['exact']
    assert plan.counts['00_data']['paintings'] == 8 and plan.counts['01_generation']['variants'] == 2 * 2 * 4 * 3
    assert set(zip(plan.manifest.width, plan.manifest.height)) == {(128, 85)}   # the files' size, fitted to image_size


@pytest.mark.parametrize('argv, says', [(['-p', 'n_per_genre=0'], 'n_per_genre must be'), (['-p', 'variant_format=gif'], 'variant_format must be one of'),
                                        (['-p', 'source=folder'], 'needs source_path'), (['-p', 'n_per_genre=2'], 'too few paintings'),
                                        (['-p', 'typo=1'], 'unknown parameter typo')])
def test_plan_usage_errors_are_one_line_exit_2(argv, says, tmp_path):
    p = subprocess.run([str(EXE), '--plan', '--run-dir', str(tmp_path / 'r'), *argv], capture_output=True, text=True, env=_env(), cwd=ROOT)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and says in p.stderr and 'Traceback' not in p.stderr, p.stderr
    assert not (tmp_path / 'r').exists()


def test_the_plan_command_prints_and_writes_nothing(tmp_path):
    p = subprocess.run([str(EXE), '--plan', '--preset', 'demo', '--run-dir', str(tmp_path / 'r')], capture_output=True, text=True, env=_env(), cwd=ROOT)
    assert p.returncode == 0, p.stderr
    for ch in ('00_data', '03_similarity', '07_evaluation'): assert ch in p.stdout
    assert '768 variants' in p.stdout and 'peak memory' in p.stdout and 'disk' in p.stdout
    assert not (tmp_path / 'r').exists()


def test_model_sizes_are_those_of_the_models():
    warnings.simplefilter('ignore')
    from artsim.backbone import resnet50_body
    from artsim.finetune import genre_classifier
    from artsim.siamese import SiameseNet
    from artsim.plan import RESNET50_BODY_FLOATS, genre_model_floats, siamese_model_floats
    floats = lambda m: sum(v.numel() for v in m.state_dict().values() if v.is_floating_point())
    body = resnet50_body('random')
    assert floats(body) == RESNET50_BODY_FLOATS
    assert floats(genre_classifier(10, body)) == genre_model_floats(10)
    assert floats(SiameseNet(body, 2048, 256)) == siamese_model_floats(256)
