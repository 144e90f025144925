"""The time structure a config gives each AOI, without reading a pixel: which acquisitions fall on the
AOI and which periods `composite.period` makes of them (`midr validate` prints it)."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
import rasterio
from rasterio.warp import transform_bounds
from shapely.geometry import box

from pipeline.composite.periods import Period, scene_indices
from pipeline.composite.stage import configured_periods
from pipeline.config import PipelineConfig
from pipeline.events import configured_aois, link_events, mixed_periods, normalise_events, read_events
from pipeline.ingest import ListedSource, list_sources
from pipeline.ingest.stac import search_items

__all__ = ["AoiPlan", "period_plans"]


@dataclass(frozen=True)
class AoiPlan:
    """One AOI's acquisitions (times) and the periods they make, with the acquisitions in each; and the
    warnings for events whose date falls inside a period that merges acquisitions from both sides."""

    aoi_id: str
    times: list[pd.Timestamp]
    periods: list[tuple[Period, int]]  # (period, number of acquisitions in it)
    warnings: list[str]

    @property
    def outside(self) -> int:
        """Acquisitions that fall within no period (outside the season or every window)."""
        inside = {i for period, _ in self.periods for i in scene_indices(self.times, period)}
        return len(self.times) - len(inside)


def period_plans(config: PipelineConfig) -> list[AoiPlan]:
    """Per AOI of the config: the acquisitions whose footprint meets the AOI (file headers or STAC items,
    no pixels) and the periods of `composite.period` with their number of acquisitions."""
    records = normalise_events(read_events(config.events.path)) if config.events is not None else None
    aois = configured_aois(config, records)
    listed = list_sources(config.ingest, config.cloud_mask,
                          scenes_glob=config.scenes_glob if config.ingest.scenes else None)
    events = pd.DataFrame()
    if records is not None:
        events = link_events(records, aois, how=config.events.link, distance_m=config.events.link_distance_m)
    plans = []
    for _, aoi in aois.iterrows():
        outline = gpd.GeoSeries([aoi.geometry], crs=aois.crs)
        times = sorted(_times_over(listed, outline))
        periods = configured_periods(times, config.composite) if times else []
        scenes = {p.id: [times[i].isoformat() for i in scene_indices(times, p)] for p in periods}
        linked = events[events["aoi_id"] == aoi["aoi_id"]] if len(events) else events
        warnings = [text for _, event in linked.iterrows() for text in mixed_periods(event, scenes)]
        plans.append(AoiPlan(str(aoi["aoi_id"]), times, [(p, len(scene_indices(times, p))) for p in periods],
                             warnings))
    return plans


def _times_over(listed: list[ListedSource], outline: gpd.GeoSeries) -> list[pd.Timestamp]:
    """Acquisition times of every source whose scene footprint meets the AOI outline."""
    lonlat = outline.to_crs("EPSG:4326")
    found = []
    for source in listed:
        if source.scenes is None:  # STAC: the items the run would load
            cfg = source.config
            items = search_items(api=cfg.api, catalog=cfg.catalog, collection=cfg.collection,
                                 bbox=tuple(lonlat.total_bounds), datetime=cfg.datetime,
                                 max_cloud_cover=cfg.max_cloud_cover, key=source.key)
            found += [pd.Timestamp(item.datetime).tz_localize(None) if pd.Timestamp(item.datetime).tzinfo is None
                      else pd.Timestamp(item.datetime).tz_convert(None) for item in items]
            continue
        footprints: dict = {}
        for scene in source.scenes:
            path = next(iter(scene.layers.values()))[0]
            if path not in footprints:
                with rasterio.open(path) as src:
                    footprints[path] = box(*transform_bounds(src.crs, "EPSG:4326", *src.bounds))
            if footprints[path].intersects(lonlat.iloc[0]):
                stamp = pd.Timestamp(scene.when)
                found.append(stamp.tz_convert(None) if stamp.tzinfo else stamp)
    return sorted(set(found))
