"""Cost as the work grows: the CPU stages at three sizes, time and peak memory per stage, and each one's growth exponent.

    python benchmarks/bench_scale.py [--sizes 1000 4000 16000] [--all-test-up-to 4000] [--keep DIR]

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
"""
import argparse, json, os, resource, shutil, subprocess, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np

GENRES = 8
STAGES = ('data', 'generation', 'descriptors', 'similarity', 'index', 'search', 'scoring_bounded', 'scoring_all_test')
LABELS = dict(data='00 data', generation='01 generation (stand-in)', descriptors='02 descriptors', similarity='03 similarity',
              index='index (build_index)', search='one search (load_index + search_index)',
              scoring_bounded='07 scoring, max_paintings=200', scoring_all_test='07 scoring, every test painting')


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


def slope(x, y) -> float:
    x, y = np.log(np.asarray(x, float)), np.log(np.maximum(np.asarray(y, float), 1e-9))
    return float(np.polyfit(x, y, 1)[0]) if len(x) > 1 else float('nan')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--sizes', type=int, nargs='+', default=[1000, 4000, 16000], help='paintings per run (a multiple of 8)')
    ap.add_argument('--all-test-up-to', type=int, default=4000, help='run 07 over every test painting up to this many paintings')
    ap.add_argument('--keep', help='keep the runs in this folder')
    ap.add_argument('--child'); ap.add_argument('--run'); ap.add_argument('--n', type=int)
    a = ap.parse_args()
    if a.child: return child(a.child, a.run, a.n)
    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix='artsim-scale-'))
    res = dict(sizes=a.sizes, cpu=os.cpu_count(), stages={s: {} for s in STAGES})
    try:
        for n in a.sizes:
            run_dir = root / f'n{n}'
            for s in STAGES:
                if s == 'scoring_all_test' and n > a.all_test_up_to: continue
                r = run_child(s, run_dir, n)
                res['stages'][s][n] = r
                print(f"{n:>6} paintings  {LABELS[s]:<40} {r['seconds']:8.1f} s  peak {r['peak_rss_mb']:7.0f} MB "
                      f"(+{r['peak_rss_mb'] - r['rss_before_mb']:.0f} MB; workers {r['peak_worker_rss_mb']:.0f} MB)  "
                      f"load {r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f}  {r.get('items', {})}", flush=True)
            if not a.keep: shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        if not a.keep: shutil.rmtree(root, ignore_errors=True)
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
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=str))
    print_table(res)
    print('wrote', out)


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
