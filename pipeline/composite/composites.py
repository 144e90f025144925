"""Per-period composites of a scene stack (median, mean, min, max): lazy in, lazy out."""

from __future__ import annotations

from typing import Literal

import bottleneck as bn
import numpy as np
import xarray as xr

from pipeline.composite.periods import period_of

__all__ = ["composite"]


# NaN-aware reductions along the last axis; unlike NumPy's they return NaN for an all-NaN slice
# without a warning (pixels outside the AOI or never clear), and bottleneck's median is much faster.
_REDUCERS = {"median": bn.nanmedian, "mean": bn.nanmean, "min": bn.nanmin, "max": bn.nanmax}


def _reduce_time(values: np.ndarray, *, method: str) -> np.ndarray:
    """(..., time) -> (...), same dtype; NaN where every value is NaN."""
    return _REDUCERS[method](values, axis=-1).astype(values.dtype, copy=False)


def composite(
    scene_stack: xr.Dataset,
    *,
    period: Literal["year"] = "year",
    method: Literal["median", "mean", "min", "max"] = "median",
    min_clear_scenes: int = 1,
) -> xr.Dataset:
    """One composite per period: (period, y, x) per band, NaN where fewer than `min_clear_scenes` clear.

    Also adds `clear_count`, (period, y, x) int16: the scenes in which every band of the pixel is clear.
    """
    labels = period_of(scene_stack["time"], period)
    composites = []
    for label in np.unique(labels.values):
        scenes = scene_stack.isel(time=np.flatnonzero(labels.values == label))
        if scenes.chunks:
            scenes = scenes.chunk(time=-1)
        reduced = xr.apply_ufunc(_reduce_time, scenes, input_core_dims=[["time"]], kwargs={"method": method},
                                 dask="parallelized", keep_attrs=True)
        clear = xr.concat([v.notnull() for v in scenes.data_vars.values()], "variable").all("variable")
        count = clear.sum("time").astype("int16")
        reduced = reduced.where(count >= min_clear_scenes)
        composites.append(reduced.assign(clear_count=count).expand_dims(period=[int(label)]))
    out = xr.concat(composites, dim="period", combine_attrs="drop_conflicts")
    return out.rio.write_crs(scene_stack.rio.crs)
