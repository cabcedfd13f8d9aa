"""Error analysis on test-set probabilities: mistakes, confusion matrix, per-class metrics."""
from __future__ import annotations

import numpy as np

from core import InvalidValue

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
        raise InvalidValue(f"sort must be one of {SORTS}")
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


def class_report(cm: np.ndarray, class_names) -> list[dict]:
    """Per-class precision, recall, F1 and support, computed from the confusion matrix (rows true).

    precision = TP / column sum, recall = TP / row sum, F1 their harmonic mean; 0 where undefined
    (scikit-learn's zero_division=0), so the figures equal precision_recall_fscore_support's.
    """
    pc = per_class(cm)
    p, r = pc["precision"], pc["recall"]
    f1 = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)
    return [{"class": str(name), "precision": float(p[i]), "recall": float(r[i]), "F1": float(f1[i]),
             "support": int(pc["support"][i])} for i, name in enumerate(class_names)]


def calibration(probs: np.ndarray, y_true: np.ndarray, bins: int = 15) -> dict:
    """Reliability of the top-class confidence, and the expected calibration error (ECE).

    Binning: `bins` equal-width bins of the predicted class's probability over [0, 1], each right-closed
    ((0, 1/bins], …, ((bins-1)/bins, 1]; a confidence of exactly 0 goes into the first). Per bin: mean
    confidence, accuracy and count. ECE = Σ_b (n_b / N) · |accuracy_b − confidence_b| over non-empty bins
    (Guo et al. 2017, 15 bins by default).
    """
    probs, y_true = np.asarray(probs), np.asarray(y_true)
    conf, pred = probs.max(1), probs.argmax(1)
    right = (pred == y_true).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    safe = np.maximum(count, 1)
    mean_conf = np.bincount(which, conf, bins) / safe
    accuracy = np.bincount(which, right, bins) / safe
    ece = float((count * np.abs(accuracy - mean_conf)).sum() / len(conf)) if len(conf) else float("nan")
    empty = count == 0
    return {"edges": edges, "count": count, "confidence": np.where(empty, np.nan, mean_conf),
            "accuracy": np.where(empty, np.nan, accuracy), "ece": ece,
            "right_confidence": conf[right == 1], "wrong_confidence": conf[right == 0]}
