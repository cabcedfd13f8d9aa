"""`python -m core`: real subprocesses where the process matters (training, its reproduction, Ctrl-C), in-process
main() where only the output does (evaluate, predict, labels, the error paths): each saves a TensorFlow start-up."""
import functools
import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.model import compat
import core.cli.main as cli
from core.store import runs
from core.data.datasets import DEBIAN_FASHION, FASHION_FILES

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 300  # generous: the machine may be busy; a hang still fails


@pytest.fixture(scope="session")
def start(subprocess_env):
    """Start `python -m core ...` with the venv's interpreter, from the repo root, offline, as from a terminal."""
    def run(*args):
        # Ctrl-C as a terminal's foreground process gets it: the suite may run as a background job of a
        # non-interactive shell, which ignores SIGINT, and Python keeps an ignored SIGINT ignored
        return subprocess.Popen([sys.executable, "-m", "core", *map(str, args)], cwd=ROOT, env=subprocess_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return run


def finish(proc):
    out, err = proc.communicate(timeout=TIMEOUT)
    return proc.returncode, out, err


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def images(tmp_path_factory, mnist):
    """Real test digits as files: MNIST-style (white on black) and pen-on-paper (black on white, bigger)."""
    d = tmp_path_factory.mktemp("images")
    i7, i2 = int(np.flatnonzero(mnist.y_test == 7)[0]), int(np.flatnonzero(mnist.y_test == 2)[0])
    Image.fromarray(mnist.x_test[i7]).save(d / "digit.png")
    Image.fromarray(255 - mnist.x_test[i2]).resize((112, 112), Image.BILINEAR).convert("RGB").save(d / "paper.jpg")
    (d / "notanimage.txt").write_text("hello, not a picture\n")
    return d


@pytest.fixture(scope="session")
def cli_trained(tmp_path_factory, start):
    """`train` through the CLI (with `datasets` running alongside): (runs_dir, exit code, stdout, stderr, datasets)."""
    runs_dir = tmp_path_factory.mktemp("cli_runs")
    train = start("train", "--dataset", "mnist", "--arch", "dense", "--epochs", 1, "--max-train-samples", 800,
                  "--runs-dir", runs_dir)
    datasets = start("datasets")
    return runs_dir, *finish(train), finish(datasets)


def test_datasets_lists_what_is_available(cli_trained):
    code, out, err = cli_trained[-1]
    assert code == 0 and "Traceback" not in err
    lines = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip()}
    assert list(lines) == ["mnist", "fashion_mnist", "flowers", "folder"]
    assert lines["mnist"] == "available"
    has_fashion = all((DEBIAN_FASHION / f).is_file() for f in FASHION_FILES)
    assert lines["fashion_mnist"] == ("available" if has_fashion else "unavailable")
    assert lines["folder"] == "unavailable"  # no --path given


def test_train_prints_a_final_json_line_and_saves_the_run(cli_trained):
    runs_dir, code, out, err = cli_trained[:4]
    assert code == 0, err[-3000:]
    assert "Traceback" not in err
    result = json_lines(out)[-1]
    assert set(result) == {"run_id", "path", "status", "epochs_done", "test_accuracy", "test_loss", "fit_seconds"}
    assert result["status"] == "finished" and result["epochs_done"] == 1 and result["test_accuracy"] > 0.6
    (run,) = runs.list_runs(runs_dir)
    assert run.id == result["run_id"] and str(run.path) == result["path"] and run.usable
    assert run.meta["data"]["n_train"] + run.meta["data"]["n_val"] == 800
    assert round(run.meta["test_accuracy"], 4) == result["test_accuracy"]


@pytest.fixture(scope="session")
def cli_used(cli_trained, images, run_cli):
    """evaluate and predict (text and --json) on the CLI-trained run, through main() in this process."""
    runs_dir = cli_trained[0]
    (run,) = runs.list_runs(runs_dir)
    return run, {
        "evaluate": run_cli("evaluate", "--model", run.id, "--runs-dir", runs_dir),
        "predict": run_cli("predict", "--model", run.model_path, images / "digit.png", images / "notanimage.txt",
                           images / "paper.jpg", images / "missing.png"),
        "json": run_cli("predict", "--json", "--model", run.path, images / "digit.png", images / "paper.jpg"),
    }


def test_evaluate_prints_accuracy_and_per_class(cli_used):
    run, results = cli_used
    code, out, err = results["evaluate"]
    assert code == 0, err[-3000:]
    (ev,) = json_lines(out)
    assert ev["model"] == run.id and ev["dataset"] == "mnist" and ev["n"] == run.meta["data"]["n_test"]
    # the same model on the same test split: exactly the accuracy recorded at training time
    assert ev["accuracy"] == round(run.meta["test_accuracy"], 4)
    assert ev["loss"] == pytest.approx(run.meta["test_loss"], abs=2e-4)
    assert list(ev["per_class_accuracy"]) == list("0123456789")
    assert all(0 <= v <= 1 for v in ev["per_class_accuracy"].values())


def test_predict_good_and_bad_files(cli_used, images):
    run, results = cli_used
    code, out, err = results["predict"]
    assert code != 0  # two files failed
    assert "Traceback" not in err
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == [str(images / "digit.png"), str(images / "paper.jpg")]
    for line in lines:
        label, pct = line.split(": ", 1)[1].split()[:2]
        assert label in list("0123456789") and pct.startswith("(") and pct.endswith("%)")
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert errors[0].startswith(f"error: {images / 'notanimage.txt'}: not an image")
    assert errors[1].startswith(f"error: {images / 'missing.png'}: ") and "no such file" in errors[1]


@pytest.mark.quick
def test_predict_json_lines_match_in_process_prediction(cli_used, images):
    from core.analysis.inference import predict_image

    run, results = cli_used
    code, out, err = results["json"]
    assert code == 0, err[-3000:]
    rows = json_lines(out)
    assert [r["file"] for r in rows] == [str(images / "digit.png"), str(images / "paper.jpg")]
    model = compat.load_model(run.model_path)
    for row in rows:
        probs = row["probabilities"]
        assert list(probs) == list("0123456789") and sum(probs.values()) == pytest.approx(1, abs=1e-3)
        assert row["label"] == max(probs, key=probs.get) and row["confidence"] == max(probs.values())
        expected = predict_image(model, row["file"], list("0123456789"))
        assert row["label"] == expected["top"][0][0]
        np.testing.assert_allclose(list(probs.values()), expected["probs"], atol=1e-3)
    # a clean MNIST test 7 is easy even for a 1-epoch dense model
    assert rows[0]["label"] == "7"


# --- error paths, in process (no extra TensorFlow start-up per case) -------------------------------------------

def test_unknown_model_is_a_one_line_error(capsys, tmp_path):
    assert cli.main(["predict", "--model", "no-such-run", "--runs-dir", str(tmp_path), "x.png"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no model 'no-such-run'") and err.count("\n") == 1


def test_interrupted_run_is_refused(capsys, runs_dir, trained):
    path = runs_dir / "half"
    path.mkdir()
    (path / "run.json").write_text(json.dumps({**trained[0].meta, "status": "running", "pid": 0}))
    assert cli.main(["evaluate", "--model", "half", "--runs-dir", str(runs_dir)]) == 2
    assert "run half is interrupted" in capsys.readouterr().err


def test_train_failure_prints_json_with_the_run(capsys, runs_dir, tmp_path):
    code = cli.main(["train", "--dataset", "folder", "--path", str(tmp_path / "nope"), "--arch", "cnn",
                     "--epochs", "1", "--runs-dir", str(runs_dir)])
    assert code == 1
    out = json_lines(capsys.readouterr().out)[-1]
    (run,) = runs.list_runs(runs_dir)
    assert out["status"] == "failed" and "nope" in out["error"] and out["run_id"] == run.id
    assert run.status == "failed"


def test_bad_option_values(capsys, runs_dir):
    assert cli.main(["train", "--dataset", "mnist", "--arch", "dense", "--max-train-samples", "0",
                     "--runs-dir", str(runs_dir)]) == 1
    assert json_lines(capsys.readouterr().out)[-1]["status"] == "failed"
    assert list(runs_dir.iterdir()) == []  # rejected before a run folder was made
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--dataset", "mnist", "--arch", "resnet"])
    assert info.value.code == 2


def test_evaluate_a_folder_model_trained_at_its_own_image_size(capsys, runs_dir, tmp_path):
    """A folder model trained at 24×24 is evaluated on its folder at 24×24, not at the 180×180 default."""
    from core.train.trainer import TrainConfig, train

    rng = np.random.default_rng(0)
    for name, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        (tmp_path / "shapes" / name).mkdir(parents=True)
        for i in range(10):
            noise = rng.integers(-20, 20, (30, 30, 3))
            Image.fromarray(np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)).save(
                tmp_path / "shapes" / name / f"{i}.png")
    run = train(TrainConfig(dataset="folder", data_path=str(tmp_path / "shapes"), image_size=(24, 24), arch="dense",
                            epochs=3, batch_size=4, runs_dir=str(runs_dir)))
    assert run.usable and run.meta["data"]["input_shape"] == [24, 24, 3]
    assert cli.main(["evaluate", "--model", run.id, "--runs-dir", str(runs_dir)]) == 0
    ev = json_lines(capsys.readouterr().out)[-1]
    assert ev["dataset"] == "folder" and ev["n"] == 4 and ev["accuracy"] == round(run.meta["test_accuracy"], 4)
    assert list(ev["per_class_accuracy"]) == ["blue", "red"]


def test_cli_run_is_reproduced_in_process(cli_trained, mnist, tmp_path):
    """Same options, another process: the same weights to the bit (and the CLI passed its options through)."""
    from core.train.trainer import TrainConfig, train

    (cli_run,) = runs.list_runs(cli_trained[0])
    again = train(TrainConfig(dataset="mnist", arch="dense", epochs=1, max_train_samples=800, seed=0,
                              runs_dir=str(tmp_path)), dataset=mnist)
    assert again.meta["config"] == {**cli_run.meta["config"], "runs_dir": str(tmp_path)}
    for a, b in zip(compat.load_model(cli_run.model_path).get_weights(), compat.load_model(again.model_path).get_weights()):
        np.testing.assert_array_equal(a, b)
    assert again.history() == cli_run.history()


def test_ctrl_c_stops_training_and_keeps_the_model(start, tmp_path):
    import time

    # 800 images: an epoch of 100 batches reaches disk soon, and 50 of them still last far past the Ctrl-C
    proc = start("train", "--dataset", "mnist", "--arch", "dense", "--epochs", "50", "--batch-size", "8",
                 "--max-train-samples", "800", "--runs-dir", tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("*/history.json")):
        time.sleep(0.1)  # wait until the first epoch is on disk: training is well under way
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    result = json_lines(out)[-1]
    assert result["status"] == "stopped" and 1 <= result["epochs_done"] < 50
    assert "stopping after this batch" in err and "Traceback" not in err
    assert runs.load_run(Path(result["path"])).usable


def test_labels_prints_one_json_object_per_suspect_best_first(tmp_path, mnist, monkeypatch, run_cli):
    """A small search (2 folds of a dense net on 300 images each): JSON lines with index, given and suggested."""
    from core.train import label_search

    # in this process: the fold runs still train in real worker processes, only the CLI's own start-up is saved;
    # a hang still fails, as the subprocess's timeout made it
    monkeypatch.setattr(label_search, "search", functools.partial(label_search.search, timeout=3 * TIMEOUT))
    code, out, err = run_cli("labels", "--dataset", "mnist", "--folds", "2", "--epochs", "1",
                             "--max-train-samples", "300", "--slots", "2", "--runs-dir", tmp_path, "--json")
    assert code == 0, err[-2000:]
    found = json_lines(out)
    assert found and [f["rank"] for f in found] == list(range(1, len(found) + 1))
    for f in found:
        assert 0 <= f["index"] < len(mnist.y_train) and f["given"] == mnist.y_train[f["index"]] != f["suggested"]
    assert "suspected label errors (2 folds of dense" in err
    assert len(list(tmp_path.glob("*-mnist-dense-*"))) == 2  # the fold runs are ordinary runs


def test_data_show_and_fixes_commands_follow_an_image_by_its_file(tmp_path, monkeypatch, capsys, runs_dir):
    """`data show` lists every image with file, hash, split and labels; `fixes relabel|exclude|undo|list` name
    an own image by its file, refuse what the pages refuse, and a renamed file keeps its fix."""
    from core import config
    from core.data import synthetic, uploads

    monkeypatch.setenv(config.DATA.name, str(tmp_path / "data"))
    uploads.import_source(synthetic.make(tmp_path / "src", "colours", 2, 6), "paints")

    def run(*args) -> tuple[int, list, str]:
        code = cli.main(list(map(str, args)))
        out = capsys.readouterr()
        return code, json_lines(out.out) if "--json" in args else out.out, out.err

    code, rows, _ = run("data", "show", "--dataset", "paints", "--json")
    assert code == 0 and len(rows) == 12 and {r["split"] for r in rows} <= {"train", "test"}
    assert all(set(r) >= {"file", "hash", "split", "label", "label_after_fixes", "fix"} for r in rows)
    first = next(r for r in rows if r["file"] == "green/green_0.png")
    assert first["label"] == first["label_after_fixes"] == "green" and first["fix"] is None
    code, [made], _ = run("fixes", "relabel", "--dataset", "paints", "--file", "green/green_0.png", "--label", "red",
                       "--json")
    assert code == 0 and made["image"] == "green/green_0.png" and made["hash"] == first["hash"]
    code, _, err = run("fixes", "relabel", "--dataset", "paints", "--file", "green/green_0.png", "--label", "red")
    assert code == 2 and "labelled red already" in err
    code, _, err = run("fixes", "exclude", "--dataset", "paints", "--file", "nothing.png")
    assert code == 2 and "no such image" in err
    code, out, _ = run("fixes", "exclude", "--dataset", "paints", "--file", "red_1.png")  # a unique name will do
    assert code == 0 and out.startswith("exclude: red/red_1.png")
    (tmp_path / "data" / "paints" / "green" / "green_0.png").rename(tmp_path / "data" / "paints" / "green" / "x.png")
    code, rows, _ = run("data", "show", "--dataset", "paints", "--json")
    moved = next(r for r in rows if r["file"] == "green/x.png")
    assert moved["label_after_fixes"] == "red" and moved["fix"] == "relabelled" and moved["hash"] == first["hash"]
    assert next(r for r in rows if r["file"] == "red/red_1.png")["label_after_fixes"] is None
    code, listed, _ = run("fixes", "list", "--dataset", "paints", "--json")
    assert [(f["op"], f["image"], f["state"]) for f in listed] == [("relabel", "green/x.png", "moved"),
                                                                   ("exclude", "red/red_1.png", "found")]
    code, [undone], _ = run("fixes", "undo", "--dataset", "paints", "--file", "green/x.png", "--json")
    assert code == 0 and undone["op"] == "relabel" and undone["action"] == "undo"
    assert [f["op"] for f in run("fixes", "list", "--dataset", "paints", "--json")[1]] == ["exclude"]
    code, _, err = run("fixes", "exclude", "--dataset", "mnist", "--file", "a.png")
    assert code == 2 and "--index" in err  # built-ins' images have no files
