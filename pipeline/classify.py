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
from sklearn.base import clone
from sklearn.model_selection import GroupKFold, train_test_split
import shapely

from pipeline.config import ClassDef
from pipeline.errors import InputError

__all__ = [
    "UNCLASSIFIED",
    "feature_stack",
    "training_samples",
    "train_random_forest",
    "train_classifier",
    "accuracy_assessment",
    "predict_class_map",
    "predict_classes",
    "compare_with_reference",
    "polygon_pixels",
    "spatial_blocks",
    "spatial_cross_validation",
    "temporal_statistics",
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
    if labels_kept.empty:  # (dask cannot pick zero points)
        raise InputError(f"none of the {len(points)} labels lies inside the AOI's grid (or in a period with "
                         "imagery); check the labels' CRS and location")
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
    model = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth,
                                   random_state=random_state, n_jobs=1)
    return train_classifier(model, X, y, test_fraction=test_fraction, random_state=random_state)


def train_classifier(model: ClassifierMixin, X: np.ndarray, y: np.ndarray, *, test_fraction: float = 0.3,
                     random_state: int = 42) -> tuple[ClassifierMixin, np.ndarray, np.ndarray]:
    """Fit a fresh copy of `model` on a stratified share of the samples; return it with the held-out
    (X, y). Any scikit-learn compatible classifier (see pipeline.models.make_classifier)."""
    counts = pd.Series(y).value_counts()
    too_few = counts[counts < 2]
    if len(too_few):
        raise InputError(f"training data: classes {sorted(too_few.index.tolist())} have fewer than 2 "
                         "usable samples; add labels or remove the classes")
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_fraction, stratify=y, random_state=random_state)
    return clone(model).fit(X_train, y_train), X_test, y_test


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


def _predict_proba_block(block: np.ndarray, model: ClassifierMixin) -> np.ndarray:
    """(..., feature) float -> (..., 2) float32: class code and confidence (max class probability).

    NaN in both where any feature is NaN; confidence NaN for a model without `predict_proba`.
    """
    flat = block.reshape(-1, block.shape[-1])
    valid = np.isfinite(flat).all(axis=1)
    out = np.full((flat.shape[0], 2), np.nan, dtype=np.float32)
    if valid.any():
        if hasattr(model, "predict_proba"):
            proba = model.predict_proba(flat[valid])
            best = proba.argmax(axis=1)
            out[valid, 0] = np.asarray(model.classes_)[best]
            out[valid, 1] = proba[np.arange(len(best)), best]
        else:
            out[valid, 0] = model.predict(flat[valid])
    return out.reshape(*block.shape[:-1], 2)


def predict_classes(features: xr.DataArray, model: ClassifierMixin) -> xr.Dataset:
    """Class map and confidence in one pass of the model; lazy if `features` is.

    Returns a Dataset: ``class_map`` (period, y, x) uint8, UNCLASSIFIED = nodata, and ``confidence``
    (period, y, x) float32 in [0, 1], the highest class probability (NaN = nodata, or the model has no
    probabilities). The class is the most probable one, as `model.predict` gives for sklearn forests.
    The model enters the Dask graph once (as one delayed object).
    """
    dims = features.dims[:-1]
    if dask.is_dask_collection(features):
        data = features.data.rechunk({features.ndim - 1: -1})
        both = data.map_blocks(_predict_proba_block, dask.delayed(model), chunks=(*data.chunks[:-1], (2,)),
                               dtype=np.float32)
    else:
        both = _predict_proba_block(features.values, model)
    coords = {d: features[d] for d in dims}
    code = both[..., 0]
    classes = xr.DataArray(code, coords=coords, dims=dims)
    class_map = xr.where(np.isfinite(classes), classes, UNCLASSIFIED).astype(np.uint8).rename("class_map")
    confidence = xr.DataArray(both[..., 1], coords=coords, dims=dims, name="confidence")
    crs = features.rio.crs
    return xr.Dataset({"class_map": class_map.rio.write_crs(crs).rio.write_nodata(UNCLASSIFIED),
                       "confidence": confidence.rio.write_crs(crs).rio.write_nodata(np.nan)}).rio.write_crs(crs)


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


def polygon_pixels(polygons: gpd.GeoDataFrame, features: xr.DataArray, *, max_per_polygon: int,
                   seed: int) -> gpd.GeoDataFrame:
    """Training polygons -> points at the centres of the grid pixels inside them.

    At most `max_per_polygon` pixels per polygon, drawn at random (seeded) so that large polygons do not
    swamp the training set; the other columns of each polygon are copied to its points, with
    `polygon_id` (0-based row of the polygon). Points keep the features' CRS. Attr `n_polygons_empty`:
    polygons too small to hold a pixel centre.
    """
    polygons = polygons.to_crs(features.rio.crs).reset_index(drop=True)
    xs, ys = features["x"].values, features["y"].values
    rng = np.random.default_rng(seed)
    parts, empty = [], 0
    for row, polygon in enumerate(polygons.geometry):
        minx, miny, maxx, maxy = polygon.bounds
        cx, cy = xs[(xs >= minx) & (xs <= maxx)], ys[(ys >= miny) & (ys <= maxy)]
        gx, gy = (g.ravel() for g in np.meshgrid(cx, cy))
        inside = shapely.contains_xy(polygon, gx, gy)
        gx, gy = gx[inside], gy[inside]
        if len(gx) == 0:
            empty += 1
            continue
        if len(gx) > max_per_polygon:
            keep = np.sort(rng.choice(len(gx), size=max_per_polygon, replace=False))
            gx, gy = gx[keep], gy[keep]
        parts.append(pd.DataFrame({"polygon_id": row, "x": gx, "y": gy}))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["polygon_id", "x", "y"])
    attributes = pd.DataFrame(polygons.drop(columns="geometry"))
    table = table.join(attributes, on="polygon_id")
    points = gpd.GeoDataFrame(table.drop(columns=["x", "y"]), geometry=gpd.points_from_xy(table["x"], table["y"]),
                              crs=features.rio.crs)
    points.attrs["n_polygons_empty"] = empty
    return points


def spatial_blocks(x: np.ndarray, y: np.ndarray, *, block_size: float) -> np.ndarray:
    """Block id of each sample: squares of `block_size` (CRS units, metres) on a grid from (0, 0)."""
    if not block_size > 0:
        raise ValueError(f"block_size must be positive, got {block_size}")
    bx = np.floor(np.asarray(x) / block_size).astype(np.int64)
    by = np.floor(np.asarray(y) / block_size).astype(np.int64)
    _, block = np.unique(np.stack([bx, by], axis=1), axis=0, return_inverse=True)
    return block.ravel()


def spatial_cross_validation(model: ClassifierMixin, X: np.ndarray, y: np.ndarray, blocks: np.ndarray, *,
                             n_folds: int, classes: Sequence[ClassDef], random_state: int) -> dict:
    """Spatially blocked k-fold cross-validation: whole blocks go to one fold, so a test sample's
    neighbours are never in its training set (random pixel splits overstate accuracy).

    Out-of-fold predictions of all folds are pooled into one `accuracy_assessment`; the per-fold
    overall accuracies are added (``fold_overall_accuracy``), with ``n_blocks`` and ``n_folds``.
    """
    n_blocks = len(np.unique(blocks))
    if n_blocks < n_folds:
        raise InputError(f"spatial cross-validation: {n_blocks} blocks with samples for {n_folds} folds; "
                         "use a smaller block size or fewer folds")
    predicted = np.empty_like(y)
    fold_oa = []
    folds = GroupKFold(n_splits=n_folds, shuffle=True, random_state=random_state)
    for train, test in folds.split(X, y, groups=blocks):
        fitted = clone(model).fit(X[train], y[train])
        predicted[test] = fitted.predict(X[test])
        fold_oa.append(_rounded(np.mean(predicted[test] == y[test])))
    report = accuracy_assessment(y, predicted, classes)
    report.update(n_folds=n_folds, n_blocks=n_blocks, fold_overall_accuracy=fold_oa)
    return report


def temporal_statistics(index: xr.DataArray, *, quantiles: Sequence[float] = (0.1, 0.5, 0.9),
                        name: str = "ndvi") -> xr.Dataset:
    """Within-period statistics of an index across the period's (cloud-masked) scenes, as features.

    (time, y, x) float, NaN = masked -> Dataset of (period, y, x) float32 variables ``<name>_p10``,
    ``<name>_p50``, ... and ``<name>_std``, period = calendar year. Percentiles of NDVI across a year
    separate cropland (a strong seasonal cycle) from grass and shrub. Lazy if `index` is (time in one
    chunk per group).
    """
    years = index["time"].dt.year.rename("period")
    grouped = index.groupby(years)
    percentiles = grouped.quantile(list(quantiles), dim="time", skipna=True)
    variables = {f"{name}_p{round(q * 100):02d}": percentiles.sel(quantile=q, drop=True).astype("float32")
                 for q in quantiles}
    variables[f"{name}_std"] = grouped.std("time", skipna=True).astype("float32")
    return xr.Dataset(variables)
