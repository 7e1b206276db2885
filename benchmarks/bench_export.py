"""What an export costs as the run grows: time and peak memory of `artsim_export` on runs of different sizes.

    python benchmarks/bench_export.py RUN [RUN ...] [--shard-size 500MB] [--keep DIR]

Each run is exported in a fresh process (so its peak memory is its own) into a temporary folder: the peak resident set of
the process, the resident set after the imports (before the export began), and the growth between them. The export
streams the images a row group at a time, so the growth should follow the tables (a few hundred bytes per row), not the
images' bytes; the last column divides the growth by the rows to show it. The load average before and after each export is
recorded: on a shared machine the times are upper bounds. Results are printed and written to benchmarks/results/export.json.
"""
import argparse, json, os, subprocess, sys, tempfile
from pathlib import Path

CHILD = r'''
import json, resource, sys, time, warnings
warnings.filterwarnings('ignore')
def rss_mb():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'): return int(line.split()[1]) / 1024
from artsim.export import export_run
import artsim.siamese, torch  # what the export imports when the run has a model, loaded before the baseline
before = rss_mb()
r = export_run(sys.argv[1], sys.argv[2], shard_size=sys.argv[3], progress=False)
r.update(rss_before_mb=before, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps(r))
'''


def export_once(run, out, shard_size) -> dict:
    load = os.getloadavg()
    p = subprocess.run([sys.executable, '-c', CHILD, str(run), str(out), shard_size], capture_output=True, text=True)
    if p.returncode: sys.exit(f'bench_export: exporting {run} failed:\n{p.stderr[-2000:]}')
    r = json.loads(p.stdout.strip().splitlines()[-1])
    images = sum(f.stat().st_size for f in Path(out).rglob('*.parquet'))
    return dict(r, run=str(run), export_mb=images / 2**20, load_before=load, load_after=os.getloadavg(),
                growth_mb=r['peak_rss_mb'] - r['rss_before_mb'])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('runs', nargs='+', help='run directories whose chapters 00-03 (and optionally 06) have run')
    ap.add_argument('--shard-size', default='500MB')
    ap.add_argument('--keep', help='export into DIR/<run name> and keep it')
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in a.runs:
            out = Path(a.keep or tmp) / f'{Path(run).name}-{len(rows)}'
            rows.append(export_once(run, out, a.shard_size))
    print(f"{'run':<28}{'rows':>8}{'export MB':>11}{'s':>8}{'RSS before':>12}{'peak RSS':>10}{'growth MB':>11}{'KB/row':>8}  load")
    for r in rows:
        n = r['paintings'] + r['pairs']
        print(f"{Path(r['run']).name:<28}{n:>8}{r['export_mb']:>11.1f}{r['seconds']:>8.1f}{r['rss_before_mb']:>12.0f}"
              f"{r['peak_rss_mb']:>10.0f}{r['growth_mb']:>11.1f}{1024 * r['growth_mb'] / n:>8.1f}  "
              f"{r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f}")
    if len(rows) > 1:
        a0, a1 = rows[0], rows[-1]
        print(f"export bytes x{a1['export_mb'] / a0['export_mb']:.1f}, rows x{(a1['paintings'] + a1['pairs']) / (a0['paintings'] + a0['pairs']):.1f}, "
              f"memory growth x{a1['growth_mb'] / max(a0['growth_mb'], 1e-9):.2f}")
    res = Path(__file__).parent / 'results'; res.mkdir(exist_ok=True)
    (res / 'export.json').write_text(json.dumps(rows, indent=1))


if __name__ == '__main__': main()
