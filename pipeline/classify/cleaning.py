"""Class maps a reviewer accepts: temporal gap filling and a minimum mapping unit (MMU), before any area
is counted.

    gap_fill          a pixel without data in a period takes the class of its nearest observed periods:
                      "agree" where the last observation before the gap and the first after it agree (at
                      the ends of the series, the one observation there is), "nearest" the observation
                      nearest in time (real time between period middles; a tie goes to the earlier one);
                      "none" leaves the gaps
    sieve             patches smaller than the MMU merged into their surroundings, each period on its own
                      (GDAL's sieve filter through rasterio.features.sieve; 8- or 4-connected)
    sieve_change_map  the MMU on a change map: specks of change become "unchanged", small unchanged holes
                      inside change and small patches of one kind of change take their neighbours' value
    cleaning_flags    per pixel and period: observed, gap-filled, reassigned by the MMU (bit flags)

`agree` never places a change where none was seen: a gap between two observations of one class is that
class; a gap between two different classes stays nodata (when the change happened is unknown); before the
first and after the last observation the pixel keeps its nearest observed class (persistence: a change
there cannot be seen either way). `nearest` also fills the gaps between two classes, placing the change at
the middle of the gap in time. Either way every pixel observed at least once gets a class, except, with
`agree`, inside gaps where the class changed. For a before/after pair of periods (a rapid event), use
"none": with two periods every gap is at an end, and filling it would hide a change under cloud.
Nodata stays nodata under the MMU (it is not a class a patch can merge into, nor one that grows).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
import rasterio.features
import xarray as xr

from pipeline.errors import InputError

__all__ = ["CLEANING_NODATA", "FILLED", "SIEVED", "GapFill", "cleaning_flags", "gap_fill", "mmu_pixels",
           "period_middles_days", "sieve", "sieve_change_map"]

GapFill = Literal["none", "agree", "nearest"]
Connectivity = Literal[4, 8]

FILLED = 1             # cleaning flag: the pixel had no data in the period; gap filling gave it a class
SIEVED = 2             # cleaning flag: the minimum mapping unit changed the pixel's class
CLEANING_NODATA = 255  # cleaning flag raster: no class after cleaning (never observed, or a gap left open)


# ----------------------------------------------------------------------------------------- gap filling


def _gap_fill_np(classes: np.ndarray, times: np.ndarray, *, method: GapFill, nodata: int) -> np.ndarray:
    """(..., period) class codes -> the same with the gaps filled. `times` (period,) float: each period's
    middle (e.g. in days), increasing. A gap's neighbours are the last observed period before it and the
    first after it; `agree` fills it where both hold one class; `nearest` takes the nearer one (ties: the
    earlier); both take the only one at the ends of the series."""
    if method == "none" or classes.shape[-1] < 2:
        return classes.copy()
    n = classes.shape[-1]
    valid = classes != nodata
    index = np.arange(n)
    before = np.maximum.accumulate(np.where(valid, index, -1), axis=-1)           # last observed <= t
    after = np.minimum.accumulate(np.where(valid, index, n)[..., ::-1], axis=-1)[..., ::-1]  # first >= t
    has_before, has_after = before >= 0, after < n
    class_before = np.take_along_axis(classes, np.clip(before, 0, n - 1), axis=-1)
    class_after = np.take_along_axis(classes, np.clip(after, 0, n - 1), axis=-1)
    gap = ~valid
    if method == "agree":
        fill = gap & ((has_before & has_after & (class_before == class_after)) | (has_before ^ has_after))
        value = np.where(has_before, class_before, class_after)
    elif method == "nearest":
        times = np.asarray(times, dtype="float64")
        since = times - times[np.clip(before, 0, n - 1)]
        until = times[np.clip(after, 0, n - 1)] - times
        earlier = has_before & (~has_after | (since <= until))
        fill = gap & (has_before | has_after)
        value = np.where(earlier, class_before, class_after)
    else:
        raise ValueError(f"gap_fill must be none, agree or nearest, got {method!r}")
    return np.where(fill, value, classes).astype(classes.dtype)


def period_middles_days(class_map: xr.DataArray) -> np.ndarray:
    """(period,) float64: the middle of each period in days since the first period's start, from the
    `period_start`/`period_end` coordinates (periods without them: the period ids are years)."""
    if "period_start" in class_map.coords and "period_end" in class_map.coords:
        start = pd.to_datetime(class_map["period_start"].values)
        end = pd.to_datetime(class_map["period_end"].values) + pd.Timedelta(days=1)
    else:
        years = [int(p) for p in class_map["period"].values]
        start = pd.to_datetime([f"{y}-01-01" for y in years])
        end = pd.to_datetime([f"{y + 1}-01-01" for y in years])
    middle = start + (end - start) / 2
    return np.asarray((middle - start[0]) / pd.Timedelta(days=1), dtype="float64")


def gap_fill(class_map: xr.DataArray, method: GapFill = "agree", *, nodata: int | None = None) -> xr.DataArray:
    """(period, y, x) uint8 class map with the pixels that have no data in a period filled from the same
    pixel's nearest observed periods (module docstring); lazy stays lazy. Gaps are judged in real time
    between the periods' middles (periods may be irregular). Which pixels were filled:
    `(class_map == nodata) & (filled != nodata)`."""
    nodata = _nodata(class_map, nodata)
    filled = xr.apply_ufunc(
        _gap_fill_np, class_map, input_core_dims=[["period"]], output_core_dims=[["period"]],
        kwargs={"times": period_middles_days(class_map), "method": method, "nodata": nodata},
        dask="parallelized", output_dtypes=[class_map.dtype], dask_gufunc_kwargs={"allow_rechunk": True},
    ).transpose(*class_map.dims)
    filled.attrs = dict(class_map.attrs)
    return _georeferenced(filled.rename(class_map.name), class_map, nodata)


# ------------------------------------------------------------------------------ minimum mapping unit


def mmu_pixels(mmu_ha: float, grid: xr.DataArray | xr.Dataset) -> int:
    """The smallest patch (in pixels) that the minimum mapping unit keeps: patches of fewer pixels are
    smaller than `mmu_ha` and are merged. 0 = no MMU. The grid must be projected (its pixels in metres)."""
    if mmu_ha <= 0:
        return 0
    crs = grid.rio.crs
    if crs is None or crs.is_geographic:
        raise InputError(f"classify.mmu_ha ({mmu_ha} ha) needs a projected grid in metres, but the AOI's grid is "
                         f"{'without a CRS' if crs is None else crs.to_string()}; set ingest.grid.crs (e.g. a UTM "
                         "zone) or classify.mmu_ha: 0")
    transform = grid.rio.transform(recalc=True)
    factor = crs.linear_units_factor[1] if crs.linear_units_factor else 1.0
    pixel_m2 = abs(transform.a * transform.e - transform.b * transform.d) * factor**2
    return max(1, math.ceil(mmu_ha * 10_000 / pixel_m2 - 1e-9))


def _sieve_np(values: np.ndarray, *, size: int, connectivity: Connectivity, nodata: int,
              mask: np.ndarray | None = None) -> np.ndarray:
    """(..., y, x) -> the same with patches (connected pixels of one value) of fewer than `size` pixels
    merged into their largest neighbour (GDAL's sieve filter), each (y, x) plane on its own. Pixels equal to
    `nodata` (and outside `mask`) are neither patches nor neighbours, and are left as they are."""
    if size <= 1:
        return values.copy()
    planes = values.reshape(-1, *values.shape[-2:])
    out = np.empty_like(planes)
    masks = None if mask is None else np.broadcast_to(mask, values.shape).reshape(planes.shape)
    for i, plane in enumerate(planes):
        usable = plane != nodata
        if masks is not None:
            usable &= masks[i]
        sieved = rasterio.features.sieve(np.ascontiguousarray(plane), size, mask=usable, connectivity=connectivity) \
            if usable.any() else plane
        out[i] = np.where(usable, sieved, plane)
    return out.reshape(values.shape)


def sieve(class_map: xr.DataArray, *, min_pixels: int, connectivity: Connectivity = 8,
          nodata: int | None = None) -> xr.DataArray:
    """(period, y, x) or (y, x) class map with every patch of fewer than `min_pixels` pixels merged into
    the largest neighbouring patch (`mmu_pixels` converts an MMU in ha), each period on its own; lazy
    stays lazy (a period's whole plane is one task, so the result does not depend on the chunks)."""
    nodata = _nodata(class_map, nodata)
    out = xr.apply_ufunc(
        _sieve_np, class_map, input_core_dims=[["y", "x"]], output_core_dims=[["y", "x"]],
        kwargs={"size": min_pixels, "connectivity": connectivity, "nodata": nodata},
        dask="parallelized", output_dtypes=[class_map.dtype], dask_gufunc_kwargs={"allow_rechunk": True},
    ).transpose(*class_map.dims)
    out.attrs = dict(class_map.attrs)
    return _georeferenced(out.rename(class_map.name), class_map, nodata)


def _sieve_change_np(values: np.ndarray, *, size: int, connectivity: Connectivity, unchanged: int,
                     nodata: int) -> np.ndarray:
    """(y, x) change map (`unchanged`, kinds of change, `nodata`) -> the MMU applied in two steps: on
    change / no change (specks of change become `unchanged`; unchanged holes inside change become change),
    then among the kinds of change inside the changed area (small patches take their largest changed
    neighbour's value, holes included)."""
    if size <= 1:
        return values.copy()
    valid = values != nodata
    changed = (valid & (values != unchanged)).astype("uint8")
    binary = _sieve_np(np.where(valid, changed, 255).astype("uint8"), size=size, connectivity=connectivity,
                       nodata=255)
    kept = valid & (binary == 1)
    out = np.where(valid & ~kept, unchanged, values).astype(values.dtype)
    return _sieve_np(out, size=size, connectivity=connectivity, nodata=nodata, mask=kept)


def sieve_change_map(change_map: xr.DataArray, *, min_pixels: int, connectivity: Connectivity = 8,
                     unchanged: int = 0, nodata: int | None = None) -> xr.DataArray:
    """(y, x) change map with the minimum mapping unit applied (`_sieve_change_np`): no patch of change
    smaller than `min_pixels` remains, and none of one kind of change; lazy stays lazy."""
    nodata = _nodata(change_map, nodata)
    out = xr.apply_ufunc(
        _sieve_change_np, change_map, input_core_dims=[["y", "x"]], output_core_dims=[["y", "x"]],
        kwargs={"size": min_pixels, "connectivity": connectivity, "unchanged": unchanged, "nodata": nodata},
        dask="parallelized", output_dtypes=[change_map.dtype], dask_gufunc_kwargs={"allow_rechunk": True},
    ).transpose(*change_map.dims)
    out.attrs = dict(change_map.attrs)
    return _georeferenced(out.rename(change_map.name), change_map, nodata)


# -------------------------------------------------------------------------------------------- flags


def cleaning_flags(raw: xr.DataArray, filled: xr.DataArray, cleaned: xr.DataArray, *,
                   nodata: int | None = None) -> xr.DataArray:
    """(period, y, x) uint8 per pixel: 0 observed and kept, FILLED (1) gap-filled, SIEVED (2) observed and
    reassigned by the MMU, 3 gap-filled then reassigned; CLEANING_NODATA (255) without a class after
    cleaning. Lazy stays lazy."""
    nodata = _nodata(raw, nodata)
    flags = (xr.where((raw == nodata) & (filled != nodata), FILLED, 0)
             + xr.where(cleaned != filled, SIEVED, 0))
    flags = xr.where(cleaned == nodata, CLEANING_NODATA, flags).astype("uint8").rename("cleaning")
    return _georeferenced(flags, raw, CLEANING_NODATA)


def _nodata(array: xr.DataArray, nodata: int | None) -> int:
    if nodata is not None:
        return int(nodata)
    return int(array.rio.nodata) if array.rio.nodata is not None else 255


def _georeferenced(out: xr.DataArray, like: xr.DataArray, nodata: int) -> xr.DataArray:
    return out.rio.write_crs(like.rio.crs).rio.write_nodata(nodata) if like.rio.crs is not None \
        else out.rio.write_nodata(nodata)
