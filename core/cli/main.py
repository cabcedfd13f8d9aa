"""Command line: python -m core datasets|data|fixes|train|lr-find|sweep|labels|evaluate|predict|export."""
from __future__ import annotations

import argparse
import json
import sys
import time

from core import LabError
from core.store import runs
from core.cli.data_commands import add_parsers, cmd_data, cmd_fixes
from core.data.datasets import dataset_status
from core.data.registry import dataset_names
from core.engine.scheduler import ENGINES
from core.model.architectures import ARCHITECTURES
from core.model.recipes import default_arch
from core.cli.model_commands import cmd_evaluate, cmd_export, cmd_predict
from core.train.trainer import OPTIMIZERS, TrainConfig


def cmd_datasets(args) -> int:
    """List the datasets and whether each can be loaded here."""
    for name in dataset_names(include_folder=True):
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


def _config(args, **values) -> TrainConfig | int:
    """The TrainConfig the shared flags describe, checked; or 1 after printing why it cannot work."""
    flags = {"arch": "arch", "epochs": "epochs", "batch_size": "batch_size", "learning_rate": "lr",
             "augment": "augment", "schedule": "schedule", "early_stopping_patience": "early_stopping",
             "fine_tune_blocks": "fine_tune_blocks"}
    given = {name: getattr(args, flag) for name, flag in flags.items() if hasattr(args, flag)}
    if "arch" in given and given["arch"] is None:
        given["arch"] = default_arch(args.dataset)  # auto for own datasets, dense otherwise
    cfg = TrainConfig(dataset=args.dataset, optimizer=args.optimizer, seed=args.seed,
                      validation_split=args.validation_split, max_train_samples=args.max_train_samples,
                      data_path=args.path, **{**given, **values})
    try:
        cfg.resolved()
    except ValueError as e:  # rejected before a run folder is made, or an engine started
        print(json.dumps({"status": "failed", "error": str(e), "run_id": None}))
        return 1
    return cfg


def _run_one(args, cfg: TrainConfig) -> runs.Run | None:
    """Queue one run on a one-slot engine, show its progress until it ends (Ctrl-C stops it), return it;
    None after printing why when it cannot even be queued (no writable runs folder)."""
    from core.engine.scheduler import Engine

    engine = Engine(args.runs_dir or runs.default_runs_dir(), slots=1, kind=args.engine)
    try:
        try:
            run_id = engine.submit(cfg)
        except (ValueError, runs.RunError) as e:  # bad settings, or no runs folder: no run, no worker
            print(json.dumps({"status": "failed", "error": str(e), "run_id": None}))
            return None
        feed = engine.attach(run_id)
        try:
            _progress(feed, lambda: engine.is_active(run_id))
        except KeyboardInterrupt:
            engine.stop(run_id)
            print("\nstopping after this batch (the model is kept)…", file=sys.stderr)
            _progress(feed, lambda: engine.is_active(run_id))
        return engine.wait(run_id)
    finally:
        engine.close()


def cmd_train(args) -> int:
    """Train one run through the engine (a worker process, or Ray) and print a JSON line describing it.

    Ctrl-C stops it after the current batch and keeps the model."""
    cfg = _config(args)
    if isinstance(cfg, int):
        return cfg
    run = _run_one(args, cfg)
    if run is None:
        return 1
    m = run.meta
    if run.status not in runs.FINISHED:
        print(json.dumps({"status": run.status, "error": m.get("error") or "the run did not finish", "run_id": run.id}))
        return 1
    print(json.dumps({"run_id": run.id, "path": str(run.path), "status": m["status"],
                      "epochs_done": m.get("epochs_done"), "test_accuracy": round(m["test_accuracy"], 4),
                      "test_loss": round(m["test_loss"], 4), "fit_seconds": m.get("fit_seconds"),
                      **({"best_epoch": m["best_epoch"]} if "best_epoch" in m else {})}))
    return 0


def cmd_lr_find(args) -> int:
    """Run a learning-rate range test through the engine and print the suggested rate."""
    from core.train import lr_find

    cfg = _config(args, mode="lr_find")
    if isinstance(cfg, int):
        return cfg
    run = _run_one(args, cfg)
    if run is None:
        return 1
    record = lr_find.load(run.path)
    if run.status not in runs.FINISHED or record is None:
        print(json.dumps({"status": run.status, "error": run.meta.get("error") or "no result", "run_id": run.id}))
        return 1
    out = {"run_id": run.id, "suggested_lr": float(f"{record['suggested_lr']:.3g}"), "method": record["method"],
           "min_loss_lr": float(f"{record['min_loss_lr']:.3g}"), "batches": len(record["losses"]),
           "diverged": record["diverged"], "seconds": record["seconds"]}
    if args.json:
        print(json.dumps(out))
        return 0
    lrs, smoothed = record["lrs"], record["smoothed"]
    for i in range(0, len(smoothed), max(1, len(smoothed) // 20)):
        mark = "  <- suggested" if abs(i - record["suggested_index"]) < max(1, len(smoothed) // 40) else ""
        print(f"lr {lrs[i]:9.2e}  loss {smoothed[i]:7.4f}  {'#' * int(20 * smoothed[i] / max(smoothed))}{mark}")
    print(f"suggested learning rate: {out['suggested_lr']:g} ({out['method']}; lowest loss at "
          f"{out['min_loss_lr']:g}; {out['batches']} batches in {out['seconds']:.1f} s)")
    return 0


def _values(text: str | None, kind) -> list:
    """'1e-3,3e-3' -> [0.001, 0.003]; booleans as on/off, yes/no, true/false."""
    if text is None:
        return []
    if kind is bool:
        words = {"on": True, "yes": True, "true": True, "off": False, "no": False, "false": False}
        parse = lambda w: words[w.lower()]  # noqa: E731
    else:
        parse = kind
    try:
        return [parse(w.strip()) for w in text.split(",") if w.strip()]
    except (KeyError, ValueError) as e:
        raise SystemExit(f"error: cannot read {text!r} as a list of {kind.__name__} values ({e})") from None


def cmd_sweep(args) -> int:
    """Queue a grid (or random) sweep on the engine, wait for every run, print the runs ranked."""
    from core.train import sweeps
    from core.engine.scheduler import Engine

    grid = {"arch": _values(args.arch, str), "learning_rate": _values(args.lr, float),
            "batch_size": _values(args.batch_size, int), "epochs": _values(args.epochs, int),
            "augment": _values(args.augment, bool)}
    base = _config(args, arch=grid["arch"][0], epochs=None, batch_size=None, learning_rate=None, augment=None)
    if isinstance(base, int):
        return base
    engine = Engine(args.runs_dir or runs.default_runs_dir(), slots=args.slots, kind=args.engine)
    try:
        try:
            sweep = sweeps.launch(engine, base, {k: v for k, v in grid.items() if v}, args.random, args.seed)
        except ValueError as e:
            print(json.dumps({"status": "failed", "error": str(e), "sweep": None}))
            return 1
        print(f"sweep {sweep['id']}: {len(sweep['runs'])} runs, {engine.slots} at a time", file=sys.stderr)
        try:
            sweeps.wait(sweep, engine)
        except KeyboardInterrupt:
            sweeps.stop(sweep, engine)
            print("\nstopping the sweep (running runs keep their models)…", file=sys.stderr)
            sweeps.wait(sweep, engine)
    finally:
        engine.close()
    rows = sweeps.summary(sweep, engine.runs_dir)
    top = sweeps.best(rows)
    if args.json:
        print(json.dumps({"sweep": sweep["id"], "runs": rows, "best": top and top["run"]}))
    else:
        for r in rows:
            acc = "–" if r["val_accuracy"] is None else f"{r['val_accuracy']:.2%}"
            varied = "  ".join(f"{k}={r[k]}" for k in sweep["grid"])
            print(f"{r['rank'] or '-':>3}  val acc {acc:>7}  {r['status']:9s}  {varied}  {r['run']}")
    return 0 if top else 1


def cmd_labels(args) -> int:
    """Suspected label errors (k-fold out-of-sample probabilities + cleanlab): a built-in's training split, all of an
    own dataset's images (each line names the file, its split and hash)."""
    from core.train import label_search
    from core.engine.scheduler import Engine

    start = label_search.defaults(args.dataset, args.arch)  # the dataset's default recipe
    args.arch, epochs = start["arch"], args.epochs or start["epochs"]
    base = TrainConfig(dataset=args.dataset, arch=args.arch, epochs=epochs, folds=args.folds, seed=args.seed,
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
    print(f"{len(found)} suspected label errors ({args.folds} folds of {args.arch}, {epochs} epochs, "
          f"{time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("datasets", help="list datasets and where they come from")
    d.add_argument("--path", help="directory for the folder dataset")
    names = dataset_names(include_folder=True)
    add_parsers(sub, names)
    t = sub.add_parser("train", help="train a model and save a run")
    t.add_argument("--arch", choices=list(ARCHITECTURES), help="default: auto for own datasets, dense otherwise")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--schedule", choices=("constant", "cosine"))
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    t.add_argument("--early-stopping", type=int, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without a lower val loss and keep the best epoch's weights")
    t.add_argument("--fine-tune-blocks", type=int, default=0, metavar="N",
                   help="efficientnet_lite0: also train its last N blocks (0-16), from cached inputs; use a low --lr")
    f = sub.add_parser("lr-find", help="learning-rate range test: suggest a learning rate")
    f.add_argument("--arch", required=True, choices=list(ARCHITECTURES))
    f.add_argument("--batch-size", type=int)
    f.add_argument("--json", action="store_true", help="one JSON line")
    w = sub.add_parser("sweep", help="train a grid of settings and rank the runs by validation accuracy")
    w.add_argument("--arch", default="dense", help="architectures, comma-separated (dense,cnn)")
    w.add_argument("--lr", help="learning rates, comma-separated (1e-3,3e-3)")
    w.add_argument("--batch-size", help="batch sizes, comma-separated")
    w.add_argument("--epochs", help="epoch counts, comma-separated")
    w.add_argument("--augment", help="augmentation, comma-separated on/off")
    w.add_argument("--early-stopping", type=int, metavar="PATIENCE", help="early stopping for every run")
    w.add_argument("--random", type=int, metavar="N", help="N random combinations instead of the whole grid")
    w.add_argument("--slots", type=int, help="runs at a time (default: $CLASSIFIER_LAB_MAX_TRAININGS or cores/2)")
    w.add_argument("--json", action="store_true", help="one JSON object: the runs ranked, and the best")
    for c in (t, f, w):
        c.add_argument("--dataset", required=True, choices=names)
        c.add_argument("--optimizer", choices=OPTIMIZERS)
        c.add_argument("--seed", type=int, default=0)
        c.add_argument("--validation-split", type=float, default=0.1)
        c.add_argument("--max-train-samples", type=int, help="train on a seeded subset of this size")
        c.add_argument("--path", help="directory for the folder dataset")
        c.add_argument("--engine", choices=ENGINES,
                       help="where the workers run (default: $CLASSIFIER_LAB_ENGINE, else local)")
        c.add_argument("--runs-dir")
    lb = sub.add_parser("labels", help="find label errors (k-fold + confident learning): in a built-in's training "
                        "data, in all of an own dataset's images")
    lb.add_argument("--dataset", required=True, choices=names)
    lb.add_argument("--folds", type=int, default=4)
    lb.add_argument("--arch", choices=list(ARCHITECTURES), help="default: the dataset's (auto for own datasets)")
    lb.add_argument("--epochs", type=int, help="default: the search's for that architecture")
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
            c.add_argument("--dataset", choices=names)
            c.add_argument("--path", help="directory for the folder dataset")
        else:
            c.add_argument("images", nargs="+")
            c.add_argument("--json", action="store_true", help="one JSON line per image")
    e = sub.add_parser("export", help="export a model to other formats, each checked against the Keras model")
    e.add_argument("--model", required=True, help=".keras path, run id, or bundled name (mnist, fashion_mnist)")
    e.add_argument("--format", default="all", help="comma-separated: keras,savedmodel,tflite,tflite-int8,onnx,"
                   "webpage (default: all)")
    e.add_argument("--out", required=True, help="folder for the zips (one per format)")
    e.add_argument("--json", action="store_true", help="one JSON line per format with its checks")
    e.add_argument("--runs-dir")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    commands = {"datasets": cmd_datasets, "data": cmd_data, "fixes": cmd_fixes, "train": cmd_train, "lr-find": cmd_lr_find,
                "sweep": cmd_sweep, "labels": cmd_labels, "evaluate": cmd_evaluate, "predict": cmd_predict,
                "export": cmd_export}
    try:
        return commands[args.command](args)
    except LabError as e:  # meant for the person: one line; anything else is a bug and keeps its traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
