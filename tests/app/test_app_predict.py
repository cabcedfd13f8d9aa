"""AppTest of Predict's drawing pad (ui/predict_pad.py): the model is an ONNX file the pad fetches, with Keras's
answers; a pen lift's model input gives the server's parts (what the model sees, activations, Add) and no server bars;
the server's canvas takes over where the address asks for it, the runtime is missing or the browser cannot run the
model. AppTest has no browser: the pad's pen-lift message is sent as the browser sends it (the component's state)."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from PIL import Image
from app_helpers import assert_clean, open_page
from test_app import APP, TIMEOUT, app_env, captions, chart, mnist_run  # noqa: F401  (fixtures too)

from core.analysis.inference import predict, preprocess, softmax
from core.data.datasets import load_dataset
from core.model import compat
from core.store import runs

PAGE = "app_pages/predict.py"


def predict_page(run, **query):
    """Predict with `run` active (its dataset too, as Runs' "Use as the active model" does), address `query`."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["pending_active"] = (run.dataset, str(run.path))
    for key, value in query.items():
        at.query_params[key] = value
    return open_page(at.run(), PAGE)


def pad(at):
    found = at.get("component_instance")
    return found[0] if found else None


def pad_args(at) -> dict:
    return json.loads(pad(at).proto.json_args)


def lift(at, value):
    """Rerun with the pad's value, as the pad sends it after a pen lift."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    states = at._tree.get_widget_states()
    states.widgets.append(WidgetState(id=pad(at).proto.id, json_value=json.dumps(value)))
    return at._run(states)


def drawn_input(index: int = 0) -> np.ndarray:
    """A test digit as the pad's preprocessing gives it (the app's, ported): 28x28 uint8."""
    digit = np.asarray(Image.fromarray(load_dataset("mnist").x_test[index]).resize((112, 112)))
    return preprocess(digit, (28, 28), box=20)


def server_notes(at) -> list[str]:
    return [c.value for c in at.caption if c.value.startswith("Predictions run on the server")]


@pytest.mark.parametrize("which", ["trained", "bundled mnist", "bundled fashion_mnist"])
def test_the_pad_loads_the_model_as_onnx_with_keras_answers(mnist_run, which):
    import onnxruntime as ort

    from ui import predict_pad

    run = mnist_run if which == "trained" else runs.resolve(which.split()[1])
    at = predict_page(run)
    assert_clean(at, which)
    assert not server_notes(at), server_notes(at)
    args = pad_args(at)
    model = compat.load_model(run.model_path)
    names = run.meta["data"]["class_names"]
    assert args["meta"] == {"classes": [str(n) for n in names], "input_shape": [28, 28],
                            "ink_box": 20 if run.dataset == "mnist" else 28, "background": None}
    assert args["hint"] == ("Draw a digit on the canvas." if run.dataset == "mnist" else "Draw one item on the canvas.")
    assert chart(at, "predict_bars") is None  # the bars are the pad's
    served = predict_pad.FOLDER / args["model"]
    for name in ("index.html", "pad.js", "pad_worker.js", "classifier.js", "ort.wasm.min.js",
                 "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"):
        assert (predict_pad.FOLDER / name).is_file(), name
    x = load_dataset(run.dataset).x_test[:64]
    session = ort.InferenceSession(str(served), providers=["CPUExecutionProvider"])
    probs = softmax(session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0])
    np.testing.assert_allclose(probs, predict(model, x), atol=1e-4)


@pytest.mark.quick
def test_a_pen_lift_shows_the_server_parts_and_no_server_bars(mnist_run):
    at = predict_page(mnist_run)
    url = pad_args(at)["model"]
    x = drawn_input()
    probs = predict(compat.load_model(mnist_run.model_path), x[None])[0]
    top = int(probs.argmax())
    sent = {"model": url, "version": 7, "input": base64.b64encode(x.tobytes()).decode(), "probs": probs.tolist()}

    lift(at, sent)
    assert_clean(at, "pen lift")
    assert "What the model sees" in captions(at)
    assert at.selectbox(key="add_label").value == top  # "Add to the training set as" the model's class
    assert [c for c in at.get("plotly_chart") if (c.key or "").startswith("act_")]  # the hidden layer's units
    assert chart(at, "predict_bars") is None and not at.warning

    # the browser's copy read it otherwise: the page says so, and the server's parts follow Keras
    other = (top + 1) % 10
    lift(at, {**sent, "version": 8, "probs": np.eye(10)[other].tolist()})
    assert_clean(at, "disagreeing pen lift")
    assert at.warning and f"reads this input as {top}, the browser's copy as {other}" in at.warning[0].value
    assert at.selectbox(key="add_label").value == top

    # a pen lift for another model (the sidebar changed meanwhile) or a damaged one shows nothing
    for wrong in ({**sent, "model": "models/another.onnx"}, {**sent, "input": sent["input"][:-8]}, {"model": url}):
        lift(at, wrong)
        assert_clean(at, f"ignored pen lift {list(wrong)}")
        assert "What the model sees" not in captions(at)


def test_the_server_canvas_takes_over_with_one_line_saying_why(mnist_run, monkeypatch, tmp_path):
    from core.export import webpage

    at = predict_page(mnist_run, predict="server")
    assert_clean(at, "?predict=server")
    assert server_notes(at) == ["Predictions run on the server: asked for by the page's address (?predict=server)."]
    assert pad(at) is None and [i.value for i in at.info] == ["Draw a digit on the canvas."]

    at = predict_page(mnist_run)
    lift(at, {"model": pad_args(at)["model"], "error": "no WebAssembly here"})  # the pad could not load the model
    assert_clean(at, "the browser failed")
    why = "this browser could not run the model (no WebAssembly here)"
    assert server_notes(at) == [f"Predictions run on the server: {why}."]
    assert pad(at) is None

    monkeypatch.setattr(webpage, "ORT", tmp_path / "no-npm-here")  # as on a machine without npm
    at = predict_page(mnist_run)
    assert_clean(at, "no runtime")
    assert len(server_notes(at)) == 1 and "needs ONNX Runtime Web from npm" in server_notes(at)[0], server_notes(at)
    assert pad(at) is None
