"""What a cross-vendor MKL pin would cost: ResNet50 inference under the pin with MKL's AVX2 branch (the pin's own; on CPUs
other than Intel's MKL runs AUTO instead) against MKL's COMPATIBLE branch (SSE2, which MKL honours on every x86-64 CPU).

    python benchmarks/bench_mkl_branch.py [--batch 8] [--size 112] [--repeats 3] [--rounds 2]

Each measurement runs in a process of its own, started under the pin with MKL_CBWR set (MKL reads it once, when it loads);
the two branches alternate, so both see the same machine load. Prints the branch MKL reports, the best time of each
round and the ratio COMPATIBLE / pinned.
"""
import argparse, subprocess, sys

CHILD = """
import sys, time, torch, torchvision
from artsim.numerics import pin_torch, _mkl_branch
pin_torch()
batch, size, repeats = map(int, sys.argv[1:4])
m, x = torchvision.models.resnet50().eval(), torch.randn(batch, 3, size, size)
with torch.inference_mode():
    m(x); ts = []
    for _ in range(repeats): t = time.perf_counter(); m(x); ts.append(time.perf_counter() - t)
print(_mkl_branch(torch), min(ts))
"""


def measure(branch, batch, size, repeats):
    cmd = [sys.executable, '-m', 'artsim.numerics', '--', 'env', f'MKL_CBWR={branch}', sys.executable, '-c', CHILD,
           str(batch), str(size), str(repeats)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
    return out[0], float(out[1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--batch', type=int, default=8); ap.add_argument('--size', type=int, default=112)
    ap.add_argument('--repeats', type=int, default=3); ap.add_argument('--rounds', type=int, default=2)
    a = ap.parse_args(argv)
    print(f'ResNet50 forward, batch {a.batch} at {a.size} px, best of {a.repeats}, under the pin')
    for r in range(a.rounds):
        (b1, t1), (b2, t2) = (measure(b, a.batch, a.size, a.repeats) for b in ('AVX2,STRICT', 'COMPATIBLE,STRICT'))
        print(f'round {r + 1}: MKL {b1} {t1:.3f} s | MKL {b2} {t2:.3f} s | ratio {t2 / t1:.2f}')


if __name__ == '__main__': main()
