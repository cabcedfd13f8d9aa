"""Every own image keeps its identity (core.data.identity): fixes, splits and searches survive a changing dataset.

The `pets` dataset is real PNG files made through core.data.uploads, as the My data page makes them."""
from __future__ import annotations

import io
import json
import os
import shutil
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import InvalidValue, config
from core.data import fixes, identity, owndata, uploads
from core.data.datasets import hash_split, load_dataset, stratified_split
from core.data.images import content_hash


def photo(seed: int, colour) -> bytes:
    """A small PNG, different for every seed (noise over a base colour), so each file has its own content."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.asarray(colour) + rng.integers(-40, 40, (24, 24, 3)), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def add(name: str, cls: str, numbers, colour) -> None:
    """Photos cls_NN.png for these numbers, uploaded as My data does (the dataset is made if missing)."""
    owndata.create(name)
    seed = zlib.crc32(cls.encode())
    uploads.add_files(name, cls, [(f"{cls}_{i:02d}.png", photo(seed + i, colour)) for i in numbers])


@pytest.fixture
def pets(tmp_path, monkeypatch, runs_dir) -> Path:
    """Own dataset `pets`: cats and dogs, 10 each; returns its folder."""
    monkeypatch.setenv(config.DATA.name, str(tmp_path / "data"))
    add("pets", "cats", range(10), (200, 120, 40))
    add("pets", "dogs", range(10), (40, 90, 200))
    return tmp_path / "data" / "pets"


def where(ds, file: str) -> tuple[str, int]:
    for split in ("train", "test"):
        files = list(getattr(ds, f"{split}_files"))
        if file in files:
            return split, files.index(file)
    raise AssertionError(f"{file} is not in the dataset")


def splits(ds) -> dict[str, str]:
    return {**{f: "train" for f in ds.train_files}, **{f: "test" for f in ds.test_files}}


def kept_files(prep) -> set[str]:
    """The files a prepared dataset trains or tests on (excluded ones left out)."""
    return set(prep.dataset.train_files) | set(np.asarray(prep.dataset.test_files)[prep.test_keep])


def test_content_hash_names_bytes_and_arrays():
    data = photo(1, (0, 0, 0))
    assert content_hash(data) == content_hash(io.BytesIO(data).getvalue()) and len(content_hash(data)) == 16
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert content_hash(a) == content_hash(a.copy()) != content_hash(a.reshape(4, 3)) != content_hash(a.T.copy())


@pytest.mark.quick
def test_own_images_carry_file_and_hash_and_the_split_follows_the_hash(pets):
    ds = load_dataset("pets", image_size=(24, 24))
    assert ds.has_files and len(ds.train_files) == len(ds.y_train) and len(ds.test_hashes) == len(ds.y_test)
    for split in ("train", "test"):
        for f, h in zip(getattr(ds, f"{split}_files"), getattr(ds, f"{split}_hashes")):
            assert content_hash(pets / f) == h
    labels = {f: ds.class_names[y] for f, y in zip(ds.train_files, ds.y_train)}
    assert all(f.startswith(f"{cls}/") for f, cls in labels.items())
    for f in ds.test_files:  # a test image is one whose hash falls in the first 20 % of hash space
        assert int(content_hash(pets / f)[:8], 16) < 0.2 * 16**8
    assert "split by content hash" in ds.source


def test_adding_removing_or_renaming_images_moves_no_other_image_between_splits(pets):
    before = splits(load_dataset("pets", image_size=(24, 24)))
    add("pets", "cats", range(10, 15), (200, 120, 40))
    add("pets", "dogs", range(10, 15), (40, 90, 200))
    after = splits(load_dataset("pets", image_size=(24, 24)))
    assert len(after) == 30 and all(after[f] == s for f, s in before.items())
    gone = next(iter(before))
    (pets / gone).unlink()
    os.rename(pets / "dogs" / "dogs_03.png", pets / "cats" / "renamed.png")  # moved to another class, renamed
    later = splits(load_dataset("pets", image_size=(24, 24)))
    assert gone not in later and later["cats/renamed.png"] == before["dogs/dogs_03.png"]
    assert all(later[f] == s for f, s in after.items() if f in later)


def test_a_class_that_would_test_on_all_its_images_trains_on_them():
    y = np.array([0, 0, 1, 1, 1])
    hashes = np.array(["00000000" + "0" * 8, "10000000" + "0" * 8, "00000001" + "0" * 8, "f" * 16, "e" * 16])
    train, test = hash_split(y, hashes)
    assert train.tolist() == [0, 1, 3, 4] and test.tolist() == [2]


def test_the_pets_exclusion_stays_on_cats_00_when_photos_are_added(pets):
    """The issue's sequence: exclude cats/cats_00.png, add two cats, reload: still cats_00.png, and only it."""
    ds = load_dataset("pets", image_size=(24, 24))
    overlay = fixes.Overlay("pets")
    split, i = where(ds, "cats/cats_00.png")
    key, digest = fixes.item_ref(ds, split, i)
    assert key == "cats/cats_00.png" and digest == content_hash(pets / "cats" / "cats_00.png")
    overlay.record("exclude", split, key, view="mistakes", hash=digest)
    with pytest.raises(InvalidValue, match="by its file"):
        overlay.record("exclude", "train", 0)  # own images are never named by a position
    add("pets", "cats", (20, 21), (200, 120, 40))
    again = load_dataset("pets", image_size=(24, 24))
    assert len(again.y_train) + len(again.y_test) == 22
    prep = fixes.apply(again, overlay)
    everything = set(again.train_files) | set(again.test_files)
    assert everything - kept_files(prep) == {"cats/cats_00.png"}
    assert {"cats/cats_20.png", "cats/cats_21.png"} <= kept_files(prep)
    assert prep.version["fixes"]["skipped"] == 0 and prep.places[overlay.state()[0][0].id].state == "found"


def test_a_renamed_or_moved_file_keeps_its_relabel_and_a_deleted_one_is_named_gone(pets):
    ds = load_dataset("pets", image_size=(24, 24))
    overlay = fixes.Overlay("pets")
    moved = fixes.item_ref(ds, *where(ds, "cats/cats_03.png"))
    relabel = overlay.record("relabel", where(ds, "cats/cats_03.png")[0], *moved[:1], 1, "dogs", hash=moved[1])
    deleted = fixes.item_ref(ds, *where(ds, "dogs/dogs_05.png"))
    gone = overlay.record("exclude", where(ds, "dogs/dogs_05.png")[0], deleted[0], hash=deleted[1])
    os.rename(pets / "cats" / "cats_03.png", pets / "cats" / "sofa.png")
    (pets / "dogs" / "dogs_05.png").unlink()
    again = load_dataset("pets", image_size=(24, 24))
    prep = fixes.apply(again, overlay)
    split, i = where(again, "cats/sofa.png")
    labels = prep.dataset.y_train if split == "train" else prep.dataset.y_test
    assert again.class_names[labels[i]] == "dogs" and prep.version["fixes"]["skipped"] == 1
    placed = dict((f.id, p) for f, p in fixes.placed(again, overlay)[0])
    assert placed[relabel.id].state == "moved" and placed[relabel.id].file == "cats/sofa.png"
    assert placed[gone.id].state == "gone" and fixes.NOTES["gone"] == "no longer in the dataset"
    assert fixes.whom(relabel, placed[relabel.id]) == "cats/sofa.png"


def test_a_new_class_folder_does_not_shift_a_relabel(pets):
    ds = load_dataset("pets", image_size=(24, 24))
    overlay = fixes.Overlay("pets")
    split, i = where(ds, "cats/cats_01.png")
    key, digest = fixes.item_ref(ds, split, i)
    overlay.record("relabel", split, key, 1, "dogs", hash=digest)
    add("pets", "birds", range(3), (250, 250, 250))  # sorts first: "dogs" is class 2 now
    again = load_dataset("pets", image_size=(24, 24))
    prep = fixes.apply(again, overlay)
    split, i = where(again, "cats/cats_01.png")
    assert again.class_names == ("birds", "cats", "dogs")
    assert (prep.dataset.y_train if split == "train" else prep.dataset.y_test)[i] == 2


def legacy_line(overlay: fixes.Overlay, fix_id: str, split: str, index: int, label=None, name=None, when=None):
    """A fix as versions before file keys wrote it: own images by their position in the seeded 80/20 split."""
    op = "relabel" if label is not None else "exclude"
    entry = {"fix": {"id": fix_id, "op": op, "split": split, "key": index, "label": label, "label_name": name,
                     "view": "mistakes", "when": when or time.strftime("%Y-%m-%d %H:%M:%S"), "file": None}}
    overlay.dir.mkdir(parents=True, exist_ok=True)
    with open(overlay.path, "a") as f:
        f.write(json.dumps(entry) + "\n")


def age(folder: Path, seconds: float = 3600) -> None:
    """Date every file and folder of the dataset back, as if it was made before the old fixes."""
    past = time.time() - seconds
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (past, past))


def old_order(folder: Path) -> dict[str, list[str]]:
    """The files of each split in the order the loader had before content keys: classes then names, split 80/20
    per class with seed 0 (computed here from the folder, independently of core.data.identity)."""
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    files = [f"{c}/{p.name}" for c in classes for p in sorted((folder / c).iterdir())]
    labels = np.array([classes.index(f.split("/")[0]) for f in files])
    train, test = stratified_split(labels, 0.2, 0)
    return {"train": [files[i] for i in train], "test": [files[i] for i in test]}


def test_an_old_position_keyed_overlay_is_converted_once_when_the_dataset_is_unchanged(pets):
    age(pets)
    old = old_order(pets)
    overlay = fixes.Overlay("pets")
    legacy_line(overlay, "old1", "train", 3, 1, "dogs")
    legacy_line(overlay, "old2", "test", 0)
    ds = load_dataset("pets", image_size=(24, 24))
    assert overlay.convert(ds) == {}
    active = {f.id: f for f in overlay.state()[0]}
    assert active["old1"].key == old["train"][3] and active["old1"].converted == "train #3"
    assert active["old1"].hash == content_hash(pets / old["train"][3])
    assert active["old2"].key == old["test"][0] and active["old2"].op == "exclude"
    lines = len(overlay.lines())
    assert overlay.convert(ds) == {} and len(overlay.lines()) == lines  # once: nothing left to convert
    add("pets", "cats", (30, 31), (200, 120, 40))  # the dataset changes after the conversion: the fix holds
    prep = fixes.apply(load_dataset("pets", image_size=(24, 24)), overlay)
    assert old["test"][0] not in kept_files(prep) and prep.version["fixes"]["skipped"] == 0
    split, i = where(prep.dataset, old["train"][3])
    assert (prep.dataset.y_train if split == "train" else prep.dataset.y_test)[i] == 1


def test_an_old_overlay_of_a_dataset_changed_since_is_flagged_never_repointed(pets):
    age(pets)
    overlay = fixes.Overlay("pets")
    legacy_line(overlay, "old", "train", 3, 1, "dogs", when=time.strftime("%Y-%m-%d %H:%M:%S",
                                                                            time.localtime(time.time() - 600)))
    add("pets", "cats", (40,), (200, 120, 40))  # after the fix was made: positions may mean other images now
    ds = load_dataset("pets", image_size=(24, 24))
    flagged = overlay.convert(ds)
    assert list(flagged) == ["old"] and flagged["old"].state == "flagged"
    assert overlay.state()[0][0].key == 3  # not rewritten
    prep = fixes.apply(ds, overlay)
    assert prep.version["fixes"]["skipped"] == 1 and prep.places["old"].state == "flagged"
    assert np.array_equal(prep.dataset.y_train, ds.y_train) and np.array_equal(prep.dataset.y_test, ds.y_test)
    assert "not applied" in fixes.NOTES["flagged"]


def test_split_versions_tell_runs_tested_on_other_images_apart(pets):
    ds = load_dataset("pets", image_size=(24, 24))
    first = identity.split_version(ds)
    assert first["method"] == identity.SPLIT_METHOD and first["n_test"] == len(ds.y_test)
    add("pets", "dogs", range(50, 60), (40, 90, 200))
    later = identity.split_version(load_dataset("pets", image_size=(24, 24)))
    same = identity.split_version(load_dataset("pets", image_size=(24, 24)))
    assert later == same
    moved_into_test = later["n_test"] != first["n_test"]
    assert (later["test"] != first["test"]) == moved_into_test  # only new test images change the test set
    assert identity.same_test_images({"split": first}, {"split": first})
    assert identity.same_test_images({"split": first}, {"split": {**first, "test": "other"}}) is False
    assert identity.same_test_images({}, {"split": first}) is None


def test_a_dataset_folder_copied_elsewhere_keeps_its_identities(pets, tmp_path):
    ds = load_dataset("pets", image_size=(24, 24))
    shutil.copytree(pets, pets.parent / "pets_copy")
    copy = load_dataset("pets_copy", image_size=(24, 24))
    assert splits(copy) == splits(ds) and set(copy.train_hashes) == set(ds.train_hashes)


def test_compare_warns_when_two_runs_were_tested_on_other_images(pets):
    from core.analysis.compare import split_warning

    before = identity.split_version(load_dataset("pets", image_size=(24, 24)))
    add("pets", "cats", range(60, 80), (200, 120, 40))  # 20 more: some of them are test images
    ds = load_dataset("pets", image_size=(24, 24))
    after = identity.split_version(ds)
    assert after["test"] != before["test"]
    assert "tested on different images" in split_warning(ds, {"split": before}, {"split": after})
    assert split_warning(ds, {"split": after}, {"split": after}) is None
    assert "before runs recorded" in split_warning(ds, {}, {"split": after})  # an own dataset's older run
