"""What portable numerics cost: each chapter of a preset run with the machine's own kernels and under the pin, side by side.

    python benchmarks/bench_portable.py [--preset demo] [--only 02,04] [--keep DIR]

Two runs of the preset are made chapter by chapter, interleaved (natural then pinned for one chapter, pinned then natural
for the next), so that a change in the machine's load falls on both: `-p portable=false` (the machine's own numpy, MKL,
OpenBLAS and oneDNN kernels, PyTorch's default thread count) against the preset's portable numerics (AVX2 kernels, oneDNN
off, two PyTorch threads; artsim.numerics). Each time is artsim_reproduce's own for the chapter (kernel start included).
The load average is recorded before and after every chapter: on a shared machine the ratios are only as good as the load
was steady; rerun on a quiet machine for numbers to quote. Results are printed and written to
benchmarks/results/portable.json. The demo preset takes about twice a demo run (20 minutes or more on two cores).
"""
import argparse, io, json, os, platform, tempfile, time, warnings
from pathlib import Path
from artsim.numerics import numpy_dispatch
from artsim.reproduce import artsim_reproduce, chapters, find_nbs, select_chapters


def cpu_model() -> str:
    try: return next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): return platform.processor()


def chapter_seconds(preset, run_dir, chapter, portable) -> float:
    "Seconds artsim_reproduce takes for `chapter` of `run_dir` (the earlier chapters are done there already)."
    rows = artsim_reproduce(preset=preset, run_dir=str(run_dir), only=chapter, progress=False, out=io.StringIO(),
                            param=[] if portable else ['portable=false'])
    (name, status, secs), = rows
    assert status == 'ran', rows
    return secs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--preset', default='demo')
    ap.add_argument('--only', help='these chapters only (with the chapters before them run untimed, once per mode)')
    ap.add_argument('--keep', help='make the two runs in this folder and keep them (default: a temporary folder)')
    ap.add_argument('--out', default=str(Path(__file__).parent/'results'/'portable.json'))
    a = ap.parse_args(argv)
    warnings.filterwarnings('ignore', message=r'`torch\.jit\.script` is deprecated', category=FutureWarning)  # as artsim_reproduce does
    all_chs = chapters(find_nbs())
    timed = {c[0] for c in select_chapters(all_chs, a.only)}
    with tempfile.TemporaryDirectory(prefix='artsim-bench-portable-') as tmp:
        root = Path(a.keep or tmp)
        runs = dict(natural=root/'natural', pinned=root/'pinned')
        rows = []
        print(f"{'chapter':<16} {'natural s':>10} {'pinned s':>10} {'pinned/natural':>15}   load before -> after")
        for i, (name, stage, _) in enumerate(all_chs):
            if name not in timed and not any(n in timed for n, _, _ in all_chs[i:]): break
            order = ('natural', 'pinned') if i % 2 == 0 else ('pinned', 'natural')
            load0, secs = os.getloadavg()[0], {}
            for mode in order: secs[mode] = chapter_seconds(a.preset, runs[mode], name, mode == 'pinned')
            load1 = os.getloadavg()[0]
            if name not in timed: continue
            r = dict(chapter=name, natural=round(secs['natural'], 1), pinned=round(secs['pinned'], 1),
                     ratio=round(secs['pinned'] / secs['natural'], 2), load_before=round(load0, 2), load_after=round(load1, 2))
            rows.append(r)
            print(f"{name:<16} {r['natural']:>10.1f} {r['pinned']:>10.1f} {r['ratio']:>15.2f}   {load0:.1f} -> {load1:.1f}", flush=True)
        tot = {m: sum(r[m] for r in rows) for m in ('natural', 'pinned')}
        print(f"{'all':<16} {tot['natural']:>10.1f} {tot['pinned']:>10.1f} {tot['pinned'] / tot['natural']:>15.2f}")
    res = dict(preset=a.preset, chapters=rows, total=dict(tot, ratio=round(tot['pinned'] / tot['natural'], 2)),
               machine=dict(cpu=cpu_model(), cores=os.cpu_count(), numpy_dispatch=numpy_dispatch()),
               when=time.strftime('%Y-%m-%dT%H:%M:%S'),
               note='load_before/after: 1-minute load average; above the core count, other work shared the CPU')
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(f"written to {a.out}")


if __name__ == '__main__': main()
