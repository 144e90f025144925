"""Cloud masking, per-period composites and spectral indices: lazy in, lazy out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import bottleneck as bn
import numpy as np
import xarray as xr

__all__ = [
    "cloud_mask", "composite", "spectral_indices", "ndvi", "ndvi_range", "INDEX_FORMULAS", "period_of",
]

# Normalised differences (a - b) / (a + b) over common band names.
#   ndvi: Rouse et al. 1974; ndwi: McFeeters 1996; ndbi: Zha et al. 2003.
INDEX_FORMULAS: dict[str, tuple[str, str]] = {
    "ndvi": ("nir", "red"),
    "ndwi": ("green", "nir"),
    "ndbi": ("swir1", "nir"),
}


def cloud_mask(scene_stack: xr.Dataset, *, mask_values: Sequence[int]) -> xr.Dataset:
    """Reflectance with cloud and shadow pixels set to NaN; the `mask` variable is dropped.

    A stack without a `mask` variable is returned unchanged (nothing to apply).
    """
    if "mask" not in scene_stack:
        return scene_stack
    clear = ~scene_stack["mask"].isin(list(mask_values))
    return scene_stack.drop_vars("mask").where(clear)


def period_of(time: xr.DataArray, period: Literal["year"] = "year") -> xr.DataArray:
    """The period label (int) of each time stamp."""
    return time.dt.year.rename("period")


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


def _normalised_difference(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    out = (a - b) / (a + b)
    return out.where(np.isfinite(out)).astype("float32")


def ndvi(scenes: xr.Dataset) -> xr.DataArray:
    """NDVI, float32, same dims as the bands; NaN where nir + red == 0 or either is NaN."""
    return _normalised_difference(scenes["nir"], scenes["red"]).rename("ndvi")


def spectral_indices(scenes: xr.Dataset, names: Sequence[str]) -> xr.Dataset:
    """`scenes` plus one float32 variable per requested index (ndvi, ndwi, ndbi, bsi)."""
    indices = {}
    for name in names:
        if name == "bsi":  # bare soil index, Rikimaru et al. 2002
            swir_red = scenes["swir1"] + scenes["red"]
            nir_blue = scenes["nir"] + scenes["blue"]
            indices[name] = _normalised_difference(swir_red, nir_blue)
        else:
            a, b = INDEX_FORMULAS[name]
            indices[name] = _normalised_difference(scenes[a], scenes[b])
    return scenes.assign(indices)


def ndvi_range(clear_stack: xr.Dataset, *, period: Literal["year"] = "year") -> xr.Dataset:
    """Within-period NDVI minimum and maximum, (period, y, x) float32 `ndvi_min`, `ndvi_max`.

    The seasonal range separates cropland (green, then bare after harvest) from grass and trees.
    A stack that carries NDVI itself (e.g. an NDVI product) is used as it is.
    """
    scene_ndvi = clear_stack["ndvi"] if "ndvi" in clear_stack else ndvi(clear_stack)
    scene_ndvi = scene_ndvi.rename("ndvi").to_dataset().rio.write_crs(clear_stack.rio.crs)
    low = composite(scene_ndvi, period=period, method="min")["ndvi"].rename("ndvi_min")
    high = composite(scene_ndvi, period=period, method="max")["ndvi"].rename("ndvi_max")
    return xr.Dataset({"ndvi_min": low, "ndvi_max": high})
