"""`artsim_reproduce --plan`: its counts are what a run then makes (the tiny preset, every chapter), its mirrors of chapters
05-07 agree with their own functions, a source not on disk is estimated and said to be, and nothing is written."""
import io, json, os, subprocess, sys, warnings
from pathlib import Path
import numpy as np, pandas as pd, pytest
from PIL import Image

from artsim.plan import plan_run, siamese_plan, training_plan, evaluation_plan, estimate_time, load_rates, KNOWN_SOURCES
from artsim.reproduce import artsim_reproduce, print_plan, resolve_config
from fastcore.basics import AttrDict
from artsim.runs import STAGES, Run, stage_params

ROOT = Path(__file__).resolve().parent.parent
EXE = Path(sys.executable).parent / 'artsim_reproduce'


def _env():
    return {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'ARTSIM_RUNS')}


@pytest.fixture(scope='module')
def tiny_run(tiny_run):
    "Every chapter of the tiny preset, through the runner (the session's shared run)."
    return tiny_run.path


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
    sp, t = c['05_siamese'], c['06_training']
    images = r.read_parquet('siamese/images.parquet')
    out['siamese splits'] = ({s: (sp['splits'][s]['paintings'], sp['splits'][s]['variants']) for s in sp['encoded_splits']},
                             {s: (int(((images.split == s) & (images.role == 'painting')).sum()), int(((images.split == s) & (images.role == 'variant')).sum()))
                              for s in pd.unique(images.split)})
    from safetensors import safe_open
    with safe_open(str(run / 'siamese/data.safetensors'), 'pt') as st:
        shapes = {k: tuple(st.get_slice(k).get_shape()) for k in st.keys()}
    out['siamese features'] = ((sp['encoded_images'] + sp['augmented'], sp['feature_dim'], sp['teacher_cells']),
                               (sum(v[0] for k, v in shapes.items() if k.endswith(('.features', '.augmented'))),
                                {v[1] for k, v in shapes.items() if k.endswith('.features')}.pop(),
                                sum(v[0] * v[1] for k, v in shapes.items() if k.endswith('.teacher'))))
    card = json.loads((run / 'models/siamese.json').read_text())
    training = r.read_json('metrics/training.json')
    out['training'] = ((t['seeds'], t['epochs'], t['pca_dim'], t['ablation_rows']),
                       (len(training['seeds']), len(card['history']), card['architecture']['pca_dim'], len(training['ablation'])))
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
    from artsim.siamese import split_tables
    from artsim.training import ABLATIONS, training_seeds
    from artsim.backbone import feature_dim
    from artsim.plan import ABLATION_ROWS, siamese_feature_dim
    from artsim.evaluation import evaluation_set
    run = Run(tiny_run)
    table = run.read_parquet('similarity/pairs.parquet')
    manifest = run.read_parquet('data/manifest.parquet')
    tables, pairs = split_tables(run), run.read_parquet('generated/pairs.parquet')
    for validate_on in ('valid', 'test'):
        sp = AttrDict(stage_params('siamese', dict(preset='tiny', run_dir=run.path)) | dict(validate_on=validate_on))
        mine = siamese_plan(manifest, pairs, sp)
        for s in ('train', 'valid', 'test'):
            t = tables[s]
            assert mine['splits'][s] == dict(paintings=len(t.gallery), variants=len(t.queries), variant_paintings=t.queries.painting.nunique(),
                                             cells=len(t.gallery) * len(t.queries)), (validate_on, s)
        used = [tables[s] for s in dict.fromkeys(('train', validate_on))]
        assert mine['encoded_images'] == sum(len(t.gallery) + len(t.queries) for t in used)
        assert mine['augmented'] == sp.augmented_copies * len(tables['train'].gallery)
        tr = AttrDict(stage_params('training', dict(preset='tiny', run_dir=run.path)))
        for K in (1, 2, 5):
            plan = training_plan(mine, AttrDict(tr | dict(paintings_per_batch=K)), sp)
            assert plan['steps_per_seed'] == tr.frozen_epochs * len(range(0, tables['train'].queries.painting.nunique(), K))
        assert training_plan(mine, tr, sp)['seeds'] == len(training_seeds(tr.seed, tr.seeds))
    for pooling in ({4: 1}, {1: 4, 2: 4, 3: 1, 4: 1}, {'2': 2, '3': 2}):
        assert siamese_feature_dim(pooling) == feature_dim({int(k): v for k, v in pooling.items()})
    assert ABLATION_ROWS == len(ABLATIONS)
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
    assert t['chapters']['05_siamese'][0] == pytest.approx(1.0 + 0.5 * sum(plan.work['05_siamese'].values()))
    assert t['chapters']['06_training'][0] == 1.0   # the head's training: the chapter's fixed cost
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
    param = ['source=folder', f'source_path={src}', 'n_per_genre=4', 'originals_per_genre=2']
    plan = print_plan('demo', tmp_path / 'run', param=param, out=io.StringIO(), only='00,01')   # 04-07's needs aside
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
    import torch
    from artsim.network import SiameseNet, build_head, fit_inputs
    from artsim.backbone import feature_dim
    from artsim.plan import RESNET50_BODY_FLOATS, genre_model_floats, siamese_model_floats, siamese_head_floats
    floats = lambda m: sum(v.numel() for v in m.state_dict().values() if v.is_floating_point())
    body = resnet50_body('random')
    assert floats(body) == RESNET50_BODY_FLOATS
    assert floats(genre_classifier(10, body)) == genre_model_floats(10)
    pooling = {1: 4, 2: 4, 3: 1, 4: 1}
    fitted = fit_inputs(torch.randn(20, feature_dim(pooling)), 8)
    for sketch in (0, 16):
        head = build_head(fitted, 4, sketch, 8)
        assert floats(SiameseNet(body, pooling, head)) == siamese_model_floats(feature_dim(pooling), 8, 4, sketch, 8)
        shared = ('mean', 'std', 'basis', 'score_map.knots')   # artsim.network._SHARED: saved once, not per seed
        assert sum(v.numel() for k, v in head.state_dict().items() if v.is_floating_point() and k not in shared) == \
               siamese_head_floats(feature_dim(pooling), 8, 4, sketch, 8, shared=False)


# -- what the chapters would stop on, found before anything runs ----------------------------------------------------

def own_paintings(root:Path, genres=('landscape', 'portrait', 'cityscape', 'still_life'), per_genre:int=8) -> Path:
    "A user's folder: `per_genre` images in each genre's sub-folder (procedural paintings saved as JPEG files)."
    from artsim.painter import demo_painting
    for g in genres:
        (root / g).mkdir(parents=True)
        for i in range(per_genre): demo_painting(g, 100 + i, 256).save(root / g / f'{g}-{i}.jpg', quality=92)
    return root


def refused(argv:list, run_dir:Path):
    "The plan and the runner both refuse `argv` before anything runs: their one line each, which must be the same."
    from artsim.commands import UsageError
    with pytest.raises(UsageError) as plan: print_plan(run_dir=run_dir, out=io.StringIO(), **argv)
    with pytest.raises(UsageError) as run:
        artsim_reproduce(run_dir=str(run_dir), progress=False, out=io.StringIO(), **argv)
    assert str(plan.value) == str(run.value) and not run_dir.exists()
    return str(plan.value)


def test_a_batch_larger_than_the_training_split_is_refused_before_chapter_00(tmp_path):
    "4 genres x 8 own images: the demo preset's bs=32 is more than the 16 training paintings chapter 04 would get."
    src = own_paintings(tmp_path / 'mine')
    argv = dict(preset='demo', param=['source=folder', f'source_path={src}'])
    says = refused(argv, tmp_path / 'run')
    assert says.startswith('04_finetune would stop: bs=32 is more than the 16 training paintings'), says
    assert '-p bs=16' in says, says
    plan = print_plan(run_dir=tmp_path / 'run', out=io.StringIO(), preset='demo', param=argv['param'] + ['bs=16'])
    assert plan.counts['04_finetune']['train'] == 16


TWO_GENRES = ['n_per_genre=10', 'genres=[landscape, portrait]', 'bs=8', 'originals_per_genre=1']

def _demo_without(split:str, seed:int) -> dict:
    "Two demo genres of 10 paintings, one original each: at `seed`, chapter 01's draw leaves `split` without variants."
    argv = dict(preset='demo', seed=seed, param=TWO_GENRES)
    from artsim.reproduce import prepare_run
    r = prepare_run(**argv)
    variants = {k: v['variants'] for k, v in plan_run(r.cfg).counts['05_siamese']['splits'].items()}
    assert variants[split] == 0 and variants['train'] > 0, variants   # what the draw gives, before the check is asked
    return argv


def test_a_split_without_variants_is_refused_before_chapter_00(tmp_path):
    says = refused(_demo_without('valid', seed=0), tmp_path / 'run')
    assert says.startswith('05_siamese would stop: no valid variants') and '-p originals_per_genre=null' in says, says
    assert '-p validate_on=test' in says


def test_no_test_pairs_is_refused_before_chapter_00(tmp_path):
    argv = _demo_without('test', seed=7)
    says = refused(argv, tmp_path / 'run')
    assert says.startswith('07_evaluation would stop: no test pairs') and '-p originals_per_genre=null' in says, says
    # --only names the chapters whose conditions count: 00-04 alone do not need test variants
    plan = print_plan(run_dir=tmp_path / 'run', out=(out := io.StringIO()), only='00,01,02,03,04', **argv)
    assert plan.counts['07_evaluation']['own_pairs'] == 0
    assert 'no valid variants of landscape, portrait; no test variants of landscape, portrait' not in out.getvalue()
    assert 'no test variants of landscape, portrait: chapters 05-07 judge nothing' in out.getvalue(), out.getvalue()


def test_genres_without_variants_in_a_split_are_named(tmp_path):
    out = io.StringIO()
    print_plan('demo', tmp_path / 'run', seed=6, param=TWO_GENRES + ['validate_on=test'], out=out)
    line = next(l for l in out.getvalue().splitlines() if 'judge nothing' in l).strip()
    assert line == ('no valid variants of landscape, portrait; no test variants of landscape: chapters 05-07 judge '
                    'nothing of them there (-p originals_per_genre=null draws every painting)'), line


@pytest.mark.parametrize('argv, says', [(['--only', '99'], "--only 99: no chapter '99'"),
                                        (['--from', 'zz'], "--from zz: no chapter 'zz'"),
                                        (['-p', 'portable=maybe'], '-p portable=maybe: portable is true or false'),
                                        (['-p', 'genres=[]'], '00_data: genres must be a list of genre names')])
def test_the_plan_checks_parameters_as_the_runner_does(argv, says, tmp_path):
    for plan in (['--plan'], []):
        p = subprocess.run([str(EXE), *plan, '--run-dir', str(tmp_path / 'r'), *argv], capture_output=True, text=True,
                           env=_env(), cwd=ROOT)
        assert p.returncode == 2 and p.stdout == '' and len(p.stderr.strip().splitlines()) == 1, (plan, p.stderr)
        assert says in p.stderr and 'Traceback' not in p.stderr, (plan, p.stderr)
    assert not (tmp_path / 'r').exists()


def test_the_plan_into_a_closed_pipe_ends_without_a_traceback(tmp_path):
    "`artsim_reproduce --plan | head -3`: the reader gone before the plan is printed (here, before it starts)."
    p = subprocess.Popen([str(EXE), '--plan', '--run-dir', str(tmp_path / 'r')], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=_env(), cwd=ROOT)
    p.stdout.close()
    err = p.stderr.read().decode(); p.wait(timeout=300)
    assert p.returncode == 141 and err == '', (p.returncode, err)
