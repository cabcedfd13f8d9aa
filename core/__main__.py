"""Command line: python -m core datasets|train|evaluate|predict|labels."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from core import runs
from core.datasets import DATASETS, DatasetUnavailable, dataset_status
from core.engine import ENGINES
from core.models import ARCHITECTURES
from core.training import OPTIMIZERS, TrainConfig


def cmd_datasets(args) -> int:
    """List the datasets and whether each can be loaded here."""
    for name, spec in DATASETS.items():
        ok, line = dataset_status(name, args.path if name == "folder" else None)
        print(f"{name:14s} {'available' if ok else 'unavailable':12s} {line}")
    return 0


def _progress(feed, active) -> None:
    """Draw a one-line progress bar on stderr from the run's live feed while `active()` says it runs."""
    shown = None
    while active():
        time.sleep(0.5)
        s = feed.snapshot(since=-1)  # state plus only the latest batch
        if s.get("status") != "training" or not s["loss"]:
            if s.get("status") != shown:
                shown = s.get("status")
                print(f"\r{shown or 'queued'}…".ljust(100), end="", file=sys.stderr, flush=True)
            continue
        batch, total = s.get("batch", 0), s.get("steps_per_epoch") or 1
        filled = int(30 * batch / total)
        print(f"\repoch {s.get('epoch', 0)}/{s.get('epochs_total', '?')} [{'#' * filled}{'.' * (30 - filled)}] "
              f"{batch}/{total} loss {s['loss'][-1]:.4f} acc {s['accuracy'][-1]:.4f} "
              f"{s.get('samples_per_s', 0):,.0f}/s ETA {s.get('eta_s', 0):.0f}s   ", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)


def cmd_train(args) -> int:
    """Train one run through the engine (a worker process, or Ray) and print a JSON line describing it.

    Ctrl-C stops it after the current batch and keeps the model."""
    from core.engine import Engine

    cfg = TrainConfig(dataset=args.dataset, arch=args.arch, epochs=args.epochs, batch_size=args.batch_size,
                      learning_rate=args.lr, optimizer=args.optimizer, seed=args.seed,
                      validation_split=args.validation_split, max_train_samples=args.max_train_samples,
                      data_path=args.path, augment=args.augment, schedule=args.schedule)
    try:
        cfg.resolved()
    except ValueError as e:  # rejected before a run folder is made, or an engine started
        print(json.dumps({"status": "failed", "error": str(e), "run_id": None}))
        return 1
    engine = Engine(args.runs_dir or runs.default_runs_dir(), slots=1, kind=args.engine)
    try:
        run_id = engine.submit(cfg)
        feed = engine.attach(run_id)
        try:
            _progress(feed, lambda: engine.is_active(run_id))
        except KeyboardInterrupt:
            engine.stop(run_id)
            print("\nstopping after this batch (the model is kept)…", file=sys.stderr)
            _progress(feed, lambda: engine.is_active(run_id))
        run = engine.wait(run_id)
    finally:
        engine.close()
    m = run.meta
    if run.status not in runs.FINISHED:
        print(json.dumps({"status": run.status, "error": m.get("error") or "the run did not finish", "run_id": run.id}))
        return 1
    print(json.dumps({"run_id": run.id, "path": str(run.path), "status": m["status"],
                      "epochs_done": m.get("epochs_done"), "test_accuracy": round(m["test_accuracy"], 4),
                      "test_loss": round(m["test_loss"], 4), "fit_seconds": m.get("fit_seconds")}))
    return 0


def cmd_labels(args) -> int:
    """Suspected label errors in the training data (k-fold out-of-sample probabilities + cleanlab)."""
    from core import label_search
    from core.engine import Engine

    base = TrainConfig(dataset=args.dataset, arch=args.arch, epochs=args.epochs, folds=args.folds, seed=args.seed,
                       data_path=args.path, fixes=args.fixes, max_train_samples=args.max_train_samples)
    try:
        label_search.fold_configs(base.resolved(), args.folds)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    engine = Engine(args.runs_dir or runs.default_runs_dir(), slots=args.slots, kind=args.engine)
    try:
        t0 = time.perf_counter()
        found = label_search.search(base, engine)
    finally:
        engine.close()
    for item in found:
        print(json.dumps(item) if args.json else
              f"{item['rank']:5d}  {item.get('index', item.get('file'))}  given {item['given_name']} → "
              f"suggested {item['suggested_name']} ({item['confidence_in_suggested']:.0%})")
    print(f"{len(found)} suspected label errors ({args.folds} folds of {args.arch}, "
          f"{time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return 0


def _load(spec: str, runs_dir):
    """The run and its loaded Keras model."""
    run = runs.resolve(spec, runs_dir)
    if run.status not in runs.FINISHED:
        raise runs.RunError(f"run {run.id} is {run.status}: it has no usable model")
    model = runs.load_model(run.model_path)
    problem = runs.run_problem(run, model)
    if problem:
        raise runs.RunError(f"model {run.id} cannot be used: {problem}")
    return run, model


def _class_names(run, model) -> list[str]:
    names = run.meta.get("data", {}).get("class_names")
    return names or [str(i) for i in range(model.output_shape[-1])]


def cmd_evaluate(args) -> int:
    """Evaluate a model on a dataset's test split and print JSON."""
    from core.analysis import summary
    from core.datasets import load_dataset
    from core.inference import predict

    run, model = _load(args.model, args.runs_dir)
    name = args.dataset or run.dataset
    if name not in DATASETS:
        raise runs.RunError(f"model {run.id} does not say which dataset it is for: pass --dataset")
    shape, n_out = runs.model_io(model)
    # folder/flowers images are resized on load: use the size this model was trained at, not the default
    ds = load_dataset(name, path=args.path or run.config.get("data_path"), image_size=shape[:2])
    problem = runs.fit_problem(shape, n_out, ds.input_shape, ds.num_classes, name)
    if problem:
        raise runs.RunError(f"model {run.id} does not fit {name}: {problem}")
    s = summary(predict(model, ds.x_test), ds.y_test, ds.class_names)
    print(json.dumps({"model": run.id, "dataset": name, "source": ds.source, "accuracy": round(s["accuracy"], 4),
                      "loss": round(s["loss"], 4), "n": s["n"],
                      "per_class_accuracy": {k: v["accuracy"] for k, v in s["per_class"].items()}}))
    return 0


def cmd_predict(args) -> int:
    """Predict each image; unreadable files get a one-line error and a non-zero exit."""
    from core.images import open_image
    from core.inference import BlankImage, ImageError, predict_image

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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("datasets", help="list datasets and where they come from")
    d.add_argument("--path", help="directory for the folder dataset")
    t = sub.add_parser("train", help="train a model and save a run")
    t.add_argument("--dataset", required=True, choices=list(DATASETS))
    t.add_argument("--arch", required=True, choices=list(ARCHITECTURES))
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--optimizer", choices=OPTIMIZERS)
    t.add_argument("--schedule", choices=("constant", "cosine"))
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--validation-split", type=float, default=0.1)
    t.add_argument("--max-train-samples", type=int, help="train on a seeded subset of this size")
    t.add_argument("--path", help="directory for the folder dataset")
    t.add_argument("--engine", choices=ENGINES,
                   help="where the worker runs (default: $CLASSIFIER_LAB_ENGINE, else local)")
    lb = sub.add_parser("labels", help="find label errors in the training data (k-fold + confident learning)")
    lb.add_argument("--dataset", required=True, choices=list(DATASETS))
    lb.add_argument("--folds", type=int, default=4)
    lb.add_argument("--arch", default="dense", choices=list(ARCHITECTURES))
    lb.add_argument("--epochs", type=int, default=3)
    lb.add_argument("--seed", type=int, default=0)
    lb.add_argument("--fixes", action=argparse.BooleanOptionalAction, default=True,
                    help="search the data with the dataset's fixes applied (default) or the originals")
    lb.add_argument("--max-train-samples", type=int, help="per fold model: train on a seeded subset this size")
    lb.add_argument("--slots", type=int, help="fold runs at once (default: $CLASSIFIER_LAB_MAX_TRAININGS)")
    lb.add_argument("--path", help="directory for the folder dataset")
    lb.add_argument("--engine", choices=ENGINES)
    lb.add_argument("--runs-dir")
    lb.add_argument("--json", action="store_true", help="one JSON object per suspected image, best-ranked first")
    for name, helptext in (("evaluate", "evaluate a model on a test split"), ("predict", "predict image files")):
        c = sub.add_parser(name, help=helptext)
        c.add_argument("--model", required=True, help=".keras path, run id, or bundled name (mnist, fashion_mnist)")
        c.add_argument("--runs-dir")
        if name == "evaluate":
            c.add_argument("--dataset", choices=list(DATASETS))
            c.add_argument("--path", help="directory for the folder dataset")
        else:
            c.add_argument("images", nargs="+")
            c.add_argument("--json", action="store_true", help="one JSON line per image")
    t.add_argument("--runs-dir")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    commands = {"datasets": cmd_datasets, "train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict,
                "labels": cmd_labels}
    try:
        return commands[args.command](args)
    except (runs.RunError, DatasetUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
