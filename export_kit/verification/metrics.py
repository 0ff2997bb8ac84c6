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
    """Precision, recall and F1 per class.

    Precision is None for a class never predicted, recall for a class never present. F1 is counted as
    2TP / (2TP + FP + FN), so a class the model never predicts scores 0, not None: an export that stops predicting
    a class must lower the macro F1, not drop out of it. F1 is None only for a class neither present nor predicted.
    """
    hits = np.diag(matrix).astype(np.float64)
    predicted, present = matrix.sum(axis=0), matrix.sum(axis=1)
    return {"precision": _ratio(hits, predicted), "recall": _ratio(hits, present),
            "f1": _ratio(2 * hits, predicted + present)}


def classification_summary(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> dict:
    """The numbers report.json and the checkpoint keep: the matrix plus per-class and macro scores."""
    matrix = confusion_matrix(labels, predictions, num_classes)
    per_class = class_metrics(matrix)
    f1 = [v for v in per_class["f1"] if v is not None]
    return {"confusion_matrix": matrix.tolist(), **per_class, "macro_f1": float(np.mean(f1)) if f1 else None}
