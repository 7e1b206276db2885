"""A model file given where the other kind is expected: a genre classifier (chapter 04) where a Siamese model (chapter
06) is asked for, and the reverse, is refused with one sentence that names what the file is and what to give, by the
Python API and by the commands (one line on stderr, exit code 1, no traceback)."""
import subprocess, sys
from pathlib import Path
import pytest

from artsim.backbone import resnet50_body
from artsim.finetune import load_genre_model
from artsim.modelfile import ModelFileError
from artsim.network import SiameseSimilarity

BIN = Path(sys.executable).parent


def models(run): return run.path/'models'/'genre.safetensors', run.path/'models'/'siamese.safetensors'


def test_the_siamese_loader_names_a_genre_model(tiny_run):
    genre, _ = models(tiny_run)
    with pytest.raises(ModelFileError, match=r"genre.json is the card of an artsim genre model \(chapter 04_finetune's "
                                             r"models/genre\), not of a Siamese model: give models/siamese.safetensors"):
        SiameseSimilarity.load(genre)


def test_the_genre_loaders_name_a_siamese_model(tiny_run):
    genre, siamese = models(tiny_run)
    with pytest.raises(ModelFileError, match=r"siamese.json is the card of an artsim Siamese model \(chapter 06_training's "
                                             r"models/siamese\), not of a genre model: give models/genre.safetensors"):
        load_genre_model(siamese)
    # a path as the starting weights of 02's semantic family, 04 or 05: a genre model is a ResNet50, a Siamese model not
    with pytest.raises(ModelFileError, match=r"siamese.safetensors is an artsim Siamese model \(chapter 06_training\), not "
                                             r"ResNet50 weights: give 'genre'"):
        resnet50_body(siamese)
    body = resnet50_body(genre)
    assert body[0].weight.shape == (64, 3, 7, 7)


@pytest.mark.parametrize('command', ['artsim_index', 'artsim_compare'])
def test_commands_say_it_in_one_line(tiny_run, tmp_path, command):
    genre, _ = models(tiny_run)
    images = sorted((tiny_run.path/'data'/'images').rglob('*.png'))[:2]
    args = ([images[0].parent, '--out', tmp_path/'index'] if command == 'artsim_index' else images) + ['--model', genre]
    r = subprocess.run([str(BIN/command), *map(str, args)], capture_output=True, text=True, timeout=300)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, (r.returncode, r.stderr)
    assert lines[0].startswith(f'{command}: ') and 'is the card of an artsim genre model' in lines[0], lines[0]
    assert 'give models/siamese.safetensors' in lines[0] and 'Traceback' not in r.stderr
