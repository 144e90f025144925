"""Scenes of an AOI -> one lazy scene_stack on the AOI's grid.

Every source (local files in any layout, or STAC items) goes the same way: native bands -> common band
names (blue, green, red, nir, swir1, swir2; ndvi/evi for index products) in physical reflectance,
float32 with NaN as nodata; the sensor's quality band (or, without one, the spectral or temporal rules
of `cloudmask`) -> common mask classes (`sensors.MASK_CODES`), and the classes in `drop` (cloud,
shadow, ...) set to NaN here, at ingest. The result carries no `mask` variable. Reflectance is resampled bilinear onto the target grid, masks nearest; a scene on the grid
already is cut by its window, without resampling. Nothing is read but file headers until the caller
computes. Several sources merge into one series keyed by acquisition datetime.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
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
from pipeline.ingest.baselines import ProductRadiometry
from pipeline.ingest.cloudmask import CloudPlan, spectral_mask, temporal_mask
from pipeline.ingest.grid import aligned as _aligned
from pipeline.ingest.grid import grid_coords as _grid_coords
from pipeline.ingest.grid import onto_grid as _onto_grid
from pipeline.ingest.rasters import open_raster
from pipeline.ingest.scenes import SceneFiles
from pipeline.ingest.sensors import HARMONISATION, MASK_CODES, MASK_NODATA, SensorProfile

__all__ = ["aoi_mask", "apply_mask_classes", "check_bands", "drop_empty_scenes", "files_stack", "items_stack",
           "merge_sources", "report_empty_scenes", "scene_stack", "scenes_with_pixels"]

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
    plan: CloudPlan = CloudPlan(),
) -> xr.Dataset | None:
    """Scenes of one files source on `grid`: (time, y, x) float32 per common band, masked; lazy.

    Clouds are masked as `plan` says: by the quality band where a scene has it (and `plan.use_qa`),
    else by `plan.other` (spectral, temporal or none). A scene's own radiometry (`scene.radiometry`)
    replaces the profile's scale and offset where the profile takes them from metadata. Scenes that
    do not overlap the grid are left out; None when none overlaps. Scenes not on the grid are
    resampled (logged once per grid).
    """
    opened: dict = {}
    resampled: set = set()

    def layer(path, index):
        if path not in opened:
            raster = open_raster(path, chunk_size=chunk_size, within=grid)  # the AOI's window where it can
            geobox = raster.odc.geobox
            if not _aligned(geobox, grid) and (geobox.crs, geobox.resolution) not in resampled:
                resampled.add((geobox.crs, geobox.resolution))
                log.info("%s: %s (%s, %g m) is not on the AOI grid (%s, %g m): resampled, reflectance bilinear, "
                         "masks nearest", key, path, _crs_name(geobox), abs(geobox.resolution.x), _crs_name(grid),
                         abs(grid.resolution.x))
            opened[path] = (raster, geobox)
        raster, geobox = opened[path]
        return raster.data[index - 1], raster.attrs.get("nodata"), geobox

    def onto(data, geobox, *, resampling, fill):
        return _onto_grid(data, geobox, grid, resampling=resampling, fill=fill).rechunk(chunk_size)

    check_bands(scenes, profile, key=key, require_mask=plan.require_qa)
    layers, kept, temporal = [], [], []
    for scene in scenes:
        wanted = dict(profile.bands_for(scene.scene_id))
        _, _, geobox = layer(*scene.layers[next(iter(wanted.values()))])
        if not geobox.extent.intersects(grid.extent.to_crs(geobox.crs)):
            log.info("%s: scene %s does not overlap the AOI; left out", key, scene.scene_id)
            continue
        kept.append(scene)
        scale, offset = _radiometry(profile, scene.radiometry, scene.when)
        reflectance = {}
        for name, native in wanted.items():
            raw, file_nodata, geobox = layer(*scene.layers[native])
            nodata = profile.nodata if profile.nodata is not None else file_nodata
            value = _reflectance(raw, scale=scale(native), offset=offset(native), nodata=nodata)
            reflectance[name] = onto(value, geobox, resampling="bilinear", fill=np.nan)
        mask = None
        if plan.use_qa and profile.mask and profile.mask_band in scene.layers:
            raw, _, geobox = layer(*scene.layers[profile.mask_band])
            codes = raw.map_blocks(profile.mask_classes, dtype="uint8")
            mask = onto(codes, geobox, resampling="nearest", fill=MASK_NODATA)
        elif plan.other == "spectral":
            mask = spectral_mask(reflectance, shadow_search_px=plan.pixels(plan.shadow_search_m, grid))
        temporal.append(mask is None and plan.other == "temporal")
        group = profile.harmonisation_group(scene.scene_id) if harmonise else None
        layers.append(_common_scene(reflectance, mask, drop=drop,
                                    harmonisation=HARMONISATION.get(group) if group else None))
    if not layers:
        return None
    times = pd.DatetimeIndex([_scene_time(s.when) for s in kept], name="time")
    stack = _to_dataset(layers, times, [s.scene_id for s in kept], grid)
    return _temporal(stack, temporal, plan=plan, drop=drop, grid=grid, key=key)


def _radiometry(profile: SensorProfile, radiometry: ProductRadiometry | None, when: datetime):
    """(scale(native band), offset(native band)) of one scene: the product's own where the profile takes
    them from metadata (and the config does not give them), else the profile's."""
    fixed_offset = profile.offset_at(when)
    scale = ((lambda band: radiometry.scale) if radiometry is not None and profile.metadata_scale
             else (lambda band: profile.scale))
    offset = (radiometry.offset if radiometry is not None and profile.metadata_offset
              else (lambda band: fixed_offset))
    return scale, offset


def _temporal(stack: xr.Dataset, flagged: Sequence[bool], *, plan: CloudPlan, drop: Sequence[str], grid: GeoBox,
              key: str) -> xr.Dataset:
    """The stack with the temporal cloud mask applied to the `flagged` scenes (those without a quality
    band); the others only serve as its reference."""
    if not any(flagged):
        return stack
    if stack.sizes["time"] < 3:
        log.warning("%s: cloud_mask.method temporal needs 3 or more dates over the AOI, there are %d; "
                    "those scenes are not cloud-masked", key, stack.sizes["time"])
        return stack
    codes = temporal_mask(stack, smooth_px=plan.pixels(plan.smooth_m, grid))
    dropped = [MASK_CODES[c] for c in drop if c in ("cloud", "shadow")]
    masked = codes.isin(dropped) & xr.DataArray(np.asarray(flagged), dims="time")
    return stack.where(~masked)


def _crs_name(grid: GeoBox) -> str:
    epsg = grid.crs.epsg
    return f"EPSG:{epsg}" if epsg else grid.crs.to_wkt()[:40]


def check_bands(scenes: Sequence[SceneFiles], profile: SensorProfile, *, key: str = "ingest",
                require_mask: bool = True) -> None:
    """Raise InputError naming the file(s) of the first scene that lacks a band the profile needs (or
    the quality band, with `require_mask`). Looks at the listed band names only; nothing is read."""
    mask_band = profile.mask_band if profile.mask and require_mask else None
    for scene in scenes:
        wanted = list(dict(profile.bands_for(scene.scene_id)).values())
        missing = [n for n in wanted if n not in scene.layers]
        files = sorted({str(p) for p, _ in scene.layers.values()})
        if missing:
            raise InputError(
                f"{', '.join(files)}: scene {scene.scene_id!r} lacks the band(s) {missing} that {key} "
                f"(sensor {profile.name!r}) needs; it has {sorted(scene.layers)} ({key}.bands)")
        if mask_band and mask_band not in scene.layers:
            raise InputError(
                f"{', '.join(files)}: scene {scene.scene_id!r} has no quality band {mask_band!r} (it has "
                f"{sorted(scene.layers)}), which cloud_mask.method qa needs; set cloud_mask.method to spectral, "
                f"temporal or none to mask clouds without it, or name the band in {key}.mask")


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
    plan: CloudPlan = CloudPlan(),
    radiometry: Sequence[ProductRadiometry | None] | None = None,
    has_mask: Sequence[bool] | None = None,
    key: str = "ingest.sources",
) -> xr.Dataset:
    """STAC assets loaded on the grid (time, y, x raw, e.g. by `stac.load_items`) -> common form.

    `bands` maps common names to the loaded variables; `radiometry` and `has_mask` (whether the scene's
    items have the quality asset) are per scene, as `files_stack`'s per file."""
    layers, temporal = [], []
    for i, scene_id in enumerate(scene_ids):
        when = pd.Timestamp(raw["time"].values[i])
        scale, offset = _radiometry(profile, radiometry[i] if radiometry else None, when)
        reflectance = {}
        for name, native in bands.items():
            nodata = profile.nodata if profile.nodata is not None else raw[native].attrs.get("nodata")
            reflectance[name] = _reflectance(raw[native].data[i], scale=scale(native), offset=offset(native),
                                             nodata=nodata)
        mask = None
        if plan.use_qa and mask_band and (has_mask is None or has_mask[i]):
            mask = raw[mask_band].data[i].map_blocks(profile.mask_classes, dtype="uint8")
        elif plan.other == "spectral":
            mask = spectral_mask(reflectance, shadow_search_px=plan.pixels(plan.shadow_search_m, grid))
        temporal.append(mask is None and plan.other == "temporal")
        group = profile.harmonisation_group(scene_id) if harmonise else None
        layers.append(_common_scene(reflectance, mask, drop=drop,
                                    harmonisation=HARMONISATION.get(group) if group else None))
    times = pd.DatetimeIndex([_scene_time(t) for t in pd.DatetimeIndex(raw["time"].values)], name="time")
    stack = _to_dataset(layers, times, scene_ids, grid)
    return _temporal(stack, temporal, plan=plan, drop=drop, grid=grid, key=key)


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


def scenes_with_pixels(stack: xr.Dataset) -> xr.DataArray:
    """(time,) bool, lazy where the stack is: whether each scene has a valid pixel (not NaN in some
    variable) in the AOI. On Dask, one task per block of the scenes for all variables together."""
    variables = [v.transpose("time", "y", "x") for v in stack.data_vars.values()]
    arrays = [v.data for v in variables]
    if not all(isinstance(a, da.Array) for a in arrays) or len({a.chunks for a in arrays}) > 1:
        return xr.concat([v.notnull().any(("y", "x")) for v in variables], "variable").any("variable")
    times, rows, cols = arrays[0].chunks
    per_block = da.map_blocks(_any_valid, *arrays, chunks=(times, (1,) * len(rows), (1,) * len(cols)), dtype=bool)
    return xr.DataArray(per_block.any(axis=(1, 2)), coords={"time": stack["time"]}, dims="time")


def _any_valid(*blocks: np.ndarray) -> np.ndarray:
    """(time, 1, 1): whether a block of (time, y, x) variables has a valid (not NaN) value per time."""
    valid = np.zeros(blocks[0].shape[0], bool)
    for block in blocks:
        valid |= (~np.isnan(block) if block.dtype.kind == "f" else np.ones(block.shape, bool)).reshape(
            block.shape[0], -1).any(axis=1)
    return valid[:, np.newaxis, np.newaxis]


def report_empty_scenes(stack: xr.Dataset, keep: np.ndarray, *, aoi_id: str = "") -> None:
    """Log each scene that `keep` (time,) leaves out for having no valid pixel in the AOI; an InputError
    where none is left."""
    for i in np.flatnonzero(~keep):
        log.warning("aoi %r: scene %s (%s) has no clear pixel in the AOI; dropped", aoi_id,
                    stack["scene_id"].values[i] if "scene_id" in stack.coords else i,
                    pd.Timestamp(stack["time"].values[i]).isoformat())
    if not keep.any():
        raise InputError(f"aoi {aoi_id!r}: every scene is nodata or masked inside the AOI")


def drop_empty_scenes(stack: xr.Dataset, *, aoi_id: str = "") -> xr.Dataset:
    """The stack without scenes that have no valid pixel in the AOI (each dropped one is logged).

    This reads the stack once (a (time,) reduction); the composite stage instead finds them in the
    pass that writes the composites (`scenes_with_pixels`).
    """
    valid = scenes_with_pixels(stack)
    (keep,) = dask.compute(valid.data if dask.is_dask_collection(valid) else valid.values)
    keep = np.asarray(keep, bool)
    report_empty_scenes(stack, keep, aoi_id=aoi_id)
    return stack.isel(time=np.flatnonzero(keep))


def _scene_time(when: datetime) -> pd.Timestamp:
    """A timezone-naive (UTC) timestamp for an acquisition time."""
    stamp = pd.Timestamp(when)
    return stamp.tz_convert(None) if stamp.tzinfo else stamp
