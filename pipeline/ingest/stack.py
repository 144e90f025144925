"""Scenes of an AOI -> one lazy scene_stack on the AOI's grid.

Every source (local files in any layout, or STAC items) goes the same way: native bands -> common band
names (blue, green, red, nir, swir1, swir2; ndvi/evi for index products) in physical reflectance,
float32 with NaN as nodata; the sensor's quality band -> common mask classes (`sensors.MASK_CODES`),
and the classes in `drop` (cloud, shadow, ...) set to NaN here, at ingest. The result carries no `mask`
variable. Reflectance is resampled bilinear onto the target grid, masks nearest; a scene on the grid
already is cut by its window, without resampling. Nothing is read but file headers until the caller
computes. Several sources merge into one series keyed by acquisition datetime.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from odc.geo.geobox import GeoBox
from rasterio.features import geometry_mask

from pipeline.errors import InputError
from pipeline.ingest.grid import grid_coords as _grid_coords
from pipeline.ingest.grid import onto_grid as _onto_grid
from pipeline.ingest.grid import same_crs as _same_crs
from pipeline.ingest.rasters import open_raster as _open_raster
from pipeline.ingest.scenes import SceneFiles
from pipeline.ingest.sensors import HARMONISATION, MASK_CODES, MASK_NODATA, SensorProfile

__all__ = ["aoi_mask", "apply_mask_classes", "check_bands", "drop_empty_scenes", "files_stack", "items_stack",
           "merge_sources", "scene_stack"]

log = logging.getLogger(__name__)


def _reflectance_np(raw: np.ndarray, *, scale: float, offset: float, nodata: float | None) -> np.ndarray:
    """Raw digital numbers -> float32 reflectance, NaN where `nodata` (or not finite)."""
    value = raw.astype("float32") * np.float32(scale) + np.float32(offset)
    invalid = ~np.isfinite(value)
    if nodata is not None and not np.isnan(nodata):
        invalid |= raw == nodata
    value[invalid] = np.nan
    return value


def _reflectance(raw: da.Array, *, scale: float, offset: float, nodata: float | None) -> da.Array:
    return raw.map_blocks(_reflectance_np, scale=scale, offset=offset, nodata=nodata, dtype="float32")


def _finish_np(values: np.ndarray, mask: np.ndarray | None = None, *, slope: float = 1.0,
               intercept: float = 0.0, dropped: Sequence[int] = ()) -> np.ndarray:
    """Harmonise (slope * value + intercept) and set the pixels whose mask class is `dropped` to NaN."""
    out = values.astype("float32", copy=True)
    if slope != 1.0 or intercept != 0.0:
        out = out * np.float32(slope) + np.float32(intercept)
    if mask is not None:
        out[np.isin(mask, dropped)] = np.nan
    return out


def apply_mask_classes(profile: SensorProfile, raw: xr.DataArray) -> xr.DataArray:
    """(y, x) native quality band -> (y, x) uint8 common mask classes, lazily."""
    if isinstance(raw.data, da.Array):
        codes = raw.data.map_blocks(profile.mask_classes, dtype="uint8")
    else:
        codes = profile.mask_classes(raw.values)
    return xr.DataArray(codes, coords=raw.coords, dims=raw.dims, name="mask")


def _common_scene(
    reflectance: Mapping[str, da.Array],
    mask: da.Array | None,
    *,
    drop: Sequence[str],
    harmonisation: Mapping[str, tuple[float, float]] | None,
) -> dict[str, da.Array]:
    """Gridded reflectance per common band (+ gridded mask classes) -> masked float32 arrays."""
    dropped = [MASK_CODES[c] for c in drop] + [MASK_NODATA]
    out = {}
    for name, values in reflectance.items():
        slope, intercept = (harmonisation or {}).get(name, (1.0, 0.0))
        arrays = (values,) if mask is None else (values, mask)
        out[name] = da.map_blocks(_finish_np, *arrays, slope=slope, intercept=intercept, dropped=dropped,
                                  dtype="float32")
    return out


def _to_dataset(scenes: Sequence[Mapping[str, da.Array]], times: pd.DatetimeIndex, scene_ids: Sequence[str],
                grid: GeoBox) -> xr.Dataset:
    coords = {"time": times, "scene_id": ("time", list(scene_ids)), **_grid_coords(grid)}
    return xr.Dataset({name: (("time", "y", "x"), da.stack([s[name] for s in scenes]))
                       for name in scenes[0]}, coords=coords)


def files_stack(
    scenes: Sequence[SceneFiles],
    grid: GeoBox,
    *,
    profile: SensorProfile,
    drop: Sequence[str] = ("cloud", "shadow", "cirrus", "dilated_cloud", "saturated"),
    harmonise: bool = False,
    chunk_size: int = 512,
    key: str = "ingest",
    open_raster: Callable[..., xr.DataArray] = _open_raster,
) -> xr.Dataset | None:
    """Scenes of one files source on `grid`: (time, y, x) float32 per common band, masked; lazy.

    Scenes that do not overlap the grid are left out; None when none overlaps.
    """
    opened: dict = {}

    def layer(path, index):
        if path not in opened:
            raster = open_raster(path, chunk_size=chunk_size)
            geobox = raster.odc.geobox
            opened[path] = (raster, geobox, _same_crs(geobox, grid))
        raster, geobox, same_crs = opened[path]
        return raster.data[index - 1], raster.attrs.get("nodata"), geobox, same_crs

    check_bands(scenes, profile, key=key)
    layers, kept = [], []
    for scene in scenes:
        wanted = dict(profile.bands_for(scene.scene_id))
        mask_band = profile.mask_band if profile.mask else None
        _, _, geobox, _ = layer(*scene.layers[next(iter(wanted.values()))])
        if not geobox.extent.intersects(grid.extent.to_crs(geobox.crs)):
            log.info("%s: scene %s does not overlap the AOI; left out", key, scene.scene_id)
            continue
        kept.append(scene)
        offset = profile.offset_at(scene.when)
        reflectance = {}
        for name, native in wanted.items():
            raw, file_nodata, geobox, same_crs = layer(*scene.layers[native])
            nodata = profile.nodata if profile.nodata is not None else file_nodata
            value = _reflectance(raw, scale=profile.scale, offset=offset, nodata=nodata)
            reflectance[name] = _onto_grid(value, geobox, grid, resampling="bilinear", fill=np.nan,
                                           same_crs=same_crs).rechunk(chunk_size)
        mask = None
        if mask_band:
            raw, _, geobox, same_crs = layer(*scene.layers[mask_band])
            codes = raw.map_blocks(profile.mask_classes, dtype="uint8")
            mask = _onto_grid(codes, geobox, grid, resampling="nearest", fill=MASK_NODATA,
                              same_crs=same_crs).rechunk(chunk_size)
        group = profile.harmonisation_group(scene.scene_id) if harmonise else None
        layers.append(_common_scene(reflectance, mask, drop=drop,
                                    harmonisation=HARMONISATION.get(group) if group else None))
    if not layers:
        return None
    times = pd.DatetimeIndex([_scene_time(s.when) for s in kept], name="time")
    return _to_dataset(layers, times, [s.scene_id for s in kept], grid)


def check_bands(scenes: Sequence[SceneFiles], profile: SensorProfile, *, key: str = "ingest") -> None:
    """Raise InputError naming the file(s) of the first scene that lacks a band (or the quality band)
    the profile needs. Looks at the listed band names only; nothing is read."""
    mask_band = profile.mask_band if profile.mask else None
    for scene in scenes:
        wanted = [*dict(profile.bands_for(scene.scene_id)).values(), *([mask_band] if mask_band else [])]
        missing = [n for n in wanted if n not in scene.layers]
        if missing:
            files = sorted({str(p) for p, _ in scene.layers.values()})
            raise InputError(
                f"{', '.join(files)}: scene {scene.scene_id!r} lacks the band(s) {missing} that {key} "
                f"(sensor {profile.name!r}) needs; it has {sorted(scene.layers)} ({key}.bands / mask)")


def items_stack(
    raw: xr.Dataset,
    scene_ids: Sequence[str],
    grid: GeoBox,
    *,
    profile: SensorProfile,
    bands: Mapping[str, str],
    mask_band: str | None,
    drop: Sequence[str] = ("cloud", "shadow", "cirrus", "dilated_cloud", "saturated"),
    harmonise: bool = False,
) -> xr.Dataset:
    """STAC assets loaded on the grid (time, y, x raw, e.g. by `stac.load_items`) -> common form."""
    layers = []
    for i, scene_id in enumerate(scene_ids):
        when = pd.Timestamp(raw["time"].values[i])
        reflectance = {}
        for name, native in bands.items():
            nodata = profile.nodata if profile.nodata is not None else raw[native].attrs.get("nodata")
            reflectance[name] = _reflectance(raw[native].data[i], scale=profile.scale,
                                             offset=profile.offset_at(when), nodata=nodata)
        mask = raw[mask_band].data[i].map_blocks(profile.mask_classes, dtype="uint8") if mask_band else None
        group = profile.harmonisation_group(scene_id) if harmonise else None
        layers.append(_common_scene(reflectance, mask, drop=drop,
                                    harmonisation=HARMONISATION.get(group) if group else None))
    times = pd.DatetimeIndex([_scene_time(t) for t in pd.DatetimeIndex(raw["time"].values)], name="time")
    return _to_dataset(layers, times, scene_ids, grid)


def merge_sources(stacks: Sequence[xr.Dataset]) -> xr.Dataset:
    """Several (time, y, x) stacks on one grid -> one series sorted by time.

    A variable a source lacks is NaN for its scenes. Scenes with the same datetime (from two sources,
    or neighbouring tiles) become one: the first non-NaN value per pixel, in source order.
    """
    names = list(dict.fromkeys(v for s in stacks for v in s.data_vars))
    filled = []
    for stack in stacks:
        extra = {v: xr.full_like(stack[next(iter(stack.data_vars))], np.nan, dtype="float32")
                 for v in names if v not in stack}
        filled.append(stack.assign(extra)[names])
    merged = xr.concat(filled, dim="time", join="override", combine_attrs="drop") if len(filled) > 1 \
        else filled[0]
    order = np.argsort(merged["time"].values, kind="stable")
    merged = merged.isel(time=order)
    times = pd.DatetimeIndex(merged["time"].values)
    if not times.has_duplicates:
        return merged
    parts, ids = [], []
    for when in times.unique():
        same = np.flatnonzero(times == when)
        scene = merged.isel(time=int(same[0]))
        for k in same[1:]:
            scene = scene.fillna(merged.isel(time=int(k)))
        parts.append(scene.drop_vars("scene_id", errors="ignore"))
        ids.append("+".join(str(merged["scene_id"].values[k]) for k in same))
    out = xr.concat(parts, dim="time", join="override", combine_attrs="drop")
    return out.assign_coords(scene_id=("time", ids))


def scene_stack(
    stacks: Sequence[xr.Dataset],
    aoi: gpd.GeoSeries,
    grid: GeoBox,
) -> xr.Dataset:
    """The sources' stacks merged, NaN outside the AOI polygon, CRS and nodata written.

    Returns (time, y, x) float32 per common band name, reflectance, NaN = nodata, masked or outside.
    """
    stack = merge_sources(stacks)
    stack = stack.rio.write_crs(grid.crs.to_wkt()).rio.write_transform(grid.affine)
    inside = aoi_mask(stack, aoi)
    stack = stack.where(inside)
    for name in stack.data_vars:
        stack[name] = stack[name].astype("float32").rio.write_nodata(np.nan, encoded=False)
        stack[name].attrs.update(units="reflectance" if name not in ("ndvi", "evi") else "1")
    return stack.rio.write_crs(grid.crs.to_wkt()).rio.write_transform(grid.affine)


def aoi_mask(grid: xr.Dataset | xr.DataArray, aoi: gpd.GeoSeries) -> xr.DataArray:
    """(y, x) bool, True inside the AOI polygon (pixel centres), on `grid`'s CRS and transform."""
    shapes = aoi.to_crs(grid.rio.crs).geometry
    outside = geometry_mask(shapes, out_shape=(grid.sizes["y"], grid.sizes["x"]),
                            transform=grid.rio.transform())
    return xr.DataArray(~outside, coords={"y": grid.y, "x": grid.x}, dims=("y", "x"))


def drop_empty_scenes(stack: xr.Dataset, *, aoi_id: str = "") -> xr.Dataset:
    """The stack without scenes that have no valid pixel in the AOI (each dropped one is logged).

    This reads the stack once (a (time,) reduction); call it where that read is wanted.
    """
    valid = xr.concat([v.notnull().any(("y", "x")) for v in stack.data_vars.values()], "variable").any(
        "variable")
    (keep,) = dask.compute(valid.values if not dask.is_dask_collection(valid) else valid.data)
    keep = np.asarray(keep, bool)
    for i in np.flatnonzero(~keep):
        log.warning("aoi %r: scene %s (%s) has no clear pixel in the AOI; dropped", aoi_id,
                    stack["scene_id"].values[i] if "scene_id" in stack.coords else i,
                    pd.Timestamp(stack["time"].values[i]).isoformat())
    if not keep.any():
        raise InputError(f"aoi {aoi_id!r}: every scene is nodata or masked inside the AOI")
    return stack.isel(time=np.flatnonzero(keep))


def _scene_time(when: datetime) -> pd.Timestamp:
    """A timezone-naive (UTC) timestamp for an acquisition time."""
    stamp = pd.Timestamp(when)
    return stamp.tz_convert(None) if stamp.tzinfo else stamp
