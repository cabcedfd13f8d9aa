"""Big folders streamed from disk (core.data.streaming): forced on tiny generated folders with CLASSIFIER_LAB_STREAM_MB=0."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core import config
from core.data import datasets, streaming, synthetic, uploads
from core.data.datasets import load_dataset


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """A data root of this test's own holding `tiny`: 3 classes of 10 generated shapes."""
    path = tmp_path / "data"
    monkeypatch.setenv(config.DATA.name, str(path))
    uploads.import_source(synthetic.make(tmp_path / "src", "shapes", 3, 10), "tiny")
    datasets._load.cache_clear()  # the switch below must not meet a dataset cached by another test
    yield path
    datasets._load.cache_clear()


def load(monkeypatch, stream: bool, name: str = "tiny", size=(40, 40)):
    monkeypatch.setenv(config.STREAM_MB.name, "0" if stream else "100000")
    datasets._load.cache_clear()
    return load_dataset(name, image_size=size)


def cache_files(root: Path) -> list[Path]:
    return sorted((root / ".cache" / "decoded").glob("*.npy"))


def test_threshold_follows_the_env(monkeypatch):
    monkeypatch.setenv(config.STREAM_MB.name, "1")
    assert streaming.should_stream(20, (180, 180)) and not streaming.should_stream(5, (180, 180))
    monkeypatch.setenv(config.STREAM_MB.name, "")  # unset: the default, 1 GB
    assert not streaming.should_stream(10_000, (180, 180)) and streaming.should_stream(50_000, (180, 180))
    monkeypatch.setenv(config.STREAM_MB.name, "not a number")  # a typo is named, never silently replaced
    with pytest.raises(config.ConfigError, match="CLASSIFIER_LAB_STREAM_MB='not a number'"):
        streaming.should_stream(10_000, (180, 180))


def test_streamed_split_and_pixels_equal_the_in_memory_path(root, monkeypatch):
    mem, disk = load(monkeypatch, False), load(monkeypatch, True)
    assert streaming.is_lazy(disk.x_train) and streaming.is_lazy(disk.x_test)
    assert not streaming.is_lazy(mem.x_train)
    assert disk.class_names == mem.class_names and disk.input_shape == mem.input_shape == (40, 40, 3)
    np.testing.assert_array_equal(disk.y_train, mem.y_train)
    np.testing.assert_array_equal(disk.y_test, mem.y_test)
    for field in ("train_files", "test_files", "train_hashes", "test_hashes"):  # the same identities, too
        np.testing.assert_array_equal(getattr(disk, field), getattr(mem, field))
    np.testing.assert_array_equal(np.asarray(disk.x_train), mem.x_train)  # same decoder, same order
    np.testing.assert_array_equal(disk.x_test[3], mem.x_test[3])           # one image, read on its own
    np.testing.assert_array_equal(disk.x_test[[4, 1]], mem.x_test[[4, 1]])
    np.testing.assert_array_equal(disk.x_train[:5, ::4, ::4], mem.x_train[:5, ::4, ::4])
    assert "streamed from a decoded cache" in disk.source


def test_the_cache_is_built_once_and_rebuilt_when_a_file_changes(root, monkeypatch):
    load(monkeypatch, True)
    [npy] = cache_files(root)
    first = npy.stat().st_mtime_ns
    again = load(monkeypatch, True)  # a new process would find it the same way: by the files' key
    assert cache_files(root) == [npy] and npy.stat().st_mtime_ns == first
    assert np.load(npy, mmap_mode="r").shape == (30, 40, 40, 3)  # a plain .npy, inspectable with numpy
    assert len(again.y_train) + len(again.y_test) == 30
    victim = next((root / "tiny" / "circle").iterdir())
    victim.unlink()
    changed = load(monkeypatch, True)
    assert len(changed.y_train) + len(changed.y_test) == 29
    [new] = cache_files(root)  # the old version's file is gone, not left to fill the disk
    assert new != npy
    assert again.x_test[0].shape == (40, 40, 3)  # ...but a training that started on it still reads it


@pytest.mark.quick
def test_a_corrupt_image_in_a_streamed_folder_is_named_not_fatal(root, monkeypatch):
    bad = root / "tiny" / "square" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    ds = load(monkeypatch, True)
    assert "1 unreadable file(s) skipped (square/broken.jpg)" in ds.source
    assert len(ds.y_train) + len(ds.y_test) == 30


def test_a_truncated_cache_is_rebuilt(root, monkeypatch):
    load(monkeypatch, True)
    [npy] = cache_files(root)
    with open(npy, "r+b") as f:
        f.truncate(npy.stat().st_size - 100)
    ds = load(monkeypatch, True)
    assert np.asarray(ds.x_test).shape == (len(ds.y_test), 40, 40, 3)


def test_a_data_root_that_cannot_hold_the_cache_uses_the_users_cache_folder(root, monkeypatch, tmp_path):
    (root / ".cache").write_text("not a folder")  # as unwritable as a read-only mount, even for root
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    ds = load(monkeypatch, True)
    assert isinstance(ds.x_train, streaming.DiskImages)
    assert len(list((tmp_path / "user-cache" / "classifier-lab" / "decoded").glob("*.npy"))) == 1
    assert np.asarray(ds.x_test).shape == (len(ds.y_test), 40, 40, 3)


KILLED_BUILD = """
import sys, time
from core.data import datasets, streaming
decoded = streaming.decoded
def slow(root, files, size, read):
    def read_slowly(*args):
        time.sleep(0.2)
        return read(*args)
    return decoded(root, files, size, read_slowly)
streaming.decoded, streaming.CHUNK = slow, 1
datasets.load_dataset("tiny", image_size=(40, 40))
"""


def test_a_build_killed_midway_leaves_no_partial_cache_behind(root, monkeypatch):
    import os
    import signal
    import subprocess
    import sys
    import time

    folder = root / ".cache" / "decoded"
    env = {**os.environ, config.STREAM_MB.name: "0", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    build = subprocess.Popen([sys.executable, "-c", KILLED_BUILD], env=env)
    end = time.monotonic() + 60
    while not list(folder.glob(".*.tmp")) and build.poll() is None and time.monotonic() < end:
        time.sleep(0.05)
    os.kill(build.pid, signal.SIGKILL)
    build.wait()
    [partial] = list(folder.glob(".*.tmp"))  # kill -9: no `finally` ran
    busy = folder / f".other.npy.{os.uname().nodename}.{os.getpid()}.tmp"  # a live process's build
    busy.write_bytes(b"")
    ds = load(monkeypatch, True)
    assert not partial.exists() and busy.exists()
    assert np.asarray(ds.x_test).shape == (len(ds.y_test), 40, 40, 3) and len(cache_files(root)) == 1


def test_train_one_epoch_streamed_writes_test_probs(root, monkeypatch, runs_dir):
    from core.analysis.inference import predict
    from core.train.trainer import TrainConfig, train

    monkeypatch.setenv(config.STREAM_MB.name, "0")
    datasets._load.cache_clear()

    def whole(self, dtype=None, copy=None):
        raise AssertionError(f"training read all {len(self)} images of a streamed dataset at once")

    with monkeypatch.context() as m:  # predictions, embeddings and the data version go a chunk at a time
        m.setattr(streaming.DiskImages, "__array__", whole)
        run = train(TrainConfig(dataset="tiny", arch="cnn", epochs=1, batch_size=8, image_size=(40, 40),
                                runs_dir=str(runs_dir)))
    ds = load_dataset("tiny", image_size=(40, 40))
    assert streaming.is_lazy(ds.x_test)
    assert run.meta["status"] == "finished" and run.meta["data"]["n_test"] == len(ds.y_test)
    probs = np.load(run.path / "test_probs.npy")
    assert probs.shape == (len(ds.y_test), 3)
    from core.model import compat
    again = predict(compat.load_model(run.model_path), ds.x_test)  # chunked over the cache: the same numbers
    np.testing.assert_allclose(again, probs, atol=1e-5)


def test_a_fix_that_adds_images_keeps_a_streamed_set_on_disk(root, monkeypatch, runs_dir):
    from core.data import fixes
    from core.train.trainer import TrainConfig, train

    ds = load(monkeypatch, True)
    overlay = fixes.Overlay("tiny", runs_dir)
    key, digest = fixes.item_ref(ds, "train", 0)  # own images are named by file and content hash
    overlay.record("exclude", "train", key, hash=digest)
    added = np.full((40, 40, 3), 7, np.uint8)
    overlay.add_image(added, 2, view="predict")

    def whole(self, dtype=None, copy=None):
        raise AssertionError(f"read all {len(self)} images of a streamed dataset at once")

    with monkeypatch.context() as m:
        m.setattr(streaming.DiskImages, "__array__", whole)
        x = fixes.apply(ds, overlay).dataset.x_train
        assert streaming.is_lazy(x) and len(x) == len(ds.y_train) and x.shape[1:] == (40, 40, 3)
        np.testing.assert_array_equal(x[-1], added)
        np.testing.assert_array_equal(x[[0, -1]][0], ds.x_train[1])  # the excluded first image is gone
        assert x.subset([-1]).fingerprint() != x.subset([0]).fingerprint()
        run = train(TrainConfig(dataset="tiny", arch="cnn", epochs=1, batch_size=8, image_size=(40, 40),
                                fixes=True, runs_dir=str(runs_dir)))
    assert run.meta["status"] == "finished", run.meta.get("error")
    data = run.meta["data"]
    assert data["n_train"] + data["n_val"] == len(ds.y_train)  # one out, one in
    assert run.meta["data_version"]["fixes"] == {**run.meta["data_version"]["fixes"], "applied": 2, "skipped": 0}


def test_auto_recipe_and_validation_stream_too(root, monkeypatch, runs_dir):
    from core.train.trainer import TrainConfig, train

    monkeypatch.setenv(config.STREAM_MB.name, "0")
    datasets._load.cache_clear()
    run = train(TrainConfig(dataset="tiny", arch="auto", epochs=1, image_size=(40, 40), validation_split=0.2,
                            runs_dir=str(runs_dir)))
    assert run.meta["status"] == "finished" and run.meta["recipe"]["steps_per_epoch"] >= 30
    assert run.meta["data"]["n_val"] > 0 and "val_loss" in run.history()["epochs"][-1]


def test_pages_show_a_streamed_dataset_reading_only_the_images_on_screen(root, monkeypatch, runs_dir):
    """Data, Mistakes and Label errors on a streamed dataset (AppTest): each image shown is read on its own;
    reading the whole set (DiskImages.__array__) would fail the test."""
    import streamlit.testing.v1.app_test as app_test
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest

    from app_helpers import assert_clean, open_page
    from core.train.trainer import TrainConfig, train

    class NavigationOnly(PagesManager):  # AppTest with st.navigation, as tests/app/test_hostile_app.py does
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            PagesManager.uses_pages_directory = False

    monkeypatch.setattr(app_test, "PagesManager", NavigationOnly)
    monkeypatch.setenv(config.STREAM_MB.name, "0")
    datasets._load.cache_clear()
    run = train(TrainConfig(dataset="tiny", arch="cnn", epochs=1, batch_size=8, runs_dir=str(runs_dir)))
    reads = []

    def whole(self, dtype=None, copy=None):
        raise AssertionError(f"a page read all {len(self)} images of a streamed dataset")

    def counted(self, index=slice(None)):
        out = original(self, index)
        reads.append(len(out))
        return out

    original = streaming.DiskImages.read
    monkeypatch.setattr(streaming.DiskImages, "__array__", whole)
    monkeypatch.setattr(streaming.DiskImages, "read", counted)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "streamlit_app.py"), default_timeout=120)
    at.session_state["active_dataset"], at.session_state["active_model"] = "tiny", str(run.path)
    at.run()
    for page in ("app_pages/data.py", "app_pages/mistakes.py", "app_pages/label_errors.py"):
        reads.clear()
        open_page(at, page)
        assert_clean(at, page)
        assert any("streamed from a decoded cache" in c.value for c in at.caption), page
        assert reads and max(reads) <= 6, (page, reads)  # single images (the augmentation preview: 6)


def test_a_label_search_pools_a_streamed_own_set_lazily_with_the_same_identities(root, monkeypatch, runs_dir):
    from core.data import fixes
    from core.train import label_search

    mem, disk = load(monkeypatch, False), load(monkeypatch, True)
    overlay = fixes.Overlay("tiny", runs_dir)
    key, digest = fixes.item_ref(mem, "test", 0)
    overlay.record("exclude", "test", key, hash=digest)  # left out of the search
    overlay.add_image(np.full((40, 40, 3), 9, np.uint8), 1, view="predict")  # searched, as 'added'
    a, b = (label_search.pool(fixes.apply(ds, overlay)) for ds in (mem, disk))
    assert streaming.is_lazy(b.x) and not streaming.is_lazy(a.x) and len(b.y) == 30
    np.testing.assert_array_equal(np.asarray(b.x), a.x)
    for field in ("y", "keys", "hashes", "splits"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert key not in set(b.keys) and list(b.splits).count("added") == 1
    assert list(b.splits).count("test") == len(mem.y_test) - 1
