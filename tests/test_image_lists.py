"""One input contract for the two similarity APIs: `descriptor_similarity_matrix` and `SiameseSimilarity.similarity_matrix`
refuse the same bad inputs with the same exception and the same message (both check lists with `artsim.data.image_list`
and read each image with `load_image`)."""
import warnings
from pathlib import Path
import numpy as np, pytest
from PIL import Image
from artsim.data import ImageLoadError, image_list
from artsim.similarity import descriptor_similarity_matrix
import torch
from artsim.backbone import IMAGENET_STATS, feature_dim, resnet50_body
from artsim.network import SiameseNet, SiameseSimilarity, build_head, fit_inputs

GOOD = [np.full((48, 64, 3), 120, np.uint8)]


@pytest.fixture(scope='module')
def siamese():
    pooling = {1: 2, 4: 1}  # a small random network of the trained one's architecture
    fitted = fit_inputs(torch.randn(20, feature_dim(pooling), generator=torch.Generator().manual_seed(3)), pca_dim=8)
    net = SiameseNet(resnet50_body('random', seed=3), pooling, build_head(fitted, embed_dim=16, sketch_dim=0, seed=3))
    return SiameseSimilarity(net, dict(input_size=32, normalisation=IMAGENET_STATS, target='combined'), batch_size=4)


def bad_inputs(tmp: Path) -> dict:
    "name -> (what is passed as A, the exception expected, a part of its message)."
    (tmp / 'folder.jpg').mkdir(exist_ok=True)
    (tmp / 'text.jpg').write_text('not an image')
    return {
        'a single path string': ('photo.jpg', TypeError, 'got a single str: put it in a list'),
        'a single Path': (Path('photo.jpg'), TypeError, 'got a single PosixPath: put it in a list'),
        'a single PIL image': (Image.new('RGB', (40, 40)), TypeError, 'put it in a list'),
        'a single array': (GOOD[0], TypeError, 'got a single ndarray: put it in a list'),
        'a single bytes': (b'\x89PNG', TypeError, 'got a single bytes: put it in a list'),
        'an empty list': ([], ValueError, 'got an empty one'),
        'an empty generator': ((x for x in []), ValueError, 'got an empty one'),
        'not a list': (3, TypeError, 'got int'),
        'a missing file': ([tmp / 'missing.jpg'], ImageLoadError, 'missing.jpg: no such file'),
        'a directory': ([tmp / 'folder.jpg'], ImageLoadError, 'folder.jpg: a directory'),
        'a text file': ([tmp / 'text.jpg'], ImageLoadError, 'not an image file'),
        'empty bytes': ([b''], ImageLoadError, 'empty bytes'),
        'a float array': ([np.zeros((8, 8, 3))], ImageLoadError, 'expected a uint8 array'),
        'an unsupported type': ([1.5], ImageLoadError, 'unsupported source type float'),
    }


def test_both_similarity_apis_refuse_the_same_inputs_with_the_same_messages(siamese, tmp_path):
    table = bad_inputs(tmp_path)
    apis = {'descriptor_similarity_matrix': descriptor_similarity_matrix, 'SiameseSimilarity.similarity_matrix': siamese.similarity_matrix}
    for name, (A, kind, part) in table.items():
        messages = {}
        for api, f in apis.items():
            x = list(A) if isinstance(A, list) else A
            if name == 'an empty generator': x = (y for y in [])
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', UserWarning)  # the random-init ResNet50 of the shipped calibration warns by design
                with pytest.raises(kind) as e: f(x, GOOD)
            messages[api] = str(e.value)
            assert part in messages[api], (name, api, messages[api])
        assert len(set(messages.values())) == 1, (name, messages)
    # the same holds with the bad input in second place
    with pytest.raises(TypeError, match='put it in a list'): descriptor_similarity_matrix(GOOD, 'photo.jpg')
    with pytest.raises(TypeError, match='put it in a list'): siamese.similarity_matrix(GOOD, 'photo.jpg')


def test_embed_takes_the_same_lists(siamese):
    assert siamese.embed(GOOD * 3).shape == (3, 16)
    assert siamese.embed(np.stack(GOOD * 2)).shape == (2, 16)  # a batch array is a list of images
    with pytest.raises(TypeError, match='put it in a list'): siamese.embed('photo.jpg')
    assert image_list(iter(GOOD)) == GOOD
