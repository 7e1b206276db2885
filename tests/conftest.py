import os
os.environ.setdefault('MPLBACKEND', 'Agg')

import pytest
from demo_pairs import make_run, stage_p
from miniatures import make_tiny_refiner


@pytest.fixture(scope='session')
def demo_root(tmp_path_factory):
    "A demo-like run directory: 40 paintings at 128 px, 320 variants (2 prompts x 4 strengths)."
    return make_run(tmp_path_factory.mktemp('run'))


@pytest.fixture(scope='session')
def described_root(demo_root):
    "`demo_root` after the descriptors stage (demo preset, all families, random-init ResNet50)."
    import warnings
    from artsim.runs import Run
    from artsim.descriptors import stage
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # random-init ResNet50 warns by design
        stage(Run(demo_root), stage_p('descriptors'))
    return demo_root


@pytest.fixture(scope='session')
def tiny_refiner(tmp_path_factory):
    "A randomly initialised SDXL refiner-shaped pipeline saved as diffusers files, in float32 and as the fp16 variant."
    import logging
    from diffusers.utils import logging as dlog
    level = dlog.get_verbosity(); dlog.set_verbosity(logging.ERROR)  # casting a fresh model to fp16 warns about it
    try: return make_tiny_refiner(tmp_path_factory.mktemp('tiny-refiner'), variants=(None, 'fp16'))
    finally: dlog.set_verbosity(level)
