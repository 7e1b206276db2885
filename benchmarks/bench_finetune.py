"""Fine-tuning benchmark: ResNet50 genre classifier training and inference images/s at the demo and full input sizes, peak memory.

    python benchmarks/bench_finetune.py [--sizes 112 224] [--bs 32] [--steps 4] [--device auto]

The model is chapter 04's classifier (`genre_classifier`: ResNet50 body + fastai head, 8 genres, random weights: no weights
are needed to time it). A training step is forward, cross-entropy, backward and an Adam step on a batch of random images;
inference is a forward pass in eval mode without gradients. On the CPU fp32 is timed in the default (contiguous) and in the
channels-last memory format; on a CUDA device fp32 against fp16 autocast + channels-last (what the chapter uses there),
side by side in the same run, with peak GPU memory. `--epoch` also times one fastai epoch of the chapter's own learner on
demo paintings (decoding, augmentation, PreciseBN's pass included). Results are printed and written to
benchmarks/results/finetune.json.
"""
import argparse, contextlib, io, json, resource, tempfile, time, warnings
from pathlib import Path
import torch
from torch import nn
from artsim.backbone import resnet50_body
from artsim.finetune import genre_classifier


def peak_rss_mb(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, steps, sync):
    "Seconds per call of `fn`, after one warm-up call."
    fn(); sync()
    t = time.perf_counter()
    for _ in range(steps): fn()
    sync()
    return (time.perf_counter() - t) / steps


def bench(model, size, bs, steps, device, fp16=False, channels_last=False):
    "(training images/s, inference images/s, peak GPU MB or None) of `model` at `size` px."
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device, memory_format=fmt)
    x = torch.randn(bs, 3, size, size, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 8, (bs,), device=device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    cuda = device.type == 'cuda'
    scaler = torch.amp.GradScaler('cuda', enabled=fp16 and cuda)
    amp = (lambda: torch.autocast('cuda', dtype=torch.float16)) if fp16 and cuda else contextlib.nullcontext
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda: torch.cuda.reset_peak_memory_stats()
    def train_step():
        with amp(): loss = nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True); scaler.scale(loss).backward(); scaler.step(opt); scaler.update()
    def infer():
        with torch.no_grad(), amp(): model(x)
    model.train(); t_train = timed(train_step, steps, sync)
    model.eval(); t_infer = timed(infer, steps, sync)
    return bs / t_train, bs / t_infer, (torch.cuda.max_memory_allocated() / 2**20 if cuda else None)


def fastai_epoch(size, bs):
    "Seconds of one fastai training epoch (with validation and PreciseBN) of the chapter's learner on 192 demo paintings."
    from fastai.vision.all import set_seed
    from artsim.runs import Run, stage_params
    import artsim.data
    from artsim.finetune import genre_dataloaders, genre_learner, train_genre_model
    with tempfile.TemporaryDirectory() as d, contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        run = Run(d)
        artsim.data.stage(run, stage_params('data', dict(preset='demo', run_dir=run.path)))
        set_seed(0)
        dls = genre_dataloaders(run, run.read_parquet('data/manifest.parquet'), size, bs, 0, 'cpu')
        learn = genre_learner(dls, resnet50_body('random'), path=d)
        t = time.perf_counter()
        with learn.no_bar(), learn.no_logging():
            train_genre_model(learn, epochs=1, freeze_epochs=0, lr=1e-3, lr_find_iters=0)
        return time.perf_counter() - t, len(dls.train_ds)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--sizes', type=int, nargs='+', default=[112, 224], help='input sides, px (the demo and full presets)')
    ap.add_argument('--bs', type=int, default=32)
    ap.add_argument('--steps', type=int, default=4, help='timed steps per measurement (after one warm-up)')
    ap.add_argument('--device', default='auto', help="'auto' (CUDA if present), 'cpu' or 'cuda'")
    ap.add_argument('--epoch', action='store_true', help='also time one fastai epoch of the chapter on demo paintings (CPU)')
    a = ap.parse_args()
    warnings.simplefilter('ignore')
    device = torch.device('cuda' if a.device == 'auto' and torch.cuda.is_available() else 'cpu' if a.device == 'auto' else a.device)
    torch.manual_seed(0)
    model = genre_classifier(8, resnet50_body('random'))
    variants = ({'fp32': dict(), 'fp16 + channels-last': dict(fp16=True, channels_last=True)} if device.type == 'cuda'
                else {'fp32': dict(), 'fp32 channels-last': dict(channels_last=True)})
    res = dict(device=str(device), name=torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu', torch_threads=torch.get_num_threads(),
               bs=a.bs, steps=a.steps, results={})
    print(f"finetune benchmark: ResNet50 classifier, batch {a.bs}, {a.steps} steps per figure, on {res['name']} "
          f"({res['torch_threads']} torch threads)")
    for size in a.sizes:
        r = res['results'][str(size)] = {}
        for name, kw in variants.items():
            tr, inf, mem = bench(model, size, a.bs, a.steps, device, **kw)
            r[name] = dict(train_images_per_s=tr, inference_images_per_s=inf, peak_gpu_mb=mem)
        base, other = r['fp32'], r[list(variants)[1]]
        r['ratio'] = dict(train=other['train_images_per_s'] / base['train_images_per_s'],
                          inference=other['inference_images_per_s'] / base['inference_images_per_s'])
        for name in variants:
            v = r[name]
            print(f"{size:>4} px {name:>22}: train {v['train_images_per_s']:7.1f} images/s, inference {v['inference_images_per_s']:7.1f} images/s"
                  + (f", peak GPU memory {v['peak_gpu_mb']:.0f} MB" if v['peak_gpu_mb'] else ''))
        print(f"{size:>4} px {list(variants)[1]} / fp32: train {r['ratio']['train']:.2f}x, inference {r['ratio']['inference']:.2f}x")
    if a.epoch:
        secs, n = fastai_epoch(min(a.sizes), a.bs)
        res['fastai_epoch'] = dict(size=min(a.sizes), images=n, seconds=secs, images_per_s=n / secs)
        print(f"one fastai epoch of the chapter at {min(a.sizes)} px on {n} demo paintings (training, PreciseBN pass, validation): "
              f"{secs:.1f} s, {n / secs:.1f} training images/s")
    res['peak_rss_mb'] = peak_rss_mb()
    print(f"peak RSS {res['peak_rss_mb']:.0f} MB")
    out = Path(__file__).parent/'results'/'finetune.json'
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2))


if __name__ == '__main__': main()
