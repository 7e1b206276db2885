"""Demo-like runs for the descriptor and similarity tests (fixtures in conftest.py): the demo's procedural paintings
(`artsim.painter.demo_painting`) and a classical perturbation of each at rising strength, written the way 00_data and
01_generation write them."""
import numpy as np, pandas as pd
from pathlib import Path
from PIL import Image, ImageFilter
from artsim.painter import DEMO_GENRES, demo_painting

STRENGTHS = (0.2, 0.4, 0.6, 0.8)
PROMPTS = {'p0': 'a painting, softened', 'p1': 'a painting, recoloured'}


def perturb(im, strength, prompt_id, rng):
    "The test stand-in for img2img: the higher the strength, the further from the original."
    x = np.asarray(im.filter(ImageFilter.GaussianBlur(3 * strength)), float)
    if prompt_id == 'p1':  # recolour: rotate the channels towards a permutation
        x = (1 - strength) * x + strength * x[..., [1, 2, 0]]
    x = x + rng.normal(0, 40 * strength, x.shape)
    x = np.roll(x, int(10 * strength), axis=1)
    return Image.fromarray(np.clip(x, 0, 255).astype(np.uint8))


def make_run(root, n_genres=8, n_per_genre=5, size=128, strengths=STRENGTHS, prompts=PROMPTS, seed=0):
    "Write data/manifest.parquet and generated/pairs.parquet with their images under `root`."
    root = Path(root); rng = np.random.default_rng(seed)
    rows, pairs = [], []
    for g, genre in enumerate(list(DEMO_GENRES)[:n_genres]):
        for i in range(n_per_genre):
            pid = f'g{g}-{i:03d}'
            path = Path('data/images') / f'genre{g}' / f'{pid}.png'
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            im = demo_painting(genre, seed * 1000 + g * 100 + i, size); im.save(root / path)
            rows.append(dict(id=pid, path=str(path), artist=f'artist{i % 3}', genre=genre, style='demo',
                             split='train', width=im.width, height=im.height, source='test'))
            for prompt_id, prompt in prompts.items():
                for s in strengths:
                    gp = Path('generated') / f'{pid}_{prompt_id}_{int(s * 100):03d}.png'
                    (root / gp).parent.mkdir(parents=True, exist_ok=True)
                    perturb(im, s, prompt_id, rng).save(root / gp)
                    pairs.append(dict(pair_id=gp.stem, original_id=pid, generated_path=str(gp), prompt_id=prompt_id,
                                      prompt=prompt, strength=s, seed=seed))
    pd.DataFrame(rows).to_parquet(root / 'data/manifest.parquet', index=False)
    pd.DataFrame(pairs).to_parquet(root / 'generated/pairs.parquet', index=False)
    return root


def stage_p(stage, preset='demo', **over):
    "A stage's parameters as the chapter would resolve them: the preset's common and stage values, then `over`."
    from types import SimpleNamespace
    from artsim.runs import PRESETS
    return SimpleNamespace(**(PRESETS[preset]['common'] | PRESETS[preset][stage] | over))
