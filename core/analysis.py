"""Error analysis on test-set probabilities: mistakes, confusion matrix, per-class metrics."""
from __future__ import annotations

import numpy as np

SORTS = ("most confident", "least confident", "random")


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class accuracy (= recall), precision and support; 0 where undefined."""
    tp = np.diag(cm).astype(float)
    support, predicted = cm.sum(1), cm.sum(0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    return {"accuracy": recall, "recall": recall, "precision": precision, "support": support}


def mistakes(probs: np.ndarray, y_true: np.ndarray, *, true_class: int | None = None,
             pred_class: int | None = None, sort: str = "most confident", seed: int = 0) -> np.ndarray:
    """Indices of misclassified samples, filtered by (true, predicted) cell and ordered by `sort`."""
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {SORTS}")
    y_true = np.asarray(y_true)
    pred = probs.argmax(1)
    keep = pred != y_true
    if true_class is not None:
        keep &= y_true == true_class
    if pred_class is not None:
        keep &= pred == pred_class
    idx = np.flatnonzero(keep)
    if sort == "random":
        return np.random.default_rng(seed).permutation(idx)  # a sample without replacement
    conf = probs[idx, pred[idx]]
    order = np.argsort(-conf if sort == "most confident" else conf, kind="stable")
    return idx[order]


def summary(probs: np.ndarray, y_true: np.ndarray, class_names) -> dict:
    """Accuracy, loss, confusion matrix and per-class metrics, JSON-friendly."""
    y_true = np.asarray(y_true)
    pred = probs.argmax(1)
    cm = confusion_matrix(y_true, pred, len(class_names))
    pc = per_class(cm)
    loss = float(-np.log(probs[np.arange(len(y_true)), y_true] + 1e-7).mean()) if len(y_true) else float("nan")
    return {
        "accuracy": float((pred == y_true).mean()) if len(y_true) else float("nan"),
        "loss": loss,
        "n": int(len(y_true)),
        "errors": int((pred != y_true).sum()),
        "confusion_matrix": cm.tolist(),
        "per_class": {name: {"accuracy": round(float(pc["accuracy"][i]), 4),
                             "precision": round(float(pc["precision"][i]), 4),
                             "support": int(pc["support"][i])} for i, name in enumerate(class_names)},
    }


def label_issues(probs: np.ndarray, labels: np.ndarray, num_classes: int | None = None) -> dict[str, np.ndarray]:
    """Likely label errors, confident-learning style: ranked by self-confidence of the given label.

    Class j's threshold is the mean predicted probability of j over samples labelled j; a sample is
    flagged when it confidently belongs (p >= threshold) to a class other than its given label.
    """
    labels = np.asarray(labels)
    k = num_classes or probs.shape[1]
    thresholds = np.array([probs[labels == j, j].mean() if (labels == j).any() else 1.0 for j in range(k)])
    above = probs >= thresholds[None, :]
    masked = np.where(above, probs, -1.0)
    suggested = masked.argmax(1)  # the most probable of the classes it confidently belongs to
    flagged = above.any(1) & (suggested != labels)
    idx = np.flatnonzero(flagged)
    self_conf = probs[idx, labels[idx]]
    order = np.argsort(self_conf, kind="stable")  # least faith in the given label first
    idx = idx[order]
    return {"index": idx, "given": labels[idx], "suggested": suggested[idx],
            "self_confidence": probs[idx, labels[idx]], "suggested_confidence": probs[idx, suggested[idx]],
            "thresholds": thresholds}
