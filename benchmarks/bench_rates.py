"""The rates `artsim_reproduce --plan` estimates time, disk and memory from, measured on this machine: artsim/rates.json.

    python benchmarks/bench_rates.py [--device cpu|cuda] [--out artsim/rates.json]

Per unit of work, in the units of `artsim.plan` (each measured with the functions the chapters call):
a megapixel of procedural painting drawn and saved (00), a megapixel of photograph decoded (00, other sources),
a megapixel of stand-in variant made and saved (01), an image through the hand-made families with all cores and with
one (02, at the 128 px working size), a megapixel through ResNet50 forward (02's semantic family, 04, 06, 07) and
forward + backward + step (04, 06), an image loaded, a pair scored by every family (03), an SSIM cell at 128 px and a
descriptor cell (07), a perceptual hash. Then each chapter's fixed cost (its kernel, imports, figures): the tiny preset
runs through `artsim_reproduce` and each chapter's time less its work at these rates is kept. Disk: bytes per pixel
of every variant storage format on the demo's images and on photographs (the scikit-image samples), bytes per
descriptor value and per scored pair, and the rest of a run (notebooks, figures, logs), from the tiny run. Memory:
the resident size of a process that has loaded PyTorch and fastai, and the activations per megapixel of a training
batch.

Each rate is the fastest of a few repetitions (and each chapter's fixed cost the fastest of two tiny runs), the
least disturbed by whatever else the machine does; `--wait-quiet 0.5` first waits for a quiet machine. The rates are
recorded under the device's key ('cpu', or 'cuda:<GPU name>'), with the machine, the date and the load
average while they were measured; other devices' entries in the file are kept. On a shared machine every rate is an
upper bound: measure on a quiet one.
"""
import argparse, io, json, os, platform, resource, tempfile, time, warnings
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def rss() -> float:
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith('VmRSS:'): return int(line.split()[1]) * 1024.
    return float('nan')


def timed(fn, *a, repeat=3, **kw):
    "The fastest of `repeat` calls (the least disturbed by other work on the machine), and the last result."
    best = float('inf')
    for _ in range(repeat):
        t = time.perf_counter(); out = fn(*a, **kw); best = min(best, time.perf_counter() - t)
    return best, out


def wait_quiet(limit:float, hours:float=3):
    "Wait until the 1-minute load average is below `limit` (at most `hours`)."
    end = time.time() + 3600 * hours
    while os.getloadavg()[0] >= limit and time.time() < end: time.sleep(20)
    return os.getloadavg()


def cpu_name() -> str:
    for line in Path('/proc/cpuinfo').read_text().splitlines() if Path('/proc/cpuinfo').exists() else []:
        if line.startswith('model name'): return line.split(':', 1)[1].strip()
    return platform.processor() or 'unknown CPU'


def demo_files(root, n=32, size=128):
    from artsim.painter import DEMO_GENRES, demo_painting
    from artsim.runs import save_image
    genres, files = list(DEMO_GENRES), []
    for i in range(n):
        f = root / f'p{i:03d}.png'
        save_image(demo_painting(genres[i % len(genres)], i, size), f)
        files.append(f)
    return files


def photographs():
    from skimage import data
    from PIL import Image
    names = [n for n in ('astronaut', 'coffee', 'chelsea', 'rocket', 'retina', 'colorwheel', 'immunohistochemistry', 'hubble_deep_field')
             if hasattr(data, n)]
    return [Image.fromarray(getattr(data, n)()).convert('RGB') for n in names]


def cpu_rates(tmp, device):
    "Seconds per unit of work, each with the chapters' own functions."
    import torch
    from PIL import Image
    from artsim.data import load_image
    from artsim.painter import DEMO_GENRES, demo_painting
    from artsim.runs import save_image
    from artsim import generation as G
    from artsim import standin as S
    from artsim.families import FAMILIES, HANDMADE, working_image
    from artsim.descriptors import FeatureStore, SemanticEncoder, extract_features
    from artsim.measures import rows_similarity
    from artsim.similarity import DescribedImages, compare_described, load_calibration
    from artsim import baselines as E
    r = {}
    genres = list(DEMO_GENRES)
    # 00: paint and save (drawn at twice the size: four times the pixels of the painting)
    def paint():
        mp = 0.
        for i in range(24):
            im = demo_painting(genres[i % 8], 1000 + i, 128); save_image(im, tmp / f'paint{i}.png'); mp += 4 * im.width * im.height / 1e6
        return mp
    t, mp = timed(paint)
    r['paint_s_per_mpx'] = t / mp
    photos = photographs()
    for i, im in enumerate(photos): save_image(im, tmp / f'photo{i}.q90.jpg')
    t, _ = timed(lambda: [load_image(tmp / f'photo{i}.q90.jpg') for i in range(len(photos))])
    r['decode_s_per_mpx'] = t / sum(im.width * im.height / 1e6 for im in photos)
    files = demo_files(tmp, 32)
    # 01: the stand-in, as generate_pairs makes a variant: load, resize, edit, save
    bank = S.load_prompts()
    def standin():
        mp = 0.
        for i, f in enumerate(files):
            im = load_image(f)
            out = S.standin_img2img(im.resize(im.size, Image.LANCZOS), bank.index[i % len(bank)], 0.5, i, bank)
            save_image(out, tmp / f'v{i}.png'); mp += out.width * out.height / 1e6
        return mp
    t, mp = timed(standin)
    r['standin_s_per_mpx'] = t / mp
    r['load_s_per_image'] = timed(lambda: [working_image(f, 128) for f in files])[0] / len(files)
    # 02: the hand-made families through extract_features (hashing, workers, cache writes), all cores and one; the
    # difference between 64 and 192 images, so that starting the worker pool counts in the chapter's fixed cost
    copies = []
    for i, f in enumerate(files * 6):
        c = tmp / f'h{i}.png'; c.write_bytes(f.read_bytes() + bytes([i % 251]) * (i // 251 + 1)); copies.append(c)  # distinct contents
    fresh = iter(range(10**6))
    ext = lambda fs, jobs: extract_features(fs, FeatureStore(tmp / f'store{next(fresh)}'), HANDMADE, 128, None, jobs, progress=False)
    for key, jobs in (('handmade_s_per_image', -1), ('handmade_1job_s_per_image', 1)):
        r[key] = (timed(ext, copies, jobs, repeat=2)[0] - timed(ext, copies[:64], jobs, repeat=2)[0]) / (len(copies) - 64)
    # ResNet50 forward (the semantic family's encoder) and a training step, per megapixel of input
    enc = SemanticEncoder('random', 128, device, 0, 32)
    x = [working_image(f, 128) for f in files]
    enc.encode(x)
    r['forward_s_per_mpx'] = timed(enc.encode, x)[0] / (len(x) * 128 * 128 / 1e6)
    import torchvision
    model = torchvision.models.resnet50(num_classes=8).to(device).to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    xb = torch.rand(32, 3, 112, 112, device=device).contiguous(memory_format=torch.channels_last)
    yb = torch.randint(0, 8, (32,), device=device)
    def step():
        opt.zero_grad(); torch.nn.functional.cross_entropy(model(xb), yb).backward(); opt.step()
        if str(device).startswith('cuda'): torch.cuda.synchronize()
    before = rss(); step()
    r['train_s_per_mpx'] = timed(step, repeat=3)[0] / (32 * 112 * 112 / 1e6)
    mem = dict(train_bytes_per_mpx=(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024. - before) / (32 * 112 * 112 / 1e6))
    del model, opt
    # 03: a pair scored by every family, a chunk at a time, on vectors of the families' sizes
    rng = np.random.default_rng(0)
    n, k = 2000, 8000
    cal = load_calibration('default')
    t = time.perf_counter()
    for f in FAMILIES:
        X = rng.random((n, FAMILIES[f].dim)).astype(np.float32)
        rows_similarity(f, X, rng.integers(0, n, k), rng.integers(0, n, k), cal.centres.get(f))
    r['pair_s'] = (time.perf_counter() - t) / k   # one pass: its arrays are large enough to average out
    # 07: SSIM, descriptor and hash cells
    Q, Gl = files[:12], files[12:24]
    r['ssim_s_per_cell'] = timed(E.ssim_matrix, Q, Gl, 128)[0] / (len(Q) * len(Gl))
    D = DescribedImages([f'#{i}' for i in range(64)], {f: rng.random((64, FAMILIES[f].dim)).astype(np.float32) for f in FAMILIES},
                        cal.versions)
    r['descriptor_s_per_cell'] = timed(compare_described, D[:32], D[32:], None, cal, raw=True)[0] / 32 ** 2
    r['hash_s_per_image'] = timed(lambda: [E.perceptual_hash(f, 8) for f in files])[0] / len(files)
    r['head_s_per_row_step'] = head_step_rate()
    return r, mem


def head_step_rate(variants:int=102, gallery:int=40, copies:int=2, steps:int=60) -> float:
    """06: seconds per row a training step of a head embeds, on a batch of the demo's shape (its variants, a gallery of
    K + gallery_extra paintings, their augmented copies), with the chapter's loss terms, optimiser and one thread."""
    import torch
    from torch.nn import functional as F
    from artsim.network import build_head, fit_inputs
    from artsim.siamese import single_thread
    from artsim.training import TrainingRecipe
    r, g = TrainingRecipe(), torch.Generator().manual_seed(0)
    feats = torch.randn(600, 15360, generator=g)
    head = build_head(fit_inputs(feats, r.pca_dim), r.embed_dim, r.sketch_dim, r.knots, 0)
    with torch.no_grad(): X = head.inputs(feats)
    opt = torch.optim.AdamW(head.parameters(), lr=r.lr, weight_decay=r.weight_decay)
    T, pos = torch.rand(variants, gallery, generator=g), torch.arange(variants) % gallery
    def step():
        Z = head.embed_inputs(X[:gallery + variants])
        eg, ev = Z[:gallery], Z[gallery:]
        C = ev @ eg.T
        loss = ((head.score_map(C) - T) ** 2).mean() + F.cross_entropy(C / r.temperature, pos)
        Ca = head.embed_inputs(X[200:200 + copies * gallery]) @ eg.T
        loss = loss + F.cross_entropy(Ca / r.temperature, torch.arange(copies * gallery) % gallery)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    with single_thread():
        step()
        t = timed(lambda: [step() for _ in range(steps)])[0]
    return t / steps / (variants + gallery + copies * gallery)


def disk_rates(tmp):
    "Bytes per pixel of each storage format: the demo's paintings and their stand-in variants, and photographs."
    from artsim.runs import save_image
    from artsim.data import load_image
    from artsim import generation as G
    out = {}
    demo = [load_image(f) for f in sorted(tmp.glob('v*.png'))] + [load_image(f) for f in sorted(tmp.glob('p0*.png'))]
    photos = photographs()
    for fmt, suffix in G.VARIANT_FORMATS.items():
        out[fmt] = {}
        for kind, ims in (('demo', demo), ('photographs', photos)):
            b = px = 0
            for i, im in enumerate(ims):
                f = tmp / f'fmt-{kind}-{i}{suffix}'; save_image(im, f); b += f.stat().st_size; px += im.width * im.height
            out[fmt][kind] = b / px
    return out


def tiny_run(tmp, device, runs:int=2):
    "The tiny preset through the runner, `runs` times: each chapter's fastest seconds, and what its files take."
    from artsim.reproduce import artsim_reproduce
    import pandas as pd
    best = {}
    for k in range(runs):
        run = tmp / f'tiny{k}'
        for c, _, s in artsim_reproduce(preset='tiny', run_dir=str(run), device=device, progress=False, out=io.StringIO()):
            best[c] = min(s, best.get(c, s))
    images = len(pd.read_parquet(run / 'features/images.parquet'))
    from artsim.families import FAMILIES
    values = images * sum(FAMILIES[f].dim for f in FAMILIES)
    feat = sum(f.stat().st_size for f in (run / 'features').glob('*.parquet') if f.stem in FAMILIES)
    pairs = run / 'similarity/pairs.parquet'
    other = sum(f.stat().st_size for d in ('notebooks', 'figures', 'logs', 'metrics') for f in (run / d).rglob('*') if f.is_file())
    disk = dict(feature_bytes_per_value=feat / values, pair_row_bytes=pairs.stat().st_size / len(pd.read_parquet(pairs)), run_other_bytes=other)
    return best, disk, run


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--device', default='cpu', help='cpu or cuda (the GPU of this machine)')
    ap.add_argument('--out', default=str(ROOT / 'artsim' / 'rates.json'))
    ap.add_argument('--tiny-runs', type=int, default=2, help="runs of the tiny preset; each chapter's fastest is kept")
    ap.add_argument('--wait-quiet', type=float, metavar='LOAD', help='first wait until the 1-minute load average is below LOAD')
    a = ap.parse_args()
    if a.wait_quiet: print('waited for a load average of', wait_quiet(a.wait_quiet), flush=True)
    warnings.simplefilter('ignore')
    os.environ['IN_TEST'] = '1'   # the chapters' own progress bars off where a stage is called directly
    import torch
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix='artsim-rates-') as tmp:
        tmp = Path(tmp)
        os.environ.pop('IN_TEST')
        seconds, disk, run = tiny_run(tmp, a.device, a.tiny_runs)
        os.environ['IN_TEST'] = '1'
        rates, mem = cpu_rates(tmp, a.device)
        disk['bytes_per_pixel'] = disk_rates(tmp)
        # a fresh process that has loaded what the training chapters load, and built a ResNet50
        import subprocess, sys
        code = ("import warnings; warnings.simplefilter('ignore'); import artsim.finetune, artsim.siamese, artsim.training\n"
                "from artsim.backbone import resnet50_body; resnet50_body('random')\n"
                "print([int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS:')][0] * 1024)")
        mem['torch_process_bytes'] = float(subprocess.run([sys.executable, '-c', code], capture_output=True, text=True).stdout.split()[-1])
        from artsim.plan import plan_run
        from artsim.reproduce import resolve_config
        from artsim.runs import STAGES
        plan = plan_run(resolve_config('tiny', run, list(STAGES), dict(device=a.device)), run)
        fixed = {}
        from artsim.estimates import UNIT_RATES
        for ch, work in plan.work.items():
            spent = sum(v * rates[UNIT_RATES[u]] for u, v in work.items() if v and UNIT_RATES[u] in rates)
            fixed[ch] = round(max(0., seconds[ch] - spent), 2)
    key = 'cpu' if a.device == 'cpu' else f'cuda:{torch.cuda.get_device_name()}'
    name = f"{cpu_name()}, {os.cpu_count()} cores" if a.device == 'cpu' else torch.cuda.get_device_name()
    entry = dict(name=name, measured=time.strftime('%Y-%m-%d'), command='python benchmarks/bench_rates.py' + (f' --device {a.device}' if a.device != 'cpu' else ''),
                 torch=torch.__version__, torch_threads=torch.get_num_threads(), load_average=[round(x, 2) for x in (*load, *os.getloadavg())],
                 rates={k: float(f'{v:.4g}') for k, v in rates.items()}, chapter_fixed_s=fixed, tiny_run_s={k: round(v, 2) for k, v in seconds.items()},
                 memory={k: float(f'{v:.4g}') for k, v in mem.items()})
    out = Path(a.out)
    old = json.loads(out.read_text()) if out.exists() else {}
    res = dict(format='artsim-rates/1', devices={**old.get('devices', {}), key: entry},
               disk={**disk, 'bytes_per_pixel': {f: {k: float(f'{x:.4g}') for k, x in v.items()} for f, v in disk['bytes_per_pixel'].items()}})
    out.write_text(json.dumps(res, indent=2) + '\n')
    print(f"{key}: {name}; load average (1, 5, 15 min) before {load}, after {os.getloadavg()}")
    for k, v in entry['rates'].items(): print(f"  {k:<28} {v:.4g}")
    print('  chapter fixed seconds: ' + ', '.join(f'{k} {v}' for k, v in fixed.items()))
    print('  memory: ' + ', '.join(f'{k} {v / 1e6:.0f} MB' for k, v in mem.items()))
    print('wrote', out)


if __name__ == '__main__': main()
