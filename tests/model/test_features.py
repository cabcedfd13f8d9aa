"""The feature cache (core.model.features): images are computed once, by content, across calls and processes."""
import numpy as np
import pytest

from core.model import features


def mean_colour(x, batch_size):
    """A real, cheap 'backbone': each image's mean colour."""
    return np.asarray(x, np.float32).mean(axis=(1, 2))


@pytest.mark.quick
def test_each_image_is_computed_once_by_its_content(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    images[5] = images[0]  # the same picture twice
    folder = tmp_path / "feat"
    before = features.COUNTS["computed"]
    first = features.cached(mean_colour, images, folder, (3,))
    assert features.COUNTS["computed"] - before == 5
    assert np.allclose(first, mean_colour(images, 0), atol=0.05)  # stored as float16
    again = features.cached(mean_colour, images[::-1], folder, (3,))  # other order, same images
    assert features.COUNTS["computed"] - before == 5 and np.array_equal(again, first[::-1])
    features._INDEX.clear()  # another process: only the files on disk
    grown = features.cached(mean_colour, np.concatenate([images, images[:1] // 2]), folder, (3,))
    assert features.COUNTS["computed"] - before == 6 and np.array_equal(grown[:6], first)


def test_keys_tell_content_shape_and_dtype_apart():
    a = np.zeros((4, 4), np.uint8)
    assert features.content_key(a) == features.content_key(a.copy())
    assert len({features.content_key(a), features.content_key(a.reshape(2, 8)),
                features.content_key(a.astype(np.int16)), features.content_key(a + 1)}) == 4
