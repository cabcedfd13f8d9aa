"""Own images in the app (AppTest): pages show each image's file, a fix made on a page names the file and its
content hash, and the Fixes page follows it through a rename and says when it is gone."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from app_helpers import assert_clean, open_page

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "streamlit_app.py")


@pytest.fixture(scope="module")
def noise(tmp_path_factory):
    """(runs folder, data folder, a finished run) on `noise`: 2 classes of 12 random images no model can tell
    apart, so the test split holds mistakes to click on."""
    from core import config
    from core.data import owndata, uploads
    from core.train.trainer import TrainConfig, train

    runs_dir, data = tmp_path_factory.mktemp("own_runs"), tmp_path_factory.mktemp("own_data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLASSIFIER_LAB_RUNS", str(runs_dir))
        mp.setenv(config.DATA.name, str(data))
        mp.setenv("CLASSIFIER_LAB_OFFLINE", "1")
        owndata.create("noise")
        rng = np.random.default_rng(0)
        for cls in ("a", "b"):
            files = []
            for i in range(12):
                out = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(out, format="PNG")
                files.append((f"{cls}{i}.png", out.getvalue()))
            uploads.add_files("noise", cls, files)
        run = train(TrainConfig(dataset="noise", arch="dense", epochs=1, runs_dir=str(runs_dir)))
        yield runs_dir, data, run


def app(run):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["active_dataset"], at.session_state["active_model"] = "noise", str(run.path)
    return at.run()


def captions(at) -> list[str]:
    return [c for img in at.get("image") for c in img.captions]


@pytest.mark.quick
def test_mistakes_show_files_and_a_relabel_names_the_file_and_its_hash(noise):
    from core.data import fixes
    from core.data.datasets import load_dataset

    runs_dir, data, run = noise
    ds = load_dataset("noise")
    at = open_page(app(run), "app_pages/mistakes.py")
    assert_clean(at, "mistakes")
    shown = [c for c in captions(at) if " · Label: " in c]
    assert shown and all(c.split(" · ")[0] in set(ds.test_files) for c in shown), captions(at)
    details = [b for b in at.button if b.label == "Details"]
    index = int(details[0].key.rsplit("_", 1)[1])
    details[0].click().run()
    next(b for b in at.button if b.label == "Relabel").click().run()
    assert_clean(at, "relabel")
    fix = fixes.Overlay("noise", runs_dir).state()[0][-1]
    assert (fix.op, fix.split, fix.key, fix.hash) == ("relabel", "test", ds.test_files[index], ds.test_hashes[index])

    at = open_page(app(run), "app_pages/fixes.py")
    assert_clean(at, "fixes")
    assert any(f"relabel {fix.key} as" in m.value for m in at.markdown), [m.value for m in at.markdown]
    folder = data / "noise"
    renamed = Path(fix.key).parent / "renamed.png"
    (folder / fix.key).rename(folder / renamed)
    at = open_page(app(run), "app_pages/fixes.py")
    assert any(f"relabel {renamed.as_posix()} as" in m.value and "renamed or moved" in m.value for m in at.markdown)
    (folder / renamed).unlink()
    at = open_page(app(run), "app_pages/fixes.py")
    assert_clean(at, "gone")
    assert any("no longer in the dataset" in m.value for m in at.markdown)


def test_label_errors_name_the_files_a_search_of_all_images_suspects(noise):
    """A finished search of an own dataset (2 fold runs over train and test): suspects shown under their file,
    exported with file, split and hash, and fixed by file and hash with one click."""
    from core.data import fixes
    from core.data.datasets import load_dataset
    from core.store import runs
    from core.train import label_search
    from core.train.trainer import TrainConfig, train

    runs_dir, _, run = noise
    base = TrainConfig(dataset="noise", arch="dense", epochs=1, folds=2, runs_dir=str(runs_dir))
    ids = [train(c).id for c in label_search.fold_configs(base, 2)]
    label_search.record_path("noise", runs_dir).parent.mkdir(parents=True, exist_ok=True)
    runs.write_json_atomic(label_search.record_path("noise", runs_dir),
                           {"dataset": "noise", "runs": ids, "folds": 2, "arch": "dense", "epochs": 1, "fixes": False,
                            "fixes_upto": None, "created": runs.now(), "keys": label_search.KEYS})
    ds = load_dataset("noise")
    files = set(ds.train_files) | set(ds.test_files)
    at = open_page(app(run), "app_pages/label_errors.py")
    assert_clean(at, "label errors")
    assert any(h.value == "In all your images (train and test)" for h in at.header)
    shown = [c.split(" given: ")[0] for c in captions(at) if " given: " in c]
    assert any(s in files for s in shown), captions(at)  # the search's suspects (the test set's below: by file too)
    assert all(s in files for s in shown)
    assert [b for b in at.get("download_button") if b.proto.label == "Download all as CSV"]
    first = next(b for b in at.button if b.key.startswith("ls_relabel_"))
    first.click().run()
    assert_clean(at, "one-click relabel")
    fix = fixes.Overlay("noise", runs_dir).state()[0][-1]
    assert fix.key in files and fix.hash in set(ds.train_hashes) | set(ds.test_hashes) and fix.view == "label errors"
