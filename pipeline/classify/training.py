"""Training data: labelled points or polygons read, sampled at pixels of the features, and a model fitted
on a stratified share of them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from sklearn.base import ClassifierMixin, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from pipeline import io
from pipeline.composite.periods import label_periods, periods_of
from pipeline.errors import InputError

__all__ = ["read_training_data", "training_samples", "label_positions", "polygon_pixels", "train_classifier", "train_random_forest"]


def read_training_data(path: Path, *, class_field: str, period_field: str | None,
                       class_codes: Sequence[int] | None = None, merge_classes: dict[int, int] | None = None,
                       ignore_classes: Sequence[int] = ()) -> gpd.GeoDataFrame:
    """Labelled points or polygons (GPKG/GeoJSON/Shapefile) with an integer `class_code` and, where
    given, a `period` column: a year, a period id or a date (`composite.periods.label_periods` says which
    periods each holds for). Polygons are sampled to pixels later (classify.polygon_pixels).

    With `class_codes` (the config's classes), a label whose code, after `ignore_classes` and
    `merge_classes`, is not one of them raises InputError: once, before any AOI runs."""
    labels = io.read_vector(path, what="training data (classify.training)")
    for name in (class_field, period_field):
        if name is not None and name not in labels.columns:
            raise InputError(f"{path}: no field {name!r}; fields are {sorted(map(str, labels.columns))}")
    if labels.crs is None:
        raise InputError(f"{path}: the training data has no CRS")
    kinds = set(labels.geom_type)
    if not (kinds <= {"Point"} or kinds <= {"Polygon", "MultiPolygon"}):
        raise InputError(f"{path}: training data must be all points or all polygons, found {sorted(kinds)}")
    renamed = {class_field: "class_code"} | ({period_field: "period"} if period_field else {})
    labels = labels.rename(columns=renamed)
    try:
        labels["class_code"] = labels["class_code"].astype(int)
    except (TypeError, ValueError) as err:
        raise InputError(f"{path}: field {class_field!r} is not an integer class code ({err})") from None
    if period_field and labels["period"].isna().any():
        rows = labels.index[labels["period"].isna()].tolist()
        raise InputError(f"{path}: {len(rows)} label(s) have no {period_field!r} (rows {rows[:10]}); give a year, "
                         "a period id or a date, or set classify.period_field: null if the labels hold for "
                         "every period")
    if class_codes is not None:
        kept = labels["class_code"][~labels["class_code"].isin(list(ignore_classes))]
        codes = kept.replace(merge_classes or {})
        unknown = sorted(int(c) for c in set(codes) - set(class_codes))
        if unknown:
            raise InputError(
                f"{path}: {int(codes.isin(unknown).sum())} label(s) have class codes {unknown} (field "
                f"{class_field!r}) that are not in the config's classes {sorted(class_codes)}; add them to "
                "`classes`, map them with classify.merge_classes or leave them out with classify.ignore_classes")
    return labels


def training_samples(features: xr.DataArray, points: gpd.GeoDataFrame) -> tuple[xr.DataArray, pd.DataFrame]:
    """Feature values at labelled points, lazily: ((sample, feature) float32, labels table).

    A point's `period` (a year, a period id or a date) holds for the periods `label_periods` gives: a
    year label becomes one sample per period of that year. Points outside the grid, or whose period is
    not among the composites, are left out (counted in the labels table's attrs `dropped_outside` /
    `dropped_period`). Points without a `period` column hold for every period. Rows whose features are
    NaN (cloudy, nodata) are for the caller to drop.
    """
    labels, at, period = label_positions(features, points)
    samples = features.sel(**at, method="nearest").isel(period=period)
    return samples.transpose("sample", "feature"), labels


def label_positions(grid: xr.DataArray | xr.Dataset, points: gpd.GeoDataFrame
                    ) -> tuple[pd.DataFrame, dict[str, xr.DataArray], xr.DataArray]:
    """Where the labels of `points` lie on the (period, y, x) `grid`: the labels table (one row per sample,
    see `training_samples`), the x and y coordinates to select with (`grid.sel(**at, method="nearest")`)
    and each sample's period position (`.isel(period=...)`), all along the dimension "sample".

    Selecting the pixels first and every period of them keeps what is computed per pixel (the sub-period
    gap filling) to the labelled pixels: `stage._label_samples` takes the composites there."""
    points = points.to_crs(grid.rio.crs)
    x, y = points.geometry.x.to_numpy(), points.geometry.y.to_numpy()
    res_x, res_y = (abs(r) for r in grid.rio.resolution())
    inside = ((x >= float(grid.x.min()) - res_x / 2) & (x <= float(grid.x.max()) + res_x / 2)
              & (y >= float(grid.y.min()) - res_y / 2) & (y <= float(grid.y.max()) + res_y / 2))
    labels = pd.DataFrame({"x": x, "y": y, "class_code": points["class_code"].to_numpy()})
    ids = [str(p) for p in grid["period"].values]
    holds = _held_periods(points["period"], grid, ids) if "period" in points else [ids] * len(points)
    no_period = np.array([not found for found in holds])
    repeats = np.array([len(found) for found in holds])
    labels = labels.loc[labels.index.repeat(repeats)].assign(period=[i for found in holds for i in found])
    keep = np.repeat(inside, repeats)
    labels_kept = labels[keep].reset_index(drop=True)
    if labels_kept.empty:  # (dask cannot pick zero points)
        raise InputError(f"none of the {len(points)} labels lies inside the AOI's grid (or in a period with "
                         "imagery); check the labels' CRS and location")
    labels_kept.attrs.update(dropped_outside=int((~inside).sum()), dropped_period=int((inside & no_period).sum()))
    at = {dim: xr.DataArray(labels_kept[dim].to_numpy(), dims="sample") for dim in ("x", "y")}
    position = {period: k for k, period in enumerate(ids)}
    period = xr.DataArray(labels_kept["period"].map(position).to_numpy(), dims="sample")
    return labels_kept, at, period


def _held_periods(values: pd.Series, features: xr.DataArray | xr.Dataset, ids: list[str]) -> list[list[str]]:
    """Per label, the ids of the features' periods its period field holds for (features without period
    dates match by id only)."""
    periods = periods_of(features) if "period_start" in features.coords else None
    found: dict[str, list[str]] = {}
    for value in values.unique():
        found[str(value)] = (label_periods(value, periods) if periods is not None
                             else [str(value)] if str(value) in ids else [])
    return [found[str(value)] for value in values]


def train_random_forest(
    X: np.ndarray,
    y: np.ndarray,
    *,
    n_estimators: int = 50,
    max_depth: int | None = 16,
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
