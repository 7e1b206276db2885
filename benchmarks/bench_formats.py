"""Variant storage formats: what each does to the disk and to the descriptor similarities, on the demo.

    python benchmarks/bench_formats.py [--formats png webp webp_q90 jpeg_q95] [--n-per-genre 40]

Chapter 00 runs once (the demo preset); chapters 01-03 then run per `variant_format` into temporary runs that share
its paintings, so the only difference between the runs is how the variants are stored. For each format: the
variants' bytes (and bytes per pixel), the time of chapter 01, and how far each pair's similarity moves against the
PNG run: the calibrated `combined` value (each run calibrates on its own unrelated pairs, as a user's run would),
the raw mean, and each family, next to the gap between the strengths (the difference the similarities exist to
measure). A second table encodes photographs (the scikit-image samples, at their own size) in each format: bytes per
pixel of natural images, nearer to paintings than the demo's drawn ones. Results are printed and written to
benchmarks/results/formats.json.
"""
import argparse, json, os, shutil, tempfile, time, warnings
from pathlib import Path
import numpy as np, pandas as pd
from PIL import Image

from artsim.runs import Run, stage_params, record_params, save_image
from artsim import data as D, generation as G, descriptors as DS, similarity as S
from artsim.families import FAMILIES


def run_stage(module, run, name, **over):
    p = stage_params(name, dict(preset='demo', run_dir=run.path))
    p.update(over)
    record_params(run, p)
    t0 = time.perf_counter()
    module.stage(run, p)
    return time.perf_counter() - t0


def variant_bytes(run, pairs):
    files = [run.resolve(x) for x in pairs.generated_path]
    return sum(f.stat().st_size for f in files), int((pairs.width * pairs.height).sum())


def photo_bytes(formats):
    "Bytes per pixel of scikit-image's colour photographs, encoded as each format would store a variant."
    from skimage import data
    names = [n for n in ('astronaut', 'coffee', 'chelsea', 'rocket', 'retina', 'colorwheel', 'immunohistochemistry', 'hubble_deep_field')
             if hasattr(data, n)]
    out, pixels = {f: 0 for f in formats}, 0
    with tempfile.TemporaryDirectory() as tmp:
        for n in names:
            im = Image.fromarray(getattr(data, n)()).convert('RGB')
            pixels += im.width * im.height
            for f in formats:
                path = Path(tmp) / f'{n}{G.variant_suffix(f)}'
                save_image(im, path)
                out[f] += path.stat().st_size
    return names, {f: b / pixels for f, b in out.items()}, pixels


def compare(base, other):
    "How `other`'s scored pairs differ from `base`'s (same pair ids)."
    j = base.merge(other, on='pair_id', suffixes=('', '_x'))
    pos = j[j.kind == 'positive']
    d = lambda c, t=j: (t[f'{c}_x'] - t[c]).to_numpy()
    out = dict(pairs=len(j), combined_mean_abs=float(np.abs(d('combined')).mean()), combined_max_abs=float(np.abs(d('combined')).max()),
               combined_bias=float(d('combined').mean()), combined_positive_mean_abs=float(np.abs(d('combined', pos)).mean()),
               combined_raw_mean_abs=float(np.abs(d('combined_raw')).mean()),
               spearman_positive=float(pos.combined.rank().corr(pos.combined_x.rank())))
    out['families_mean_abs'] = {f: float(np.abs(d(f'{f}_calibrated')).mean()) for f in FAMILIES if f'{f}_calibrated' in j}
    return out


def strength_gaps(scores):
    "Mean combined value per strength over the positive pairs, and the smallest gap between neighbouring strengths."
    m = scores[scores.kind == 'positive'].groupby('strength').combined.mean()
    return {f'{k:g}': float(v) for k, v in m.items()}, float(np.diff(m.to_numpy()).__abs__().min()) if len(m) > 1 else float('nan')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--formats', nargs='+', default=list(G.VARIANT_FORMATS))
    ap.add_argument('--n-per-genre', type=int, default=None, help="paintings per genre (default: the demo preset's)")
    ap.add_argument('--keep', help='keep the runs in this folder')
    a = ap.parse_args()
    if 'png' not in a.formats: a.formats = ['png'] + a.formats
    warnings.simplefilter('ignore')   # the demo's random-init ResNet50 warns by design
    os.environ['IN_TEST'] = '1'       # no progress bars from the chapters' stages (the run directories are given, so nothing else changes)
    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix='artsim-formats-'))
    res = dict(preset='demo', formats={}, load=os.getloadavg())
    try:
        base = Run(root / 'data-only')
        over = {} if a.n_per_genre is None else dict(n_per_genre=a.n_per_genre)
        res['data_seconds'] = run_stage(D, base, 'data', **over)
        scores = {}
        for fmt in a.formats:
            run = Run(root / fmt)
            shutil.copytree(base.path / 'data', run.path / 'data')
            shutil.copy(base.path / 'config.yaml', run.path / 'config.yaml')
            t = dict(generation=run_stage(G, run, 'generation', variant_format=fmt))
            t['descriptors'] = run_stage(DS, run, 'descriptors')
            t['similarity'] = run_stage(S, run, 'similarity')
            pairs = G.read_pairs(run)
            nbytes, pixels = variant_bytes(run, pairs)
            scores[fmt] = run.read_parquet('similarity/pairs.parquet')
            res['formats'][fmt] = dict(variants=len(pairs), bytes=nbytes, bytes_per_pixel=nbytes / pixels, seconds=t)
        png = res['formats']['png']
        res['strength_means'], res['smallest_strength_gap'] = strength_gaps(scores['png'])
        for fmt in a.formats:
            r = res['formats'][fmt]
            r['bytes_vs_png'] = r['bytes'] / png['bytes']
            if fmt != 'png': r['against_png'] = compare(scores['png'], scores[fmt])
        names, bpp, pixels = photo_bytes(a.formats)
        res['photographs'] = dict(images=names, pixels=pixels, bytes_per_pixel=bpp)
        res['load_after'] = os.getloadavg()
    finally:
        if not a.keep: shutil.rmtree(root, ignore_errors=True)

    gap = res['smallest_strength_gap']
    print(f"demo preset: {png['variants']} variants per format; combined value by strength (PNG run): "
          + ', '.join(f'{k} {v:.3f}' for k, v in res['strength_means'].items()) + f"; smallest gap between strengths {gap:.3f}")
    print('\n| format | variant bytes | vs PNG | bytes/pixel (demo) | bytes/pixel (photographs) | mean abs change of `combined` | max | '
          'as a share of the strength gap | Spearman with PNG (positive pairs) | largest family change |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for fmt, r in res['formats'].items():
        c = r.get('against_png')
        fam = max(c['families_mean_abs'].items(), key=lambda kv: kv[1]) if c else None
        print(f"| {fmt} | {r['bytes'] / 2**20:.1f} MiB | {r['bytes_vs_png']:.2f} | {r['bytes_per_pixel']:.2f} | "
              f"{res['photographs']['bytes_per_pixel'][fmt]:.2f} | "
              + (f"{c['combined_mean_abs']:.4f} | {c['combined_max_abs']:.4f} | {c['combined_mean_abs'] / gap:.1%} | "
                 f"{c['spearman_positive']:.4f} | {fam[0]} {fam[1]:.4f} |" if c else '— | — | — | — | — |'))
    print(f"\nload average (1, 5, 15 min) before {tuple(round(x, 2) for x in res['load'])}, after {tuple(round(x, 2) for x in res['load_after'])}")
    out = Path(__file__).parent / 'results' / 'formats.json'
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print('wrote', out)


if __name__ == '__main__': main()
