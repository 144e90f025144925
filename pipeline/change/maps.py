"""Change maps from class maps: the period of first change."""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["NO_CHANGE", "first_change_year"]


NO_CHANGE = 0  # first_change_year where a pixel never changed (also its nodata)


def _first_change_np(classes: np.ndarray, years: np.ndarray, nodata: int) -> np.ndarray:
    """(..., time) class codes -> (...) int16: the first year whose class differs from the year before
    (both classified); NO_CHANGE where none does."""
    if classes.shape[-1] < 2:  # one period: nothing can have changed
        return np.full(classes.shape[:-1], NO_CHANGE, dtype="int16")
    valid = (classes[..., 1:] != nodata) & (classes[..., :-1] != nodata)
    changed = (classes[..., 1:] != classes[..., :-1]) & valid
    first = changed.argmax(axis=-1)
    return np.where(changed.any(axis=-1), years[1:][first], NO_CHANGE).astype("int16")


def first_change_year(class_map: xr.DataArray) -> xr.DataArray:
    """(y, x) int16: the first period in which each pixel's class changed; NO_CHANGE (0) where it never
    did. Lazy stays lazy."""
    nodata = class_map.rio.nodata if class_map.rio.nodata is not None else 255
    out = xr.apply_ufunc(
        _first_change_np, class_map, kwargs={"years": class_map["period"].values, "nodata": nodata},
        input_core_dims=[["period"]], dask="parallelized", output_dtypes=[np.int16],
        dask_gufunc_kwargs={"allow_rechunk": True},
    )
    return out.rename("first_change_year").rio.write_crs(class_map.rio.crs).rio.write_nodata(NO_CHANGE)
