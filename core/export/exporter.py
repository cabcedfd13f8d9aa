"""Exporting a model: each format written, loaded back with its own runtime and checked against Keras, zipped
with its model card and predict.py, and the checks recorded beside the model."""
from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from core.export.card import model_card, predict_py
from core.export.formats import FORMATS, ExportError, Format, Job
from core.model import compat
from core.store import runs

CHECK_IMAGES = 200  # test images each export is compared on
LATENCY_CALLS = 20  # single-image calls timed per format (median)


# --- checking, failures, packaging, records ---------------------------------------------------------------

def reference(run: runs.Run, model, n: int = CHECK_IMAGES) -> tuple[np.ndarray, np.ndarray, dict]:
    """(test images spread over the test set, the Keras model's probabilities on them, facts for the card)."""
    from core.analysis.metrics import summary
    from core.data.datasets import DATASETS, load_dataset
    from core.analysis.inference import predict, stored_test_probs

    if run.dataset not in DATASETS:
        raise runs.RunError(f"model {run.id} does not say which dataset it is for: it cannot be checked")
    shape, n_out = compat.model_io(model)
    ds = load_dataset(run.dataset, path=run.config.get("data_path"), image_size=shape[:2])
    problem = compat.fit_problem(shape, n_out, ds.input_shape, ds.num_classes, run.dataset)
    if problem:
        raise runs.RunError(f"model {run.id} does not fit {run.dataset}: {problem}")
    probs = stored_test_probs(run.model_path, ds) if run.model_file is None else None
    if probs is None:  # none stored, or stored for another split
        probs = predict(model, ds.x_test)
    s = summary(probs, ds.y_test, ds.class_names)
    pick = np.unique(np.linspace(0, len(ds.x_test) - 1, min(n, len(ds.x_test))).astype(int))
    x = ds.x_test[pick]
    spec = DATASETS[run.dataset]
    info = {"dataset_title": spec.title, "source": ds.source, "class_names": list(ds.class_names),
            "input_shape": list(shape), "ink_box": spec.ink_box or (20 if len(shape) == 2 else None),
            "accuracy": s["accuracy"], "n_test": s["n"], "per_class": s["per_class"]}
    return x, predict(model, x), info


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def check(fmt: Format, artifact: Path, x: np.ndarray, ref: np.ndarray) -> dict:
    """Load the artifact with its own runtime and compare its probabilities with the Keras model's."""
    from core.analysis.inference import softmax

    t0 = time.perf_counter()
    xf = np.ascontiguousarray(x, dtype=np.float32)
    if fmt.measure is not None:  # it runs elsewhere (the web page: in Chromium), which also times it
        probs, times = fmt.measure(artifact, xf, LATENCY_CALLS)
    else:
        run = fmt.load(artifact)
        probs = softmax(run(xf))
        one, times = xf[:1], []
        run(one)  # warm-up: first calls allocate and compile
        for _ in range(LATENCY_CALLS):
            t = time.perf_counter()
            run(one)
            times.append(time.perf_counter() - t)
    if probs.shape != ref.shape:
        raise ExportError(f"it gives {probs.shape[1:]} outputs per image, the Keras model {ref.shape[1:]}")
    return {"n": len(x), "top1_agreement": round(float((probs.argmax(1) == ref.argmax(1)).mean()), 4),
            "max_abs_dprob": float(np.abs(probs - ref).max()), "bytes": _size(artifact),
            "latency_ms": round(statistics.median(times) * 1000, 3),
            "check_seconds": round(time.perf_counter() - t0, 2)}


def _layers(layer):
    for sub in getattr(layer, "layers", None) or []:
        yield sub
        yield from _layers(sub)


def describe_failure(fmt: Format, error: BaseException, model) -> str:
    """One line: which layer (and which of its operations) this format cannot hold, else the error's gist."""
    text = str(error)
    ops = sorted(set(re.findall(r"'tf\.(\w+)' op is neither", text))
                 | set(re.findall(r": (\w+)\] is not supported", text)))
    found = []
    for layer in _layers(model):
        leaf = not getattr(layer, "layers", None)
        if leaf and re.search(rf"(?:^|[/\"\[ ]){re.escape(layer.name)}(?:_\d+)*/", text):
            found.append(f"'{layer.name}' ({type(layer).__name__})")
    what = f" ({', '.join(ops)})" if ops else ""
    if found:
        who = f"layer {found[0]}" if len(found) == 1 else f"layers {', '.join(found[:3])}"
        return f"{fmt.title}: {who} uses operations{what} that {fmt.title} cannot hold"
    gist = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(error).__name__)
    return f"{fmt.title}: {gist[:200]}{what}"


def _zip(folder: Path, dest: Path) -> None:
    """Zip a folder (its name as the top folder) atomically: a temp file renamed into place."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for p in sorted(folder.rglob("*")):
                z.write(p, Path(folder.name) / p.relative_to(folder))
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_one(job: Job, fmt: Format, out_dir: Path, x: np.ndarray, ref: np.ndarray, info: dict) -> dict:
    """Write, check and zip one format; a failure is a result with a one-line error, never an exception."""
    result = {"format": fmt.name, "title": fmt.title, "ok": False,
              "exported_at": runs.now()}
    stage = job.scratch / f"{job.run.id}-{fmt.name}"
    stage.mkdir()
    why = fmt.missing()
    if why:
        result["error"] = f"{fmt.title}: {why}"
        return result
    try:
        t0 = time.perf_counter()
        artifact = fmt.write(job, stage)
        result["export_seconds"] = round(time.perf_counter() - t0, 2)
        unchecked = fmt.unchecked()
        result.update({"unchecked": unchecked, "bytes": _size(artifact)} if unchecked else
                      check(fmt, artifact, x, ref), file=artifact.name)
    except Exception as e:  # noqa: BLE001  converters raise anything; the other formats go on
        result["error"] = describe_failure(fmt, e, job.model)
        return result
    card = model_card(job.run, fmt, result, info)
    (stage / "MODEL_CARD.md").write_text(card)
    if fmt.runner:
        (stage / "predict.py").write_text(predict_py(fmt, info["class_names"], info["input_shape"], info["ink_box"]))
    if fmt.finish:
        fmt.finish(artifact, card)
        result["bytes"] = _size(artifact)  # the page, card included
    dest = Path(out_dir) / f"{stage.name}.zip"
    _zip(stage, dest)
    result.update(ok=True, zip=str(dest), zip_bytes=dest.stat().st_size)
    return result


def checks_path(run: runs.Run, runs_dir: Path | None = None) -> Path:
    """Where a model's export checks are kept: its run folder, or (bundled, loose files) under the runs folder."""
    if run.bundled or run.model_file is not None:  # assets/models is never written to
        return Path(runs_dir or runs.default_runs_dir()) / ".exports" / run.id / "exports.json"
    return run.path / "exports.json"


def stored_checks(run: runs.Run, runs_dir: Path | None = None) -> dict[str, dict]:
    """The recorded checks per format for the model file as it is now (older files' checks are dropped)."""
    data = runs.read_json(checks_path(run, runs_dir), {})
    if not isinstance(data, dict) or not run.model_path.exists() or \
            data.get("model_mtime") != run.model_path.stat().st_mtime:
        return {}
    return data.get("exports") if isinstance(data.get("exports"), dict) else {}


def record(run: runs.Run, results: list[dict], runs_dir: Path | None = None) -> None:
    """Merge these results into the model's exports.json (written atomically)."""
    path = checks_path(run, runs_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = {**stored_checks(run, runs_dir), **{r["format"]: {k: v for k, v in r.items() if k != "zip"}
                                               for r in results}}
    runs.write_json_atomic(path, {"model": run.id, "model_mtime": run.model_path.stat().st_mtime, "exports": kept})


def parse_formats(text: str | list[str] | None) -> list[str]:
    """'tflite,onnx' -> ['tflite', 'onnx'] in registry order; None or 'all' -> every format."""
    names = text.split(",") if isinstance(text, str) else list(text or ["all"])
    names = [n.strip() for n in names if n.strip()]
    if names == ["all"]:
        return list(FORMATS)
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise runs.RunError(f"unknown format {', '.join(unknown)}: choose from {', '.join(FORMATS)}")
    return [n for n in FORMATS if n in names]


def export(run: runs.Run, formats, out_dir: Path, runs_dir: Path | None = None, model=None) -> list[dict]:
    """Export a finished model to each format in out_dir (one zip each), check each, record the checks."""
    names = parse_formats(formats)
    if model is None:
        if not run.usable:
            raise runs.RunError(f"run {run.id} is {run.status}: it has no usable model")
        model = compat.load_model(run.model_path)
    problem = compat.run_problem(run, model)
    if problem:
        raise runs.RunError(f"model {run.id} cannot be exported: {problem}")
    x, ref, info = reference(run, model)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise runs.RunError(f"cannot write to {out_dir}: {e.strerror or e}") from None
    with tempfile.TemporaryDirectory(prefix="export-") as scratch:
        job = Job(run, model, Path(scratch), info)
        results = [export_one(job, FORMATS[name], out_dir, x, ref, info) for name in names]
    try:
        record(run, results, runs_dir)
    except OSError:  # a read-only runs folder must not lose the exports themselves
        pass
    return results
