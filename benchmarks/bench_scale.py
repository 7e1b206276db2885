"""Cost as the work grows: the CPU stages at three sizes, time and peak memory per stage, and each one's growth exponent.

    python benchmarks/bench_scale.py [--sizes 1000 4000 16000] [--all-test-up-to 4000] [--keep DIR]
    python benchmarks/bench_scale.py --stages siamese training --sizes 160 320 640 [--keep DIR]

Each size is a run of the demo source with more paintings per genre (eight genres): chapter 00 (the paintings),
01 (the classical stand-in: one painting in ten gets the demo's 4 prompts x 3 strengths, so the variants grow with
the paintings), 02 (every descriptor family; the semantic ResNet50 at 64 px instead of the demo's 128 to keep the
largest size within the hour on two cores: its vectors, and so the memory of everything after it, are the same
2048 numbers), 03 (calibration, negative pairs, every pair scored), an index of the paintings with
`artsim.index.build_index` and one search with `search_index`, and chapter 07's scoring without a trained network: the
evaluation set, then SSIM, the perceptual hash and the descriptor values of every test variant against every test
painting. 07 runs twice: bounded as the full preset bounds it (`max_paintings=200`) at every size, and over every
test painting (the demo's setting) up to `--all-test-up-to` paintings, as its cost grows with the square.

Every stage runs in a fresh process, so its peak memory is its own: the peak resident set of the process and of its
largest worker, and the growth above what the process held before the stage began (the imports). The growth
exponent is the slope of log(time) and log(memory growth) against log(paintings), fitted over the sizes. The load
average is recorded before and after each stage: on a shared machine the times are upper bounds. Results are printed
as a table, with a projection to the full preset's sizes, and written to benchmarks/results/scale.json.

`--stages` picks the stages (default: those above). Two more are there: `siamese`, chapter 05 as
`python -m artsim.siamese --run-dir D --preset demo -p encoder_weights=random`, and `training`, chapter 06 as
`python -m artsim.training --run-dir D --preset demo -p seeds=1 -p ablation=[] -p frozen_epochs=3
-p teacher_dense_cells=0`: one seed, no ablation, three epochs, and the teacher's values computed per batch from the
stored descriptors at every size (the streaming path a large collection takes); sizes that are multiples of 80
keep the variants in proportion (one painting in ten per genre). A run's chapters 00-03 are run first
where its directory does not hold them yet (with --keep, a second call measures 05/06 on the runs the first built).
Chapter 04 (the genre fine-tune) is skipped: 05 encodes with random weights (`encoder_weights=random`), which give
the same shapes, memory and time per image as the genre model; 04 itself would add minutes per size (its planned
time is printed). Each command runs in a fresh process, as a user starts it; it may restart itself under the CPU pin
(`artsim.numerics.restart_pinned`: os.execve, the same process id), so that process, and any child it starts, is
polled every 20 ms in /proc/<pid>/status for two peaks: VmHWM, the resident set's high-water mark, and the peak of
RssAnon, the anonymous memory alone. 06 reads 05's features memory-mapped: those pages are file-backed page cache,
counted by VmHWM but clean, which the kernel drops under pressure, so RssAnon is the memory a run really needs. The
time of a command includes its start (imports, the restart), measured once by running it on an empty run directory;
the growth exponents are fitted to the time, the time less that start, the CPU time (user + system, from wait4:
steadier than the wall clock on a shared machine) less that start's, the anonymous peak and the disk of siamese/
against the paintings. Each size's plan (`artsim.plan.plan_run`, `artsim.estimates.estimate_memory` for the same
overrides) is printed beside the measured peaks, with the ratio measured/plan. The plan adds its terms to the
resident size of a process that loaded PyTorch (rates.json's torch_process_bytes), libraries' file-backed pages
included; the last column puts the start-alone process' anonymous peak in its place, the plan's anonymous memory.
These results go to benchmarks/results/scale_siamese.json; the other stages' results in scale.json are merged with
what it holds.
"""
import argparse, glob, json, os, resource, shutil, subprocess, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np

GENRES = 8
STAGES = ('data', 'generation', 'descriptors', 'similarity', 'index', 'search', 'scoring_bounded', 'scoring_all_test')
LABELS = dict(data='00 data', generation='01 generation (stand-in)', descriptors='02 descriptors', similarity='03 similarity',
              index='index (build_index)', search='one search (load_index + search_index)',
              scoring_bounded='07 scoring, max_paintings=200', scoring_all_test='07 scoring, every test painting',
              siamese='05 siamese (encoder_weights=random)', training='06 training (1 seed, 3 epochs, per batch)')
NEW_STAGES = ('siamese', 'training')   # chapters 05 and 06, each as its own command
PREREQUISITES = ('data', 'generation', 'descriptors', 'similarity')   # what 05 reads (04 is skipped: random weights)
DONE = dict(data=('data/manifest.parquet',), generation=('generated/pairs.parquet',),
            descriptors=('features/images.parquet', 'features/versions.json'),
            similarity=('similarity/pairs.parquet', 'similarity/calibration.json'),
            siamese=('siamese/data.safetensors', 'siamese/images.parquet'))   # a stage's artifacts: it has run
COMMANDS = dict(siamese=('artsim.siamese', ['encoder_weights=random']),   # module, -p overrides
                training=('artsim.training', ['seeds=1', 'ablation=[]', 'frozen_epochs=3', 'teacher_dense_cells=0']))


def rss_mb() -> float:
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith('VmRSS:'): return int(line.split()[1]) / 1024
    return float('nan')


def params(stage, run, n):
    "The demo preset's parameters for `stage`, at `n` paintings."
    from artsim.runs import stage_params
    p = stage_params(stage, dict(preset='demo', run_dir=run.path))
    per_genre = n // GENRES
    if stage == 'data': p.n_per_genre = per_genre
    if stage == 'generation': p.originals_per_genre = max(1, per_genre // 10)
    if stage == 'descriptors': p.semantic_size = 64
    return p


def items(run, stage, n) -> dict:
    "The work a stage did, in its own units."
    import pandas as pd
    if stage == 'data': return dict(paintings=len(pd.read_parquet(run.path / 'data/manifest.parquet')))
    if stage == 'generation': return dict(variants=len(pd.read_parquet(run.path / 'generated/pairs.parquet')))
    if stage == 'descriptors': return dict(images=len(pd.read_parquet(run.path / 'features/images.parquet')))
    if stage == 'similarity': return dict(pairs=len(pd.read_parquet(run.path / 'similarity/pairs.parquet')))
    return {}


def child(stage, run_dir, n):
    "Run one stage in this process; print what it cost as JSON."
    warnings.simplefilter('ignore')
    os.environ['IN_TEST'] = '1'  # no progress bars (the run directory is always given, so nothing else changes)
    from artsim.runs import Run, record_params
    run = Run(run_dir)
    out = {}
    # what every stage loads whatever its size (torch, the parquet reader, BLAS' buffers) is loaded before the baseline
    import torch, accelerate, pandas as pd
    np.ones((256, 256)) @ np.ones((256, 256))
    if (run.path / 'data/manifest.parquet').exists(): pd.read_parquet(run.path / 'data/manifest.parquet')
    if stage in ('data', 'generation', 'descriptors', 'similarity'):
        from artsim.stages import stage_module
        mod, p = stage_module(stage), params(stage, run, n)
        record_params(run, p)
        before, t0 = rss_mb(), time.perf_counter()
        mod.stage(run, p)
        out['seconds'] = time.perf_counter() - t0
        out['items'] = items(run, stage, n)
    elif stage == 'index':
        from artsim.index import build_index
        before, t0 = rss_mb(), time.perf_counter()
        r = build_index(run.path / 'data/images', run.path / 'index', calibration=run.path, n_jobs=-1)
        out['seconds'] = time.perf_counter() - t0
        out['items'] = dict(originals=r['indexed'])
    elif stage == 'search':
        import pandas as pd
        from artsim.index import load_index, search_index
        q = run.resolve(pd.read_parquet(run.path / 'generated/pairs.parquet').generated_path.iloc[0])
        before, t0 = rss_mb(), time.perf_counter()
        ix = load_index(run.path / 'index')
        t1 = time.perf_counter()
        found = search_index(ix, q, k=5)
        out['seconds'] = time.perf_counter() - t0
        out['load_seconds'], out['search_seconds'] = t1 - t0, time.perf_counter() - t1
        out['items'] = dict(originals=len(ix))
        assert len(found) == 5
    else:
        from artsim import evaluation as E
        bound = 200 if stage == 'scoring_bounded' else None
        before, t0 = rss_mb(), time.perf_counter()
        es = E.evaluation_set(run, bound, seed=42)
        Q, G = [run.resolve(x) for x in es.queries.path], [run.resolve(x) for x in es.gallery.path]
        t = {}
        t0s = time.perf_counter(); E.ssim_matrix(Q, G, 128); t['ssim'] = time.perf_counter() - t0s
        t0s = time.perf_counter(); hq, hg = (np.stack([E.perceptual_hash(x, 8) for x in X]) for X in (Q, G)); E.hash_similarity(hq, hg)
        t['hash'] = time.perf_counter() - t0s
        t0s = time.perf_counter(); scores, _ = E.descriptor_scores(run, es); E.check_descriptor_scores(es, scores); t['descriptors'] = time.perf_counter() - t0s
        out['seconds'] = time.perf_counter() - t0
        out['parts'] = t
        out['items'] = dict(queries=len(Q), gallery=len(G), cells=len(Q) * len(G), test_pairs=len(es.pairs))
    out['rss_before_mb'] = before
    out['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out['peak_worker_rss_mb'] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print('RESULT ' + json.dumps(out), flush=True)


def run_child(stage, run_dir, n):
    load = os.getloadavg()
    p = subprocess.run([sys.executable, __file__, '--child', stage, '--run', str(run_dir), '--n', str(n)], capture_output=True, text=True)
    line = next((l for l in p.stdout.splitlines() if l.startswith('RESULT ')), None)
    if p.returncode or line is None: raise SystemExit(f'{stage} at {n} paintings failed:\n{p.stderr[-3000:]}')
    return json.loads(line[7:]) | dict(load_before=load, load_after=os.getloadavg())


def done(run_dir, stage) -> bool:
    "Whether the run directory holds `stage`'s artifacts."
    return all((Path(run_dir) / f).exists() for f in DONE[stage])


def command(stage, run_dir) -> list:
    "The command line of chapter 05 or 06 on `run_dir`, as a user types it."
    mod, ps = COMMANDS[stage]
    over = [x for q in ps for x in ('-p', q)]
    return [sys.executable, '-m', mod, '--run-dir', str(run_dir), '--preset', 'demo', *over]


def proc_memory(pid) -> dict:
    "The memory lines of /proc/<pid>/status, in bytes ({} once the process is gone)."
    try: text = Path(f'/proc/{pid}/status').read_text()
    except OSError: return {}
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(':')
        if k in ('VmHWM', 'VmRSS', 'RssAnon', 'RssFile'): out[k] = int(v.split()[0]) * 1024
    return out


def descendants(pid) -> list:
    "The processes `pid` started, and those they started (from /proc/<pid>/task/*/children)."
    out, todo = [], [pid]
    while todo:
        for f in glob.glob(f'/proc/{todo.pop()}/task/*/children'):
            try: kids = [int(x) for x in Path(f).read_text().split()]
            except OSError: continue
            out += kids; todo += kids
    return out


def pinned(pid) -> bool|None:
    "Whether the process runs under artsim's CPU pin (its environment has ARTSIM_PORTABLE); None once it is gone."
    try: return b'ARTSIM_PORTABLE=' in Path(f'/proc/{pid}/environ').read_bytes()
    except OSError: return None


def watched(cmd, env=None, every=0.02) -> dict:
    "Run `cmd`, its /proc status and its children's polled every `every` s: wall time, the peaks, exit code, output."
    env = dict(os.environ if env is None else env, TQDM_DISABLE='1')
    with tempfile.TemporaryFile('w+') as out, tempfile.TemporaryFile('w+') as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, text=True)
        pid, peak, tree_anon, kids, pin = proc.pid, dict(VmHWM=0, VmRSS=0, RssAnon=0, RssFile=0), 0, {}, []
        while True:
            ended, status, usage = os.wait4(pid, os.WNOHANG)
            if ended: break
            m = proc_memory(pid)
            for k in peak: peak[k] = max(peak[k], m.get(k, 0))
            anon = m.get('RssAnon', 0)
            for c in descendants(pid):
                cm = proc_memory(c)
                if c not in kids:
                    try: line = Path(f'/proc/{c}/cmdline').read_bytes().replace(b'\0', b' ').decode()[:100]
                    except OSError: line = '?'
                    kids[c] = dict(cmdline=line, anon_peak=0)
                kids[c]['anon_peak'] = max(kids[c]['anon_peak'], cm.get('RssAnon', 0))
                anon += cm.get('RssAnon', 0)
            tree_anon = max(tree_anon, anon)
            if (pn := pinned(pid)) is not None and pn not in pin[-1:]: pin.append(pn)
            time.sleep(every)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)   # reaped by wait4: Popen must not wait again
        out.seek(0); err.seek(0)
        return dict(seconds=seconds, cpu_seconds=usage.ru_utime + usage.ru_stime,   # wait4: the process' own CPU time
                    returncode=proc.returncode, stdout=out.read()[-2000:], stderr=err.read()[-4000:],
                    pid=pid, vmhwm=peak['VmHWM'], anon_peak=peak['RssAnon'], file_peak=peak['RssFile'],
                    rss_peak=peak['VmRSS'], ru_maxrss=usage.ru_maxrss * 1024, tree_anon_peak=tree_anon,
                    children={str(c): k for c, k in kids.items()},
                    # [False, True]: started unpinned, then the same pid carried on pinned (os.execve in place)
                    pin=pin, restarted_in_place=pin == [False, True])


def startup(stage, root) -> dict:
    "The command's fixed cost: on an empty run directory it imports everything, restarts pinned and stops (exit 1)."
    empty = Path(root) / f'empty-{stage}'
    empty.mkdir(parents=True, exist_ok=True)
    r = watched(command(stage, empty))
    if r['returncode'] != 1: raise SystemExit(f'{stage} on an empty run did not stop as expected:\n{r["stderr"]}')
    return r


def disk_of(folder) -> dict:
    "The bytes of the files under `folder`: their sizes and the blocks allocated to them."
    files = [f for f in Path(folder).rglob('*') if f.is_file()]
    return dict(bytes=sum(f.stat().st_size for f in files), allocated=sum(f.stat().st_blocks * 512 for f in files),
                files=sorted(f.name for f in files))


def command_stage(stage, run_dir, n) -> dict:
    "Chapter 05 or 06 on the run, as a user starts it, in a fresh process; what it cost."
    import pandas as pd
    run = Path(run_dir)
    if stage == 'siamese': shutil.rmtree(run / 'siamese', ignore_errors=True)   # the whole encoding, every time
    load = os.getloadavg()
    r = watched(command(stage, run))
    if r['returncode']: raise SystemExit(f'{stage} at {n} paintings failed:\n{r["stderr"][-3000:]}')
    r |= dict(load_before=load, load_after=os.getloadavg())
    if stage == 'siamese':
        im = pd.read_parquet(run / 'siamese/images.parquet')
        copies = yaml_config(run)['stages']['siamese']['augmented_copies']
        train = int(((im.split == 'train') & (im.role == 'painting')).sum())
        r['items'] = dict(images=len(im), augmented=int(copies) * train)
        r['disk'] = disk_of(run / 'siamese')
    else:
        m = json.loads((run / 'metrics/training.json').read_text())
        r['items'] = dict(teacher_cells=m['teacher_cells'], seconds_per_seed=m['seconds_per_seed'])
        r['stage_seconds'] = m['seconds']   # training.json's own clock: from reading 05's data to the model saved
    return r


def yaml_config(run_dir) -> dict:
    import yaml
    return yaml.safe_load((Path(run_dir) / 'config.yaml').read_text())


def plan_overrides(n) -> dict:
    "The overrides under which the demo preset's plan is the run measured at `n` paintings."
    import yaml
    per_genre = n // GENRES
    over = dict(n_per_genre=per_genre, originals_per_genre=max(1, per_genre // 10), semantic_size=64)   # `params`
    for _, ps in COMMANDS.values(): over |= {k: yaml.safe_load(v) for k, v in (q.split('=', 1) for q in ps)}
    return over


def planned(n, run_dir) -> dict:
    "The plan of the run at `n` paintings: 05's and 06's memory, siamese/'s disk, 04-06's time; its counts."
    from artsim.plan import plan_run
    from artsim.reproduce import resolve_config
    from artsim.runs import STAGES as CHAPTERS
    from artsim.estimates import estimate_disk, estimate_memory, estimate_time
    plan = plan_run(resolve_config('demo', run_dir, list(CHAPTERS), plan_overrides(n)), run_dir)
    mem, tm = estimate_memory(plan), estimate_time(plan, 'cpu')['chapters']
    pick = lambda ch: next((k, v) for k, v in mem.items() if k.startswith(ch))
    c5, c6 = plan.counts['05_siamese'], plan.counts['06_training']
    return dict(overrides=plan_overrides(n), siamese=dict(zip(('step', 'bytes'), pick('05_siamese'))),
                training=dict(zip(('step', 'bytes'), pick('06_training'))),
                siamese_disk=estimate_disk(plan)['Siamese features (siamese/)'][0],
                seconds={ch: tm[ch][0] for ch in ('04_finetune', '05_siamese', '06_training')},
                encoded_images=c5['encoded_images'], augmented=c5['augmented'], teacher_dense=c6['teacher_dense'],
                splits={s: {k: v for k, v in x.items()} for s, x in c5['splits'].items()})


def slope(x, y) -> float:
    x, y = np.log(np.asarray(x, float)), np.log(np.maximum(np.asarray(y, float), 1e-9))
    return float(np.polyfit(x, y, 1)[0]) if len(x) > 1 else float('nan')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--sizes', type=int, nargs='+', default=[1000, 4000, 16000], help='paintings per run (a multiple of 8)')
    ap.add_argument('--all-test-up-to', type=int, default=4000, help='run 07 over every test painting up to this many paintings')
    ap.add_argument('--keep', help='keep the runs in this folder')
    ap.add_argument('--stages', nargs='+', choices=STAGES + NEW_STAGES, default=list(STAGES),
                    help='the stages to measure (default: 00-03, the index, a search, 07); siamese, training: 05, 06')
    ap.add_argument('--child'); ap.add_argument('--run'); ap.add_argument('--n', type=int)
    a = ap.parse_args()
    if a.child: return child(a.child, a.run, a.n)
    old, new = [s for s in STAGES if s in a.stages], [s for s in NEW_STAGES if s in a.stages]
    order = STAGES[:len(PREREQUISITES)] + NEW_STAGES + STAGES[len(PREREQUISITES):]   # 05/06 read 00-03's artifacts
    last = max(order.index(s) for s in old + new)
    needed = PREREQUISITES + (('siamese',) if 'training' in new else ())   # run first where a run lacks them
    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix='artsim-scale-'))
    res = dict(sizes=a.sizes, cpu=os.cpu_count(), stages={s: {} for s in old})
    sres = dict(sizes=a.sizes, cpu=os.cpu_count(), commands={s: ' '.join(command(s, 'D')[1:]) for s in new},
                encoder='random weights (04 skipped): the same shapes, memory and time per image as the genre model',
                startup={}, stages={s: {} for s in new}, prerequisites={}, plan={})
    try:
        for s in new:   # each command's fixed cost, once
            r = sres['startup'][s] = startup(s, root)
            print(f"{'start':>6}            {LABELS[s]:<40} {r['seconds']:8.1f} s  "
                  f"anon {r['anon_peak'] / 2**20:6.0f} MiB  VmHWM {r['vmhwm'] / 2**20:6.0f} MiB  "
                  f"restarted pinned in place: {r['restarted_in_place']}", flush=True)
        for n in a.sizes:
            run_dir = root / f'n{n}'
            for s in order:
                if s == 'scoring_all_test' and n > a.all_test_up_to: continue
                if s in old: r = res['stages'][s][n] = run_child(s, run_dir, n)
                elif s in new: r = sres['stages'][s][n] = command_stage(s, run_dir, n)
                elif s in needed and order.index(s) < last and not done(run_dir, s):
                    # a later stage reads it: run it as the benchmark does, measured, but it is not the subject
                    r = sres['prerequisites'].setdefault(str(n), {})[s] = (
                        run_child(s, run_dir, n) if s in STAGES else command_stage(s, run_dir, n))
                else: continue
                if s in NEW_STAGES:
                    print(f"{n:>6} paintings  {LABELS[s]:<40} {r['seconds']:8.1f} s  "
                          f"anon {r['anon_peak'] / 2**20:6.0f} MiB  VmHWM {r['vmhwm'] / 2**20:6.0f} MiB  "
                          f"file-backed {r['file_peak'] / 2**20:5.0f} MiB  "
                          f"load {r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f}  {r['items']}", flush=True)
                    continue
                print(f"{n:>6} paintings  {LABELS[s]:<40} {r['seconds']:8.1f} s  peak {r['peak_rss_mb']:7.0f} MB "
                      f"(+{r['peak_rss_mb'] - r['rss_before_mb']:.0f} MB; workers {r['peak_worker_rss_mb']:.0f} MB)  "
                      f"load {r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f}  {r.get('items', {})}", flush=True)
            if new: sres['plan'][str(n)] = planned(n, run_dir)
            if not a.keep: shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        if not a.keep: shutil.rmtree(root, ignore_errors=True)
    if old: summarise_stages(res, keep_others=old != list(STAGES))
    if new: summarise_commands(sres)


def summarise_stages(res, keep_others:bool=False):
    "Exponents and projections of the in-process stages; scale.json written (merged with its other stages' results)."
    full = full_items()
    for s, by in res['stages'].items():
        ns = sorted(by)
        if not ns: continue
        by_n = [by[n] for n in ns]
        t, grow = [r['seconds'] for r in by_n], [max(r['peak_rss_mb'] - r['rss_before_mb'], 1.) for r in by_n]
        unit, have = next(iter(by_n[-1]['items'].items())) if s in ('data', 'generation', 'descriptors', 'similarity', 'index', 'search') else ('cells', by_n[-1]['items']['cells'])
        e_t, e_m = slope(ns, t), slope(ns, grow)
        items = [next(iter(r['items'].values())) if unit != 'cells' else r['items']['cells'] for r in by_n]
        e_ti, e_mi = slope(items, t), slope(items, grow)
        proj = None
        if s in full and len(ns) > 1:
            k = full[s] / have
            proj = dict(items=full[s], unit=unit, seconds=t[-1] * k ** e_ti, peak_rss_mb=by_n[-1]['rss_before_mb'] + grow[-1] * k ** max(e_mi, 0))
        res['stages'][s] = dict(by_size={str(n): by[n] for n in ns}, time_exponent=e_t, memory_exponent=e_m, unit=unit,
                                time_exponent_items=e_ti, memory_exponent_items=e_mi, full=proj)
    res['full_items'] = full
    out = Path(__file__).parent / 'results' / 'scale.json'
    if keep_others and out.exists():   # some stages only: the others' results stay as they were
        was = json.loads(out.read_text())
        sizes = sorted({*was.get('sizes', []), *res['sizes']})
        res = was | dict(res, sizes=sizes, stages=was['stages'] | res['stages'])
    write_results(out, res, print_table)


def write_results(out:Path, res:dict, show):
    "Write `res` to `out` (benchmarks/results/), print it with `show`, and say where it went."
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=str))
    show(res)
    print('wrote', out)


def summarise_commands(sres):
    "05's and 06's exponents, the plan beside the measured peaks; scale_siamese.json written."
    from artsim.estimates import load_rates
    MB = 2 ** 20
    # the plan's base is the resident size of a process that loaded PyTorch, its libraries' file-backed pages with it
    base = sres['plan_base_bytes'] = load_rates()['devices']['cpu']['memory']['torch_process_bytes']
    for s, by in sres['stages'].items():
        ns = sorted(by)
        if not ns: continue
        by_n, start = [by[n] for n in ns], sres['startup'][s]
        t, cpu = [r['seconds'] for r in by_n], [r['cpu_seconds'] for r in by_n]
        ex = dict(time=slope(ns, t), time_less_start=slope(ns, [max(x - start['seconds'], 1e-3) for x in t]),
                  cpu_less_start=slope(ns, [max(x - start['cpu_seconds'], 1e-3) for x in cpu]),
                  anon_peak=slope(ns, [r['anon_peak'] for r in by_n]), vmhwm=slope(ns, [r['vmhwm'] for r in by_n]),
                  anon_growth=slope(ns, [max(r['anon_peak'] - start['anon_peak'], MB) for r in by_n]))
        if s == 'siamese': ex['disk'] = slope(ns, [r['disk']['bytes'] for r in by_n])
        if s == 'training': ex['stage_seconds'] = slope(ns, [r['stage_seconds'] for r in by_n])
        for n, r in zip(ns, by_n):
            plan = sres['plan'][str(n)][s]['bytes']
            r['plan_bytes'] = plan
            r['anon_over_plan'], r['vmhwm_over_plan'] = r['anon_peak'] / plan, r['vmhwm'] / plan
            r['within_25pct'] = abs(r['anon_over_plan'] - 1) <= 0.25
            # the same plan on an anonymous base: the start-alone process' anonymous peak in place of that resident size
            r['plan_anon_base_bytes'] = plan - base + start['anon_peak']
            r['anon_over_plan_anon_base'] = r['anon_peak'] / r['plan_anon_base_bytes']
            r['within_25pct_anon_base'] = abs(r['anon_over_plan_anon_base'] - 1) <= 0.25
        sres['stages'][s] = dict(by_size={str(n): by[n] for n in ns}, exponents=ex)
    write_results(Path(__file__).parent / 'results' / 'scale_siamese.json', sres, print_commands_table)


def print_commands_table(sres):
    "05's and 06's table (markdown): per size, time, peaks, disk, the plan; then the growth exponents."
    MB = 2 ** 20
    print('\n| stage | paintings | images (05) / teacher values (06) | time s (less start) | CPU s | anon peak MiB | '
          'VmHWM MiB | file-backed peak MiB | siamese/ MiB (plan) | plan MiB | anon / plan | VmHWM / plan | '
          'anon / plan on an anonymous base |')
    print('|---|' + '---|' * 12)
    for s, r in sres['stages'].items():
        if 'by_size' not in r: continue
        start = sres['startup'][s]
        print(f"| {LABELS[s]}, start alone | — | — | {start['seconds']:.1f} | {start['cpu_seconds']:.1f} | "
              f"{start['anon_peak'] / MB:.0f} | "
              f"{start['vmhwm'] / MB:.0f} | {start['file_peak'] / MB:.0f} | — | — | — | — | — |")
        for n, x in r['by_size'].items():
            items = x['items']
            what = (f"{items['images']:,} + {items['augmented']:,} copies" if s == 'siamese'
                    else f"{items['teacher_cells']:,}")
            disk = (f"{x['disk']['bytes'] / MB:.1f} ({sres['plan'][n]['siamese_disk'] / MB:.1f})" if s == 'siamese'
                    else '—')
            print(f"| {LABELS[s]} | {int(n):,} | {what} | {x['seconds']:.1f} ({x['seconds'] - start['seconds']:.1f}) | "
                  f"{x['cpu_seconds']:.1f} | "
                  f"{x['anon_peak'] / MB:.0f} | {x['vmhwm'] / MB:.0f} | {x['file_peak'] / MB:.0f} | {disk} | "
                  f"{x['plan_bytes'] / MB:.0f} | {x['anon_over_plan']:.2f} | {x['vmhwm_over_plan']:.2f} | "
                  f"{x['anon_over_plan_anon_base']:.2f} |")
    print('\n| stage | exponent: time | time less start | CPU time less start | anon peak | anon above start | VmHWM '
          '| disk |')
    print('|---|---|---|---|---|---|---|---|')
    for s, r in sres['stages'].items():
        if 'exponents' not in r: continue
        e = r['exponents']
        disk = f"{e['disk']:.2f}" if 'disk' in e else '—'
        print(f"| {LABELS[s]} | {e['time']:.2f} | {e['time_less_start']:.2f} | {e['cpu_less_start']:.2f} | "
              f"{e['anon_peak']:.2f} | {e['anon_growth']:.2f} | {e['vmhwm']:.2f} | {disk} |")
    for n, p in sres['plan'].items():
        sec = ', '.join(f"{k} {v:.0f} s" for k, v in p['seconds'].items() if v is not None)
        print(f"plan at {int(n):,} paintings: {sec} (04 skipped here); teacher per batch: {not p['teacher_dense']}")
    for s, st in sres['startup'].items():
        print(f"{s}: restarted pinned in place (same pid): {st['restarted_in_place']}; children seen: "
              f"{[c['cmdline'][:60] for c in st['children'].values()] or 'none'}")


def full_items() -> dict:
    "The full preset's work in each stage's units, from its plan (WikiArt's known size): what the projection scales to."
    from artsim.plan import plan_run
    from artsim.reproduce import resolve_config
    from artsim.runs import STAGES
    c = plan_run(resolve_config('full', Path(tempfile.gettempdir()) / 'artsim-plan', list(STAGES), dict(source_path='/not/yet'))).counts
    return dict(descriptors=c['02_descriptors']['images'], similarity=c['03_similarity']['pairs'], index=c['00_data']['paintings'],
                search=c['00_data']['paintings'], scoring_bounded=c['07_evaluation']['cells'])


def print_table(res):
    "The scale table (markdown), as the README shows it."
    sizes = res['sizes']
    print('\n| stage | ' + ' | '.join(f'{n:,} paintings' for n in sizes) + ' | time exponent | memory exponent | the full preset |')
    print('|---|' + '---|' * (len(sizes) + 3))
    for s, r in res['stages'].items():
        if not r or 'by_size' not in r: continue
        cells = []
        for n in sizes:
            x = r['by_size'].get(str(n))
            cells.append(f"{x['seconds']:.1f} s, {x['peak_rss_mb'] / 1024:.2f} GB" if x else '—')
        f = r.get('full')
        full = (f"{f['items']:,} {f['unit']}: {f['seconds'] / 60:.0f} min, {f['peak_rss_mb'] / 1024:.1f} GB" if f else '—')
        print(f"| {LABELS[s]} | " + ' | '.join(cells) + f" | {r['time_exponent']:.2f} | {r['memory_exponent']:.2f} | {full} |")


if __name__ == '__main__': main()
