"""The unfrozen phase chapter 06 leaves out, measured on a run's validation split.

    python benchmarks/unfrozen_phase.py --run-dir runs/demo [--steps 10] [--encoder-lr 1e-5] [--paintings 4] [--extra 16]

Needs chapters 00-06 done for the run (chapter 05's stored features, chapter 06's parameters). Trains the frozen recipe
from the run's seed (`train_head`, exactly as chapter 06 does), then fine-tunes encoder and head end to end for `--steps`
batches of `--paintings` training paintings with all their variants and `--extra` more paintings in the gallery, every
image of a batch through the encoder in one pass (BatchNorm in evaluation mode: the statistics the stored features were
standardised with), the encoder at `--encoder-lr` and the head at a tenth of the recipe's rate, with the recipe's MSE and
InfoNCE terms. Then the validation images are encoded again with the tuned encoder and both heads are judged with
chapter 05's `split_criteria`. Prints the two rows and the time each phase took; writes benchmarks/results/unfrozen.json.
"""
import argparse, json, time
from dataclasses import replace
from pathlib import Path
import numpy as np, torch
from artsim.runs import Run, derive_seed
from artsim.backbone import normalise, pooled_features, resnet50_body
from artsim.backbone import as_pooling
from artsim.siamese import SplitData, encode_images, load_siamese_data, read_images, split_criteria
from artsim.network import fit_inputs
from artsim.training import batch_loss, head_scores, painting_batches, train_head, training_recipe


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--run-dir', required=True)
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--encoder-lr', type=float, default=1e-5)
    ap.add_argument('--paintings', type=int, default=4)
    ap.add_argument('--extra', type=int, default=16)
    a = ap.parse_args()
    run = Run(a.run_dir)
    sp, tp = run.params('siamese'), run.params('training')
    data, made = load_siamese_data(run)
    train, held = data['train'], data[sp.validate_on]
    pooling, stats, size = as_pooling(made['pooling']), made['normalisation'], made['input_size']
    recipe = training_recipe(tp)
    t0 = time.perf_counter()
    head, _ = train_head(recipe, train, fit_inputs(train.features, recipe.pca_dim, recipe.pca_fit_images, tp.seed), tp.seed)
    frozen = split_criteria(head_scores(head, held), held)
    t1 = time.perf_counter()
    body = resnet50_body(made['encoder_weights'], run, tp.seed).eval() # BatchNorm stays in evaluation mode
    images = read_images(run, [*train.table.gallery.path, *train.table.queries.path], size)
    opt = torch.optim.AdamW([dict(params=body.parameters(), lr=a.encoder_lr), dict(params=head.parameters(), lr=recipe.lr / 10)],
                            weight_decay=recipe.weight_decay)
    r = replace(recipe, augmented=0.0) # the MSE and InfoNCE terms on images; no augmented copies
    batches = painting_batches(train.truth, train.n_paintings, a.paintings, a.extra, np.random.default_rng(derive_seed(tp.seed, 'unfrozen')))
    head.train()
    for step in range(a.steps):
        try: variants, gallery = next(batches)
        except StopIteration:
            batches = painting_batches(train.truth, train.n_paintings, a.paintings, a.extra, np.random.default_rng(derive_seed(tp.seed, 'unfrozen', step)))
            variants, gallery = next(batches)
        rows = np.concatenate([gallery, train.n_paintings + variants])
        f = pooled_features(body, normalise(images[rows], stats), pooling) # both kinds of image in one pass
        X = torch.zeros(len(train.features), head.inputs(f[:1]).shape[1]).index_copy(0, torch.as_tensor(rows), head.inputs(f))
        loss, _ = batch_loss(head, r, train, X, variants, gallery)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    head.eval()
    t2 = time.perf_counter()
    held_images = read_images(run, [*held.table.gallery.path, *held.table.queries.path], size)
    tuned = SplitData(encode_images(body, held_images, pooling, stats), held.table, held.teacher)
    unfrozen = split_criteria(head_scores(head, tuned), tuned)
    out = dict(run=str(run.path), split=sp.validate_on, steps=a.steps, encoder_lr=a.encoder_lr, paintings=a.paintings,
               extra=a.extra, frozen=frozen, unfrozen=unfrozen,
               seconds=dict(frozen=round(t1 - t0, 1), unfrozen=round(t2 - t1, 1), encode_again=round(time.perf_counter() - t2, 1)))
    for k in ('frozen', 'unfrozen'): print(f"{k:9s}", '  '.join(f'{c} {v:.3f}' for c, v in out[k].items()))
    print('seconds', out['seconds'])
    f = Path(__file__).parent / 'results' / 'unfrozen.json'
    f.parent.mkdir(exist_ok=True)
    f.write_text(json.dumps(out, indent=2))


if __name__ == '__main__': main()
