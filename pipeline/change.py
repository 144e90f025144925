"""Change metrics from class maps: class areas per period and transitions between periods."""

from __future__ import annotations

from collections.abc import Sequence

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from pipeline.config import ClassDef

__all__ = ["pixel_area_ha", "class_pixel_counts", "class_area_table", "transition_counts",
           "transition_table"]

_N_CODES = 256  # uint8 class codes


def pixel_area_ha(grid: xr.DataArray | xr.Dataset) -> float:
    """Area of one pixel in hectares, from the grid's transform (projected CRS in metres)."""
    transform = grid.rio.transform(recalc=True)
    return abs(transform.a * transform.e - transform.b * transform.d) / 10_000


def _bincount(codes: xr.DataArray | np.ndarray) -> np.ndarray | da.Array:
    """Counts of each value 0..len-1 of an integer array (lazy for Dask input)."""
    values = codes.data if isinstance(codes, xr.DataArray) else codes
    if dask.is_dask_collection(values):
        return da.bincount(values.ravel(), minlength=_N_CODES * _N_CODES)
    return np.bincount(np.asarray(values).ravel(), minlength=_N_CODES * _N_CODES)


def class_pixel_counts(class_map: xr.DataArray) -> xr.DataArray:
    """Pixels per class code and period: (period, class_code) int64, class_code 0..255; lazy stays lazy."""
    counts = [_bincount(class_map.sel(period=p).astype("int64"))[:_N_CODES]
              for p in class_map["period"].values]
    stacked = da.stack(counts) if dask.is_dask_collection(class_map) else np.stack(counts)
    return xr.DataArray(stacked, coords={"period": class_map["period"].values,
                                         "class_code": np.arange(_N_CODES)},
                        dims=("period", "class_code"), name="pixel_count")


def class_area_table(pixel_counts: xr.DataArray, classes: Sequence[ClassDef], *, pixel_area_ha: float,
                     aoi_id: str) -> pd.DataFrame:
    """aoi_id, period, class_code, class_name, area_ha: one row per period and class of the schema."""
    rows = [
        {"aoi_id": aoi_id, "period": int(period), "class_code": c.code, "class_name": c.name,
         "area_ha": float(pixel_counts.sel(period=period, class_code=c.code)) * pixel_area_ha}
        for period in pixel_counts["period"].values
        for c in classes
    ]
    return pd.DataFrame(rows)


def transition_counts(class_map: xr.DataArray) -> xr.DataArray:
    """Pixels moving from each class to each class between consecutive periods.

    (step, class_from, class_to) int64 with coordinates `period_from`, `period_to` on `step`;
    pixels that are nodata in either period appear under code 255 and are left to the caller.
    """
    periods = class_map["period"].values
    counts = []
    for before, after in zip(periods[:-1], periods[1:]):
        pairs = class_map.sel(period=before).astype("int64") * _N_CODES + class_map.sel(period=after)
        counts.append(_bincount(pairs).reshape(_N_CODES, _N_CODES))
    stacked = (da.stack(counts) if dask.is_dask_collection(class_map)
               else np.stack(counts) if counts else np.zeros((0, _N_CODES, _N_CODES), "int64"))
    return xr.DataArray(
        stacked,
        coords={"period_from": ("step", periods[:-1]), "period_to": ("step", periods[1:]),
                "class_from": np.arange(_N_CODES), "class_to": np.arange(_N_CODES)},
        dims=("step", "class_from", "class_to"), name="transition_count",
    )


def transition_table(counts: xr.DataArray, classes: Sequence[ClassDef], *, pixel_area_ha: float,
                     aoi_id: str) -> pd.DataFrame:
    """aoi_id, period_from, period_to, class_from, class_to, area_ha: one row per non-zero transition
    between classes of the schema (unchanged pixels appear as class_from == class_to)."""
    codes = [c.code for c in classes]
    values = np.asarray(counts.values)
    rows = []
    for step in range(counts.sizes["step"]):
        for a in codes:
            for b in codes:
                if values[step, a, b]:
                    rows.append({"aoi_id": aoi_id,
                                 "period_from": int(counts["period_from"][step]),
                                 "period_to": int(counts["period_to"][step]),
                                 "class_from": a, "class_to": b,
                                 "area_ha": values[step, a, b] * pixel_area_ha})
    columns = ["aoi_id", "period_from", "period_to", "class_from", "class_to", "area_ha"]
    return pd.DataFrame(rows, columns=columns)
