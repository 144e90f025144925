"""Accuracy of a model on labelled samples: confusion matrix, overall accuracy, kappa, per-class
accuracies; spatially blocked cross-validation; agreement with a reference map."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import xarray as xr
from sklearn.base import ClassifierMixin, clone
from sklearn.metrics import cohen_kappa_score, confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import GroupKFold

from pipeline.config import ClassDef
from pipeline.errors import InputError

from pipeline.classify.predict import UNCLASSIFIED

__all__ = ["accuracy_assessment", "compare_with_reference", "spatial_blocks", "spatial_cross_validation",
           "permutation_importance"]


def accuracy_assessment(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[ClassDef]) -> dict:
    """Confusion matrix (rows: reference, columns: map), overall accuracy, kappa, per-class accuracies."""
    codes = [c.code for c in classes]
    matrix = confusion_matrix(y_true, y_pred, labels=codes)
    users, producers, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=codes, zero_division=np.nan)
    per_class = [
        {"code": c.code, "name": c.name, "n_reference": int(n),
         "users_accuracy": _rounded(u), "producers_accuracy": _rounded(p), "f1": _rounded(f)}
        for c, u, p, f, n in zip(classes, users, producers, f1, support)
    ]
    return {
        "n_samples": int(len(y_true)),
        "overall_accuracy": _rounded(np.mean(y_true == y_pred)),
        "kappa": _rounded(cohen_kappa_score(y_true, y_pred, labels=codes)),
        "classes": per_class,
        "confusion_matrix": {"labels": codes, "rows": "reference", "columns": "map",
                             "counts": matrix.tolist()},
    }


def _rounded(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 4)


def compare_with_reference(class_map: xr.DataArray, reference: xr.DataArray,
                           classes: Sequence[ClassDef]) -> dict:
    """Pixel-by-pixel agreement of a class map with a reference map (e.g. the demo's truth).

    Both (..., y, x) uint8 with 255 = nodata; the reference is taken at the class map's pixel centres.
    Computes: returns `accuracy_assessment` over every pixel valid in both.
    """
    aligned = reference.sel(x=class_map.x, y=class_map.y, method="nearest", tolerance=1e-6)
    mapped, truth = np.asarray(class_map.values).ravel(), np.asarray(aligned.values).ravel()
    valid = (mapped != UNCLASSIFIED) & (truth != UNCLASSIFIED)
    return accuracy_assessment(truth[valid], mapped[valid], classes)


def spatial_blocks(x: np.ndarray, y: np.ndarray, *, block_size: float) -> np.ndarray:
    """Block id of each sample: squares of `block_size` (CRS units, metres) on a grid from (0, 0)."""
    if not block_size > 0:
        raise ValueError(f"block_size must be positive, got {block_size}")
    bx = np.floor(np.asarray(x) / block_size).astype(np.int64)
    by = np.floor(np.asarray(y) / block_size).astype(np.int64)
    _, block = np.unique(np.stack([bx, by], axis=1), axis=0, return_inverse=True)
    return block.ravel()


def spatial_cross_validation(model: ClassifierMixin, X: np.ndarray, y: np.ndarray, blocks: np.ndarray, *,
                             n_folds: int, classes: Sequence[ClassDef], random_state: int,
                             feature_names: Sequence[str] | None = None,
                             feature_groups: Mapping[str, Sequence[int]] | None = None,
                             importance_repeats: int = 0, threads: int | None = None) -> dict:
    """Spatially blocked k-fold cross-validation: whole blocks go to one fold, so a test sample's
    neighbours are never in its training set (random pixel splits overstate accuracy).

    Out-of-fold predictions of all folds are pooled into one `accuracy_assessment`; the per-fold
    overall accuracies are added (``fold_overall_accuracy``), with ``n_blocks`` and ``n_folds``.
    With `importance_repeats` > 0 and `feature_names`, also ``importance``: the permutation importance
    of each feature (and of each family of `feature_groups`, its columns shuffled together) on each
    fold's test blocks (`permutation_importance`). The folds run in `threads` threads (default: one per
    core, up to the folds); the results do not depend on it.
    """
    n_blocks = len(np.unique(blocks))
    if n_blocks < n_folds:
        raise InputError(f"spatial cross-validation: {n_blocks} blocks with samples for {n_folds} folds; "
                         "use a smaller block size or fewer folds")
    folds = list(GroupKFold(n_splits=n_folds, shuffle=True, random_state=random_state).split(X, y, groups=blocks))

    def fold(k: int) -> tuple[np.ndarray, dict | None]:
        train, test = folds[k]
        fitted = clone(model).fit(X[train], y[train])
        drop = None
        if importance_repeats and feature_names is not None:
            columns = {name: [j] for j, name in enumerate(feature_names)}
            families = {f"{name} (together)" if name in columns else name: list(c)
                        for name, c in (feature_groups or {}).items() if len(c) > 1}
            drop = permutation_importance(fitted, X[test], y[test], {**columns, **families},
                                          repeats=importance_repeats, seed=random_state + k)
        return fitted.predict(X[test]), drop

    # the folds at once, a thread each up to the cores (the trees are grown and walked without the GIL); each
    # fold is seeded on its own, so the figures do not depend on the threads
    with ThreadPoolExecutor(max(1, min(n_folds, threads or os.cpu_count() or 1))) as pool:
        results = list(pool.map(fold, range(n_folds)))
    predicted = np.empty_like(y)
    fold_oa, drops = [], []
    for (_, test), (fold_predicted, drop) in zip(folds, results):
        predicted[test] = fold_predicted
        fold_oa.append(_rounded(np.mean(fold_predicted == y[test])))
        if drop is not None:
            drops.append(drop)
    report = accuracy_assessment(y, predicted, classes)
    report.update(n_folds=n_folds, n_blocks=n_blocks, fold_overall_accuracy=fold_oa)
    if drops:
        report["importance"] = _importance_report(drops, feature_names, importance_repeats)
    return report


def permutation_importance(model: ClassifierMixin, X: np.ndarray, y: np.ndarray,
                           columns: Mapping[str, Sequence[int]], *, repeats: int, seed: int) -> dict[str, float]:
    """Mean drop of overall accuracy when the `columns` of each entry are shuffled across the samples
    (rows kept together, so a family keeps its joint values), over `repeats` shuffles (seeded)."""
    rng = np.random.default_rng(seed)
    base = float(np.mean(model.predict(X) == y))
    out = {}
    for name, cols in columns.items():
        cols = list(cols)
        shuffled = np.tile(X, (repeats, 1))           # all repeats in one call of the model
        for r in range(repeats):
            shuffled[r * len(X):(r + 1) * len(X), cols] = X[rng.permutation(len(X))][:, cols]
        hits = (model.predict(shuffled) == np.tile(y, repeats)).reshape(repeats, len(X))
        out[name] = float(np.mean(base - hits.mean(axis=1)))
    return out


def _importance_report(drops: list[dict[str, float]], feature_names: Sequence[str], repeats: int) -> dict:
    """Per feature (and family): the OA drop's mean, sd, min and max over the folds, largest first."""
    rows = []
    for name in drops[0]:
        values = np.array([d[name] for d in drops])
        rows.append({"feature": name, "kind": "feature" if name in feature_names else "group",
                     "mean_oa_drop": round(float(values.mean()), 4), "sd_oa_drop": round(float(values.std()), 4),
                     "min_oa_drop": round(float(values.min()), 4), "max_oa_drop": round(float(values.max()), 4)})
    rows.sort(key=lambda r: (r["kind"] != "group", -r["mean_oa_drop"], r["feature"]))
    return {"method": "permutation importance on each spatial-CV fold's test blocks: drop of overall accuracy "
                      f"when a feature (or a family of features, shuffled together) is shuffled, mean of {repeats} "
                      "shuffles, then mean/sd/min/max over the folds",
            "n_repeats": repeats, "features": rows}
