"""Supervised land-cover classification: features, training samples, a random forest, class maps.

Raster <-> table reshaping lives in one kernel, `_predict_block`; `predict_class_map` wraps it so
prediction stays lazy and runs block by block on the Dask workers.
"""

from __future__ import annotations

from collections.abc import Sequence

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from sklearn.base import ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import cohen_kappa_score, confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import train_test_split

from pipeline.config import ClassDef
from pipeline.errors import InputError

__all__ = [
    "UNCLASSIFIED",
    "feature_stack",
    "training_samples",
    "train_random_forest",
    "accuracy_assessment",
    "predict_class_map",
    "compare_with_reference",
]

UNCLASSIFIED = 255  # class-map nodata: outside the AOI or a feature missing


def feature_stack(composites: xr.Dataset, names: Sequence[str]) -> xr.DataArray:
    """(period, y, x, feature) float32 from the named composite variables, feature in one chunk."""
    missing = [n for n in names if n not in composites]
    if missing:
        raise KeyError(f"no composite variable(s) {missing}; have {list(composites.data_vars)}")
    features = composites[list(names)].to_dataarray("feature").transpose("period", "y", "x", "feature")
    features = features.astype("float32")
    return features.chunk(feature=-1) if features.chunks else features


def training_samples(features: xr.DataArray, points: gpd.GeoDataFrame) -> tuple[xr.DataArray, pd.DataFrame]:
    """Feature values at labelled points, lazily: ((sample, feature) float32, labels table).

    Points outside the grid, or whose period is not among the composites, are left out (counted in the
    labels table's attrs `dropped_outside` / `dropped_period`). Points without a `period` column hold
    for every period. Rows whose features are NaN (cloudy, nodata) are for the caller to drop.
    """
    points = points.to_crs(features.rio.crs)
    x, y = points.geometry.x.to_numpy(), points.geometry.y.to_numpy()
    res_x, res_y = (abs(r) for r in features.rio.resolution())
    inside = ((x >= float(features.x.min()) - res_x / 2) & (x <= float(features.x.max()) + res_x / 2)
              & (y >= float(features.y.min()) - res_y / 2) & (y <= float(features.y.max()) + res_y / 2))
    labels = pd.DataFrame({"x": x, "y": y, "class_code": points["class_code"].to_numpy()})
    if "period" in points:
        labels["period"] = points["period"].to_numpy()
    else:
        labels = labels.merge(pd.DataFrame({"period": features["period"].values}), how="cross")
        inside = np.tile(inside[:, np.newaxis], (1, features.sizes["period"])).ravel()
    known_period = labels["period"].isin(features["period"].values).to_numpy()
    keep = inside & known_period
    labels_kept = labels[keep].reset_index(drop=True)
    labels_kept.attrs.update(dropped_outside=int((~inside).sum()),
                             dropped_period=int((inside & ~known_period).sum()))
    at = {dim: xr.DataArray(labels_kept[dim].to_numpy(), dims="sample") for dim in ("x", "y")}
    samples = features.sel(**at, method="nearest").sel(
        period=xr.DataArray(labels_kept["period"].to_numpy(), dims="sample"))
    return samples.transpose("sample", "feature"), labels_kept


def train_random_forest(
    X: np.ndarray,
    y: np.ndarray,
    *,
    n_estimators: int = 100,
    max_depth: int | None = None,
    test_fraction: float = 0.3,
    random_state: int = 42,
) -> tuple[RandomForestClassifier, np.ndarray, np.ndarray]:
    """Fit a random forest on a stratified share of the samples; return it with the held-out (X, y).

    The hold-out is for `accuracy_assessment`: the map is made by the model that was assessed.
    """
    counts = pd.Series(y).value_counts()
    too_few = counts[counts < 2]
    if len(too_few):
        raise InputError(f"training data: classes {sorted(too_few.index.tolist())} have fewer than 2 "
                         "usable samples; add labels or remove the classes")
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_fraction, stratify=y, random_state=random_state)
    model = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth,
                                   random_state=random_state, n_jobs=1)
    return model.fit(X_train, y_train), X_test, y_test


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


def _predict_block(block: np.ndarray, model: ClassifierMixin) -> np.ndarray:
    """(..., feature) float -> (...) uint8 class codes; UNCLASSIFIED where any feature is NaN."""
    flat = block.reshape(-1, block.shape[-1])
    valid = np.isfinite(flat).all(axis=1)
    out = np.full(flat.shape[0], UNCLASSIFIED, dtype=np.uint8)
    if valid.any():
        out[valid] = model.predict(flat[valid]).astype(np.uint8)
    return out.reshape(block.shape[:-1])


def predict_class_map(features: xr.DataArray, model: ClassifierMixin) -> xr.DataArray:
    """Class map, (period, y, x) uint8, UNCLASSIFIED = nodata; lazy if `features` is.

    The model enters the Dask graph once (as one delayed object), not once per block.
    """
    if dask.is_dask_collection(features):
        data = features.data.rechunk({features.ndim - 1: -1})
        classes = data.map_blocks(_predict_block, dask.delayed(model), drop_axis=features.ndim - 1,
                                  dtype=np.uint8)
    else:
        classes = _predict_block(features.values, model)
    class_map = xr.DataArray(classes, coords={d: features[d] for d in features.dims[:-1]},
                             dims=features.dims[:-1], name="class_map")
    return class_map.rio.write_crs(features.rio.crs).rio.write_nodata(UNCLASSIFIED)


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
