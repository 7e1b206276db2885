"""Generation benchmark, CPU: images per second of the classical stand-in (chapter 01_generation).

    python benchmarks/bench_generation.py [--n-originals 16] [--threads N]

Two figures: the stand-in's edit alone (in memory, per edit family, at 128 px as in `demo` and at 512 px),
and the whole stage at the demo settings (load, edit, atomic PNG write, fsynced journal, merge).
Results are printed and written to benchmarks/results/generation.json.
The GPU figures for SDXL Refiner 1.0's network are in bench_refiner_gpu.py.
"""
import argparse, json, os, platform, tempfile, time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from artsim.painter import demo_painting, DEMO_GENRES
from artsim.runs import Run, preset_params
from artsim import generation as G
from artsim import standin as S
from fastcore.basics import AttrDict


def edit_throughput(size:int, n:int, bank) -> dict:
    "Images per second of `standin_img2img` per edit family, on `n` demo paintings of `size` px"
    genres = list(DEMO_GENRES)
    originals = [demo_painting(genres[i % len(genres)], i, size) for i in range(n)]
    out = {}
    for pid in bank.index:
        t0 = time.perf_counter()
        for i, im in enumerate(originals): S.standin_img2img(im, pid, 0.5, i, bank)
        out[pid] = n / (time.perf_counter() - t0)
    return out


def stage_throughput(n_per_genre:int) -> dict:
    "Pairs per second of `stage` with the demo's prompts and strengths, files and journal included"
    with tempfile.TemporaryDirectory() as tmp:
        run, rows = Run(tmp), []
        for g in DEMO_GENRES:
            for i in range(n_per_genre):
                f = run.dir(f'data/images/{g}') / f'{g}-{i}.png'
                demo_painting(g, i, 128).save(f)
                rows.append(dict(id=f'{g}-{i}', path=run.rel(f), artist='anon', genre=g, style='s', split='train',
                                 width=128, height=128, source='demo'))
        pd.DataFrame(rows).to_parquet(run.resolve('data/manifest.parquet'))
        p = AttrDict(stage='generation', preset='demo', run_dir=run.path, **preset_params('demo', 'generation'))
        p.originals_per_genre = None
        t0 = time.perf_counter()
        G.stage(run, p)
        secs = time.perf_counter() - t0
        n = len(run.read_parquet(G.PAIRS))
    return dict(pairs=n, seconds=round(secs, 2), pairs_per_s=round(n / secs, 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--n-originals', type=int, default=16, help='paintings per edit family for the in-memory figure')
    ap.add_argument('--stage-per-genre', type=int, default=8, help='paintings per genre for the whole-stage figure (demo: 8)')
    ap.add_argument('--threads', type=int, default=None, help='torch/numpy threads (default: as configured)')
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    bank = S.load_prompts()
    res = dict(machine=dict(cpus=os.cpu_count(), platform=platform.platform(), python=platform.python_version()))
    for size in (128, 512):
        per = edit_throughput(size, a.n_originals, bank)
        res[f'standin_{size}px_images_per_s'] = {k: round(v, 1) for k, v in per.items()}
        res[f'standin_{size}px_images_per_s_mean'] = round(len(per) / sum(1 / v for v in per.values()), 1)  # over equal counts
        print(f"stand-in edit alone, {size} px: {res[f'standin_{size}px_images_per_s_mean']} images/s "
              f"(per family: {res[f'standin_{size}px_images_per_s']})")
    res['stage_demo'] = stage_throughput(a.stage_per_genre)
    print(f"whole stage, demo settings: {res['stage_demo']}")
    out = Path(__file__).parent / 'results' / 'generation.json'
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print('wrote', out)


if __name__ == '__main__':
    main()
