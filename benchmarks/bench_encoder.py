"""Encoder benchmark under portable numerics: ResNet50's pooled features of images in batches of `--batch` whole,
against the same batches run in `sub_batches` of four, side by side in one run, the features checked equal to the last
bit.

    python benchmarks/bench_encoder.py [--n 128] [--size 128] [--batch 64] [--repeats 3]

It pins PyTorch as a portable chapter does (`artsim.numerics.pin_torch`: oneDNN and NNPACK off, the pin's two
threads); `python -m artsim.numerics -- python benchmarks/bench_encoder.py` adds the pin's MKL and OpenBLAS switches,
as `artsim_reproduce` starts the chapters. The body is randomly initialised (the weights do not change the work), in
channels-last format, pooled as chapter 05 pools it. Medians of `--repeats` runs; printed and written to
benchmarks/results/encoder.json.
"""
import argparse, json, statistics, time
from pathlib import Path
import torch
from artsim.backbone import IMAGENET_STATS, feature_dim, infer, input_image, pooled_features, resnet50_body, slow_conv
from artsim.numerics import pin_torch
from artsim.painter import DEMO_GENRES, demo_painting
from artsim.siamese import encode_images

POOLING = {0: 16, 1: 4, 2: 4, 3: 1, 4: 1}  # the demo preset's chapter 05 pooling


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=128); ap.add_argument('--size', type=int, default=128)
    ap.add_argument('--batch', type=int, default=64); ap.add_argument('--repeats', type=int, default=3)
    a = ap.parse_args(argv)
    pin_torch()
    assert slow_conv(), 'pin_torch left oneDNN or NNPACK on'
    genres = list(DEMO_GENRES)
    images = torch.stack([input_image(demo_painting(genres[i % len(genres)], i, a.size), a.size) for i in range(a.n)])
    body = resnet50_body('random', seed=0).eval().to(memory_format=torch.channels_last)
    batches = lambda: (images[i:i + a.batch] for i in range(0, a.n, a.batch))
    # before: `infer` running each batch whole; now: chapter 05's `encode_images`, which asks for sub-batches
    unsplit = lambda: infer(lambda x: pooled_features(body, x, POOLING), batches(), IMAGENET_STATS,
                            channels_last=True, dim=feature_dim(POOLING))
    split = lambda: encode_images(body, images, POOLING, IMAGENET_STATS, a.batch)
    times = {'whole': [], 'sub-batches': []}
    for _ in range(a.repeats):
        for name, fn in (('whole', unsplit), ('sub-batches', split)):
            t = time.perf_counter(); out = fn(); times[name].append(time.perf_counter() - t)
            if name == 'whole': ref = out
            else: assert torch.equal(out, ref), 'sub-batches changed the features'
    med = {k: statistics.median(v) for k, v in times.items()}
    res = dict(images=a.n, size=a.size, batch=a.batch, threads=torch.get_num_threads(),
               whole_s=med['whole'], sub_batches_s=med['sub-batches'], ratio=med['whole'] / med['sub-batches'],
               identical=True)
    print(f"{a.n} images at {a.size} px, batches of {a.batch}, {res['threads']} threads: whole {med['whole']:.2f} s "
          f"({med['whole'] / a.n * 1000:.1f} ms an image), sub-batches of four {med['sub-batches']:.2f} s "
          f"({med['sub-batches'] / a.n * 1000:.1f} ms), {res['ratio']:.2f}x; features identical to the last bit")
    out = Path(__file__).parent / 'results' / 'encoder.json'
    out.parent.mkdir(exist_ok=True); out.write_text(json.dumps(res, indent=1) + '\n')


if __name__ == '__main__': main()
