"""The hover atlas: every test image in its tile, grey or colour, from arrays or a streamed folder's lazy images."""
import io

import numpy as np
import pytest
from PIL import Image

from ui.map_hover import atlas


def _tiles(data: bytes, cols: int, size: int, n: int) -> list[np.ndarray]:
    sheet = np.asarray(Image.open(io.BytesIO(data)).convert("L"), np.float32)
    return [sheet[(i // cols) * size:(i // cols + 1) * size, (i % cols) * size:(i % cols + 1) * size] for i in range(n)]


def test_atlas_places_each_image_in_its_tile():
    rng = np.random.default_rng(0)
    levels = rng.permutation(np.linspace(0, 255, 30).astype(np.uint8))
    images = np.repeat(levels, 28 * 28).reshape(30, 28, 28, 1)  # flat grey squares, each its own level
    data, cols = atlas(images)
    assert cols == 6 and Image.open(io.BytesIO(data)).size == (6 * 28, 5 * 28)
    means = [t.mean() for t in _tiles(data, cols, 28, 30)]
    assert np.allclose(means, levels, atol=4)  # lossy WebP, but each tile is its own image


@pytest.mark.quick
def test_atlas_shrinks_big_colour_images_and_reads_lazily():
    class Lazy:  # like core.data.streaming.DiskImages: slices read on demand; the whole array must not be taken
        shape = (700, 96, 96, 3)

        def __len__(self):
            return 700

        def __getitem__(self, key):
            assert isinstance(key, slice) and key.stop - key.start <= 512
            idx = np.arange(700)[key]
            return np.broadcast_to((idx % 256).astype(np.uint8)[:, None, None, None], (len(idx), 96, 96, 3)).copy()

        def __array__(self, *a, **k):
            raise AssertionError("read whole")

    data, cols = atlas(Lazy())
    assert cols == 27 and Image.open(io.BytesIO(data)).mode == "RGB"
    assert Image.open(io.BytesIO(data)).size == (27 * 32, 26 * 32)
    means = [t.mean() for t in _tiles(data, cols, 32, 700)]
    assert np.allclose(means, np.arange(700) % 256, atol=4)
