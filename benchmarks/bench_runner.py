"""Runner benchmark: chapters of a tiny run executed by `artsim_reproduce` with papermill's own saving (the running
notebook written at every cell's start and end, `save_every=0`) against the runner's engine (written every
`SAVE_EVERY` seconds, `artsim.reproduce.chapter_engine`), side by side in one run, in turns; the executed notebooks'
cells and outputs checked equal.

    python benchmarks/bench_runner.py [--chapters 00,03,06] [--repeats 3]

It first makes a tiny run of every chapter in a temporary folder (about two minutes), then redoes `--chapters` with
`--force`, each way in turn, `--repeats` times. Medians of the chapters' seconds as the runner reports them; printed and
written to benchmarks/results/runner.json.
"""
import argparse, io, json, shutil, statistics, tempfile
from pathlib import Path
from artsim.reproduce import SAVE_EVERY, artsim_reproduce


def cells(notebook:Path) -> list:
    "Each cell's source and outputs, without papermill's timings, execution counts and the run's parameters shown."
    nb = json.loads(notebook.read_text(encoding='utf-8'))
    drop = lambda o: {k: v for k, v in o.items() if k != 'execution_count'}
    return [(c['source'], [drop(o) for o in c.get('outputs', [])]) for c in nb['cells']
            if 'parameters' not in c['metadata'].get('tags', [])]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--chapters', default='00,03,06'); ap.add_argument('--repeats', type=int, default=3)
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix='bench-runner-'))
    run, ways, first = tmp/'run', {'every cell': 0, f'every {SAVE_EVERY:g} s': SAVE_EVERY}, None
    times = {w: [] for w in ways}
    try:
        artsim_reproduce('tiny', str(run), progress=False, out=io.StringIO())
        for _ in range(a.repeats):
            for way, every in ways.items():
                said = artsim_reproduce('tiny', str(run), only=a.chapters, force=True, progress=False,
                                        out=io.StringIO(), save_every=every)
                assert all(s == 'ran' for _, s, _ in said), said
                times[way].append(sum(t for _, _, t in said))
                got = {n: cells(run/'notebooks'/f'{n}.ipynb') for n, _, _ in said}
                first = first or got
                assert got == first, 'the executed chapters differ'
    finally: shutil.rmtree(tmp, ignore_errors=True)
    med = {w: statistics.median(v) for w, v in times.items()}
    (old, new), names = med.values(), list(med)
    res = dict(chapters=a.chapters, repeats=a.repeats, save_every=SAVE_EVERY, seconds=times,
               median_every_cell_s=old, median_throttled_s=new, ratio=old / new, same_cells=True)
    print(f"tiny chapters {a.chapters}, medians of {a.repeats}: written {names[0]} {old:.1f} s, "
          f"{names[1]} {new:.1f} s, {old / new:.2f}x; the executed chapters' cells and outputs are the same")
    out = Path(__file__).parent/'results'/'runner.json'
    out.parent.mkdir(exist_ok=True); out.write_text(json.dumps(res, indent=1) + '\n')


if __name__ == '__main__': main()
