"""Class maps from features and a fitted model, lazily, block by block on the Dask workers.

Raster <-> table reshaping lives in one kernel, `_predict_block`; `predict_classes` wraps it."""

from __future__ import annotations


import dask
import numpy as np
import xarray as xr
from sklearn.base import ClassifierMixin


__all__ = ["UNCLASSIFIED", "predict_classes", "predict_class_map", "valid_samples"]


UNCLASSIFIED = 255  # class-map nodata: outside the AOI or a required feature missing


def valid_samples(flat: np.ndarray, required: np.ndarray | None) -> np.ndarray:
    """(pixel, feature) -> (pixel,) bool: every required feature (default: every feature) is finite; with
    none required, at least one feature is."""
    if required is None:
        return np.isfinite(flat).all(axis=1)
    if not np.any(required):
        return np.isfinite(flat).any(axis=1)
    return np.isfinite(flat[:, required]).all(axis=1)


def _predict_block(block: np.ndarray, model: ClassifierMixin, required: np.ndarray | None = None) -> np.ndarray:
    """(..., feature) float -> (...) uint8 class codes; UNCLASSIFIED where a required feature is NaN (the
    others may be NaN: the model takes them)."""
    flat = block.reshape(-1, block.shape[-1])
    valid = valid_samples(flat, required)
    out = np.full(flat.shape[0], UNCLASSIFIED, dtype=np.uint8)
    if valid.any():
        out[valid] = model.predict(flat[valid]).astype(np.uint8)
    return out.reshape(block.shape[:-1])


def _predict_proba_block(block: np.ndarray, model: ClassifierMixin, required: np.ndarray | None = None) -> np.ndarray:
    """(..., feature) float -> (..., 2) float32: class code and confidence (max class probability).

    NaN in both where a required feature (default: any) is NaN; confidence NaN for a model without
    `predict_proba`.
    """
    flat = block.reshape(-1, block.shape[-1])
    valid = valid_samples(flat, required)
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


def predict_classes(features: xr.DataArray, model: ClassifierMixin, *,
                    required: np.ndarray | None = None) -> xr.Dataset:
    """Class map and confidence in one pass of the model; lazy if `features` is.

    `required`: bool per feature, those a pixel needs to be classified (default: all); the others (gaps
    of sub-period composites) go to the model as NaN.

    Returns a Dataset: ``class_map`` (period, y, x) uint8, UNCLASSIFIED = nodata, and ``confidence``
    (period, y, x) float32 in [0, 1], the highest class probability (NaN = nodata, or the model has no
    probabilities). The class is the most probable one, as `model.predict` gives for sklearn forests.
    The model enters the Dask graph once (as one delayed object).
    """
    dims = features.dims[:-1]
    if dask.is_dask_collection(features):
        data = features.data.rechunk({features.ndim - 1: -1})
        both = data.map_blocks(_predict_proba_block, dask.delayed(model), required=required,
                               chunks=(*data.chunks[:-1], (2,)), dtype=np.float32)
    else:
        both = _predict_proba_block(features.values, model, required)
    coords = {name: c for name, c in features.coords.items() if set(c.dims) <= set(dims)}  # + period dates
    code = both[..., 0]
    classes = xr.DataArray(code, coords=coords, dims=dims)
    class_map = xr.where(np.isfinite(classes), classes, UNCLASSIFIED).astype(np.uint8).rename("class_map")
    confidence = xr.DataArray(both[..., 1], coords=coords, dims=dims, name="confidence")
    crs = features.rio.crs
    return xr.Dataset({"class_map": class_map.rio.write_crs(crs).rio.write_nodata(UNCLASSIFIED),
                       "confidence": confidence.rio.write_crs(crs).rio.write_nodata(np.nan)}).rio.write_crs(crs)


def predict_class_map(features: xr.DataArray, model: ClassifierMixin, *,
                      required: np.ndarray | None = None) -> xr.DataArray:
    """Class map, (period, y, x) uint8, UNCLASSIFIED = nodata (a required feature missing, see
    `predict_classes`); lazy if `features` is.

    The model enters the Dask graph once (as one delayed object), not once per block.
    """
    if dask.is_dask_collection(features):
        data = features.data.rechunk({features.ndim - 1: -1})
        classes = data.map_blocks(_predict_block, dask.delayed(model), required=required, drop_axis=features.ndim - 1,
                                  dtype=np.uint8)
    else:
        classes = _predict_block(features.values, model, required)
    class_map = xr.DataArray(classes, coords={name: c for name, c in features.coords.items()
                                              if set(c.dims) <= set(features.dims[:-1])},
                             dims=features.dims[:-1], name="class_map")
    return class_map.rio.write_crs(features.rio.crs).rio.write_nodata(UNCLASSIFIED)
