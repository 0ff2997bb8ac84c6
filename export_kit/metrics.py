"""Per-class precision, recall and F1 and the confusion matrix: which classes a model (or an export) gets wrong."""

from __future__ import annotations

import numpy as np


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``m[true, predicted]`` counts; rows sum to the number of test images of each class."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (labels.astype(np.int64), predictions.astype(np.int64)), 1)
    return m


def _ratio(num: np.ndarray, den: np.ndarray) -> list[float | None]:
    return [None if d == 0 else float(n / d) for n, d in zip(num, den, strict=True)]


def class_metrics(matrix: np.ndarray) -> dict[str, list[float | None]]:
    """Precision, recall and F1 per class; None where a class was never predicted or never present."""
    hits = np.diag(matrix).astype(np.float64)
    precision = _ratio(hits, matrix.sum(axis=0))
    recall = _ratio(hits, matrix.sum(axis=1))
    f1 = [None if p is None or r is None else (0.0 if p + r == 0 else 2 * p * r / (p + r))
          for p, r in zip(precision, recall, strict=True)]
    return {"precision": precision, "recall": recall, "f1": f1}


def classification_summary(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> dict:
    """The numbers report.json and the checkpoint keep: the matrix plus per-class and macro scores."""
    matrix = confusion_matrix(labels, predictions, num_classes)
    per_class = class_metrics(matrix)
    f1 = [v for v in per_class["f1"] if v is not None]
    return {"confusion_matrix": matrix.tolist(), **per_class, "macro_f1": float(np.mean(f1)) if f1 else None}
