"""Spectral indices of scenes or composites (NDVI, NDWI, NDBI, BSI) and NDVI's within-period range."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from pipeline.composite.composites import composite
from pipeline.composite.periods import Period

__all__ = ["INDEX_FORMULAS", "ndvi", "spectral_indices", "ndvi_range"]


# Normalised differences (a - b) / (a + b) over common band names.
#   ndvi: Rouse et al. 1974; ndwi: McFeeters 1996; ndbi: Zha et al. 2003.
INDEX_FORMULAS: dict[str, tuple[str, str]] = {
    "ndvi": ("nir", "red"),
    "ndwi": ("green", "nir"),
    "ndbi": ("swir1", "nir"),
}


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


def ndvi_range(clear_stack: xr.Dataset, periods: Sequence[Period]) -> xr.Dataset:
    """Within-period NDVI minimum and maximum, (period, y, x) float32 `ndvi_min`, `ndvi_max`.

    The seasonal range separates cropland (green, then bare after harvest) from grass and trees.
    A stack that carries NDVI itself (e.g. an NDVI product) is used as it is.
    """
    scene_ndvi = clear_stack["ndvi"] if "ndvi" in clear_stack else ndvi(clear_stack)
    scene_ndvi = scene_ndvi.rename("ndvi").to_dataset().rio.write_crs(clear_stack.rio.crs)
    low = composite(scene_ndvi, periods, method="min")["ndvi"].rename("ndvi_min")
    high = composite(scene_ndvi, periods, method="max")["ndvi"].rename("ndvi_max")
    return xr.Dataset({"ndvi_min": low, "ndvi_max": high})
