"""`artsim_reproduce --plan`: its counts are what a run then makes (the tiny preset, every chapter), they are the
chapters' own functions' for other parameters too, a source not on disk is estimated and said to be, and nothing is
written."""
import io, json, math, os, subprocess, sys, warnings
from pathlib import Path
import numpy as np, pandas as pd, pytest
from PIL import Image

from artsim.plan import (plan_run, siamese_plan, training_plan, evaluation_plan, model_bytes, saved_bytes,
                         KNOWN_SOURCES)
from artsim.estimates import estimate_time, load_rates
from artsim.backbone import as_pooling
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


def data_bytes(f:Path) -> int:
    "The bytes of the tensors a safetensors file holds, from its header's offsets."
    with open(f, 'rb') as fh:
        header = json.loads(fh.read(int.from_bytes(fh.read(8), 'little')))
    return sum(v['data_offsets'][1] - v['data_offsets'][0] for k, v in header.items() if k != '__metadata__')


def compare_plan_with_run(plan, run:Path) -> dict:
    "Every count of `plan` next to what the run at `run` made: 'chapter: what' -> (planned, made)."
    r = Run(run)
    c, out = plan.counts, {}
    # 00: the manifest, row by row; genres and splits
    m = r.read_parquet('data/manifest.parquet')
    cols = ['id', 'path', 'genre', 'split', 'width', 'height']
    out['00_data: manifest'] = (plan.manifest[cols].astype(str).values.tolist(), m[cols].astype(str).values.tolist())
    d = c['00_data']
    out['00_data: paintings, genres'] = ((d['paintings'], d['genres']), (len(m), m.genre.nunique()))
    out['00_data: paintings per genre and split'] = (
        {k: int(v) for k, v in d['per_genre_split'].stack().items() if v},
        {k: int(v) for k, v in m.groupby(['genre', 'split']).size().items()})
    # 00: the twins of a demo run's validation and test paintings, row by row
    tw = r.read_parquet('data/twins.parquet')
    out['00_data: twins'] = (plan.twins.astype(str).values.tolist(), tw.astype(str).values.tolist())
    out['00_data: twins counted'] = (d['twins'], len(tw))
    # 01: the pairs, and the sizes of the variants written
    pairs = r.read_parquet('generated/pairs.parquet')
    out['01_generation: pairs'] = (plan.pairs.pair_id.tolist(), pairs.pair_id.tolist())
    out['01_generation: generated paths'] = (plan.pairs.generated_path.tolist(), pairs.generated_path.tolist())
    g = c['01_generation']
    out['01_generation: originals, prompts, strengths, variants'] = (
        (g['originals'], g['prompts'], g['strengths'], g['variants']),
        (pairs.original_id.nunique(), pairs.prompt_id.nunique(), pairs.strength.nunique(), len(pairs)))
    made = pd.Series([Image.open(run / x).size for x in pairs.generated_path]).value_counts()
    out['01_generation: variant sizes'] = ({tuple(map(int, k)): int(v) for k, v in g['sizes'].items()},
                                           {tuple(map(int, k)): int(v) for k, v in made.items()})
    # 02: the images described
    images = r.read_parquet('features/images.parquet')
    de = c['02_descriptors']
    out['02_descriptors: images, paintings, variants, twins'] = (
        (de['images'], de['paintings'], de['variants'], de['twins']),
        (len(images), *(int((images.role == k).sum()) for k in ('original', 'generated', 'twin'))))
    out['02_descriptors: families'] = (sorted(de['families']), sorted(r.read_json('features/versions.json')))
    # 03: the pairs scored and the unrelated pairs calibrated on
    scores = r.read_parquet('similarity/pairs.parquet')
    s = c['03_similarity']
    out['03_similarity: pairs, positive, negative'] = (
        (s['pairs'], s['positive'], s['negative']),
        (len(scores), int((scores.kind == 'positive').sum()), int((scores.kind == 'negative').sum())))
    cal = r.read_json('similarity/calibration.json')
    out['03_similarity: calibration pairs'] = (s['calibration_pairs'], sum(cal['source']['n_pairs'].values()))
    # 04: the genre classifier's splits, epochs and file
    gm, f = r.read_json('metrics/genre.json'), c['04_finetune']
    out['04_finetune: train, valid, test'] = ((f['train'], f['valid'], f['test']),
                                              (gm['n_train'], gm['n_valid'], gm['n_test']))
    out['04_finetune: epochs'] = (f['epochs'], len(gm['training']['history']))
    out['04_finetune: model bytes'] = (f['model_bytes'], data_bytes(run / 'models/genre.safetensors'))
    # 05: the images encoded, their features and descriptors
    sp = c['05_siamese']
    encoded = r.read_parquet('siamese/images.parquet')
    side = lambda k, role: encoded[(encoded.split == k) & (encoded.role == role)]
    out['05_siamese: encoded splits'] = (sp['encoded_splits'], list(pd.unique(encoded.split)))
    out['05_siamese: paintings, variants, variant paintings'] = (
        {k: (sp['splits'][k]['paintings'], sp['splits'][k]['variants'], sp['splits'][k]['variant_paintings'])
         for k in sp['encoded_splits']},
        {k: (len(side(k, 'painting')), len(side(k, 'variant')), side(k, 'variant').painting.nunique())
         for k in pd.unique(encoded.split)})
    with open(run / 'siamese/data.safetensors', 'rb') as fh:
        shapes = {k: v['shape'] for k, v in json.loads(fh.read(int.from_bytes(fh.read(8), 'little'))).items()
                  if k != '__metadata__'}
    out['05_siamese: images encoded, feature length'] = (
        (sp['encoded_images'], sp['augmented'], sp['feature_dim']),
        (sum(v[0] for k, v in shapes.items() if k.endswith('.features')),
         sum(v[0] for k, v in shapes.items() if k.endswith('.augmented')),
         {v[1] for k, v in shapes.items() if k.endswith(('.features', '.augmented'))}.pop()))
    out['05_siamese: descriptor values'] = (
        {k: (sp['splits'][k]['paintings'] + sp['splits'][k]['variants']) for k in sp['encoded_splits']},
        {k.split('.')[0]: v[0] for k, v in shapes.items() if '.described.' in k})
    # 06: seeds, epochs, batches, PCA, ablation, the model files
    t, training = c['06_training'], r.read_json('metrics/training.json')
    card, seeds_card = r.read_json('models/siamese.json'), r.read_json('models/siamese_seeds.json')
    recipe = card['training_params']
    # painting_batches: K training paintings with variants a batch
    batches = math.ceil(side('train', 'variant').painting.nunique() / recipe['paintings_per_batch'])
    out['06_training: seeds, epochs, steps per seed'] = (
        (t['seeds'], t['epochs'], t['steps_per_seed']),
        (len(training['seeds']), len(card['history']), len(card['history']) * batches))
    out['06_training: ablation rows, head trainings'] = (
        (t['ablation_rows'], t['head_trainings']),
        (len(training['ablation']),
         len(training['seeds']) + sum(len(a['seeds']) for a in training['ablation'].values())))
    out["06_training: the teacher's values computed"] = (t['teacher_cells'], training['teacher_cells'])
    out["06_training: aspect heads, their trainings, their teachers' values computed"] = (
        (t['architecture']['aspects'], t['aspect_trainings'], t['aspect_teacher_cells']),
        ({a: v['families'] for a, v in training['aspects'].items()},
         sum(len(v['criteria']) for v in training['aspects'].values())
         + len(training['aspects']) * (len(training['aspect_recipe']['candidates']) - 1)
         + sum(1 for v in training['aspect_layout'].values() for x in v['candidates'] if x['weight']),
         training['aspect_teacher_cells']))
    out['06_training: validated on'] = ((t['validate_on'], t['valid_variants'], t['valid_paintings']),
                                        (training['validate_on'], len(side(training['validate_on'], 'variant')),
                                         len(side(training['validate_on'], 'painting'))))
    arch = {k: card['architecture'][k] for k in t['architecture']}
    out['06_training: architecture'] = (t['architecture'], arch | dict(pooling=as_pooling(arch['pooling'])))
    out['06_training: model bytes, other seeds\' heads'] = (
        (t['model_bytes'], (t['seeds'] - 1) * t['seed_head_bytes'], t['seeds'] - 1),
        (data_bytes(run / 'models/siamese.safetensors'), data_bytes(run / 'models/siamese_seeds.safetensors'),
         len(seeds_card['seeds'])))
    # 07: the test pairs, variants and paintings
    ev = r.read_json('metrics/eval.json')['counts']
    out['07_evaluation: counts'] = ({k: c['07_evaluation'][k] for k in ev}, ev)
    out['07_evaluation: score matrix cells'] = (c['07_evaluation']['cells'], ev['variants'] * ev['test_paintings'])
    return out


def test_the_plan_of_tiny_is_what_the_tiny_run_made(tiny_run, tmp_path):
    cfg = resolve_config('tiny', tmp_path / 'elsewhere', list(STAGES), {})
    plan = plan_run(cfg, tmp_path / 'elsewhere')   # nothing there: the manifest is planned, not read back
    assert plan.how['kind'] == 'demo' and plan.how['exact']
    compared = compare_plan_with_run(plan, tiny_run)
    assert {name.split(':')[0] for name in compared} == set(plan.counts)   # every chapter is compared
    for name, (planned, made) in compared.items():
        assert planned == made, f'{name}: planned {planned}, the run made {made}'
    # the run's own directory gives the same plan, its manifest read back
    again = plan_run(resolve_config('tiny', tiny_run, list(STAGES), {}), tiny_run)
    assert again.how['kind'] == 'run' and again.counts['07_evaluation'] == plan.counts['07_evaluation']
    # and a plan of other parameters differs from the run where, and only where, those parameters act
    other = plan_run(resolve_config('tiny', tmp_path / 'other', list(STAGES), dict(seeds=2, max_paintings=3)))
    differ = {name for name, (planned, made) in compare_plan_with_run(other, tiny_run).items() if planned != made}
    assert differ == {'06_training: seeds, epochs, steps per seed', '06_training: ablation rows, head trainings',
                      "06_training: model bytes, other seeds' heads", '07_evaluation: counts',
                      '07_evaluation: score matrix cells',
                      "06_training: aspect heads, their trainings, their teachers' values computed"}, differ


def test_the_plan_counts_with_the_chapters_functions(tiny_run):
    "The plan's counts of chapters 05-07 are those of the chapters' functions on the run, for other parameters too."
    warnings.simplefilter('ignore')
    from artsim.siamese import split_tables
    from artsim.training import painting_batches, training_seeds
    from artsim.evaluation import evaluation_set
    run = Run(tiny_run)
    table = run.read_parquet('similarity/pairs.parquet')
    manifest = run.read_parquet('data/manifest.parquet')
    tables = split_tables(run)
    for validate_on in ('valid', 'test'):
        sp = AttrDict(stage_params('siamese', dict(preset='tiny', run_dir=run.path)) | dict(validate_on=validate_on))
        tr0 = AttrDict(stage_params('training', dict(preset='tiny', run_dir=run.path)))
        mine = siamese_plan(tables, sp, tr0.teacher_dense_cells)
        for s in ('train', 'valid', 'test'):
            t = tables[s]
            assert mine['splits'][s] == dict(paintings=len(t.gallery), variants=len(t.queries),
                                             variant_paintings=t.queries.painting.nunique(),
                                             cells=len(t.gallery) * len(t.queries),
                                             dense=len(t.gallery) * len(t.queries) <= tr0.teacher_dense_cells), (validate_on, s)
        used = [tables[s] for s in dict.fromkeys(('train', validate_on))]
        assert mine['encoded_images'] == sum(len(t.gallery) + len(t.queries) for t in used)
        assert mine['augmented'] == sp.augmented_copies * len(tables['train'].gallery)
        tr = AttrDict(stage_params('training', dict(preset='tiny', run_dir=run.path)))
        train = tables['train']
        for K in (1, 2, 5):
            plan = training_plan(tables, AttrDict(tr | dict(paintings_per_batch=K)), sp)
            batches = list(painting_batches(train.queries.truth.to_numpy(), len(train.gallery), K))
            assert plan['steps_per_seed'] == tr.frozen_epochs * len(batches), K
        plan = training_plan(tables, tr, sp)
        assert plan['seeds'] == len(training_seeds(tr.seed, tr.seeds))
        assert (plan['valid_variants'], plan['valid_paintings']) == (len(tables[validate_on].queries),
                                                                     len(tables[validate_on].gallery))
        one_row = AttrDict(tr | dict(seeds=3, ablation=['without the MSE term'], ablation_seeds=2))
        one_row = training_plan(tables, one_row, sp)
        assert (one_row['ablation_rows'], one_row['head_trainings']) == (1, 3 + 1 * 2)
        # a training split too large to keep whole: each seed's batches once, for every seed's schedule
        big = training_plan(tables, AttrDict(tr | dict(teacher_dense_cells=0)), sp)
        truth = train.queries.truth.to_numpy()
        per_epoch = sum(len(v) * len(g) for v, g in painting_batches(truth, len(train.gallery), tr.paintings_per_batch,
                                                                      tr.gallery_extra))
        held = tables[validate_on]
        assert not big['teacher_dense'] and big['teacher_cells'] == (
            big['seeds'] * tr.frozen_epochs * per_epoch + len(held.gallery) * len(held.queries))
        assert big['tape_bytes'] == big['seeds'] * tr.frozen_epochs * (4 * per_epoch + 8 * len(list(
            painting_batches(truth, len(train.gallery), tr.paintings_per_batch, tr.gallery_extra))))
        small_pca = training_plan(tables, AttrDict(tr | dict(pca_dim=100, pca_fit_images=5)), sp)
        assert small_pca['pca_dim'] == 4 == small_pca['architecture']['pca_dim']   # one fewer than the rows fitted
        # a head per aspect: every seed again, each aspect's teacher computing what the overall one does
        aspects = dict(composition=['shape', 'edges'], style=['color', 'texture'])
        both = training_plan(tables, AttrDict(tr | dict(teacher_dense_cells=0)), sp, aspects)
        assert (both['aspect_trainings'], both['aspect_teacher_cells'], both['aspect_tape_bytes']) == (
            2 * (big['seeds'] + len(tr.aspect_recipes) - 1), 2 * big['teacher_cells'], 2 * big['tape_bytes'])
        assert training_plan(tables, AttrDict(tr | dict(aspect_heads=False)), sp, aspects)['aspect_trainings'] == 0
        # twins on the split judged on: each layout weight but 0 trained once more, from the first seed
        twinned = training_plan(tables, AttrDict(tr | dict(teacher_dense_cells=0)), sp, aspects, twinned=True)
        assert (twinned['layout_trainings'], both['layout_trainings']) == (sum(map(bool, tr.layout_weights['composition'])), 0)
        assert twinned['aspect_trainings'] == both['aspect_trainings'] + twinned['layout_trainings'] == both['aspect_trainings'] + 1
    for bound in (None, 1, 2, 3, 100):
        es = evaluation_set(run, bound, seed=7)
        mine = evaluation_plan(table, manifest, bound, seed=7)
        planned = [mine[k] for k in ('test_pairs', 'variants', 'test_paintings', 'straddling_pairs', 'training_pairs')]
        assert planned == [len(es.pairs), len(es.queries), len(es.gallery), es.straddling, len(es.train)], bound


def test_times_come_from_recorded_rates_and_are_never_invented(tiny_run, tmp_path):
    plan = plan_run(resolve_config('tiny', tmp_path / 'x', list(STAGES), {}), tmp_path / 'x')
    none = estimate_time(plan, 'cpu', rates={})
    assert all(s is None and 'no rates recorded' in why for s, why, _ in none['chapters'].values())
    rates = dict(devices=dict(cpu=dict(name='a CPU', measured='today', chapter_fixed_s={ch: 1.0 for ch in plan.work},
                                       rates={k: 0.5 for k in ('paint_s_per_mpx', 'standin_s_per_mpx', 'handmade_s_per_image', 'forward_s_per_mpx',
                                                              'train_s_per_mpx', 'load_s_per_image', 'pair_s', 'ssim_s_per_cell',
                                                              'descriptor_s_per_cell', 'hash_s_per_image', 'head_s_per_row_step')})))
    t = estimate_time(plan, 'cpu', rates=rates)
    w = plan.work['03_similarity']['pairs']
    assert t['chapters']['03_similarity'][0] == pytest.approx(1.0 + 0.5 * w)
    assert t['chapters']['05_siamese'][0] == pytest.approx(1.0 + 0.5 * sum(plan.work['05_siamese'].values()))
    # the heads' training: the chapter's fixed cost; the teacher's values it computes; the rows its steps embed
    w6 = plan.work['06_training']
    assert t['chapters']['06_training'][0] == pytest.approx(1.0 + 0.5 * (w6['descriptor_cells'] + w6['head_row_steps']))
    c6 = plan.counts['06_training']   # every training (overall, ablation, aspect heads), each step embedding rows
    assert w6['head_row_steps'] == c6['head_row_steps'] > (c6['head_trainings'] + c6['aspect_trainings']) * c6['steps_per_seed']
    # the overall head's teacher values and every aspect head's
    assert plan.work['06_training']['descriptor_cells'] == c6['teacher_cells'] + c6['aspect_teacher_cells'] > 0
    # a small split: the overall teacher's pass kept every aspect's whole matrix, so the aspect heads' teachers compute
    # nothing more (a large split's each compute what the overall one does: `test_the_plan_counts_with_the_chapters_functions`)
    assert c6['teacher_dense'] and c6['aspect_teacher_cells'] == 0 < len(c6['architecture']['aspects'])
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
    assert plan.counts['00_data']['paintings'] == 8 and plan.counts['01_generation']['variants'] == 2 * 2 * 5 * 3   # genres x paintings x the demo's prompts x strengths
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
    assert '960 variants' in p.stdout and 'peak memory' in p.stdout and 'disk' in p.stdout
    assert not (tmp_path / 'r').exists()


def test_model_sizes_are_those_of_the_models():
    "Counted on the meta device, the models' sizes are those of the same models built in memory."
    warnings.simplefilter('ignore')
    from artsim.backbone import feature_dim, resnet50_body
    from artsim.finetune import genre_classifier
    from artsim.network import SiameseNet, build_head, fit_inputs, network_state, seed_head_state
    import torch
    body = resnet50_body('random')
    pooling = {1: 4, 2: 4, 3: 1, 4: 1}
    fitted = fit_inputs(torch.randn(20, feature_dim(pooling)), 8)
    for sketch in (0, 16):
        head = build_head(fitted, 4, sketch, 8)
        sizes = model_bytes(10, dict(pooling=pooling, feature_dim=feature_dim(pooling), pca_dim=8, embed_dim=4,
                                     sketch_dim=sketch, knots=8))
        assert sizes['genre'] == saved_bytes(genre_classifier(10, body).state_dict())
        assert sizes['siamese'] == saved_bytes(SiameseNet(body, pooling, head).state_dict()), sketch
        assert sizes['seed_head'] == saved_bytes(seed_head_state(head)), sketch
        aspects = dict(composition=['shape', 'edges'], style=['color', 'texture'])
        net = SiameseNet(body, pooling, head, {a: build_head(fitted, 4, sketch, 8, seed=1) for a in aspects}, aspects)
        sizes = model_bytes(10, dict(pooling=pooling, feature_dim=feature_dim(pooling), pca_dim=8, embed_dim=4,
                                     sketch_dim=sketch, knots=8, aspects=aspects))
        assert sizes['siamese'] == saved_bytes(network_state(net)), sketch
        assert sizes['seed_head'] == 3 * saved_bytes(seed_head_state(head)), sketch


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
