"""The config's ingest sources -> listed scenes -> one AOI's lazy scene_stack (what `run.py` calls).

`list_sources` reads file headers once per run (dates, bands, CRS: bad files fail here, before any
output); `aoi_stack` builds the AOI's grid, searches STAC sources over the AOI, and hands every
source to `pipeline.ingest`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import geopandas as gpd
import xarray as xr
from odc.geo.geobox import GeoBox

from pipeline.ingest import stac
from pipeline.ingest.grid import target_grid
from pipeline.ingest.rasters import open_layer
from pipeline.ingest.scenes import SceneFiles, find_scene_files
from pipeline.ingest.stack import check_bands, files_stack, items_stack, scene_stack
from pipeline.config import (
    CloudMaskConfig,
    FilesSourceConfig,
    IngestConfig,
    MaskRuleConfig,
    StacSourceConfig,
)
from pipeline.errors import InputError
from pipeline.ingest.sensors import SensorProfile, profile_for

__all__ = ["ListedSource", "aoi_stack", "list_sources", "source_profile", "sources_of"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ListedSource:
    """One configured source with its key in the config (for messages) and, for files, its scenes."""

    key: str
    config: FilesSourceConfig | StacSourceConfig
    profile: SensorProfile
    scenes: list[SceneFiles] | None = None

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
    """The source's sensor profile with the config's overrides applied."""
    profile = profile_for(source.sensor, scale=source.scale, offset=source.offset, nodata=source.nodata)
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


def list_sources(ingest_config: IngestConfig, cloud_mask: CloudMaskConfig, *,
                 scenes_glob: str | None = None) -> list[ListedSource]:
    """Every source with its profile; files sources with their scenes (headers read, not pixels).

    Raises InputError for a file that is unreadable, truncated, without CRS, or lacks a band the source
    needs: all before the run writes anything."""
    listed = []
    for key, source in sources_of(ingest_config, cloud_mask, scenes_glob=scenes_glob):
        profile = source_profile(source)
        scenes = None
        if source.kind == "files":
            scenes = find_scene_files(
                source.scenes, layout=source.layout,
                date_pattern=source.date_pattern or profile.date_pattern,
                date_format=source.date_format or profile.date_format,
                band_pattern=source.band_pattern or (profile.band_pattern if source.layout == "band-per-file"
                                                     else None),
                date_from=source.date_from, key=key, on_error=source.on_error)
            check_bands(scenes, profile, key=key)  # before any output, not when the AOI runs
        listed.append(ListedSource(key, source, profile, scenes))
    return listed


def aoi_stack(
    listed: Sequence[ListedSource],
    aoi: gpd.GeoSeries,
    *,
    ingest_config: IngestConfig,
    drop: Sequence[str],
    aoi_id: str,
) -> tuple[xr.Dataset, GeoBox]:
    """The AOI's (time, y, x) scene_stack from every source, lazily, and its grid."""
    bbox = tuple(aoi.to_crs("EPSG:4326").total_bounds)
    items = {}
    for source in listed:
        if source.scenes is None:
            cfg = source.config
            items[source.key] = stac.search_items(
                api=cfg.api, catalog=cfg.catalog, collection=cfg.collection, bbox=bbox, datetime=cfg.datetime,
                max_cloud_cover=cfg.max_cloud_cover, key=source.key)
            profile = source.profile
            stac.check_assets(items[source.key], [*profile.stac_bands.values(),
                                                  *([profile.stac_mask_band] if profile.stac_mask_band else [])],
                              key=source.key)
    reference = _reference_grid(listed, items, chunk_size=ingest_config.chunk_size, aoi_id=aoi_id)
    settings = ingest_config.grid
    grid = target_grid(aoi, reference, crs=settings.crs, resolution=settings.resolution,
                              anchor=settings.anchor)
    stacks = []
    for source in listed:
        profile = source.profile
        if source.scenes is not None:
            stack = files_stack(source.scenes, grid, profile=profile, drop=drop,
                                       harmonise=ingest_config.harmonise, chunk_size=ingest_config.chunk_size,
                                       key=source.key)
        elif items[source.key]:
            bands = dict(profile.stac_bands)
            mask_band = profile.stac_mask_band
            raw = stac.load_items(items[source.key], assets=[*bands.values(), *([mask_band] if mask_band else [])],
                                  grid=grid, chunk_size=ingest_config.chunk_size,
                                  nearest=[mask_band] if mask_band else [])
            stack = items_stack(raw, [i.id for i in items[source.key]], grid, profile=profile, bands=bands,
                                       mask_band=mask_band, drop=drop, harmonise=ingest_config.harmonise)
        else:
            stack = None
        if stack is not None:
            stacks.append(stack)
    if not stacks:
        counts = {s.key: len(s.scenes) if s.scenes is not None else len(items[s.key]) for s in listed}
        listing = ", ".join(f"{key}: {n}" for key, n in counts.items())
        raise InputError(f"the AOI does not overlap any of the {sum(counts.values())} scenes "
                         f"(aoi {aoi_id!r}; scenes listed per source: {listing})")
    return scene_stack(stacks, aoi, grid), grid


def _reference_grid(listed: Sequence[ListedSource], items: dict, *, chunk_size: int, aoi_id: str) -> GeoBox:
    """The pixel grid of the first scene (or STAC item) of the first source that has one."""
    for source in listed:
        if source.scenes:
            path, band = next(iter(source.scenes[0].layers.values()))
            return open_layer(path, band, chunk_size=chunk_size).odc.geobox
        if items.get(source.key):
            item = items[source.key][0]
            key, band = stac.find_band(item, next(iter(source.profile.stac_bands.values())))
            return open_layer(item.assets[key].get_absolute_href(), band, chunk_size=chunk_size).odc.geobox
    keys = ", ".join(s.key for s in listed)
    raise InputError(f"aoi {aoi_id!r}: no scene or STAC item found in {keys}")
