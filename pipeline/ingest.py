"""Scenes of an AOI -> one lazy scene_stack on the AOI's grid.

The grid is the first scene's pixel grid, clipped to the AOI's bounds (plus a margin). Reflectance
bands become float32 physical reflectance (NaN = nodata); the cloud/shadow mask band, where there is
one, stays an integer variable `mask` for `preprocess.cloud_mask` to apply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from rasterio.features import geometry_mask
from rioxarray.exceptions import NoDataInBounds, OneDimensionalRaster

from pipeline import io
from pipeline.errors import InputError

__all__ = ["scene_stack", "aoi_mask"]

log = logging.getLogger(__name__)


def scene_stack(
    scenes: Sequence[tuple[datetime, Path]],
    aoi: gpd.GeoSeries,
    *,
    bands: Mapping[str, str],
    mask_band: str | None,
    scale: float,
    offset: float,
    nodata: float | None,
    chunk_size: int = 512,
    open_scene: Callable[..., xr.DataArray] = io.open_scene,
) -> xr.Dataset:
    """Stack the scenes that overlap the AOI into a (time, y, x) Dataset, lazily.

    Parameters
    ----------
    scenes : (acquisition time, path) pairs, e.g. from `io.list_scenes`.
    aoi : a one-feature GeoSeries, any CRS; it is projected to the scenes' CRS.
    bands : common band name (``"red"``) -> band description in the files (``"B4"``).
    mask_band : description of the cloud/shadow mask band, or None.

    Returns
    -------
    Dataset with one float32 variable per common band name (reflectance, NaN = nodata or outside
    the AOI) and, if `mask_band`, an integer `mask`; CRS and nodata written with `.rio`.
    """
    reference: xr.DataArray | None = None
    layers, times = [], []
    for when, path in scenes:
        scene = open_scene(path, chunk_size=chunk_size)
        missing = [d for d in [*bands.values(), *([mask_band] if mask_band else [])]
                   if d not in scene["band"].values]
        if missing:
            raise InputError(
                f"{path}: no band described {missing} (ingest.bands / cloud_mask.mask_band); "
                f"the file's bands are {list(map(str, scene['band'].values))}"
            )
        if reference is None:
            bounds = aoi.to_crs(scene.rio.crs).total_bounds
            try:
                scene = scene.rio.clip_box(*bounds)
            except (NoDataInBounds, OneDimensionalRaster):
                log.warning("%s does not overlap the AOI; skipped", path)
                continue
            reference = scene
        elif scene.rio.crs != reference.rio.crs or not _same_grid(scene, reference):
            log.warning("%s is on another grid than the first scene; reprojected (not lazy)", path)
            scene = scene.rio.reproject_match(reference)
        else:
            scene = _window_like(scene, reference)
        layers.append(_to_reflectance(scene, bands, mask_band, scale=scale, offset=offset,
                                      nodata=nodata if nodata is not None else scene.rio.nodata))
        times.append(pd.Timestamp(when))
    if reference is None:
        raise InputError(f"the AOI does not overlap any of the {len(scenes)} scenes")
    stack = xr.concat(layers, dim=pd.Index(times, name="time"), join="override", combine_attrs="drop_conflicts")
    stack = stack.rio.write_crs(reference.rio.crs)
    inside = aoi_mask(stack, aoi)
    reflectance = [v for v in stack.data_vars if v != "mask"]
    stack[reflectance] = stack[reflectance].where(inside)
    for name in reflectance:
        stack[name].attrs.update(units="reflectance", nodata=np.nan)
        stack[name] = stack[name].rio.write_nodata(np.nan, encoded=False)
    return stack


def aoi_mask(grid: xr.Dataset | xr.DataArray, aoi: gpd.GeoSeries) -> xr.DataArray:
    """(y, x) bool, True inside the AOI polygon (pixel centres), on `grid`'s CRS and transform."""
    shapes = aoi.to_crs(grid.rio.crs).geometry
    outside = geometry_mask(shapes, out_shape=(grid.sizes["y"], grid.sizes["x"]),
                            transform=grid.rio.transform(recalc=True))
    return xr.DataArray(~outside, coords={"y": grid.y, "x": grid.x}, dims=("y", "x"))


def _same_grid(scene: xr.DataArray, reference: xr.DataArray) -> bool:
    ref_transform, transform = reference.rio.transform(), scene.rio.transform()
    same_res = np.allclose(ref_transform[:6:4], transform[:6:4])
    offset_x = (ref_transform.c - transform.c) / transform.a
    offset_y = (ref_transform.f - transform.f) / transform.e
    aligned = abs(offset_x - round(offset_x)) < 1e-6 and abs(offset_y - round(offset_y)) < 1e-6
    covers = (scene.x.min() <= reference.x.min() and scene.x.max() >= reference.x.max()
              and scene.y.min() <= reference.y.min() and scene.y.max() >= reference.y.max())
    return bool(same_res and aligned and covers)


def _window_like(scene: xr.DataArray, reference: xr.DataArray) -> xr.DataArray:
    """The part of `scene` on `reference`'s pixels (same grid, checked by `_same_grid`), lazily."""
    ref_transform, transform = reference.rio.transform(), scene.rio.transform()
    col = round((ref_transform.c - transform.c) / transform.a)
    row = round((ref_transform.f - transform.f) / transform.e)
    window = scene.isel(x=slice(col, col + reference.sizes["x"]), y=slice(row, row + reference.sizes["y"]))
    return window.assign_coords(x=reference.x, y=reference.y)


def _to_reflectance(
    scene: xr.DataArray,
    bands: Mapping[str, str],
    mask_band: str | None,
    *,
    scale: float,
    offset: float,
    nodata: float | None,
) -> xr.Dataset:
    """(band, y, x) raw scene -> Dataset of float32 reflectance per common band name (+ `mask`)."""
    variables = {}
    for name, description in bands.items():
        raw = scene.sel(band=description, drop=True)
        valid = raw != nodata if nodata is not None and not np.isnan(nodata) else np.isfinite(raw)
        variables[name] = (raw.astype("float32") * np.float32(scale) + np.float32(offset)).where(valid)
    if mask_band:
        variables["mask"] = scene.sel(band=mask_band, drop=True)
    out = xr.Dataset(variables)
    return out.drop_vars("spatial_ref", errors="ignore")
