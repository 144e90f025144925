"""The AOI's pixel grid: CRS, resolution and alignment, and putting a scene's pixels onto it.

Everything downstream measures in metres (pixel areas, buffers, rings, bootstrap blocks), so a grid CRS
whose unit is not the metre is refused. A scene's pixels are kept as they are wherever its grid is the
AOI grid's: same CRS, pixel size and alignment, or the same projection whose false northing differs
(UTM north and south of one zone: USGS processes southern Landsat scenes in the northern zone, with
negative northings), where the scene's grid is only relabelled. Only a truly different grid is resampled.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import dask.array as da
import geopandas as gpd
import numpy as np
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords, xr_reproject
from pyproj import CRS

from pipeline.errors import InputError

__all__ = ["target_grid", "grid_coords", "same_crs", "northing_shift", "as_grid_crs", "aligned", "onto_grid",
           "metre_problem", "pixel_area_ha"]


def metre_problem(crs: CRS) -> str | None:
    """Why a CRS cannot be a grid (its axes are not in metres), or None."""
    units = {axis.unit_name for axis in crs.axis_info}
    if crs.is_projected and units <= {"metre", "meter", "m"}:
        return None
    return f"its unit is the {'/'.join(sorted(units)) or 'unknown'}, not the metre"


def target_grid(
    aoi: gpd.GeoSeries,
    reference: GeoBox,
    *,
    crs: str | None = None,
    resolution: float | None = None,
    anchor: str = "scene",
    key: str = "ingest.grid",
) -> GeoBox:
    """The AOI's pixel grid: covers the AOI's bounds, in `crs`, with `resolution`.

    crs None: the UTM zone of the AOI's centroid; "native": the reference (first scene's) CRS.
    resolution None: the reference's pixel size (converted when the projection differs). anchor "scene":
    pixel edges on the reference grid when the projection is the same (so the scenes are cut, not
    resampled; a reference in the other hemisphere's UTM zone is relabelled by its false northing);
    "resolution": pixel edges on multiples of the resolution.

    Raises InputError naming `key`.crs when the CRS is not in metres (e.g. a scene in EPSG:4326 with
    crs "native").
    """
    if crs is None:
        target = CRS.from_user_input(aoi.to_crs("EPSG:4326").estimate_utm_crs())
    elif crs == "native":
        target = CRS.from_wkt(reference.crs.to_wkt())
    else:
        target = CRS.from_user_input(crs)
    problem = metre_problem(target)
    if problem:
        utm = CRS.from_user_input(aoi.to_crs("EPSG:4326").estimate_utm_crs())
        given = "native (the first scene's CRS)" if crs == "native" else repr(crs)
        raise InputError(f"{key}.crs: {given} is {target.name}; {problem}, and areas, buffers and rings are in "
                         f"metres: leave {key}.crs out to use the AOI's UTM zone ({utm.to_string()}) or give a "
                         "projected CRS in metres")
    shift = northing_shift(reference.crs.to_wkt(), target.to_wkt())
    if resolution is not None:
        res_x = res_y = float(resolution)
    elif shift is not None:
        res_x, res_y = abs(reference.resolution.x), abs(reference.resolution.y)
    else:
        converted = reference.to_crs(target.to_wkt()).resolution
        res_x = res_y = round(min(abs(converted.x), abs(converted.y)), 6)
    if anchor == "scene" and shift is not None:
        x0, y0 = reference.affine.c, reference.affine.f + shift
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


def _tmerc(crs: CRS) -> dict | None:
    """A Transverse Mercator CRS (UTM included) as its parameters, the false northing apart; else None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params = crs.to_dict()
    if params.get("proj") == "utm":
        params = {**{k: v for k, v in params.items() if k not in ("proj", "zone", "south")}, "proj": "tmerc",
                  "lat_0": 0, "lon_0": 6 * int(params["zone"]) - 183, "k": 0.9996, "x_0": 500000,
                  "y_0": 10_000_000 if "south" in params else 0}
    elif params.get("proj") == "tmerc":
        params = {"lat_0": 0, "k": 1, "x_0": 0, "y_0": 0, **params}
        params["k"] = params.pop("k_0", params["k"])
    else:
        return None
    params.pop("type", None)
    params.pop("no_defs", None)
    return {k: (float(v) if isinstance(v, (int, float)) else v) for k, v in params.items()}


@lru_cache(maxsize=1024)
def northing_shift(source_wkt: str, target_wkt: str) -> float | None:
    """How far (m) `y` moves from the source CRS to the target when the two are one projection: 0.0 for
    the same CRS, +/-10,000,000 for UTM north and south of one zone (or any two Transverse Mercators that
    differ only in false northing); None when the projections differ."""
    source, target = CRS.from_wkt(source_wkt), CRS.from_wkt(target_wkt)
    if source == target:
        return 0.0
    a, b = _tmerc(source), _tmerc(target)
    if a is None or b is None:
        return None
    shift = b.pop("y_0") - a.pop("y_0")
    return shift if a == b and shift != 0 else None


def as_grid_crs(source: GeoBox, grid: GeoBox) -> GeoBox | None:
    """The source grid labelled in the AOI grid's CRS when the two are one projection (the same pixels,
    translated by the false northing difference), else None."""
    shift = northing_shift(source.crs.to_wkt(), grid.crs.to_wkt())
    if shift is None:
        return None
    if shift == 0.0:
        return GeoBox(source.shape, source.affine, grid.crs)
    return GeoBox(source.shape, Affine.translation(0, shift) * source.affine, grid.crs)


def _offset(source: GeoBox, grid: GeoBox) -> tuple[int, int] | None:
    """(row, col) of the grid's corner in the source's pixels when both share pixel size and alignment
    (same CRS assumed), else None."""
    t, g = source.affine, grid.affine
    if not (np.isclose(t.a, g.a) and np.isclose(t.e, g.e) and t.b == 0 and t.d == 0):
        return None
    col, row = (g.c - t.c) / t.a, (g.f - t.f) / t.e
    if abs(col - round(col)) < 1e-6 and abs(row - round(row)) < 1e-6:
        return round(row), round(col)
    return None


def aligned(source: GeoBox, grid: GeoBox) -> bool:
    """Whether a scene on `source` goes onto `grid` by cutting its window, without resampling."""
    relabelled = as_grid_crs(source, grid)
    return relabelled is not None and _offset(relabelled, grid) is not None


def window_within(source: GeoBox, grid: GeoBox) -> tuple[int, int] | None:
    """(row, col) of the grid's corner in the source's pixels when the grid is a window of the source
    (one grid, as `aligned`) that lies wholly inside it, else None."""
    relabelled = as_grid_crs(source, grid)
    offset = _offset(relabelled, grid) if relabelled is not None else None
    if offset is None:
        return None
    row, col = offset
    inside = row >= 0 and col >= 0 and row + grid.shape.y <= source.shape.y and col + grid.shape.x <= source.shape.x
    return offset if inside else None


def onto_grid(data: da.Array, source: GeoBox, grid: GeoBox, *, resampling: str, fill: float) -> da.Array:
    """A (y, x) array on `source`'s grid -> on `grid`: cut by its window (padded with `fill`) when the
    grids are one (same projection, pixel size and alignment; see `as_grid_crs`), else reprojected
    lazily with `resampling`."""
    relabelled = as_grid_crs(source, grid)
    offset = _offset(relabelled, grid) if relabelled is not None else None
    if offset is not None:
        row, col = offset
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
    """Area of one pixel in hectares, from the grid's transform (a projected CRS in metres: `target_grid`
    refuses any other)."""
    transform = grid.rio.transform(recalc=True)
    return abs(transform.a * transform.e - transform.b * transform.d) / 10_000
