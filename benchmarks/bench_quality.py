"""Quality benchmark on real photographs: which similarity measure follows how far an image was edited, and finds its source?

    python benchmarks/bench_quality.py [--size 256] [--strengths 0.15,0.3,0.45,0.6,0.75,0.9] [--calibration default]

Sources: the real photographs that ship with scikit-image (`skimage.data`, no download) and scikit-learn (its two sample
images, when it is installed), centre-cropped to squares of --size px. Each source is edited with five kinds of edit
that change an image the way img2img changes a painting, at graded strengths; the random draws of an edit are fixed per
source and kind, so within a series only the strength changes:

  repaint   fine detail lost and new detail painted in (img2img's noise-then-denoise): blur growing with strength, plus grain
  recolour  a new palette: hue turned and saturation changed in proportion, graded toward a tint
  warp      contours moved: a smooth random displacement field whose amplitude grows with strength
  replace   objects painted over: nested regions (a growing share of the image) filled with other, blurred content
  stylise   a painting style: toward flat median-filtered brush areas in fewer colours with dark outlines

Every measure scores every variant against every source (a V x S matrix); three figures come from it:
  Spearman  rho of the similarity to its own source with -strength, per source and edit kind, averaged (1 = ranks the
            strengths perfectly; a series a measure cannot tell apart counts 0)
  AUC       ROC AUC of own-source similarities against similarities to the other sources
  top-1     the share of variants whose own source scores strictly highest among all sources (ties count as misses)

Measures: SSIM (grayscale, full size), a DCT perceptual hash (64 bits), an HSV histogram (16x4x4, intersection), HOG
cosine, raw ResNet50 cosine (torchvision's ImageNet weights where they can be loaded; offline, random init, and the
table says which), each artsim family on its calibrated scale, and artsim's combined value, raw and calibrated
(`artsim.describe_images` once per image, then `compare_described`). Results are printed and written to
benchmarks/results/quality.json.
"""
import argparse, json, time, warnings
from pathlib import Path
import numpy as np, pandas as pd
from PIL import Image
from scipy import ndimage, stats
from scipy.fft import dctn
from skimage import color as skcolor
from skimage.feature import hog
from skimage.metrics import structural_similarity
from artsim.runs import derive_seed
from artsim.families import FAMILIES, working_image
from artsim.descriptors import SemanticEncoder
from artsim.similarity import compare_described, describe_images, load_calibration

SKIMAGE_PHOTOS = ('astronaut', 'brick', 'camera', 'cell', 'chelsea', 'clock', 'coffee', 'coins', 'grass', 'gravel',
                  'hubble_deep_field', 'immunohistochemistry', 'microaneurysms', 'moon', 'page', 'retina', 'rocket', 'text')


def square(a, size):
    "RGB uint8, centre-cropped to a square and resized to size x size."
    im = Image.fromarray(a).convert('RGB')
    s = min(im.size)
    l, t = (im.width - s) // 2, (im.height - s) // 2
    return np.asarray(im.crop((l, t, l + s, t + s)).resize((size, size), Image.LANCZOS))


def photographs(size):
    "name -> RGB uint8 (size, size, 3): every real photograph that ships with the installed dependencies."
    from skimage import data
    out = {}
    for name in SKIMAGE_PHOTOS:
        try: out[name] = square(getattr(data, name)(), size)
        except Exception as e: print(f'  left out skimage.data.{name}: {type(e).__name__}: {e}')
    try: out['motorcycle'] = square(data.stereo_motorcycle()[0], size)
    except Exception as e: print(f'  left out skimage.data.stereo_motorcycle: {type(e).__name__}: {e}')
    try:
        from sklearn.datasets import load_sample_image
        for f in ('china.jpg', 'flower.jpg'): out[f[:-4]] = square(load_sample_image(f), size)
    except ImportError: print('  scikit-learn is not installed: its two sample images are left out')
    return out


# ---- the edits: x float (H, W, 3) in [0, 1], s the strength in (0, 1], rng seeded per source and kind

def _field(rng, shape, sigma):
    "A smooth zero-mean random field of unit spread."
    n = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return n / (n.std() + 1e-12)


def _luma(x): return x @ np.array([0.299, 0.587, 0.114])


def repaint(x, s, rng):
    H = x.shape[0]
    grain = _field(rng, x.shape[:2], 1.2)[..., None] * rng.uniform(.7, 1, 3)
    return ndimage.gaussian_filter(x, (3 * s * H / 128, 3 * s * H / 128, 0)) + .12 * s * grain


def recolour(x, s, rng):
    hsv = skcolor.rgb2hsv(x)
    hsv[..., 0] = (hsv[..., 0] + s * rng.choice([-1, 1]) * rng.uniform(.25, .45)) % 1
    hsv[..., 1] = np.clip(hsv[..., 1] * (1 + s * rng.uniform(-.7, .7)), 0, 1)
    tint = rng.uniform(.2, 1, 3); tint /= tint.mean()
    return (1 - .4 * s) * skcolor.hsv2rgb(hsv) + .4 * s * _luma(x)[..., None] * tint


def warp(x, s, rng):
    H, W = x.shape[:2]
    dy, dx = _field(rng, (H, W), H / 10), _field(rng, (H, W), H / 10)
    yy, xx = np.mgrid[0:H, 0:W].astype(float)
    amp = s * .06 * H
    return np.stack([ndimage.map_coordinates(x[..., c], [yy + amp * dy, xx + amp * dx], order=1, mode='reflect') for c in range(3)], -1)


def replace(x, s, rng):
    H, W = x.shape[:2]
    f = _field(rng, (H, W), H / 16)
    mask = ndimage.gaussian_filter((f > np.quantile(f, 1 - .6 * s)).astype(float), 2)[..., None]
    other = ndimage.gaussian_filter(np.roll(x, (int(rng.integers(H // 4, 3 * H // 4)), int(rng.integers(W // 4, 3 * W // 4))), (0, 1)), (3, 3, 0))
    return x * (1 - mask) + other * rng.uniform(.6, 1.3, 3) * mask


def stylise(x, s, rng):
    H = x.shape[0]
    flat = ndimage.median_filter(x, size=(max(3, H // 32), max(3, H // 32), 1))
    levels = int(rng.integers(3, 6))
    flat = np.round(flat * (levels - 1)) / (levels - 1)
    g = _luma(flat)
    edges = np.hypot(ndimage.sobel(g, 0), ndimage.sobel(g, 1))
    painted = flat * (1 - np.clip(edges, 0, 1))[..., None]
    return ndimage.gaussian_filter(x + s * (painted - x), (s * H / 256, s * H / 256, 0))


EDITS = dict(repaint=repaint, recolour=recolour, warp=warp, replace=replace, stylise=stylise)


def variants(sources, strengths):
    "The edited images and a table of (source, kind, strength) per variant."
    imgs, rows = [], []
    for name, a in sources.items():
        x = a.astype(float) / 255
        for kind, fn in EDITS.items():
            for s in strengths:
                y = fn(x, s, np.random.default_rng(derive_seed('bench_quality', name, kind)))
                imgs.append((np.clip(y, 0, 1) * 255 + .5).astype(np.uint8))
                rows.append(dict(source=name, kind=kind, strength=s))
    return imgs, pd.DataFrame(rows)


# ---- the baseline measures: V x S similarity matrices

def _gray(imgs, size=None):
    out = [np.asarray(Image.fromarray(a).convert('L'), np.float64) / 255 for a in imgs]
    return out if size is None else [np.asarray(Image.fromarray(g).resize((size, size), Image.BILINEAR)) for g in out]


def ssim(V, S):
    gv, gs = _gray(V), _gray(S)
    return np.array([[structural_similarity(a, b, data_range=1.0) for b in gs] for a in gv])


def phash_bits(imgs):
    "64-bit DCT perceptual hash: the 8x8 lowest frequencies (DC left out) of a 32x32 grayscale image above their median."
    out = []
    for g in _gray(imgs, 32):
        d = dctn(g, norm='ortho')[:8, :8].ravel()[1:]
        out.append(d > np.median(d))
    return np.array(out)


def phash(V, S):
    hv, hs = phash_bits(V), phash_bits(S)
    return 1 - (hv[:, None, :] != hs[None, :, :]).mean(-1)


def hsv_hist(imgs):
    out = []
    for a in imgs:
        h = np.asarray(Image.fromarray(a).convert('HSV')).reshape(-1, 3).astype(int)
        b = (h[:, 0] * 16 >> 8) * 16 + (h[:, 1] * 4 >> 8) * 4 + (h[:, 2] * 4 >> 8)
        out.append(np.bincount(b, minlength=256) / len(b))
    return np.array(out)


def hsv_histogram(V, S):
    hv, hs = hsv_hist(V), hsv_hist(S)
    return np.minimum(hv[:, None, :], hs[None, :, :]).sum(-1)


def cosine_matrix(A, B):
    A = A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-12)
    B = B / np.maximum(np.linalg.norm(B, axis=1, keepdims=True), 1e-12)
    return A @ B.T


def hog_cosine(V, S):
    f = lambda imgs: np.array([hog(g, orientations=9, pixels_per_cell=(16, 16), cells_per_block=(2, 2), block_norm='L2-Hys') for g in _gray(imgs, 128)])
    return cosine_matrix(f(V), f(S))


def resnet50_cosine(V, S):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        enc = SemanticEncoder('imagenet', size=224, seed=0)
    emb = lambda imgs: np.concatenate([enc.encode([working_image(a, 224) for a in imgs[i:i + 32]]) for i in range(0, len(imgs), 32)])
    return cosine_matrix(emb(V), emb(S)), enc.weights_id


# ---- the three figures

def figures(M, table, names):
    "Spearman with -strength (mean over source x kind series), ROC AUC own vs other sources, strict top-1 retrieval."
    from sklearn.metrics import roc_auc_score
    src = table.source.map({n: i for i, n in enumerate(names)}).to_numpy()
    own = M[np.arange(len(M)), src]
    rhos = []
    for _, g in table.groupby(['source', 'kind']):
        r = stats.spearmanr(-g.strength, own[g.index]).statistic if np.ptp(own[g.index]) > 0 else 0.0
        rhos.append(0.0 if np.isnan(r) else r)
    label = np.zeros(M.shape, bool); label[np.arange(len(M)), src] = True
    others = np.where(label, -np.inf, M).max(1)
    return dict(spearman=float(np.mean(rhos)), auc=float(roc_auc_score(label.ravel(), M.ravel())), top1=float((own > others).mean()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--size', type=int, default=256, help='side of the square sources and variants, px')
    ap.add_argument('--strengths', default='0.15,0.3,0.45,0.6,0.75,0.9', help='edit strengths, comma separated')
    ap.add_argument('--calibration', default='default', help="artsim's calibration: 'default' (shipped), a run directory or a calibration.json")
    a = ap.parse_args()
    strengths = [float(s) for s in a.strengths.split(',')]
    print('real photographs:')
    sources = photographs(a.size)
    names, S = list(sources), list(sources.values())
    V, table = variants(sources, strengths)
    print(f'  {len(S)} sources ({", ".join(names)}), {len(EDITS)} edits x {len(strengths)} strengths = {len(V)} variants at {a.size} px')

    results, t = {}, {}
    for label, fn in (('SSIM', ssim), ('DCT perceptual hash', phash), ('HSV histogram', hsv_histogram), ('HOG cosine', hog_cosine)):
        t0 = time.perf_counter(); results[label] = fn(V, S); t[label] = time.perf_counter() - t0
    t0 = time.perf_counter(); M, weights_id = resnet50_cosine(V, S)
    resnet_label = f'ResNet50 cosine ({"ImageNet" if weights_id.startswith("imagenet") else "random init: ImageNet weights unavailable offline"})'
    results[resnet_label] = M; t[resnet_label] = time.perf_counter() - t0

    cal = load_calibration(a.calibration)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the shipped calibration's random-init ResNet50 warns by design
        t0 = time.perf_counter(); DV, DS = describe_images(V, cal), describe_images(S, cal); t_describe = time.perf_counter() - t0
    calib, raw = compare_described(DV, DS, calibration=cal), compare_described(DV, DS, calibration=cal, raw=True)
    for f in FAMILIES: results[f'artsim {f}'] = calib[f]
    results['artsim combined, raw'] = raw['combined']
    results['artsim combined, calibrated'] = calib['combined']
    print(f'  artsim: {len(V) + len(S)} descriptor computations for {len(V) * len(S)} pairs in {t_describe:.1f} s; '
          f"calibration: {cal.origin} ({cal.settings})")

    rows = pd.DataFrame({k: figures(M, table, names) for k, M in results.items()}).T
    best = rows.drop(index=[k for k in rows.index if k.startswith('artsim')]).max()
    ours = rows.loc['artsim combined, calibrated']
    print()
    print('| measure | Spearman with -strength | ROC AUC own vs other sources | top-1 retrieval |')
    print('|---|---|---|---|')
    for k, r in rows.iterrows():
        print(f'| {k} | {r.spearman:.3f} | {r.auc:.3f} | {r.top1:.3f} |')
    print()
    for fig in ('spearman', 'auc', 'top1'):
        verdict = 'beats' if ours[fig] > best[fig] else 'ties' if ours[fig] == best[fig] else 'does not beat'
        print(f'{fig}: artsim combined, calibrated {ours[fig]:.3f} {verdict} the best baseline {best[fig]:.3f} ({rows.drop(index=[k for k in rows.index if k.startswith("artsim")])[fig].idxmax()})')
    src = table.source.map({n: i for i, n in enumerate(names)}).to_numpy()
    zero = float((calib['combined'][np.arange(len(V)), src] == 0).mean())
    print('calibrated, each family counts 1 / (1 - anchor) times its raw value: '
          + ', '.join(f"{f} {1 / (1 - s['anchor']):.2f}" for f, s in cal.families.items())
          + f'; own-source variants whose calibrated combined value is 0: {zero:.1%}')
    per_kind = {k: {kind: figures(results[k][table.kind.to_numpy() == kind], table[table.kind == kind].reset_index(drop=True), names)
                    for kind in EDITS} for k in results}
    out = Path(__file__).parent / 'results' / 'quality.json'
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(dict(sources=names, strengths=strengths, size=a.size, edits=list(EDITS), calibration=cal.origin,
                                   resnet50_weights=weights_id, figures=rows.to_dict('index'), per_edit=per_kind, own_variants_at_zero=zero,
                                   seconds=t | {'artsim describe': t_describe}), indent=1))
    print(f'written to {out}')


if __name__ == '__main__':
    main()
