"""The config's ingest sources -> listed scenes -> one AOI's lazy scene_stack (what `run.py` calls).

`list_sources` reads file headers once per run (dates, bands, CRS, product metadata: bad files fail
here, before any output) and decides each source's cloud mask (`cloud_plan`); `find_items` searches the
STAC sources over an AOI (the runner keys the AOI's composites by the items it finds); `aoi_stack`
builds the AOI's grid and hands every source to `pipeline.ingest.stack`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import geopandas as gpd
import rasterio
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox
from pyproj import CRS

from pipeline.config import (
    CloudMaskConfig,
    FilesSourceConfig,
    IngestConfig,
    MaskRuleConfig,
    StacSourceConfig,
)
from pipeline.errors import InputError
from pipeline.ingest import baselines, stac
from pipeline.ingest.cloudmask import CloudPlan, can_spectral, can_temporal
from pipeline.ingest.grid import aligned, as_grid_crs, metre_problem, target_grid
from pipeline.ingest.rasters import open_layer
from pipeline.ingest.scenes import SceneFiles, find_scene_files
from pipeline.ingest.sensors import SensorProfile, profile_for
from pipeline.ingest.stack import check_bands, files_stack, items_stack, scene_stack

__all__ = ["ListedSource", "aoi_grid", "aoi_stack", "cloud_plan", "gdal_options", "find_items", "list_sources", "source_profile", "sources_of"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ListedSource:
    """One configured source with its key in the config (for messages), its profile, its cloud mask
    plan and, for files, its scenes."""

    key: str
    config: FilesSourceConfig | StacSourceConfig
    profile: SensorProfile
    scenes: list[SceneFiles] | None = None
    plan: CloudPlan = CloudPlan()
    cloud_mask: CloudMaskConfig = CloudMaskConfig()

    @property
    def files(self) -> list[Path]:
        if self.scenes is None:
            return [self.config.catalog] if getattr(self.config, "catalog", None) else []
        return sorted({p for s in self.scenes for p, _ in s.layers.values()})


def sources_of(ingest_config: IngestConfig, cloud_mask: CloudMaskConfig, *,
               scenes_glob: str | None = None) -> list[tuple[str, FilesSourceConfig | StacSourceConfig]]:
    """(config key, source) pairs; the `ingest.scenes` shorthand becomes one generic files source."""
    if ingest_config.sources is not None:
        return [(f"ingest.sources[{i}]", s) for i, s in enumerate(ingest_config.sources)]
    mask = (MaskRuleConfig(band=cloud_mask.mask_band, classes={"cloud": cloud_mask.mask_values})
            if cloud_mask.mask_band else None)
    shorthand = FilesSourceConfig(
        scenes=scenes_glob or ingest_config.scenes, layout="multiband", date_pattern=ingest_config.date_pattern,
        date_format=ingest_config.date_format, bands=dict(ingest_config.bands), scale=ingest_config.scale,
        offset=ingest_config.offset, nodata=ingest_config.nodata, mask=mask)
    return [("ingest", shorthand)]


def source_profile(source: FilesSourceConfig | StacSourceConfig) -> SensorProfile:
    """The source's sensor profile with the config's overrides applied (a given scale or offset wins
    over the products' metadata)."""
    profile = profile_for(source.sensor, scale=source.scale, offset=source.offset, nodata=source.nodata)
    profile = replace(profile, metadata_scale=profile.metadata_scale and source.scale is None,
                      metadata_offset=profile.metadata_offset and source.offset is None)
    if source.bands:
        profile = replace(profile, band_override=dict(source.bands),
                          stac_bands=dict(source.bands) if source.kind == "stac" else profile.stac_bands)
    if source.mask is not None:
        profile = replace(profile, mask="bits" if source.mask.kind == "bits" else "values",
                          mask_band=source.mask.band, stac_mask_band=source.mask.band,
                          mask_rule={k: tuple(v) for k, v in source.mask.classes.items()})
    if source.no_mask:
        profile = replace(profile, mask=None, mask_band=None, stac_mask_band=None)
    return profile


def cloud_plan(cloud_mask: CloudMaskConfig, profile: SensorProfile, *, key: str, bands: set[str], n_dates: int,
               with_qa: int, total: int) -> CloudPlan:
    """The cloud mask of one source, from `cloud_mask.method` and what the source has: its common
    `bands`, its dates, and how many of its `total` scenes have the quality band (`with_qa`).

    Default (no method): the quality band where a scene has it; the other scenes get `spectral` (blue
    and red needed), else `temporal` (3 or more dates), else none, with a warning saying which.
    Raises InputError naming the key and the fix when the chosen method cannot run."""
    options = {"shadow_search_m": cloud_mask.shadow_search_m, "smooth_m": cloud_mask.smooth_m}
    method = cloud_mask.method
    quality = f"quality band {profile.mask_band!r}" if profile.mask else "quality band"
    if method == "qa":
        if not profile.mask:
            raise InputError(f"{key}: cloud_mask.method qa needs a quality band, and the source has none (sensor "
                             f"{profile.name!r}, no {key}.mask); set cloud_mask.method to spectral, temporal or "
                             f"none, or describe the band in {key}.mask")
        return CloudPlan(use_qa=True, require_qa=True, other="none", **options)
    if method == "none":
        return CloudPlan(use_qa=False, require_qa=False, other="none", **options)
    if method == "spectral":
        if not can_spectral(bands):
            raise InputError(f"{key}: cloud_mask.method spectral needs the blue and red bands, the source has "
                             f"{sorted(bands)}; use cloud_mask.method temporal (3 or more dates) or none")
        return CloudPlan(use_qa=False, require_qa=False, other="spectral", **options)
    if method == "temporal":
        if not can_temporal(bands):
            raise InputError(f"{key}: cloud_mask.method temporal needs blue, ndvi, or red and nir, the source "
                             f"has {sorted(bands)}; use cloud_mask.method none")
        if n_dates < 3:
            raise InputError(f"{key}: cloud_mask.method temporal needs 3 or more dates, the source has {n_dates}; "
                             "use cloud_mask.method spectral or none")
        return CloudPlan(use_qa=False, require_qa=False, other="temporal", **options)
    other = ("spectral" if can_spectral(bands) else
             "temporal" if can_temporal(bands) and n_dates >= 3 else "none")
    lacking = total - (with_qa if profile.mask else 0)
    if lacking:
        scenes = "its scenes have" if lacking == total else f"{lacking} of its {total} scenes have"
        how = {"spectral": "are masked by cloud_mask.method spectral (Fmask-like rules on the reflectance)",
               "temporal": "are masked by cloud_mask.method temporal (departures from each pixel's clear dates)",
               "none": f"are NOT masked (spectral needs blue and red, temporal 3 or more dates; the source has "
                       f"{sorted(bands)} on {n_dates} date(s))"}[other]
        log.warning("%s: %s no %s: their clouds and shadows %s; set cloud_mask.method (qa, spectral, temporal or "
                    "none) to choose", key, scenes, quality, how)
    return CloudPlan(use_qa=True, require_qa=False, other=other, **options)


def _common_bands(profile: SensorProfile, scenes: Sequence[SceneFiles] | None = None) -> set[str]:
    if scenes:
        return set(profile.bands_for(scenes[0].scene_id))
    return set(profile.band_override or (profile.stac_bands or profile.bands))


def list_sources(ingest_config: IngestConfig, cloud_mask: CloudMaskConfig, *,
                 scenes_glob: str | None = None) -> list[ListedSource]:
    """Every source with its profile and cloud mask plan; files sources with their scenes (headers read,
    not pixels) and, for Sentinel-2, each product's radiometry.

    Raises InputError for a file that is unreadable, truncated, without CRS, or lacks a band the source
    needs, and for a `grid.crs: native` whose first scene is not in metres: all before the run writes
    anything."""
    listed = []
    for key, source in sources_of(ingest_config, cloud_mask, scenes_glob=scenes_glob):
        profile = source_profile(source)
        if source.kind != "files":  # its plan is made per AOI, from the items found (`_stac_stacks`)
            stac.signer(source.sign, key=key)  # the signing package is there, or the run stops now
            if cloud_mask.method is not None:  # a method the source cannot serve fails now
                cloud_plan(cloud_mask, profile, key=key, bands=_common_bands(profile), n_dates=3, with_qa=0,
                           total=0)
            listed.append(ListedSource(key, source, profile, None, CloudPlan(), cloud_mask))
            continue
        scenes = find_scene_files(
            source.scenes, layout=source.layout,
            date_pattern=source.date_pattern or profile.date_pattern,
            date_format=source.date_format or profile.date_format,
            band_pattern=source.band_pattern or (profile.band_pattern if source.layout == "band-per-file"
                                                 else None),
            date_from=source.date_from, key=key, on_error=source.on_error)
        check_bands(scenes, profile, key=key, require_mask=False)  # before any output, not when the AOI runs
        with_qa = sum(profile.mask_band in s.layers for s in scenes) if profile.mask else 0
        plan = cloud_plan(cloud_mask, profile, key=key, bands=_common_bands(profile, scenes),
                          n_dates=len({s.when for s in scenes}), with_qa=with_qa, total=len(scenes))
        check_bands(scenes, profile, key=key, require_mask=plan.require_qa)
        if profile.metadata_offset or profile.metadata_scale:
            scenes = _with_radiometry(scenes, key=key)
        listed.append(ListedSource(key, source, profile, scenes, plan, cloud_mask))
    _check_native_grid(listed, ingest_config)
    return listed


def _with_radiometry(scenes: list[SceneFiles], *, key: str) -> list[SceneFiles]:
    """Sentinel-2 scenes with their product's radiometry (MTD_MSIL2A.xml or the baseline in the product
    name); a warning for those without, whose offset then follows the acquisition date."""
    unknown = []
    for scene in scenes:
        first = next(iter(scene.layers.values()))[0]
        try:
            scene.radiometry = baselines.product_radiometry(first)
        except ValueError as err:
            raise InputError(f"{err} ({key})") from None
        if scene.radiometry is None:
            unknown.append(scene.scene_id)
    if unknown:
        log.warning("%s: %d of %d Sentinel-2 scenes (e.g. %s) come without product metadata (MTD_MSIL2A.xml above "
                    "the band files, or _Nxxxx_ of the product name in their path): their BOA offset follows the "
                    "acquisition date (-0.1 from 2022-01-25), which is wrong for reprocessed products; keep the "
                    "SAFE folders or set %s.offset", key, len(unknown), len(scenes), unknown[0], key)
    return scenes


def _check_native_grid(listed: Sequence[ListedSource], ingest_config: IngestConfig) -> None:
    """`grid.crs: native` takes the first scene's CRS: refuse it, before any output, when it is not metres."""
    if ingest_config.grid.crs != "native":
        return
    for source in listed:
        if source.scenes:
            path, band = next(iter(source.scenes[0].layers.values()))
            crs = CRS.from_wkt(open_layer(path, band, chunk_size=512).odc.geobox.crs.to_wkt())
            problem = metre_problem(crs)
            if problem:
                raise InputError(f"ingest.grid.crs: native is the CRS of {path}, {crs.name}; {problem}, and areas, "
                                 "buffers and rings are in metres: leave ingest.grid.crs out to use each AOI's UTM "
                                 "zone, or give a projected CRS in metres")
            return


def find_items(listed: Sequence[ListedSource], aoi: gpd.GeoSeries) -> dict[str, list]:
    """The STAC items of each STAC source over the AOI (searched now; none for files sources), by key."""
    bbox = tuple(aoi.to_crs("EPSG:4326").total_bounds)
    found = {}
    for source in listed:
        if source.scenes is None:
            cfg = source.config
            found[source.key] = stac.search_items(
                api=cfg.api, catalog=cfg.catalog, collection=cfg.collection, bbox=bbox, datetime=cfg.datetime,
                max_cloud_cover=cfg.max_cloud_cover, key=source.key)
            stac.check_assets(found[source.key], list(source.profile.stac_bands.values()), key=source.key,
                              what="bands")
    return found


def aoi_grid(listed: Sequence[ListedSource], aoi: gpd.GeoSeries, *, ingest_config: IngestConfig,
             items: Mapping[str, list], aoi_id: str) -> GeoBox:
    """The AOI's pixel grid (`target_grid`) from the first scene's or item's grid; headers only."""
    reference = _reference_grid(listed, items, chunk_size=ingest_config.chunk_size, aoi_id=aoi_id)
    settings = ingest_config.grid
    return target_grid(aoi, reference, crs=settings.crs, resolution=settings.resolution, anchor=settings.anchor)


def gdal_options(source: StacSourceConfig) -> dict[str, str]:
    """The GDAL settings a STAC source's reads need (`gdal`, and AWS_REQUEST_PAYER for requester pays)."""
    options = dict(source.gdal)
    if source.requester_pays:
        options.setdefault("AWS_REQUEST_PAYER", "requester")
    return options


def aoi_stack(
    listed: Sequence[ListedSource],
    aoi: gpd.GeoSeries,
    *,
    ingest_config: IngestConfig,
    drop: Sequence[str],
    aoi_id: str,
    items: Mapping[str, list] | None = None,
) -> tuple[xr.Dataset, GeoBox]:
    """The AOI's (time, y, x) scene_stack from every source, lazily, and its grid. `items`: the STAC
    sources' items (`find_items`), searched here when not given."""
    items = dict(items) if items is not None else find_items(listed, aoi)
    grid = aoi_grid(listed, aoi, ingest_config=ingest_config, items=items, aoi_id=aoi_id)
    stacks = []
    for source in listed:
        if source.scenes is not None:
            stack = files_stack(source.scenes, grid, profile=source.profile, drop=drop, plan=source.plan,
                                harmonise=ingest_config.harmonise, chunk_size=ingest_config.chunk_size,
                                key=source.key)
            stacks += [stack] if stack is not None else []
        elif items[source.key]:
            stacks += _stac_stacks(source, items[source.key], grid, aoi=aoi, drop=drop, ingest_config=ingest_config)
    if not stacks:
        counts = {s.key: len(s.scenes) if s.scenes is not None else len(items[s.key]) for s in listed}
        listing = ", ".join(f"{key}: {n}" for key, n in counts.items())
        raise InputError(f"the AOI does not overlap any of the {sum(counts.values())} scenes "
                         f"(aoi {aoi_id!r}; scenes listed per source: {listing})")
    return scene_stack(stacks, aoi, grid), grid


def _stac_stacks(source: ListedSource, found: list, grid: GeoBox, *, aoi: gpd.GeoSeries, drop: Sequence[str],
                 ingest_config: IngestConfig) -> list[xr.Dataset]:
    """One STAC source's items on the grid: overpasses grouped into scenes, loaded in batches that share
    a way onto the grid (on it, or relabelled from the other hemisphere's UTM zone) and a quality asset."""
    cfg, profile = source.config, source.profile
    bands = {common: stac.load_name(found[0], native) for common, native in profile.stac_bands.items()}
    mask = profile.stac_mask_band if profile.mask else None
    has_mask = {id(item): mask is not None and stac.find_band(item, mask) is not None for item in found}
    if source.cloud_mask.method is None and all("midr:period" in item.properties for item in found):
        log.info("%s: the items are a midr run's composites, cloud-masked already: no cloud mask", source.key)
        plan = CloudPlan(use_qa=False, require_qa=False, other="none")
    else:
        plan = cloud_plan(source.cloud_mask, profile, key=source.key, bands=set(bands), n_dates=len(found),
                          with_qa=sum(has_mask.values()), total=len(found))
    if plan.require_qa and not all(has_mask.values()):
        stac.check_assets(found, [mask], key=source.key, what="mask (or set cloud_mask.method: spectral, temporal "
                          "or none)")
    radiometry = _item_radiometry(found, profile, key=source.key)
    lon = float(aoi.to_crs("EPSG:4326").union_all().centroid.x)
    groups = (stac.overpasses(found, lon=lon, radiometry=lambda item: _numbers(radiometry[id(item)]))
              if cfg.group_by == "solar_day" else [[item] for item in found])
    batches: dict[tuple, list] = {}
    for group in groups:
        shifts = {_item_shift(item, grid) for item in group}
        shift = shifts.pop() if len(shifts) == 1 else None
        batches.setdefault((shift, all(has_mask[id(i)] for i in group)), []).append(group)
    sign, gdal = stac.signer(cfg.sign, key=source.key), gdal_options(cfg)
    _log_resampling(source.key, found, grid, bands)
    stacks = []
    for (shift, with_mask), batch in batches.items():
        load_grid = grid if not shift else GeoBox(grid.shape, Affine.translation(0, -shift) * grid.affine,
                                                  _item_crs(batch[0][0]))
        mask_name = stac.load_name(batch[0][0], mask) if with_mask and plan.use_qa else None
        assets = [*bands.values(), *([mask_name] if mask_name else [])]
        batch_items = [item for group in batch for item in group]
        raw = stac.load_items(batch_items, assets=assets, grid=load_grid, chunk_size=ingest_config.chunk_size,
                              nearest=[mask_name] if mask_name else [], groups=batch, patch_url=sign, gdal=gdal,
                              types=_stac_types(profile, mask_name))
        ids = ["+".join(item.id for item in group) for group in batch]
        stacks.append(items_stack(raw, ids, grid, profile=profile, bands=bands, mask_band=mask_name, drop=drop,
                                  harmonise=ingest_config.harmonise, plan=plan, key=source.key,
                                  radiometry=[radiometry[id(group[0])] for group in batch]))
    return stacks


def _numbers(radiometry: baselines.ProductRadiometry | None) -> tuple | None:
    return radiometry.numbers if radiometry is not None else None


def _stac_types(profile: SensorProfile, mask_name: str | None) -> dict[str, tuple[str, float]]:
    types = {"*": profile.stac_types["bands"]} if "bands" in profile.stac_types else {}
    if mask_name and "mask" in profile.stac_types:
        types[mask_name] = profile.stac_types["mask"]
    return types


def _item_radiometry(found: list, profile: SensorProfile, *, key: str) -> dict[int, object]:
    """Per item (by id()), the product radiometry its properties give (Sentinel-2), else None; a warning
    for Sentinel-2 items that say nothing (their offset then follows the acquisition date)."""
    if not (profile.metadata_offset or profile.metadata_scale):
        return {id(item): None for item in found}
    radiometry = {id(item): baselines.item_radiometry(item.properties, item.id) for item in found}
    unknown = [item.id for item in found if radiometry[id(item)] is None]
    if unknown:
        log.warning("%s: %d of %d Sentinel-2 items (e.g. %s) have neither s2:processing_baseline nor "
                    "earthsearch:boa_offset_applied: their BOA offset follows the acquisition date; set %s.offset "
                    "to choose", key, len(unknown), len(found), unknown[0], key)
    return radiometry


def _item_crs(item) -> str:
    return stac.item_crs(item) or "EPSG:4326"


def _item_shift(item, grid: GeoBox) -> float | None:
    """The false northing difference between an item's CRS and the grid's when they are one projection."""
    crs = stac.item_crs(item)
    if crs is None:
        return None
    relabelled = as_grid_crs(GeoBox((1, 1), Affine.identity(), CRS.from_user_input(crs).to_wkt()), grid)
    return None if relabelled is None else relabelled.affine.f


def _item_geobox(item, asset: str) -> GeoBox | None:
    """An asset's pixel grid from its projection metadata (proj:transform, proj:shape), or None."""
    key = (stac.find_band(item, asset) or (asset, 1))[0]
    fields = {**item.properties, **item.assets[key].extra_fields} if key in item.assets else item.properties
    crs, transform, shape = stac.item_crs(item), fields.get("proj:transform"), fields.get("proj:shape")
    if not (crs and transform and shape):
        return None
    return GeoBox(tuple(shape), Affine(*transform[:6]), CRS.from_user_input(crs).to_wkt())


def _log_resampling(key: str, found: list, grid: GeoBox, bands: Mapping[str, str]) -> None:
    """Log the item grids that are not the AOI grid (they are resampled onto it), once per grid."""
    seen = set()
    for item in found:
        for native in bands.values():
            geobox = _item_geobox(item, native)
            if geobox is None or aligned(geobox, grid) or (geobox.crs, geobox.resolution) in seen:
                continue
            seen.add((geobox.crs, geobox.resolution))
            log.info("%s: item %s, %s (%s, %g m) is not on the AOI grid (%s, %g m): resampled", key, item.id, native,
                     geobox.crs.epsg or "custom CRS", abs(geobox.resolution.x), grid.crs.epsg or "custom CRS",
                     abs(grid.resolution.x))


def _reference_grid(listed: Sequence[ListedSource], items: Mapping[str, list], *, chunk_size: int,
                    aoi_id: str) -> GeoBox:
    """The pixel grid of the first scene (or STAC item: from its projection metadata, else its header) of
    the first source that has one."""
    for source in listed:
        if source.scenes:
            path, band = next(iter(source.scenes[0].layers.values()))
            return open_layer(path, band, chunk_size=chunk_size).odc.geobox
        if items.get(source.key):
            item = items[source.key][0]
            native = next(iter(source.profile.stac_bands.values()))
            geobox = _item_geobox(item, native)
            if geobox is not None:
                return geobox
            asset, band = stac.find_band(item, native)
            href = item.assets[asset].get_absolute_href()
            sign = stac.signer(source.config.sign, key=source.key)
            with rasterio.Env(**gdal_options(source.config)):
                return open_layer(sign(href) if sign else href, band, chunk_size=chunk_size).odc.geobox
    keys = ", ".join(s.key for s in listed)
    raise InputError(f"aoi {aoi_id!r}: no scene or STAC item found in {keys}")

