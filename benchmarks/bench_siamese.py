"""Siamese network benchmark, each speed-up measured side by side with what it replaces:

    python benchmarks/bench_siamese.py [--n 64] [--size 64] [--naive-pairs 256] [--paintings 32] [--variants 6] [--epochs 4]

Images are the demo's procedural paintings and perturbed copies of them, written as PNG, so decoding is part of the cost
as in a run; the network is artsim.network's: a random-init ResNet50 encoder read at several depths and an untrained head
(no weights are needed to time it).

1. `similarity_matrix(A, B)` for n x n images (n + n encoder passes, one matrix product) against the loop a user would
   write, `similarity(a, b)` for each of the n * n pairs (two encoder passes each). The loop is timed on `--naive-pairs`
   pairs drawn from the n * n and scaled to n * n (`--naive-pairs 0`: all of them); its values are checked against the
   matrix.
2. Training steps of chapter 06 on the stored features (every image encoded once, its time included) against the same
   steps with every image of each batch sent through the frozen encoder again, the cost of training without them;
   the second is timed on one epoch and scaled to `--epochs`.
3. The same training epochs with one torch thread (`train_head` runs so) against the process's default thread count.
4. On CUDA only: embedding throughput at 224 px, fp16 + channels-last against fp32.

Results are printed and written to benchmarks/results/siamese.json; say under what load they were measured.
"""
import argparse, json, os, random, tempfile, time, warnings
from dataclasses import replace
from pathlib import Path
import numpy as np, pandas as pd
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated', category=FutureWarning)
import torch
from PIL import Image, ImageFilter
from artsim.painter import DEMO_GENRES, demo_painting
from artsim.backbone import IMAGENET_STATS, feature_dim, infer, normalise, pooled_features, resnet50_body
from artsim.siamese import SplitData, SplitTable, encode_images, read_images
from artsim.network import SiameseNet, SiameseSimilarity, build_head, fit_inputs
from artsim.runs import Run
from artsim.training import TrainingRecipe, batch_loss, painting_batches, train_head

POOLING = {1: 4, 2: 4, 3: 1, 4: 1}


def make_images(root, paintings, variants, size=128):
    "Procedural paintings and blurred, recoloured copies of them: the gallery and the queries of a split."
    genres, gallery, queries = list(DEMO_GENRES), [], []
    for i in range(paintings):
        im = demo_painting(genres[i % len(genres)], i, size)
        o = f'p{i:03d}.png'; im.save(root / o)
        gallery.append(dict(id=f'p{i:03d}', path=o, genre=genres[i % len(genres)]))
        for k in range(variants):
            v = f'p{i:03d}_v{k}.png'
            x = np.asarray(im.filter(ImageFilter.GaussianBlur(0.5 + k)), float) * (1 - 0.1 * k) + 20 * k * np.array([1, 0, -1])
            Image.fromarray(np.clip(x, 0, 255).astype(np.uint8)).save(root / v)
            queries.append(dict(path=v, painting=f'p{i:03d}', prompt_id='p', strength=0.1 * (k + 1), genre=gallery[-1]['genre'], truth=i))
    return SplitTable(pd.DataFrame(gallery), pd.DataFrame(queries))


def timed(f, *a, **kw):
    t = time.perf_counter(); out = f(*a, **kw); return time.perf_counter() - t, out


def untrained(size, seed=0, device='cpu'):
    "The Siamese network on a random-init encoder, its head's fixed part fitted on random features."
    fitted = fit_inputs(torch.randn(64, feature_dim(POOLING), generator=torch.Generator().manual_seed(seed)), 32)
    net = SiameseNet(resnet50_body('random', seed=seed), POOLING, build_head(fitted, 32, 256, seed=seed))
    return SiameseSimilarity(net, dict(input_size=size, normalisation=IMAGENET_STATS), device, batch_size=64)


def bench_matrix(root, table, n, size, naive_pairs):
    sim = untrained(size)
    A = [root / p for p in table.gallery.path[:n]]
    B = [root / p for p in table.queries.path[:n]]
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


def bench_training(root, table, size, epochs):
    "Chapter 06's steps on stored features against the same steps with the frozen encoder run on every batch's images."
    body = resnet50_body('random', seed=0).eval()
    images = read_images(Run(root), [*table.gallery.path, *table.queries.path], size)
    t_encode, feats = timed(encode_images, body, images, POOLING, IMAGENET_STATS)
    own = np.arange(len(table.gallery))[None, :] == table.queries.truth.to_numpy()[:, None]
    d = SplitData(feats, table, np.where(own, 0.8, 0.1))
    r = TrainingRecipe(pca_dim=32, sketch_dim=256, embed_dim=32, augmented=0.0, paintings_per_batch=4, gallery_extra=8, epochs=epochs)
    fitted = fit_inputs(feats, r.pca_dim)
    t_stored, _ = timed(train_head, r, d, fitted, 0)
    # the same batches, every image of a batch through the frozen encoder (the head's fixed part after it)
    head = build_head(fitted, r.embed_dim, r.sketch_dim, r.knots, 0)
    opt = torch.optim.AdamW(head.parameters(), lr=r.lr)
    body = body.to(memory_format=torch.channels_last)
    t0, steps = time.perf_counter(), 0
    for variants, gallery in painting_batches(d.truth, d.n_paintings, r.paintings_per_batch, r.gallery_extra):
        rows = np.concatenate([gallery, d.n_paintings + variants])
        with torch.no_grad():
            x = normalise(images[rows], IMAGENET_STATS).contiguous(memory_format=torch.channels_last)
            X = torch.zeros(len(feats), head.pca_dim + head.sketch.d_out).index_copy(0, torch.as_tensor(rows), head.inputs(pooled_features(body, x, POOLING)))
        loss, _ = batch_loss(head, r, d, X, variants, gallery)
        opt.zero_grad(); loss.backward(); opt.step(); steps += 1
    t_epoch = time.perf_counter() - t0
    # threads: the same training with the process's threads (train_head's `single_thread` switched off)
    import artsim.training as tr
    class keep_threads:
        def __enter__(self): pass
        def __exit__(self, *exc): pass
    one = tr.single_thread
    tr.single_thread = keep_threads
    try: t_threads, _ = timed(train_head, r, d, fitted, 0)
    finally: tr.single_thread = one
    return dict(images=len(images), epochs=epochs, steps_per_epoch=steps, encode_once_s=t_encode, stored_train_s=t_stored,
                stored_total_s=t_encode + t_stored, encoder_every_step_s=t_epoch * epochs,
                speedup=t_epoch * epochs / (t_encode + t_stored), threads=torch.get_num_threads(),
                one_thread_train_s=t_stored, default_threads_train_s=t_threads, thread_ratio=t_threads / t_stored)


def bench_cuda(root, table, n=256, size=224):
    "Embedding on the GPU: fp32 against fp16 autocast + channels-last (what `SiameseSimilarity` does on CUDA)."
    sim = untrained(size, device='cuda')
    x = read_images(Run(root), list(table.queries.path[:n]), size)
    out = {}
    for mode, fp16 in (('fp32', False), ('fp16+channels_last', True)):
        run = lambda: infer(sim.model.features, (x[i:i + 64] for i in range(0, len(x), 64)), IMAGENET_STATS, 'cuda',
                            channels_last=fp16, fp16=fp16)
        run(); torch.cuda.synchronize()  # warm-up
        t, _ = timed(lambda: (run(), torch.cuda.synchronize()))
        out[mode] = dict(images_per_s=len(x) / t)
    out['speedup'] = out['fp16+channels_last']['images_per_s'] / out['fp32']['images_per_s']
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--n', type=int, default=64, help='images on each side of the similarity matrix')
    ap.add_argument('--size', type=int, default=64, help="the network's input side, px")
    ap.add_argument('--naive-pairs', type=int, default=256, help='pairs of the naive loop to time (0: all n * n)')
    ap.add_argument('--paintings', type=int, default=32, help='paintings for the training benchmark')
    ap.add_argument('--variants', type=int, default=6, help='variants per painting')
    ap.add_argument('--epochs', type=int, default=4, help='training epochs')
    a = ap.parse_args()
    res = dict(torch_threads=torch.get_num_threads(), size=a.size, load_before=os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        table = make_images(root, max(a.n, a.paintings), max(1, a.variants))
        res['similarity_matrix'] = m = bench_matrix(root, table, a.n, a.size, a.naive_pairs)
        print(f"similarity_matrix {m['n']} x {m['n']} at {a.size} px: {m['matrix_s']:.2f} s; naive loop of {m['n'] ** 2} similarity() calls: "
              f"{m['naive_s_for_all_pairs']:.1f} s ({m['naive_pairs_timed']} timed, {m['naive_loop_s']:.1f} s, scaled to all); "
              f"{m['speedup']:.0f}x faster; largest difference {m['max_abs_difference']:.1e}")
        keep = table.gallery.id[:a.paintings]
        small = SplitTable(table.gallery[table.gallery.id.isin(keep)].reset_index(drop=True),
                           table.queries[table.queries.painting.isin(keep)].reset_index(drop=True))
        res['training'] = c = bench_training(root, small, a.size, a.epochs)
        print(f"training, {c['epochs']} epochs of {c['steps_per_epoch']} steps over {c['images']} images at {a.size} px: "
              f"stored features {c['stored_total_s']:.1f} s (encoding once {c['encode_once_s']:.1f} s + steps {c['stored_train_s']:.2f} s); "
              f"encoder on every batch {c['encoder_every_step_s']:.1f} s (one epoch timed, scaled): {c['speedup']:.1f}x")
        print(f"training steps with one thread {c['one_thread_train_s']:.2f} s, with the default {c['threads']} threads "
              f"{c['default_threads_train_s']:.2f} s: {c['thread_ratio']:.1f}x")
        if torch.cuda.is_available():
            res['cuda'] = g = bench_cuda(root, table)
            print(f"CUDA ({torch.cuda.get_device_name()}), embedding at 224 px: fp32 {g['fp32']['images_per_s']:.0f} images/s, "
                  f"fp16 + channels-last {g['fp16+channels_last']['images_per_s']:.0f} images/s: {g['speedup']:.2f}x")
        else:
            res['cuda'] = None
            print('CUDA: no GPU here, fp16 + channels-last against fp32 not measured')
    res['load_after'] = os.getloadavg()
    print(f"load average before {res['load_before'][0]:.2f}, after {res['load_after'][0]:.2f} ({os.cpu_count()} CPUs)")
    out = Path(__file__).parent / 'results' / 'siamese.json'
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2))


if __name__ == '__main__': main()
