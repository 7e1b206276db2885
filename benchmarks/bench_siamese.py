"""Siamese network benchmark: similarity_matrix against the naive pair loop, the frozen phase's feature cache against plain
pair passes, and (on a CUDA GPU) fp16 + channels-last against fp32.

    python benchmarks/bench_siamese.py [--n 64] [--size 64] [--naive-pairs 256] [--paintings 32] [--variants 6] [--epochs 4]

Images are the demo's procedural paintings and perturbed copies of them, written as PNG, so decoding is part of the cost
as in a run; the network is chapter 05's SiameseNet on a random-init ResNet50 encoder (no weights are needed to time it).

1. `similarity_matrix(A, B)` for n x n images (n + n backbone passes) against the loop a user would write,
   `similarity(a, b)` for each of the n * n pairs (two backbone passes each). The loop is timed on `--naive-pairs`
   pairs drawn from the n * n and scaled to n * n (`--naive-pairs 0`: all of them); its values are checked against the
   matrix.
2. Frozen-phase training pairs per second: `--epochs` epochs of the head with the encoder frozen, with chapter 06's
   feature cache (each distinct image encoded once, its time included) against the same fits on images (the frozen
   encoder run for every pair side of every batch). Validation is skipped in both: training throughput only.
3. On CUDA only: unfrozen training steps and embedding throughput at 224 px, fp16 + channels-last against fp32.

Results are printed and written to benchmarks/results/siamese.json.
"""
import argparse, json, random, tempfile, time, warnings
from pathlib import Path
import numpy as np, pandas as pd
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated', category=FutureWarning)
import torch
from PIL import Image, ImageFilter
from fastai.callback.core import Callback, CancelValidException
from artsim.data import DEMO_GENRES, demo_painting
from artsim.runs import Run
from artsim.siamese import SiameseSimilarity, build_siamese, pair_dls
from artsim.training import encoder_features, feature_dls, siamese_learner


def make_images(root, paintings, variants, size=128):
    "Procedural paintings and blurred, recoloured copies of them; the pairs table chapter 05 would read."
    genres, rows = list(DEMO_GENRES), []
    for i in range(paintings):
        im = demo_painting(genres[i % len(genres)], i, size)
        o = f'p{i:03d}.png'; im.save(root / o)
        for k in range(variants):
            v = f'p{i:03d}_v{k}.png'
            x = np.asarray(im.filter(ImageFilter.GaussianBlur(0.5 + k)), float) * (1 - 0.1 * k) + 20 * k * np.array([1, 0, -1])
            Image.fromarray(np.clip(x, 0, 255).astype(np.uint8)).save(root / v)
            rows.append(dict(pair_id=v, original_id=f'p{i:03d}', variant_of=f'p{i:03d}', original_path=o, generated_path=v,
                             kind='positive', y=1 - 0.1 * k, subset='train' if i % 5 else 'valid'))
    return pd.DataFrame(rows)


def timed(f, *a, **kw):
    t = time.perf_counter(); out = f(*a, **kw); return time.perf_counter() - t, out


class NoValidation(Callback):
    def before_validate(self): raise CancelValidException()


def bench_matrix(root, pairs, n, size, naive_pairs, device):
    net, stats = build_siamese('random', seed=0)
    sim = SiameseSimilarity(net, dict(input_size=size, normalisation=stats), device, batch_size=64)
    A = [root / p for p in pairs.original_path.unique()[:n]]
    B = [root / p for p in pairs.generated_path.unique()[:n]]
    n = min(len(A), len(B)); A, B = A[:n], B[:n]
    sim.similarity_matrix(A[:4], B[:4]); sim.similarity(A[0], B[0])  # warm-up
    t_matrix, M = timed(sim.similarity_matrix, A, B, progress=False)
    idx = [(i, j) for i in range(n) for j in range(n)]
    if naive_pairs and naive_pairs < len(idx): idx = random.Random(0).sample(idx, naive_pairs)
    t_loop, vals = timed(lambda: [sim.similarity(A[i], B[j]) for i, j in idx])
    t_naive = t_loop / len(idx) * n * n
    err = float(np.max(np.abs(np.array(vals) - np.array([M[i, j] for i, j in idx]))))
    return dict(n=n, matrix_s=t_matrix, naive_pairs_timed=len(idx), naive_loop_s=t_loop, naive_s_for_all_pairs=t_naive,
                speedup=t_naive / t_matrix, max_abs_difference=err)


def bench_cache(root, pairs, size, epochs, device, bs=32):
    net, stats = build_siamese('random', seed=0)
    dls = pair_dls(Run(root), pairs, size, bs, stats, 'none', device, seed=0)
    learn = siamese_learner(dls, net)
    learn.freeze()
    n_train = len(dls.train) * bs  # drop_last: the pairs actually trained on per epoch
    with learn.no_bar(), learn.no_logging():
        t_plain, _ = timed(learn.fit, epochs, 1e-3, cbs=NoValidation())
        t_feat, feats = timed(encoder_features, net, dls.bank, stats, 2 * bs, device)
        learn.dls = feature_dls(dls, feats)
        t_head, _ = timed(learn.fit, epochs, 1e-3, cbs=NoValidation())
    return dict(images=len(dls.bank), train_pairs_per_epoch=n_train, epochs=epochs, plain_s=t_plain, cache_s=t_feat, cached_head_s=t_head,
                plain_pairs_per_s=epochs * n_train / t_plain, cached_pairs_per_s=epochs * n_train / (t_feat + t_head),
                speedup=t_plain / (t_feat + t_head))


def bench_cuda(root, pairs, steps=20, bs=64, size=224):
    "Unfrozen training on the GPU: fp32 against fp16 + channels-last (what `siamese_learner` does on CUDA)."
    out = {}
    for mode, fp16 in (('fp32', False), ('fp16+channels_last', True)):
        net, stats = build_siamese('random', seed=0)
        dls = pair_dls(Run(root), pairs, size, bs, stats, 'same', 'cuda', seed=0)
        learn = siamese_learner(dls, net, fp16=fp16)
        learn.unfreeze()
        with learn.no_bar(), learn.no_logging():
            learn.dls.train = dls.train.new(n=3 * bs)
            learn.fit(1, 1e-4, cbs=NoValidation())  # warm-up: kernels chosen, memory allocated
            learn.dls.train = dls.train.new(n=steps * bs)
            torch.cuda.synchronize(); t = time.perf_counter()
            learn.fit(1, 1e-4, cbs=NoValidation())
            torch.cuda.synchronize()
        out[mode] = dict(train_pairs_per_s=steps * bs / (time.perf_counter() - t))
    out['train_speedup'] = out['fp16+channels_last']['train_pairs_per_s'] / out['fp32']['train_pairs_per_s']
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--n', type=int, default=64, help='images on each side of the similarity matrix')
    ap.add_argument('--size', type=int, default=64, help="the network's input side, px (the demo's)")
    ap.add_argument('--naive-pairs', type=int, default=256, help='pairs of the naive loop to time (0: all n * n)')
    ap.add_argument('--paintings', type=int, default=32, help='paintings for the training benchmark')
    ap.add_argument('--variants', type=int, default=6, help='variants per painting')
    ap.add_argument('--epochs', type=int, default=4, help='frozen-phase epochs')
    a = ap.parse_args()
    res = dict(torch_threads=torch.get_num_threads(), size=a.size)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pairs = make_images(root, max(a.n, a.paintings), max(1, a.variants))
        res['similarity_matrix'] = m = bench_matrix(root, pairs, a.n, a.size, a.naive_pairs, 'cpu')
        print(f"similarity_matrix {m['n']} x {m['n']} at {a.size} px: {m['matrix_s']:.2f} s; naive loop of {m['n'] ** 2} similarity() calls: "
              f"{m['naive_s_for_all_pairs']:.1f} s ({m['naive_pairs_timed']} timed, {m['naive_loop_s']:.1f} s, scaled to all); "
              f"{m['speedup']:.0f}x faster; largest difference {m['max_abs_difference']:.1e}")
        train = pairs[pairs.original_id.isin(sorted(pairs.original_id.unique())[:a.paintings])]
        res['frozen_phase'] = c = bench_cache(root, train, a.size, a.epochs, 'cpu')
        print(f"frozen phase, {c['epochs']} epochs of {c['train_pairs_per_epoch']} pairs over {c['images']} images at {a.size} px: "
              f"plain pair passes {c['plain_s']:.1f} s ({c['plain_pairs_per_s']:.0f} pairs/s); feature cache {c['cache_s']:.1f} s + head "
              f"{c['cached_head_s']:.1f} s ({c['cached_pairs_per_s']:.0f} pairs/s): {c['speedup']:.1f}x")
        if torch.cuda.is_available():
            res['cuda'] = g = bench_cuda(root, train)
            print(f"CUDA ({torch.cuda.get_device_name()}), unfrozen training at 224 px: fp32 {g['fp32']['train_pairs_per_s']:.0f} pairs/s, "
                  f"fp16 + channels-last {g['fp16+channels_last']['train_pairs_per_s']:.0f} pairs/s: {g['train_speedup']:.2f}x")
        else:
            res['cuda'] = None
            print('CUDA: no GPU here, fp16 + channels-last against fp32 not measured')
    out = Path(__file__).parent / 'results' / 'siamese.json'
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2))


if __name__ == '__main__': main()
