"""The AOI's pixel grid: CRS, resolution and alignment, and putting a scene's pixels onto it."""

from __future__ import annotations

import math

import dask.array as da
import geopandas as gpd
import numpy as np
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords, xr_reproject
from pyproj import CRS

__all__ = ["target_grid", "grid_coords", "same_crs", "onto_grid", "pixel_area_ha"]


def target_grid(
    aoi: gpd.GeoSeries,
    reference: GeoBox,
    *,
    crs: str | None = None,
    resolution: float | None = None,
    anchor: str = "scene",
) -> GeoBox:
    """The AOI's pixel grid: covers the AOI's bounds, in `crs`, with `resolution`.

    crs None: the UTM zone of the AOI's centroid; "native": the reference (first scene's) CRS.
    resolution None: the reference's pixel size (converted when the CRS differs). anchor "scene":
    pixel edges on the reference grid when the CRSs match (so the scenes are cut, not resampled);
    "resolution": pixel edges on multiples of the resolution.
    """
    if crs is None:
        target = CRS.from_user_input(aoi.to_crs("EPSG:4326").estimate_utm_crs())
    elif crs == "native":
        target = CRS.from_wkt(reference.crs.to_wkt())
    else:
        target = CRS.from_user_input(crs)
    same_crs = CRS.from_wkt(reference.crs.to_wkt()) == target
    if resolution is not None:
        res_x = res_y = float(resolution)
    elif same_crs:
        res_x, res_y = abs(reference.resolution.x), abs(reference.resolution.y)
    else:
        converted = reference.to_crs(target.to_wkt()).resolution
        res_x = res_y = round(min(abs(converted.x), abs(converted.y)), 6)
    if anchor == "scene" and same_crs:
        x0, y0 = reference.affine.c, reference.affine.f
    else:
        x0 = y0 = 0.0
    minx, miny, maxx, maxy = aoi.to_crs(target.to_wkt()).total_bounds
    eps = 1e-6
    left = x0 + math.floor((minx - x0) / res_x + eps) * res_x
    right = x0 + math.ceil((maxx - x0) / res_x - eps) * res_x
    bottom = y0 + math.floor((miny - y0) / res_y + eps) * res_y
    top = y0 + math.ceil((maxy - y0) / res_y - eps) * res_y
    shape = (max(1, round((top - bottom) / res_y)), max(1, round((right - left) / res_x)))
    return GeoBox(shape, Affine(res_x, 0.0, left, 0.0, -res_y, top), target.to_wkt())


def grid_coords(grid: GeoBox) -> dict[str, np.ndarray]:
    coords = grid.coordinates
    return {"y": coords["y"].values, "x": coords["x"].values}


def same_crs(a: GeoBox, b: GeoBox) -> bool:
    return a.crs == b.crs or CRS.from_wkt(a.crs.to_wkt()) == CRS.from_wkt(b.crs.to_wkt())


def onto_grid(data: da.Array, source: GeoBox, grid: GeoBox, *, resampling: str, fill: float,
               same_crs: bool) -> da.Array:
    """A (y, x) array on `source`'s grid -> on `grid`: cut by its window (padded with `fill`) when the
    grids share CRS, pixel size and alignment, else reprojected lazily with `resampling`."""
    t, g = source.affine, grid.affine
    if same_crs and np.isclose(t.a, g.a) and np.isclose(t.e, g.e) and t.b == 0 and t.d == 0:
        col, row = (g.c - t.c) / t.a, (g.f - t.f) / t.e
        if abs(col - round(col)) < 1e-6 and abs(row - round(row)) < 1e-6:
            col, row = round(col), round(row)
            ny, nx = grid.shape.y, grid.shape.x
            window = data[max(row, 0):max(row + ny, 0), max(col, 0):max(col + nx, 0)]
            if 0 in window.shape:
                return da.full((ny, nx), fill, dtype=data.dtype, chunks=data.chunksize)
            pad_y = (max(-row, 0), ny - max(-row, 0) - window.shape[0])
            pad_x = (max(-col, 0), nx - max(-col, 0) - window.shape[1])
            if any(pad_y) or any(pad_x):
                window = da.pad(window, (pad_y, pad_x), mode="constant", constant_values=fill)
            return window
    layer = xr.DataArray(data, coords=xr_coords(source), dims=tuple(source.dimensions))
    return xr_reproject(layer, grid, resampling=resampling, src_nodata=fill, dst_nodata=fill).data


def pixel_area_ha(grid: xr.DataArray | xr.Dataset) -> float:
    """Area of one pixel in hectares, from the grid's transform (projected CRS in metres)."""
    transform = grid.rio.transform(recalc=True)
    return abs(transform.a * transform.e - transform.b * transform.d) / 10_000
