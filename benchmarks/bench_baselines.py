"""SSIM matrix and demo painting benchmark: the way each was computed before against the way it is now, side by side in
one run, with the results checked equal to the last bit.

    python benchmarks/bench_baselines.py [--rows 60] [--cols 64] [--size 128] [--paintings 20] [--repeats 3]

- SSIM: scikit-image's `structural_similarity` once per pair (five box filters each) against `ssim_matrix` (each
  image's local means and squares filtered once, one filter per pair), on demo paintings; chapter 07 computes two such
  matrices (the test variants against the test paintings, the twins test).
- Painting: pointillism, the slowest demo genre, with its colour jitter drawn one channel at a time against
  `demo_painting` (one draw per painting).

Medians of `--repeats` runs; printed and written to benchmarks/results/baselines.json.
"""
import argparse, json, statistics, time
from pathlib import Path
import numpy as np
from artsim import painter
from artsim.baselines import gray_image, ssim_matrix
from artsim.painter import DEMO_GENRES, demo_painting


def ssim_per_pair(A, B, size):
    "Before: scikit-image once per pair, each image loaded once."
    from skimage.metrics import structural_similarity
    ga, gb = [gray_image(a, size) for a in A], [gray_image(b, size) for b in B]
    return np.array([[structural_similarity(x, y, data_range=1.0) for y in gb] for x in ga])


def jitter_per_channel(rng, c, amount=18) -> list:
    "Before: `painter._jitter` with one generator call per colour channel of every dot or stroke."
    return [tuple(int(np.clip(v + rng.integers(-amount, amount + 1), 0, 255)) for v in row)
            for row in np.asarray(c).reshape(-1, 3)]


def pointillism_per_channel(seed, size=128):
    "A pointillist `demo_painting` with the jitter drawn as before."
    now, painter._jitter = painter._jitter, jitter_per_channel
    try: return demo_painting('pointillism', seed, size)
    finally: painter._jitter = now


def timed(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter(); out = fn(); times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--rows', type=int, default=60); ap.add_argument('--cols', type=int, default=64)
    ap.add_argument('--size', type=int, default=128); ap.add_argument('--paintings', type=int, default=20)
    ap.add_argument('--repeats', type=int, default=3)
    a = ap.parse_args(argv)
    genres = list(DEMO_GENRES)
    imgs = [np.asarray(demo_painting(genres[i % len(genres)], i, 128)) for i in range(a.rows + a.cols)]
    A, B = imgs[:a.rows], imgs[a.rows:]
    t_old, S_old = timed(lambda: ssim_per_pair(A, B, a.size), a.repeats)
    t_new, S_new = timed(lambda: ssim_matrix(A, B, a.size), a.repeats)
    assert np.array_equal(S_old, S_new), 'ssim_matrix differs from scikit-image'
    seeds = range(a.paintings)
    p_old, P_old = timed(lambda: [np.asarray(pointillism_per_channel(s)) for s in seeds], a.repeats)
    p_new, P_new = timed(lambda: [np.asarray(demo_painting('pointillism', s)) for s in seeds], a.repeats)
    assert all(np.array_equal(x, y) for x, y in zip(P_old, P_new)), 'the pointillism paintings differ'
    res = dict(ssim=dict(pairs=a.rows * a.cols, size=a.size, per_pair_s=t_old, matrix_s=t_new, ratio=t_old / t_new,
                         identical=True),
               pointillism=dict(paintings=a.paintings, per_channel_s=p_old, one_draw_s=p_new, ratio=p_old / p_new,
                                identical=True))
    print(f"SSIM, {a.rows} x {a.cols} pairs at {a.size} px: per pair {t_old:.2f} s, matrix {t_new:.2f} s, "
          f"{t_old / t_new:.1f}x; identical to the last bit")
    print(f"pointillism, {a.paintings} paintings: per channel {p_old:.2f} s, one draw {p_new:.2f} s, "
          f"{p_old / p_new:.1f}x; identical pixels")
    out = Path(__file__).parent / 'results' / 'baselines.json'
    out.parent.mkdir(exist_ok=True); out.write_text(json.dumps(res, indent=1) + '\n')


if __name__ == '__main__': main()
