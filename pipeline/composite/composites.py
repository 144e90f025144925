"""Per-period composites of a scene stack (median, mean, min, max): lazy in, lazy out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import bottleneck as bn
import numpy as np
import xarray as xr

from pipeline.composite.periods import Period, period_coords, scene_indices

__all__ = ["composite"]


# NaN-aware reductions along the last axis; unlike NumPy's they return NaN for an all-NaN slice
# without a warning (pixels outside the AOI or never clear), and bottleneck's median is much faster.
_REDUCERS = {"median": bn.nanmedian, "mean": bn.nanmean, "min": bn.nanmin, "max": bn.nanmax}


def _first_valid(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """The first non-NaN value along `axis` (NaN where there is none): a mosaic, no compositing."""
    valid = ~np.isnan(values)
    first = np.expand_dims(valid.argmax(axis=axis), axis)
    return np.where(valid.any(axis=axis), np.take_along_axis(values, first, axis=axis).squeeze(axis), np.nan)


_REDUCERS["first"] = _first_valid


def _reduce_time(values: np.ndarray, *, method: str) -> np.ndarray:
    """(..., time) -> (...), same dtype; NaN where every value is NaN."""
    return _REDUCERS[method](values, axis=-1).astype(values.dtype, copy=False)


def composite(
    scene_stack: xr.Dataset,
    periods: Sequence[Period],
    *,
    method: Literal["median", "mean", "min", "max", "first"] = "median",
    min_clear_scenes: int = 1,
) -> xr.Dataset:
    """One composite per period: (period, y, x) per band, NaN where fewer than `min_clear_scenes` clear.

    Each period reduces the acquisitions whose day lies within it; "first" takes each pixel's first
    clear value in time (single-acquisition periods: masked pixels stay NaN, two acquisitions of one
    day are mosaicked). Periods without any acquisition are left out. Also adds `clear_count`,
    (period, y, x) int16: the scenes in which every band of the pixel is clear. The period dimension
    carries `period_start` and `period_end` (`period_coords`).
    """
    times = scene_stack["time"].values
    composites, kept = [], []
    for period in periods:
        indices = scene_indices(times, period)
        if not len(indices):
            continue
        scenes = scene_stack.isel(time=indices)
        if scenes.chunks:
            scenes = scenes.chunk(time=-1)
        reduced = xr.apply_ufunc(_reduce_time, scenes, input_core_dims=[["time"]], kwargs={"method": method},
                                 dask="parallelized", keep_attrs=True)
        clear = xr.concat([v.notnull() for v in scenes.data_vars.values()], "variable").all("variable")
        count = clear.sum("time").astype("int16")
        reduced = reduced.where(count >= min_clear_scenes)
        composites.append(reduced.assign(clear_count=count).expand_dims(period=[period.id]))
        kept.append(period)
    if not composites:
        raise ValueError("no acquisition falls within any of the periods")
    out = xr.concat(composites, dim="period", combine_attrs="drop_conflicts")
    return out.assign_coords(period_coords(kept)).rio.write_crs(scene_stack.rio.crs)
