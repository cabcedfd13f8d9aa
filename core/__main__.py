"""Command line: python -m core datasets|data|train|evaluate|predict."""
from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from core import runs
from core import owndata
from core.datasets import DATASETS, DatasetUnavailable, dataset_names, dataset_status
from core.models import ARCHITECTURES
from core.recipes import default_arch
from core.training import OPTIMIZERS, MetricsStore, TrainConfig


def cmd_datasets(args) -> int:
    """List the datasets and whether each can be loaded here."""
    for name in dataset_names(include_folder=True):
        ok, line = dataset_status(name, args.path if name == "folder" else None)
        print(f"{name:14s} {'available' if ok else 'unavailable':12s} {line}")
    return 0


def cmd_data(args) -> int:
    """Own datasets: import a zip or folder of class subfolders (checked as browser uploads are), or list them."""
    if args.action == "list":
        print(f"data folder: {owndata.data_root()}")
        for name in owndata.list_datasets():
            counts = owndata.class_counts(name)
            print(f"{name:24s} {len(counts)} classes, {sum(counts.values()):,} images: "
                  + ", ".join(f"{c} {n}" for c, n in counts.items()))
        return 0
    if not args.source or not args.name:
        raise owndata.OwnDataError("data import needs a zip file or folder and --name")
    report = owndata.import_source(args.source, args.name)
    for line in report.problems:
        print(f"refused: {line}", file=sys.stderr)
    print(json.dumps({"dataset": owndata.dataset_name(args.name), "added": report.added,
                      "refused": len(report.problems), "path": str(owndata.dataset_dir(args.name))}))
    return 1 if report.problems else 0


def _progress(store: MetricsStore, finished: threading.Event) -> None:
    """Draw a one-line progress bar on stderr from the live store until training ends."""
    shown = None
    while not finished.wait(0.5):
        s = store.snapshot(since=-1)  # state plus only the latest batch
        if s.get("status") != "training" or not s["loss"]:
            if s.get("status") != shown:
                shown = s.get("status")
                print(f"\r{shown}…".ljust(100), end="", file=sys.stderr, flush=True)
            continue
        batch, total = s.get("batch", 0), s.get("steps_per_epoch") or 1
        filled = int(30 * batch / total)
        print(f"\repoch {s.get('epoch', 0)}/{s.get('epochs_total', '?')} [{'#' * filled}{'.' * (30 - filled)}] "
              f"{batch}/{total} loss {s['loss'][-1]:.4f} acc {s['accuracy'][-1]:.4f} "
              f"{s.get('samples_per_s', 0):,.0f}/s ETA {s.get('eta_s', 0):.0f}s   ", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)


def cmd_train(args) -> int:
    """Train one run and print a JSON line describing it; Ctrl-C stops it and keeps the model."""
    from core.training import train

    cfg = TrainConfig(dataset=args.dataset, arch=args.arch or default_arch(args.dataset), epochs=args.epochs, batch_size=args.batch_size,
                      learning_rate=args.lr, optimizer=args.optimizer, seed=args.seed,
                      validation_split=args.validation_split, max_train_samples=args.max_train_samples,
                      data_path=args.path, augment=args.augment, schedule=args.schedule,
                      runs_dir=args.runs_dir or str(runs.default_runs_dir()))
    store, stop, finished, outcome = MetricsStore(), threading.Event(), threading.Event(), {}

    def work():
        try:
            outcome["run"] = train(cfg, store=store, stop=stop)
        except Exception as e:  # recorded in the run by train(); reported below
            outcome["error"] = e
        finally:
            finished.set()

    # Train in a worker so Ctrl-C reaches this thread, which turns it into a Stop. (An Event, not
    # Thread.join: a join interrupted by Ctrl-C can report a live thread as finished.)
    worker = threading.Thread(target=work, name="training")
    worker.start()
    try:
        _progress(store, finished)
    except KeyboardInterrupt:
        stop.set()
        print("\nstopping after this batch (the model is kept)…", file=sys.stderr)
        _progress(store, finished)
    worker.join()
    if "error" in outcome:
        e = outcome["error"]
        snap = store.snapshot(since=-1)
        # our own errors read well as they are; anything else (a full disk mid-save…) as train() put it
        msg = str(e) if isinstance(e, (DatasetUnavailable, runs.RunError, ValueError)) else snap.get("error")
        print(json.dumps({"status": "failed", "error": msg or repr(e), "run_id": snap.get("run_id")}))
        return 1
    run = outcome["run"]
    m = run.meta
    print(json.dumps({"run_id": run.id, "path": str(run.path), "status": m["status"],
                      "epochs_done": m.get("epochs_done"), "test_accuracy": round(m["test_accuracy"], 4),
                      "test_loss": round(m["test_loss"], 4), "fit_seconds": m.get("fit_seconds")}))
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
    if name not in dataset_names(include_folder=True):
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
    names = dataset_names(include_folder=True)
    d = sub.add_parser("data", help="own datasets under the data folder ($CLASSIFIER_LAB_DATA): import or list")
    d.add_argument("action", choices=("import", "list"))
    d.add_argument("source", nargs="?", help="a .zip or a folder of class subfolders (import)")
    d.add_argument("--name", help="the dataset to import into (made if missing)")
    t = sub.add_parser("train", help="train a model and save a run")
    t.add_argument("--dataset", required=True, choices=names)
    t.add_argument("--arch", choices=list(ARCHITECTURES), help="default: auto for own datasets, dense otherwise")
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
    for name, helptext in (("evaluate", "evaluate a model on a test split"), ("predict", "predict image files")):
        c = sub.add_parser(name, help=helptext)
        c.add_argument("--model", required=True, help=".keras path, run id, or bundled name (mnist, fashion_mnist)")
        c.add_argument("--runs-dir")
        if name == "evaluate":
            c.add_argument("--dataset", choices=names)
            c.add_argument("--path", help="directory for the folder dataset")
        else:
            c.add_argument("images", nargs="+")
            c.add_argument("--json", action="store_true", help="one JSON line per image")
    t.add_argument("--runs-dir")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    commands = {"datasets": cmd_datasets, "data": cmd_data, "train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict}
    try:
        return commands[args.command](args)
    except (runs.RunError, DatasetUnavailable, owndata.OwnDataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
