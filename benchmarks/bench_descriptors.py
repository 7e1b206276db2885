"""Descriptor extraction benchmark: images/s per family and in total, 1 worker vs all cores, warm-cache rerun, peak memory.

    python benchmarks/bench_descriptors.py [--n 160] [--size 256] [--semantic-size 224]

Images are the demo's procedural paintings drawn at `--size` px and saved as PNG, so decoding is part of the cost, as in
a run. The semantic family runs random-init ResNet50 on the CPU (no weights are needed to time it). Results are printed
and written to benchmarks/results/descriptors.json.
"""
import argparse, json, os, resource, tempfile, time, warnings
from pathlib import Path
import numpy as np
from joblib import cpu_count
from artsim.painter import DEMO_GENRES, demo_painting
from artsim.families import FAMILIES, HANDMADE, working_image
from artsim.descriptors import FeatureStore, SemanticEncoder, extract_features


def peak_mb(who=resource.RUSAGE_SELF): return resource.getrusage(who).ru_maxrss / 1024


def make_images(root, n, size):
    genres = list(DEMO_GENRES)
    files = []
    for i in range(n):
        f = root / f'{i:05d}.png'
        demo_painting(genres[i % len(genres)], i, size).save(f)
        files.append(f)
    return files


def per_family(files, size, encoder):
    "Single-process images/s of each family on preloaded working images (decoding timed apart)."
    t = time.perf_counter(); xs = [working_image(f, size) for f in files]; load = time.perf_counter() - t
    out = {'load+resize': len(files) / load}
    for fam in HANDMADE:
        fn = FAMILIES[fam].fn; fn(xs[0])
        t = time.perf_counter()
        for x in xs: fn(x)
        out[fam] = len(files) / (time.perf_counter() - t)
    sx = [working_image(f, encoder.size) for f in files]
    encoder.encode(sx[:encoder.batch_size])  # warm-up: the first batch builds the kernels
    t = time.perf_counter(); encoder.encode(sx); out['semantic'] = len(files) / (time.perf_counter() - t)
    return out


def timed_extract(files, store, families, size, encoder, n_jobs, known=None):
    t = time.perf_counter()
    index, stats = extract_features(files, store, families, size, encoder, n_jobs=n_jobs, known=known, progress=False)
    return time.perf_counter() - t, index, stats


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--n', type=int, default=160, help='images')
    ap.add_argument('--size', type=int, default=256, help='image and working-image side, px')
    ap.add_argument('--semantic-size', type=int, default=224, help='ResNet50 input side, px')
    ap.add_argument('--batch-size', type=int, default=32)
    a = ap.parse_args()
    warnings.simplefilter('ignore')  # random-init ResNet50 warns by design
    import torch
    cores = cpu_count()
    res = dict(n=a.n, size=a.size, semantic_size=a.semantic_size, cores=cores, torch_threads=torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / 'img').mkdir()
        files = make_images(tmp / 'img', a.n, a.size)
        enc = SemanticEncoder('random', a.semantic_size, 'cpu', seed=0, batch_size=a.batch_size)
        res['per_family_images_per_s_1_process'] = per_family(files[:min(64, a.n)], a.size, enc)
        runs = {}
        for label, n_jobs in (('1 worker', 1), (f'{cores} workers', -1)):
            hand_s, _, _ = timed_extract(files, FeatureStore(tmp / f'h{n_jobs}'), HANDMADE, a.size, None, n_jobs)
            store = FeatureStore(tmp / f'a{n_jobs}')
            cold, index, _ = timed_extract(files, store, list(FAMILIES), a.size, enc, n_jobs)
            known = {(f, b, m): h for f, b, m, h in zip(index.file, index.bytes, index.mtime_ns, index.hash)}
            warm, _, st = timed_extract(files, store, list(FAMILIES), a.size, enc, n_jobs, known=known)
            warm_rehash, _, _ = timed_extract(files, store, list(FAMILIES), a.size, enc, n_jobs)
            assert sum(st['extracted'].values()) == 0
            runs[label] = dict(handmade_images_per_s=a.n / hand_s, all_families_images_per_s=a.n / cold, cold_s=cold,
                               warm_s=warm, warm_over_cold=warm / cold, warm_rehash_s=warm_rehash, warm_rehash_over_cold=warm_rehash / cold)
        res['extraction'] = runs
        one, many = runs['1 worker'], runs[f'{cores} workers']
        res['scaling_handmade'] = many['handmade_images_per_s'] / one['handmade_images_per_s']
        res['scaling_all_families'] = many['all_families_images_per_s'] / one['all_families_images_per_s']
    res['peak_rss_mb'] = dict(main=peak_mb(), workers=peak_mb(resource.RUSAGE_CHILDREN))
    print(f"descriptor benchmark: {a.n} images at {a.size} px (ResNet50 at {a.semantic_size} px), {cores} cores, torch threads {res['torch_threads']}")
    print('images/s per family, one process: ' + ', '.join(f'{k} {v:.1f}' for k, v in res['per_family_images_per_s_1_process'].items()))
    for label, r in runs.items():
        print(f"{label:>10}: hand-made families {r['handmade_images_per_s']:.1f} images/s; all five {r['all_families_images_per_s']:.1f} images/s "
              f"(cold {r['cold_s']:.2f} s); warm rerun {r['warm_s']:.3f} s = {r['warm_over_cold']:.4f} x cold "
              f"({r['warm_rehash_s']:.3f} s = {r['warm_rehash_over_cold']:.4f} x cold when every file is re-hashed)")
    print(f"scaling {cores} workers / 1 worker: hand-made {res['scaling_handmade']:.2f}x, all five {res['scaling_all_families']:.2f}x")
    print(f"peak RSS: main process {res['peak_rss_mb']['main']:.0f} MB, largest worker {res['peak_rss_mb']['workers']:.0f} MB")
    out = Path(__file__).parent / 'results' / 'descriptors.json'
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2))


if __name__ == '__main__': main()
