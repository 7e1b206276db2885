"""The strength-order hinge of chapter 06 over a grid of weights and margins, judged on a run's validation split.

    python benchmarks/order_grid.py --run-dir runs/demo [--weights 0,1,3,10,30] [--margins 0.02,0.05,0.1] [--seeds 3]

Needs chapters 00-06 done for the run (chapter 05's stored features, chapter 06's parameters). Each cell is chapter 06's
recipe with `order` and `order_margin` changed, trained from the run's seeds (`train_seeds`, exactly as chapter 06 does)
and judged with `split_criteria` on the split chapter 05 validates on; the first row is the teacher. A group (painting,
prompt) has three strengths in the demo, so its ρ is 1, 0.5, -0.5 or -1, and one pair out of order in one group moves the
split's strength ρ by 0.5 / groups: the script prints that step, so a cell's difference can be read in swapped pairs.
Writes benchmarks/results/order_grid.json.
"""
import argparse, json
from dataclasses import replace
from pathlib import Path
from artsim.runs import Run
from artsim.siamese import load_siamese_data, split_criteria
from artsim.network import fit_inputs
from artsim.training import seed_summary, train_seeds, training_recipe, training_seeds

CRITERIA = ('strength', 'auc', 'recall@1', 'mse')


def floats(s): return [float(x) for x in s.split(',')]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--run-dir', required=True)
    ap.add_argument('--weights', type=floats, default=[0, 1, 3, 10, 30])
    ap.add_argument('--margins', type=floats, default=[0.02, 0.05, 0.1])
    ap.add_argument('--seeds', type=int, help="how many training seeds (default: the run's)")
    ap.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'order_grid.json'))
    a = ap.parse_args(argv)
    run = Run(a.run_dir)
    data, made = load_siamese_data(run)
    train, held = data['train'], data[made['validate_on']]
    tp = run.params('training')
    r0 = training_recipe(tp)
    seeds = training_seeds(tp.seed, a.seeds or tp.seeds)
    fitted = fit_inputs(train.features, r0.pca_dim, r0.pca_fit_images, seeds[0])
    q = held.table.queries
    groups = int((q.groupby(['painting', 'prompt_id']).strength.nunique() > 1).sum())
    print(f"{made['validate_on']} split: {groups} (painting, prompt) groups; one pair out of order in one group moves "
          f"strength ρ by {0.5 / groups:.4f}; seeds {seeds}")
    teacher = split_criteria(held.teacher.matrix(), held)
    print(f"{'weight':>7} {'margin':>7}  " + '  '.join(f'{c:>22}' for c in CRITERIA))
    print(f"{'teacher':>15}  " + '  '.join(f'{teacher[c]:>22.4f}' for c in CRITERIA))
    rows = []
    for w in a.weights:
        for m in (a.margins if w else a.margins[:1]):
            _, _, crit, _ = train_seeds(replace(r0, order=w, order_margin=m), train, held, seeds, fitted)
            s = seed_summary(crit)
            rows.append(dict(order=w, order_margin=m, **{c: s[c] for c in CRITERIA}))
            cell = lambda c: f"{s[c]['mean']:.4f} ({s[c]['min']:.4f}-{s[c]['max']:.4f})"
            print(f'{w:>7g} {m if w else float("nan"):>7g}  ' + '  '.join(f'{cell(c):>22}' for c in CRITERIA), flush=True)
    out = dict(run=str(run.path), split=made['validate_on'], groups=groups, seeds=seeds, teacher=teacher, rows=rows)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    print('written to', a.out)


if __name__ == '__main__': main()
