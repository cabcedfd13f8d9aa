"""The app (AppTest) under the faults of test_hostile.py: an unwritable or full runs folder on the Train page,
a model that doesn't fit its dataset on Mistakes and Predict, importing a user's .keras file on the Runs
page (hostile names, corrupt files, code in the model), and a session model path pointing elsewhere.

Each page must show one clear message and keep working: no exception, no traceback.
"""
from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from core import config
from core.store import runs
from app_helpers import assert_clean, open_page, save_model as keras_model, values

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "streamlit_app.py")
TIMEOUT = 120
TRAIN_WAIT = 120


@pytest.fixture(scope="module", autouse=True)
def app_env(tmp_path_factory):
    """A runs folder of this module's own with one finished MNIST run, and AppTest running the entrypoint
    as a browser does (see test_app.app_env for the PagesManager detail)."""
    import streamlit.testing.v1.app_test as app_test
    from streamlit.runtime.pages_manager import PagesManager

    class NavigationOnly(PagesManager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            PagesManager.uses_pages_directory = False

    runs_dir = tmp_path_factory.mktemp("hostile_app_runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLASSIFIER_LAB_RUNS", str(runs_dir))
        mp.setenv("CLASSIFIER_LAB_OFFLINE", "1")
        mp.setenv("CLASSIFIER_LAB_MAX_TRAININGS", "1")
        mp.setattr(app_test, "PagesManager", NavigationOnly)
        yield runs_dir


@pytest.fixture(scope="module")
def good_run(app_env, trained):
    """conftest's trained MNIST run, copied into the app's runs folder."""
    shutil.copytree(trained[0].path, app_env / trained[0].id)
    return runs.load_run(app_env / trained[0].id)


def new_app(active: str | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if active is not None:
        at.session_state["active_model"] = active
    return at.run()


def button(at, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return found[0]


def poll(at, done, timeout: float = TRAIN_WAIT):
    """Rerun (the live fragment's 1 s timer in a browser) until done(at)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        assert not at.exception, values(at.exception)
        if done(at):
            return at
        time.sleep(0.5)
        at.run()
    raise AssertionError(f"not done after {timeout:.0f} s; errors {values(at.error)}, "
                         f"progress {[p.proto.text for p in at.get('progress')]}")


# --- a runs folder that cannot be written -------------------------------------------------------------------

@contextlib.contextmanager
def unwritable(kind: str, base: Path):
    """A runs folder path under a regular file, on a read-only disk or on a full (300 kB) disk; None where
    this machine cannot mount a tmpfs to simulate the disk."""
    if kind == "not a folder":
        (base / "blocker").write_text("a file where the runs folder's parent should be")
        yield base / "blocker" / "runs"
        return
    disk = base / kind.replace(" ", "_")
    disk.mkdir()
    opts = "size=1m,ro" if kind == "read-only" else "size=300k"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(disk)], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        print(f"{kind}: not simulated, cannot mount a tmpfs here: {done.stderr.strip()}")
        yield None
        return
    try:
        yield disk / "runs"
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


TRAIN_ERRORS = {
    # refused when the run is queued: no folder, no worker
    "not a folder": r"Cannot start this training: cannot create a run in \S+/blocker/runs: Not a directory",
    "read-only": r"Cannot start this training: cannot create a run in \S+/runs: Read-only file system",
    # the disk fills up in the worker, while it saves
    "full": r"Training failed: cannot save the run: No space left on device \(free some disk space, or set "
            r"CLASSIFIER_LAB_RUNS\)",
}


def start_training(at, samples: int = 200):
    at.selectbox(key="train_dataset").set_value("mnist")
    at.selectbox(key="train_arch").set_value("dense")
    at.run()
    at.number_input(key="train_epochs").set_value(1)
    at.number_input(key="train_subset").set_value(samples)
    button(at, "Start training").click().run()
    return at


def test_train_page_with_an_unwritable_runs_folder(app_env, good_run, tmp_path, monkeypatch):
    """One session meets each fault in turn, then trains normally: every failure gave its slot back."""
    at = open_page(new_app(), "app_pages/train.py")
    for kind, expected in TRAIN_ERRORS.items():
        with unwritable(kind, tmp_path) as bad:
            if bad is None:
                continue
            monkeypatch.setenv("CLASSIFIER_LAB_RUNS", str(bad))
            start_training(at)
            poll(at, lambda a: bool(a.error))
            (message,) = values(at.error)
            assert re.fullmatch(expected, message), message
            assert not at.exception
            if kind == "full":  # the run exists, failed, nothing half-written, never offered as a model
                (run,) = runs.list_runs(bad)
                assert run.status == "failed" and not run.model_path.exists()
                assert [p.name for p in run.path.iterdir() if ".tmp" in p.name] == []
            open_page(at, "app_pages/runs.py")  # the other pages still work meanwhile
            assert not at.exception, values(at.exception)
            open_page(at, "app_pages/train.py")
            assert button(at, "Start training")  # the form is back, not a stuck "training" view
    monkeypatch.setenv("CLASSIFIER_LAB_RUNS", str(app_env))  # writable again: the next training runs
    start_training(at)
    poll(at, lambda a: bool(a.success))
    assert " finished: test accuracy " in at.success[0].value
    assert_clean(at, "after the failed trainings")


# --- a model that doesn't fit the dataset -------------------------------------------------------------------

@pytest.mark.quick
def test_a_model_that_does_not_fit_on_mistakes_and_predict(app_env, good_run, tmp_path):
    """A run folder that says MNIST but whose model.keras takes 32×32 colour images."""
    path = app_env / "swapped-model"
    shutil.copytree(good_run.path, path)
    (path / "test_probs.npy").unlink()  # no stored predictions: the page has to use the model itself
    keras_model(path / "model.keras", (32, 32, 3))
    try:
        at = new_app(str(path))
        assert at.sidebar.selectbox(key="active_model").value == str(path)
        open_page(at, "app_pages/mistakes.py")
        assert not at.exception, values(at.exception)
        assert values(at.error) == [
            f"**Model {runs.load_run(path).label} cannot be used.** The model takes inputs of shape 32×32×3, "
            "but mnist images are 28×28. Pick another model in the sidebar."]
        open_page(at, "app_pages/predict.py")
        assert not at.exception, values(at.exception)
        assert values(at.error) == [
            f"**Model {runs.load_run(path).label} cannot be used here.** The model takes inputs of shape "
            "32×32×3, but mnist images are 28×28. Pick another model in the sidebar."]
        open_page(at, "app_pages/home.py")
        assert_clean(at, "home after a bad model")
    finally:
        shutil.rmtree(path)


# --- bring your own model -----------------------------------------------------------------------------------

def upload_model(at, name: str, data: bytes):
    uploader = [u for u in at.file_uploader if (u.key or "").startswith("import_model_")]
    assert uploader, "no import uploader on the Runs page"
    uploader[0].set_value((name, data, "application/octet-stream"))
    return at.run()


def test_import_a_keras_model_on_the_runs_page(app_env, good_run, tmp_path):
    at = open_page(new_app(), "app_pages/runs.py")
    assert_clean(at, "runs")
    before = {p.name for p in app_env.iterdir()}

    upload_model(at, "../../evil.keras", good_run.model_path.read_bytes())  # a hostile name, a good model
    assert_clean(at, "a good upload")
    assert at.selectbox(key="import_dataset").options == ["MNIST digits", "Fashion-MNIST"]
    assert "Input 28×28, 10 classes." in values(at.caption)
    button(at, "Import").click().run()
    assert_clean(at, "import")
    (new,) = {p.name for p in app_env.iterdir()} - before
    assert re.fullmatch(r"\d{8}-\d{6}-mnist-imported-[0-9a-f]{4}", new), new
    assert values(at.success) == [f"Imported as run **{new}**; it is now the active model."]
    assert at.sidebar.selectbox(key="active_model").value == str(app_env / new)
    run = runs.load_run(app_env / new)
    assert run.usable and run.meta["imported_from"] == "evil.keras"
    # the name's "../../" reached nothing above the runs folder (other tests' folders there may say "evil")
    assert not list(app_env.parent.rglob("evil.keras")) and not list(tmp_path.rglob("evil*"))
    assert not [p for p in app_env.iterdir() if p.name.startswith(".import-")]  # no temp file left
    table = at.dataframe[0].value
    assert table[table["run"] == new]["status"].tolist() == ["finished"]
    open_page(at, "app_pages/predict.py")  # the imported model is usable right away
    assert_clean(at, "predict with the imported model")
    assert any(c.startswith("Model: mnist · imported") for c in values(at.caption))

    # files that are not usable models: a message each, nothing saved
    open_page(at, "app_pages/runs.py")
    real = good_run.model_path.read_bytes()
    bad = {
        "corrupt.keras": (real[: len(real) // 3], "corrupt.keras: not a usable Keras model ("),
        "../evil.keras": (b"", "evil.keras: empty file (0 bytes)"),
        "lambda.keras": (keras_model(tmp_path / "l.keras", (28, 28), lam=True).read_bytes(),
                         "lambda.keras: not a usable Keras model ("),
        "flat.keras": (keras_model(tmp_path / "f.keras", (784,)).read_bytes(),
                       "flat.keras: the model takes inputs of shape 784, not an image"),
        "five.keras": (keras_model(tmp_path / "5.keras", (28, 28), 5).read_bytes(),
                       "five.keras: the model takes 28×28 inputs with 5 outputs; Classifier Lab uses"),
    }
    before = {p.name for p in app_env.iterdir()}
    for name, (data, message) in bad.items():
        upload_model(at, name, data)
        assert not at.exception, f"{name}: {values(at.exception)}"
        errors = values(at.error)
        assert len(errors) == 1 and errors[0].startswith(f"Cannot import this model: {message}"), errors
        assert "\n" not in errors[0] and ".import-" not in errors[0]
        assert not [b for b in at.button if b.label == "Import"]
    assert {p.name for p in app_env.iterdir()} == before



def test_a_colour_model_goes_with_a_named_dataset_never_a_server_folder(app_env, tmp_path, monkeypatch):
    """The import offers Flowers and own datasets with one class per output; no free-text "folder" path."""
    from core.data import synthetic, uploads

    monkeypatch.setenv(config.DATA.name, str(tmp_path / "data"))
    rgb = keras_model(tmp_path / "rgb.keras", (32, 32, 3), 4).read_bytes()
    at = open_page(new_app(), "app_pages/runs.py")
    upload_model(at, "rgb.keras", rgb)  # no own dataset has 4 classes: nothing to import it for
    assert not at.exception and len(at.error) == 1
    assert at.error[0].value.startswith("Cannot import this model: rgb.keras: the model takes 32×32×3 inputs "
                                        "with 4 outputs; Classifier Lab uses")
    uploads.import_source(synthetic.make(tmp_path / "src4", "colours", 4, 2), "paints")
    uploads.import_source(synthetic.make(tmp_path / "src3", "shapes", 3, 2), "shapes3")
    at = open_page(new_app(), "app_pages/runs.py")
    upload_model(at, "rgb2.keras", rgb)
    assert_clean(at, "rgb upload")
    assert at.selectbox(key="import_dataset").options == ["paints (my data)"]  # 4 classes; not shapes3, no folder
    before = {p.name for p in app_env.iterdir()}
    button(at, "Import").click().run()
    assert_clean(at, "import for an own dataset")
    (new,) = {p.name for p in app_env.iterdir()} - before
    run = runs.load_run(app_env / new)
    assert run.dataset == "paints" and not run.config.get("data_path")


# --- the session's model path -------------------------------------------------------------------------------

def test_session_model_path_cannot_point_elsewhere(app_env, good_run, tmp_path):
    """Only listed runs are ever loaded: a path outside the runs folder (even a real run) is ignored."""
    outside = tmp_path / "outside"
    shutil.copytree(good_run.path, outside)  # a perfectly usable run, just not in the runs folder
    for chosen in (str(outside), str(outside / "model.keras"), "/etc/passwd", "../../etc"):
        at = new_app(chosen)
        active = at.sidebar.selectbox(key="active_model").value
        assert active != chosen and Path(active).parent == app_env, (chosen, active)
    open_page(at, "app_pages/predict.py")
    assert_clean(at, "predict")
    assert any(c.startswith("Model: mnist") for c in values(at.caption))
    assert not any(str(outside) in c for c in values(at.caption))
    at = new_app()  # the set_active() route (a button elsewhere) is checked the same way
    at.session_state["pending_active"] = ("mnist", str(outside))
    at.run()
    assert Path(at.sidebar.selectbox(key="active_model").value).parent == app_env
    from ui import state
    assert all(Path(r.path).parent in (app_env, runs.BUNDLED_DIR) for r in state.model_choices("mnist"))
