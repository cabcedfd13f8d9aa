"""Hostile and awkward input, faults and load: clear one-line messages, correct answers, nothing lost.

- real digits in awkward file formats get the right class from the bundled MNIST model, in process and
  through the CLI, in one batch with broken files that each get a one-line error naming the file;
- models that don't fit a dataset, or hold code (Lambda), are refused with a message, never a traceback;
  importing a user's .keras file never uses its name as a path;
- an unwritable or full runs folder fails the run with a readable message and never lists it as finished;
- many trainings in one process don't grow its memory without bound.

The AppTest side of the same faults is in test_hostile_app.py.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import signal
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import core.cli.main as cli
from core.model import compat
from core.store import runs
from core.store.runs import RunError
from app_helpers import save_model


# --- the bundled MNIST model and two clear digits it is sure of ---------------------------------------------

@pytest.fixture(scope="session")
def bundled():
    """The bundled MNIST model: (run, loaded model)."""
    try:
        run = runs.resolve("mnist")
    except RunError as e:
        pytest.fail(f"the bundled MNIST model is missing: {e}")
    return run, compat.load_model(run.model_path)


@pytest.fixture(scope="session")
def clear_digits(bundled, mnist):
    """{'1': 112×112 white-on-black uint8, '7': …}: the real MNIST test digits the model is surest of."""
    from core.analysis.inference import predict

    _, model = bundled
    probs = predict(model, mnist.x_test)
    out = {}
    for label in (1, 7):
        idx = np.flatnonzero((mnist.y_test == label) & (probs.argmax(1) == label))
        best = idx[probs[idx, label].argmax()]
        big = Image.fromarray(np.asarray(mnist.x_test[best])).resize((112, 112), Image.BILINEAR)
        out[str(label)] = np.asarray(big)
    return out


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def paper(ink: np.ndarray, bg: int = 255, pen: int = 0) -> np.ndarray:
    """White-on-black ink as a pen of grey `pen` on paper of grey `bg` (uint8)."""
    a = ink.astype(np.float32) / 255.0
    return np.round(bg + (pen - bg) * a).astype(np.uint8)


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size, with no pixel data: a decompression bomb as open() sees it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IEND", b""))


def _cmyk_jpeg(ink):
    img = Image.fromarray(paper(ink)).convert("RGB").convert("CMYK")
    assert img.mode == "CMYK"
    return encode(img, "JPEG", quality=90)


def _png16(ink):
    img = Image.fromarray(paper(ink).astype(np.uint16) * 257)
    data = encode(img, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")  # really 16 bits per pixel on disk
    return data


def _palette_png(ink):
    rgb = np.stack([paper(ink, 250, 20), paper(ink, 245, 30), paper(ink, 240, 120)], axis=-1)  # blue pen
    img = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return encode(img, "PNG")


def _la_png(ink):
    return encode(Image.fromarray(np.dstack([paper(ink), np.full(ink.shape, 255, np.uint8)]), "LA"), "PNG")


def _webp(ink):
    return encode(Image.fromarray(paper(ink, 235, 40)).convert("RGB"), "WEBP", quality=80)


def _animated_gif(ink, other):
    frames = [Image.fromarray(paper(ink)).convert("P"), Image.fromarray(paper(other)).convert("P")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2  # frame 1 is the other digit: frame 0 must be used
    return data


def _exif_rotated_jpeg(ink):
    stored = Image.fromarray(paper(ink)).rotate(90, expand=True).convert("RGB")  # camera held sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": brings it back upright
    return encode(stored, "JPEG", quality=92, exif=exif.tobytes())


def _transparent_ink(ink):
    rgba = np.zeros((*ink.shape, 4), np.uint8)
    rgba[..., :3] = (20, 20, 60)  # dark ink colour everywhere, visible only where alpha says so
    rgba[..., 3] = ink
    return encode(Image.fromarray(rgba, "RGBA"), "PNG")


def _photo(ink):
    """Dark pen on grey, unevenly lit paper, a little sensor noise, a bigger frame, JPEG."""
    rng = np.random.default_rng(0)
    page = np.full((300, 400), 0, np.uint8)
    page[90:202, 150:262] = ink
    light = np.linspace(215, 175, 400)[None, :] + np.linspace(0, -15, 300)[:, None]
    gray = light + (45 - light) * (page.astype(np.float32) / 255.0) + rng.normal(0, 3, page.shape)
    rgb = np.clip(np.stack([gray, gray * 0.98, gray * 0.93], axis=-1), 0, 255).astype(np.uint8)
    return encode(Image.fromarray(rgb), "JPEG", quality=75)


AWKWARD = {
    "cmyk.jpg": lambda d, o: _cmyk_jpeg(d),
    "sixteen_bit.png": lambda d, o: _png16(d),
    "palette.png": lambda d, o: _palette_png(d),
    "gray_alpha.png": lambda d, o: _la_png(d),
    "lossy.webp": lambda d, o: _webp(d),
    "animated.gif": _animated_gif,
    "exif_rotated.jpg": lambda d, o: _exif_rotated_jpeg(d),
    "transparent_ink.png": lambda d, o: _transparent_ink(d),
    "photo.jpg": lambda d, o: _photo(d),
}


@pytest.fixture(scope="session")
def awkward_files(clear_digits, tmp_path_factory):
    """{file name: (path, true label)} for every awkward format of a '1' and a '7'."""
    d = tmp_path_factory.mktemp("awkward")
    files = {}
    for label, other in (("1", "7"), ("7", "1")):
        for name, make in AWKWARD.items():
            path = d / f"{label}_{name}"
            path.write_bytes(make(clear_digits[label], clear_digits[other]))
            files[path.name] = (path, label)
    return files


@pytest.mark.quick
@pytest.mark.parametrize("label", ["1", "7"])
@pytest.mark.parametrize("fmt", list(AWKWARD))
def test_awkward_formats_are_predicted_right(bundled, awkward_files, fmt, label):
    from core.analysis.inference import predict_image

    run, model = bundled
    path, truth = awkward_files[f"{label}_{fmt}"]
    names = run.meta["data"]["class_names"]
    for source in (path, path.read_bytes()):  # the CLI opens paths, the app gets upload bytes
        out = predict_image(model, source, names, box=20)
        assert out["top"][0][0] == truth, (fmt, out["top"])


BAD_FILES = {
    "corrupt.png": lambda good: good[: len(good) // 3],     # a download cut short
    "empty.png": lambda good: b"",
    "drawing.svg": lambda good: b'<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28">'
                                b'<path d="M14 2 V26" stroke="black"/></svg>',
    "notes.txt": lambda good: b"this is a text file, not a picture\n",
    "bomb.png": lambda good: png_header(40_000, 40_000),  # 1.6 gigapixels claimed in a 60-byte file
}
BAD_MESSAGES = {"corrupt.png": "broken or truncated image", "empty.png": "empty file",
                "drawing.svg": "not an image", "notes.txt": "not an image", "bomb.png": "image too large"}


def test_cli_batch_of_awkward_and_broken_files(bundled, awkward_files, tmp_path, capsys):
    """One `predict` over every awkward file with the broken ones in between: each answered on its own."""
    run, _ = bundled
    good = [p for p, _ in awkward_files.values()]
    bad = []
    for name, make in BAD_FILES.items():
        (tmp_path / name).write_bytes(make(good[0].read_bytes()))
        bad.append(tmp_path / name)
    batch = [good[0], *bad[:2], *good[1:8], *bad[2:], *good[8:]]  # bad files between good ones
    # main() in this process: the output is the point, and a fresh `predict` process is checked in
    # test_bundled_models.py; an exception escaping main() fails here as a traceback would have
    returncode = cli.main(["predict", "--json", "--model", str(run.path), *map(str, batch)])
    stdout, stderr = capsys.readouterr()
    assert returncode == 1, stderr[-3000:]
    assert "Traceback" not in stderr
    rows = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert [r["file"] for r in rows] == [str(p) for p in batch if p in good]  # every good one, in order
    truth = {str(p): label for p, label in awkward_files.values()}
    wrong = {r["file"]: r["label"] for r in rows if r["label"] != truth[r["file"]]}
    assert not wrong, wrong
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == len(bad), stderr[-3000:]
    for path, line in zip(bad, errors):
        assert line.startswith(f"error: {path}: "), line  # one line each, naming the file
        assert BAD_MESSAGES[path.name] in line, line
        assert len(line) < 300
    print("\n".join(errors))


# --- models that do not fit ---------------------------------------------------------------------------------

def fake_run(runs_dir: Path, name: str, model_file: Path, dataset: str = "mnist") -> Path:
    """A finished mnist run folder whose model.keras was swapped for another model."""
    path = runs_dir / name
    path.mkdir(parents=True)
    path.joinpath("model.keras").write_bytes(model_file.read_bytes())
    runs.write_json_atomic(path / "run.json", {
        "status": "finished", "created": "2024-01-01 00:00:00", "config": {"dataset": dataset, "arch": "cnn"},
        "data": {"class_names": list("0123456789"), "input_shape": [28, 28], "source": "elsewhere"}})
    return path


@pytest.fixture(scope="session")
def misfits(tmp_path_factory):
    d = tmp_path_factory.mktemp("misfits")
    return {"rgb": save_model(d / "rgb32.keras", (32, 32, 3)), "flat": save_model(d / "flat.keras", (784,)),
            "five": save_model(d / "five.keras", (28, 28), 5), "chan": save_model(d / "chan.keras", (28, 28, 1)),
            "lambda": save_model(d / "lambda.keras", (28, 28), lam=True)}


def test_cli_evaluate_a_model_that_does_not_fit(capsys, runs_dir, misfits):
    for name, model in (("rgb", "rgb"), ("flat", "flat")):
        fake_run(runs_dir, name, misfits[model])
    expect = {"rgb": "the model takes inputs of shape 32×32×3, but mnist images are 28×28",
              "flat": "the model takes inputs of shape 784, not an image"}
    for name, text in expect.items():
        assert cli.main(["evaluate", "--model", name, "--runs-dir", str(runs_dir)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: model ") and text in err and err.count("\n") == 1, err
    # a loose file (no run.json): evaluated on the dataset given, refused with the reason
    assert cli.main(["evaluate", "--model", str(misfits["five"]), "--dataset", "mnist"]) == 2
    err = capsys.readouterr().err
    assert "the model has 5 outputs, but mnist has 10 classes" in err and err.count("\n") == 1, err
    assert cli.main(["evaluate", "--model", str(misfits["rgb"])]) == 2
    assert "pass --dataset" in capsys.readouterr().err
    assert cli.main(["predict", "--model", str(misfits["flat"]), str(misfits["flat"])]) == 2
    err = capsys.readouterr().err
    assert "cannot be used: the model takes inputs of shape 784" in err and err.count("\n") == 1, err
    assert cli.main(["predict", "--model", str(misfits["lambda"]), "x.png"]) == 2
    err = capsys.readouterr().err
    assert "not a usable Keras model" in err and err.count("\n") == 1, err  # safe mode: no code is run


# --- importing a user's own .keras file ---------------------------------------------------------------------

def test_import_uses_a_generated_name_never_the_uploaded_one(runs_dir, tmp_path, trained):
    data = trained[0].model_path.read_bytes()
    for hostile in ("../../evil.keras", "/etc/evil.keras", "..\\..\\evil.keras", "evil\n.keras", "", None):
        run = compat.import_model(data, "mnist", runs_dir, hostile)
        assert run.path.parent == runs_dir and run.usable and run.dataset == "mnist"
        assert "-mnist-imported-" in run.id and "evil" not in run.id
        assert "/" not in run.meta["imported_from"] and "\n" not in run.meta["imported_from"]
    assert not list(tmp_path.rglob("evil*")) and not Path("/etc/evil.keras").exists()
    assert sorted(p.name for p in runs_dir.iterdir() if p.name.startswith(".")) == []  # no temp file left
    run = runs.list_runs(runs_dir)[0]
    assert run.meta["data"]["class_names"] == list("0123456789") and run.meta["config"]["arch"] == "imported"
    model = compat.load_model(run.model_path)
    assert compat.run_problem(run, model) is None


def test_import_checks_the_model_and_the_dataset(runs_dir, misfits, trained, tmp_path, monkeypatch):
    good = trained[0].model_path.read_bytes()
    assert compat.inspect_model(good, runs_dir, "digits.keras") == ((28, 28), 10, ["mnist", "fashion_mnist"])
    monkeypatch.setenv("CLASSIFIER_LAB_DATA", str(tmp_path / "no-data"))
    with pytest.raises(RunError, match="32×32×3 inputs with 10 outputs"):  # no named dataset fits, no "folder"
        compat.inspect_model(misfits["rgb"].read_bytes(), runs_dir)
    cases = {
        b"": "digits.keras: empty file (0 bytes)",
        b"PK\x03\x04 this is not a zip": "digits.keras: not a usable Keras model (",
        good[: len(good) // 2]: "digits.keras: not a usable Keras model (",
        misfits["lambda"].read_bytes(): "digits.keras: not a usable Keras model (",  # safe mode refuses code
        misfits["flat"].read_bytes(): "digits.keras: the model takes inputs of shape 784, not an image",
        misfits["five"].read_bytes(): "digits.keras: the model takes 28×28 inputs with 5 outputs",
    }
    for data, message in cases.items():
        with pytest.raises(RunError) as e:
            compat.inspect_model(data, runs_dir, "digits.keras")
        assert str(e.value).startswith(message) and "\n" not in str(e.value), str(e.value)
        assert ".import-" not in str(e.value)  # the temp file's name is not the user's business
    with pytest.raises(RunError, match="32×32×3, but mnist images are 28×28$"):  # it fits no dataset here
        compat.import_model(misfits["rgb"].read_bytes(), "mnist", runs_dir, "rgb.keras")
    assert list(runs_dir.iterdir()) == []  # nothing half-made left behind


def test_import_a_channel_last_digit_model_is_wrapped(runs_dir, misfits):
    run = compat.import_model(misfits["chan"].read_bytes(), "fashion_mnist", runs_dir, "chan.keras")
    model = compat.load_model(run.model_path)
    assert model.input_shape == (None, 28, 28) and model.output_shape == (None, 10)
    assert run.meta["data"]["input_shape"] == [28, 28] and run.meta["data"]["class_names"][0] == "T-shirt/top"
    from core.analysis.inference import predict
    assert predict(model, np.zeros((3, 28, 28), np.uint8)).shape == (3, 10)


def test_import_into_an_unwritable_runs_folder(tmp_path, trained):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RunError, match=r"^cannot write to the runs folder .*file/runs: Not a directory$"):
        compat.import_model(trained[0].model_path.read_bytes(), "mnist", blocker / "runs", "m.keras")


# --- runs folders that cannot be written --------------------------------------------------------------------

@contextlib.contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False):
    """A small tmpfs at `path` (a full or read-only disk); skips the test where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to simulate a full or read-only disk here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def file_size_limit(limit: int):
    """RLIMIT_FSIZE for this process, with SIGXFSZ ignored: bigger writes fail with EFBIG (a full disk)."""
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old_limit[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)


def cli_train(runs_dir, capsys) -> tuple[int, dict, str]:
    code = cli.main(["train", "--dataset", "mnist", "--arch", "dense", "--epochs", "1", "--max-train-samples",
                     "200", "--runs-dir", str(runs_dir)])
    out, err = capsys.readouterr()
    return code, json.loads(out.strip().splitlines()[-1]), err


def test_cli_train_into_a_runs_folder_under_a_file(tmp_path, capsys):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    code, line, err = cli_train(blocker / "runs", capsys)
    assert code == 1 and "Traceback" not in err
    assert line == {"status": "failed", "run_id": None,
                    "error": f"cannot create a run in {blocker / 'runs'}: Not a directory"}


def test_cli_train_into_a_read_only_runs_folder(tmp_path, capsys):
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as ro:
        code, line, err = cli_train(ro / "runs", capsys)
    assert code == 1 and "Traceback" not in err
    assert line["status"] == "failed" and line["error"] == f"cannot create a run in {ro / 'runs'}: Read-only file system"


def _assert_failed_on_save(runs_dir: Path, line: dict, expect: str):
    assert line["status"] == "failed" and expect in line["error"], line
    (run,) = runs.list_runs(runs_dir)
    assert run.id == line["run_id"] and run.status == "failed" and not run.usable
    assert expect in run.meta["error"]
    assert not run.model_path.exists()
    assert [p.name for p in run.path.iterdir() if ".tmp" in p.name] == []  # the half-written model was freed
    assert run.history()["epochs"]  # the epoch it did train is kept


def test_disk_fills_up_during_the_model_save(tmp_path, capsys):
    """A 300 kB disk: run.json and the history fit, the ~1.2 MB model does not (ENOSPC mid-save)."""
    with tmpfs(tmp_path / "small", "300k") as disk:
        code, line, err = cli_train(disk / "runs", capsys)
        assert code == 1 and "Traceback" not in err
        _assert_failed_on_save(disk / "runs", line, "No space left on device")


def test_file_size_limit_during_the_model_save(tmp_path, capsys):
    """The same with RLIMIT_FSIZE (works without mount rights): the save fails with EFBIG."""
    with file_size_limit(300_000):
        code, line, err = cli_train(tmp_path / "runs", capsys)
    assert code == 1 and "Traceback" not in err
    _assert_failed_on_save(tmp_path / "runs", line, "File too large")


def test_a_run_whose_last_write_failed_is_not_running_forever(tmp_path, monkeypatch, mnist_small):
    """The final run.json cannot be written (disk full): the live process must not keep it 'running'."""
    from core.train.trainer import TrainConfig, train

    real = runs.write_json_atomic

    def write(path, obj):
        if isinstance(obj, dict) and obj.get("status") in ("finished", "failed"):
            raise OSError(28, "No space left on device")
        return real(path, obj)

    monkeypatch.setattr(runs, "write_json_atomic", write)
    with pytest.raises(OSError):
        train(TrainConfig(arch="dense", epochs=1, max_train_samples=200, runs_dir=str(tmp_path)),
              dataset=mnist_small)
    (run,) = runs.list_runs(tmp_path)
    assert run.meta["status"] == "running" and run.meta["pid"] == os.getpid()  # what the disk still says
    assert run.status == "interrupted" and not run.usable  # …but nobody is training it any more
    runs.delete_run(run, tmp_path)  # and it can be cleaned up


# --- memory over many trainings -----------------------------------------------------------------------------

def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


def test_many_trainings_do_not_grow_memory_without_bound(tmp_path, mnist_small):
    """Ten short trainings after a warm-up: RSS grows by a few MB each (TensorFlow keeps each model's traced
    graphs; neither keras.backend.clear_session(), the kernel cache nor malloc_trim gives them back), but
    must stay well under a leak of the model's data or the dataset per run."""
    import gc

    from core.data.registry import Dataset
    from core.train.trainer import TrainConfig, train

    ds = Dataset("mnist", mnist_small.class_names, mnist_small.x_train[:512], mnist_small.y_train[:512],
                 mnist_small.x_test[:256], mnist_small.y_test[:256], mnist_small.source, mnist_small.augment)
    rss = []
    for i in range(11):  # one warm-up, then ten
        train(TrainConfig(arch="dense", epochs=1, batch_size=64, seed=i, runs_dir=str(tmp_path)), dataset=ds)
        gc.collect()
        rss.append(round(rss_mb(), 1))
    growth = rss[-1] - rss[-8]  # over the last 7 trainings
    print(f"\nRSS after each training (MB): {rss}; growth over the last 7: {growth:.1f} MB")
    assert growth < 60, rss
