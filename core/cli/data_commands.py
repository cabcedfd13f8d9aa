"""Command line for the data loop: `data import|list|show` and `fixes list|relabel|exclude|undo`, with the
pages' rules (an own image is named by its file inside the dataset folder; built-ins by --index)."""
from __future__ import annotations

import json
import sys

from core import InvalidValue
from core.data import fixes, owndata, registry, uploads
from core.data.datasets import load_dataset
from core.store import runs


def cmd_data(args) -> int:
    """Own datasets: import a zip or folder of class subfolders (checked as browser uploads are), list them, or
    show one image per line with its identity, split, label and fixes."""
    if args.action == "show":
        return _show(args)
    if args.action == "list":
        print(f"data folder: {registry.data_root()}")
        for name in registry.list_datasets():
            counts = owndata.class_counts(name)
            print(f"{name:24s} {len(counts)} classes, {sum(counts.values()):,} images: "
                  + ", ".join(f"{c} {n}" for c, n in counts.items()))
        return 0
    if not args.source or not args.name:
        raise registry.OwnDataError("data import needs a zip file or folder and --name")
    report = uploads.import_source(args.source, args.name)
    for line in report.problems:
        print(f"refused: {line}", file=sys.stderr)
    print(json.dumps({"dataset": registry.dataset_name(args.name), "added": report.added,
                      "refused": len(report.problems), "path": str(registry.dataset_dir(args.name))}))
    return 1 if report.problems else 0


def _open(args):
    """(the dataset, its overlay, each active fix with where its image is now), position-keyed fixes converted."""
    if not args.dataset:
        raise InvalidValue("name the dataset: --dataset NAME")
    ds = load_dataset(args.dataset)
    overlay = fixes.Overlay(ds.name, args.runs_dir or runs.default_runs_dir())
    return ds, overlay, fixes.placed(ds, overlay)[0]


def _ref(ds, split: str, i: int) -> dict:
    """How a line names an image: {"file", "hash"} (own datasets) or {"index"} (built-ins)."""
    key, digest = fixes.item_ref(ds, split, i)
    return {"index": key} if digest is None else {"file": key, "hash": digest}


def _fixed(ds, placed) -> dict:
    """(split, index) -> {"label", "excluded", "fixes"} as the overlay leaves each fixed image (the later fix wins,
    as fixes.apply replays them)."""
    out = {}
    for fix, where in placed:
        if fix.op == "add" or not where.found:
            continue
        item = out.setdefault((where.split, where.index), {"label": None, "excluded": False, "fixes": []})
        item["fixes"].append(fix.id)
        if fix.op == "relabel" and fixes.label_of(fix, ds) is not None:
            item["label"], item["excluded"] = fixes.label_of(fix, ds), False
        elif fix.op == "exclude":
            item["excluded"] = True
    return out


def _show(args) -> int:
    ds, _, placed = _open(args)
    names, fixed = list(ds.class_names), _fixed(ds, placed)
    for split, labels in (("train", ds.y_train), ("test", ds.y_test)):
        for i, label in enumerate(labels):
            item = fixed.get((split, i), {"label": None, "excluded": False, "fixes": []})
            after = None if item["excluded"] else names[label if item["label"] is None else item["label"]]
            state = "excluded" if item["excluded"] else "relabelled" if item["label"] is not None else None
            row = {**_ref(ds, split, i), "split": split, "label": names[label], "label_after_fixes": after,
                   "fix": state, "fix_ids": item["fixes"]}
            print(json.dumps(row) if args.json else
                  f"{split:5s}  {row.get('file', row.get('index'))}  {names[label]}"
                  + (f"  → {after or 'excluded'}" if state else ""))
    lost = [f for f, where in placed if f.op != "add" and not where.found]
    if lost:
        print(f"{len(lost)} fix(es) name an image that is not in the dataset now (`fixes list` says which)",
              file=sys.stderr)
    return 0


def _find(ds, args) -> tuple[str, int]:
    """(split, index) of the image --file (own datasets: its path inside the dataset folder, or its name when no
    other file has it) or --index/--split (built-ins) names."""
    if not ds.has_files:
        if args.index is None:
            raise InvalidValue(f"{ds.name} is a built-in dataset: its images have no files; name one by --index "
                               "(and --split train|test)")
        n = len(ds.y_train if args.split == "train" else ds.y_test)
        if not 0 <= args.index < n:
            raise InvalidValue(f"--index {args.index} is outside the {args.split} split (0..{n - 1})")
        return args.split, args.index
    if not args.file:
        raise InvalidValue(f"name the image: --file CLASS/NAME, its path inside the {ds.name} folder")
    found = [(s, i) for s in ("train", "test") for i, f in enumerate(registry.item_keys(ds, s))
             if f == args.file or "/" not in args.file and f.rsplit("/", 1)[-1] == args.file]
    if len(found) != 1:
        raise InvalidValue(f"{args.file}: {'no such image' if not found else 'more than one image has that name'} "
                           f"in {ds.name}; give its path inside the dataset folder (`data show --dataset "
                           f"{ds.name}` lists them)")
    return found[0]


def _label(ds, text: str | None) -> int:
    names = list(ds.class_names)
    if text in names:
        return names.index(text)
    if text is not None and text.isdigit() and int(text) < len(names) and not ds.has_files:
        return int(text)
    raise InvalidValue(f"--label must be one of the classes of {ds.name}: {', '.join(names)}")


def _line(fix: fixes.Fix, where=None) -> dict:
    note = fixes.NOTES.get(where.state) if where is not None else None
    return {"id": fix.id, "op": fix.op, "image": fixes.whom(fix, where), "split": where.split if where else fix.split,
            "hash": fix.hash, "label": fix.label_name, "view": fix.view, "when": fix.when,
            **({"converted_from": fix.converted} if fix.converted else {}),
            **({"state": where.state, "note": note} if where is not None else {})}


def cmd_fixes(args) -> int:
    """List, make or undo fixes of a dataset's images, as the Mistakes, Label errors and Fixes pages do."""
    ds, overlay, placed = _open(args)
    if args.action == "list":
        for fix, where in placed:
            line = _line(fix, where)
            print(json.dumps(line) if args.json else
                  f"{fix.id}  {fix.op:8s} {line['image']}" + (f" as {fix.label_name}" if fix.op != "exclude" else "")
                  + f"  ({fix.view}, {fix.when})" + (f"  — {line['note']}" if line.get("note") else ""))
        return 0
    if args.action == "undo" and args.id:
        fix = next((f for f, _ in placed if f.id == args.id), None)
        if fix is None:
            raise InvalidValue(f"no active fix {args.id!r} for {ds.name} (`fixes list` shows them)")
    else:
        split, i = _find(ds, args)
        mine = [f for f, where in placed if where.found and (where.split, where.index) == (split, i)]
        item = _fixed(ds, placed).get((split, i), {"label": None, "excluded": False})
        now = int(ds.y_train[i] if split == "train" else ds.y_test[i]) if item["label"] is None else item["label"]
        key, digest = fixes.item_ref(ds, split, i)
        if args.action == "undo":
            if not mine:
                raise InvalidValue(f"{key} has no active fix to undo")
            fix = mine[-1]  # the newest: one step back, as the Fixes page's first Undo for this image
        elif args.action == "relabel":
            label = _label(ds, args.label)
            if label == now and not item["excluded"]:
                raise InvalidValue(f"{key} is labelled {ds.class_names[label]} already")
            fix = overlay.record("relabel", split, key, label, ds.class_names[label], view="cli", hash=digest)
        else:
            if item["excluded"]:
                raise InvalidValue(f"{key} is excluded already (undo that fix to bring it back)")
            fix = overlay.record("exclude", split, key, view="cli", hash=digest)
    if args.action == "undo":
        overlay.undo(fix.id)
    print(json.dumps({"action": args.action, **_line(fix)}) if args.json else f"{args.action}: {_line(fix)['image']}"
          + (f" as {fix.label_name}" if fix.op == "relabel" and args.action == "relabel" else "") + f" ({fix.id})")
    return 0


def add_parsers(sub, names: list[str]) -> None:
    """The `data` and `fixes` subcommands."""
    d = sub.add_parser("data", help="own datasets under the data folder ($CLASSIFIER_LAB_DATA): import, list, or "
                       "show one image per line")
    d.add_argument("action", choices=("import", "list", "show"))
    d.add_argument("source", nargs="?", help="a .zip or a folder of class subfolders (import)")
    d.add_argument("--name", help="the dataset to import into (made if missing)")
    d.add_argument("--dataset", choices=names, help="the dataset to show")
    f = sub.add_parser("fixes", help="list, make or undo fixes (relabel, exclude) of a dataset's images")
    f.add_argument("action", choices=("list", "relabel", "exclude", "undo"))
    f.add_argument("--dataset", required=True, choices=names)
    f.add_argument("--file", help="an own dataset's image: its path inside the dataset folder (cats/cat_01.png)")
    f.add_argument("--label", help="relabel: the class, by name")
    f.add_argument("--index", type=int, help="a built-in dataset's image: its index in --split")
    f.add_argument("--split", choices=("train", "test"), default="train")
    f.add_argument("--id", help="undo: the fix, by id (`fixes list`), instead of the newest fix of --file")
    for c in (d, f):
        c.add_argument("--json", action="store_true", help="one JSON object per line")
        c.add_argument("--runs-dir", help="the runs folder whose .fixes hold the overlays")
