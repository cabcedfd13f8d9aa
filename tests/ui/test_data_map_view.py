"""The data map's app layer (ui.data_map): which version of a dataset a cached look belongs to, and the hover
atlas of all its images (training images first, as core.analysis.data_map orders them)."""
from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from core.data.registry import Dataset


def own(files: list[str], labels: list[int]) -> Dataset:
    """A tiny own Dataset: image i is flat grey level 10·i; the first two images train, the rest test."""
    x = np.stack([np.full((8, 8, 3), 10 * i, np.uint8) for i in range(len(files))])
    f, h, y = np.array(files), np.array([f"h{i}" for i in range(len(files))]), np.array(labels)
    return Dataset("mine", ("a", "b"), x[:2], y[:2], x[2:], y[2:], "test", "photos", f[:2], f[2:], h[:2], h[2:])


@pytest.mark.quick
def test_the_version_changes_with_an_added_file_or_a_label_and_the_atlas_reads_train_then_test():
    from ui.data_map import _AllImages, version
    from ui.map_hover import atlas

    base = own(["a/1.png", "a/2.png", "b/3.png"], [0, 0, 1])
    assert version(base) == version(own(["a/1.png", "a/2.png", "b/3.png"], [0, 0, 1]))
    assert version(base) != version(own(["a/1.png", "a/2.png", "b/3.png", "b/4.png"], [0, 0, 1, 1]))
    assert version(base) != version(own(["a/1.png", "a/2.png", "b/3.png"], [0, 1, 1]))
    both = _AllImages(base)
    assert len(both) == 3 and [int(img.mean()) for img in both[0:3]] == [0, 10, 20]
    sheet, cols = atlas(both)
    assert cols == 2 and Image.open(BytesIO(sheet)).size == (16, 16)
