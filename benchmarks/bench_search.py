"""Search benchmark: which painting was this variant generated from, over all of a run's paintings.

    python benchmarks/bench_search.py [--run runs/demo] [--loop-queries 8] [--index DIR]

Indexes the run's paintings (data/images) as `artsim_index` does (`build_index`, with the run's Siamese model when it has
models/siamese.safetensors), describes and embeds every generated variant of generated/pairs.parquet once, and reports
1. provenance: per strength, the share of variants whose own original ranks first among all the paintings, and its
   mean rank, by the combined descriptor value (artsim_search's default ranking) and by the Siamese score;
2. the speed of one search once the index is made: `compare_described` of one query against every original at once,
   and the Siamese score of the query's embedding against all the originals' as one product (`embedding_scores`), each
   against the loop over pairs a user would otherwise write (one comparison per original, on the same cached
   vectors), timed side by side on `--loop-queries` queries; the loop's values are checked against the vectorised ones.
   Describing the query itself (one ResNet50 pass) is the same in both and is timed separately.

Results are printed and written to benchmarks/results/search.json.
"""
import argparse, json, sys, time, warnings
from pathlib import Path
import numpy as np, pandas as pd
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated', category=FutureWarning)
warnings.filterwarnings('ignore', message='random-init ResNet50')
from artsim.index import build_index, embedding_scores, load_index
from artsim.runs import Run, resolve_run_dir, temporary_dir
from artsim.similarity import compare_described, describe_images


BARS = sys.stderr.isatty()   # progress bars on a terminal only, not in a log

def timed(f, *a, **kw):
    t = time.perf_counter(); out = f(*a, **kw); return time.perf_counter() - t, out


def ranks(S, own):
    "1 + how many originals score strictly higher than the own one, per query row of S."
    return 1 + (S > S[np.arange(len(S)), own][:, None]).sum(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--run', default='runs/demo', help="a run with data/images, generated/pairs.parquet (default: runs/demo)")
    ap.add_argument('--loop-queries', type=int, default=8, help="queries the pair loop is timed on")
    ap.add_argument('--index', help="where the index goes (default: a temporary folder); an existing one is resumed")
    args = ap.parse_args()
    run = Run(resolve_run_dir(args.run))
    model = None
    if run.resolve('models/siamese.safetensors').exists():
        from artsim.network import SiameseSimilarity
        model = SiameseSimilarity.load(run.resolve('models/siamese.safetensors'))
    out = Path(args.index) if args.index else temporary_dir('artsim-bench-search-') / 'index'
    t_index, r = timed(build_index, run.resolve('data/images'), out, model, progress=BARS)
    ix = load_index(out, model)
    cal = ix.calibration
    m = run.read_parquet('data/manifest.parquet').set_index('id')
    pairs = run.read_parquet('generated/pairs.parquet')
    pos = {p: i for i, p in enumerate(ix.paths)}
    own = np.array([pos[Path(m.path[o]).relative_to('data/images').as_posix()] for o in pairs.original_id])
    variants = [run.resolve(g) for g in pairs.generated_path]
    t_describe, Q = timed(describe_images, variants, cal, progress=BARS)
    S = compare_described(Q, ix.described, calibration=cal)
    rows = pairs[['strength']].assign(combined=ranks(S['combined'], own))
    if model is not None:
        t_embed, E = timed(model.embed, variants, BARS)
        rows['siamese'] = ranks(np.stack([embedding_scores(model, e, ix.embeddings) for e in E]), own)
    by = [c for c in ('combined', 'siamese') if c in rows]
    table = rows.groupby('strength')[by].agg([lambda x: float((x == 1).mean()), 'mean'])
    table.columns = [f'{c} {"top-1" if s == "<lambda_0>" else "mean rank"}' for c, s in table.columns]
    overall = {c: dict(top1=float((rows[c] == 1).mean()), mean_rank=float(rows[c].mean())) for c in by}

    # one search, vectorised against the loop over pairs, on the same cached vectors
    n = len(ix)
    speed = dict(descriptors=dict(vectorised=0., loop=0.), siamese=dict(vectorised=0., loop=0.))
    k = min(args.loop_queries, len(Q))
    for q in range(k):
        Qq = Q[q]
        tv, v = timed(compare_described, Qq, ix.described, calibration=cal)
        tl, l = timed(lambda: np.array([compare_described(Qq, ix.described[j], calibration=cal)['combined'][0, 0] for j in range(n)]))
        np.testing.assert_allclose(v['combined'][0], l, atol=1e-9)
        speed['descriptors']['vectorised'] += tv / k; speed['descriptors']['loop'] += tl / k
        if model is not None:
            tv, v = timed(embedding_scores, model, E[q], ix.embeddings)
            tl, l = timed(lambda: np.array([model.pair_scores(E[q:q + 1], ix.embeddings[j:j + 1])[0] for j in range(n)]))
            np.testing.assert_allclose(v, l, atol=1e-5)
            speed['siamese']['vectorised'] += tv / k; speed['siamese']['loop'] += tl / k
    if model is None: del speed['siamese']
    t_query, _ = timed(describe_images, variants[:1], cal)

    print(f"\nrun {run.path}: {n} paintings indexed in {t_index:.1f} s ({r['described']} described now, {r['embedded']} embedded now), "
          f"{len(variants)} variants described in {t_describe:.1f} s" + (f", embedded in {t_embed:.1f} s" if model is not None else ''))
    print("\nprovenance: the own original ranked first among all paintings (share), and its mean rank")
    print(table.round(3).to_string())
    print('all strengths: ' + '; '.join(f"{c} top-1 {o['top1']:.3f}, mean rank {o['mean_rank']:.2f}" for c, o in overall.items()))
    print(f"\none search against {n} originals, mean over {k} queries (describing the query: {t_query * 1000:.0f} ms, the same either way)")
    for what, s in speed.items():
        print(f"  {what:<11} vectorised {s['vectorised'] * 1000:8.2f} ms   loop over pairs {s['loop'] * 1000:9.2f} ms   ratio {s['loop'] / s['vectorised']:6.1f}x")
    res = dict(run=str(run.path), paintings=n, variants=len(variants), index_seconds=round(t_index, 1),
               provenance=dict(by_strength=table.reset_index().to_dict('records'), overall=overall),
               search_ms={w: {k2: round(v2 * 1000, 3) for k2, v2 in s.items()} | dict(ratio=round(s['loop'] / s['vectorised'], 1)) for w, s in speed.items()},
               query_describe_ms=round(t_query * 1000, 1), loop_queries=k)
    f = Path(__file__).parent / 'results' / 'search.json'
    f.parent.mkdir(exist_ok=True)
    f.write_text(json.dumps(res, indent=2))
    print(f"\nwritten to {f}")


if __name__ == '__main__':
    main()
