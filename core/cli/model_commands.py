"""CLI commands that use a saved model: evaluate, predict, export (python -m core routes to them)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from core.model import compat

from core.store import runs
from core.data.registry import DATASETS, dataset_names


def _load(spec: str, runs_dir):
    """The run and its loaded Keras model."""
    run = runs.resolve(spec, runs_dir)
    if not run.usable:
        what = "a learning-rate range test" if run.kind != "train" else run.status
        raise runs.RunError(f"run {run.id} is {what}: it has no usable model")
    model = compat.load_model(run.model_path)
    problem = compat.run_problem(run, model)
    if problem:
        raise runs.RunError(f"model {run.id} cannot be used: {problem}")
    return run, model


def _class_names(run, model) -> list[str]:
    names = run.meta.get("data", {}).get("class_names")
    return names or [str(i) for i in range(model.output_shape[-1])]


def cmd_evaluate(args) -> int:
    """Evaluate a model on a dataset's test split and print JSON."""
    from core.analysis.metrics import summary
    from core.data.datasets import load_dataset
    from core.analysis.inference import predict

    run, model = _load(args.model, args.runs_dir)
    name = args.dataset or run.dataset
    if name not in dataset_names(include_folder=True):
        raise runs.RunError(f"model {run.id} does not say which dataset it is for: pass --dataset")
    shape, n_out = compat.model_io(model)
    # folder/flowers images are resized on load: use the size this model was trained at, not the default
    ds = load_dataset(name, path=args.path or run.config.get("data_path"), image_size=shape[:2])
    problem = compat.fit_problem(shape, n_out, ds.input_shape, ds.num_classes, name)
    if problem:
        raise runs.RunError(f"model {run.id} does not fit {name}: {problem}")
    s = summary(predict(model, ds.x_test), ds.y_test, ds.class_names)
    print(json.dumps({"model": run.id, "dataset": name, "source": ds.source, "accuracy": round(s["accuracy"], 4),
                      "loss": round(s["loss"], 4), "n": s["n"],
                      "per_class_accuracy": {k: v["accuracy"] for k, v in s["per_class"].items()}}))
    return 0


def cmd_predict(args) -> int:
    """Predict each image; unreadable files get a one-line error and a non-zero exit."""
    from core.data.images import open_image
    from core.analysis.inference import BlankImage, ImageError, predict_image

    run, model = _load(args.model, args.runs_dir)
    names = _class_names(run, model)
    box = getattr(DATASETS.get(run.dataset), "ink_box", None)  # MNIST fits ink in 20 px, clothing fills 28
    failed = 0
    for path in args.images:
        try:
            out = predict_image(model, open_image(path), names, box=box)
        except Exception as e:  # noqa: BLE001  ImageError, BlankImage, or anything odd about one file: go on
            failed += 1
            msg, name = str(e), Path(path).name
            if msg.startswith(f"{name}: "):  # images.py names the file by its base name: show the path given
                msg = msg[len(name) + 2:]
            if not isinstance(e, (ImageError, BlankImage)):
                msg = f"cannot classify it ({e.__class__.__name__}: {' '.join(msg.split())[:200]})"
            print(f"error: {path}: {msg}", file=sys.stderr)
            continue
        label, conf = out["top"][0]
        if args.json:
            print(json.dumps({"file": path, "label": label, "confidence": round(conf, 4),
                              "probabilities": {n: round(float(p), 4) for n, p in zip(names, out["probs"])}}))
        else:
            print(f"{path}: {label} ({conf:.1%})  " + "  ".join(f"{n} {p:.1%}" for n, p in out["top"][1:]))
    return 1 if failed else 0


def cmd_export(args) -> int:
    """Export a model to each format (one zip each), check each export, print the checks; non-zero if any failed."""
    from core.export import exporter

    names = exporter.parse_formats(args.format)
    run = runs.resolve(args.model, args.runs_dir)
    results = exporter.export(run, names, Path(args.out), args.runs_dir)
    for r in results:
        if args.json:
            print(json.dumps(r))
        elif r["ok"] and r.get("unchecked"):
            print(f"{r['format']:12s} {r['zip']}  {r['bytes'] / 1e6:.2f} MB  {r['unchecked']}")
        elif r["ok"]:
            print(f"{r['format']:12s} {r['zip']}  {r['bytes'] / 1e6:.2f} MB  agreement {r['top1_agreement']:.1%}  "
                  f"max |Δp| {r['max_abs_dprob']:.2g}  {r['latency_ms']:.2f} ms/image  ({r['export_seconds']:.1f} s)")
        if not r["ok"]:
            print(f"error: {r['error']}", file=sys.stderr)
    return 0 if all(r["ok"] for r in results) else 1
