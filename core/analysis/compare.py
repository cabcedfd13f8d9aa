"""Compare two runs on the same test split: per-class accuracy, mistakes fixed, new mistakes, confusion change."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core import InvalidValue
from core.data import fixes, identity
from core.analysis.metrics import confusion_matrix, per_class


def compare(ds, meta_a: dict, probs_a: np.ndarray, meta_b: dict, probs_b: np.ndarray,
            runs_dir: Path | str | None = None) -> dict:
    """Run A (before) against run B (after), each judged by the test labels of its own data version.

    A test image relabelled by a fix between the two runs counts as fixed when A's prediction missed its old
    label and B's meets its new one: that mistake was the label's, and the fix removed it. Images excluded
    in either version are left out of both.
    """
    if probs_a.shape != probs_b.shape or len(probs_a) != len(ds.y_test):
        raise InvalidValue(f"the runs' test predictions differ in shape ({probs_a.shape} vs {probs_b.shape}): "
                         "they were not made on the same test split")
    prep_a, prep_b = fixes.for_run(ds, meta_a, runs_dir), fixes.for_run(ds, meta_b, runs_dir)
    y_a, y_b = np.asarray(prep_a.dataset.y_test), np.asarray(prep_b.dataset.y_test)
    keep = prep_a.test_keep & prep_b.test_keep
    pred_a, pred_b = probs_a.argmax(1), probs_b.argmax(1)
    wrong_a, wrong_b = (pred_a != y_a) & keep, (pred_b != y_b) & keep
    k = ds.num_classes
    cm_a = confusion_matrix(y_a[keep], pred_a[keep], k)
    cm_b = confusion_matrix(y_b[keep], pred_b[keep], k)
    fixed, new = np.flatnonzero(wrong_a & ~wrong_b), np.flatnonzero(~wrong_a & wrong_b)
    relabelled = np.flatnonzero((y_a != y_b) & keep)
    n = max(1, int(keep.sum()))
    return {"n": int(keep.sum()), "accuracy": (1 - wrong_a.sum() / n, 1 - wrong_b.sum() / n),
            "per_class": (per_class(cm_a)["accuracy"], per_class(cm_b)["accuracy"]),
            "confusion": (cm_a, cm_b), "confusion_diff": cm_b - cm_a,
            "fixed": fixed, "new": new, "relabelled": relabelled,
            "labels": (y_a, y_b), "pred": (pred_a, pred_b), "files": ds.test_files,
            "split_warning": split_warning(ds, meta_a, meta_b),
            "versions": (fixes.version_id(meta_a.get("data_version")), fixes.version_id(meta_b.get("data_version")))}


def split_warning(ds, meta_a: dict, meta_b: dict) -> str | None:
    """A sentence when the two runs were not tested on the same images (the dataset changed between them), or
    when an own dataset's run predates split versions and may not have been; None when they were."""
    same = identity.same_test_images(meta_a, meta_b)
    if same:
        return None
    if same is False:
        return ("A and B were tested on different images (the dataset changed between the two trainings): their "
                "recorded test accuracies are not comparable. The figures here are both measured on today's test "
                "images, some of which one of them may have trained on.")
    if ds.has_files:
        return ("One of these runs was trained before runs recorded which test images they used, so it may have "
                "been tested on other images; the figures here are both measured on today's test images.")
    return None


def changes(result: dict, which: str, class_names) -> list[dict]:
    """Rows for a table of the fixed or the new mistakes: index (and file), labels and predictions before and after."""
    (y_a, y_b), (p_a, p_b) = result["labels"], result["pred"]
    relabelled, files = set(result["relabelled"].tolist()), result.get("files")
    return [{"test index": int(i), **({"file": str(files[i])} if files is not None else {}), "label before": class_names[y_a[i]], "predicted before": class_names[p_a[i]],
             "label after": class_names[y_b[i]], "predicted after": class_names[p_b[i]],
             "how": "label fixed" if i in relabelled else "model"} for i in result[which]]
