"""The events stage of one AOI: before/after metrics and BACI effects of each event, and its zones.

    events_stage      class maps + events -> before/after, BACI, zones         -> events/
"""

from __future__ import annotations

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from pipeline import events, io
from pipeline.config import EventsConfig, PipelineConfig
from pipeline.events.public import generalise_zones
from pipeline.ingest.grid import pixel_area_ha
from pipeline.job import AoiJob

__all__ = ["events_stage", "event_window"]


def events_stage(job: AoiJob, class_map: xr.DataArray, accuracy: dict,
                 period_scenes: dict[str, list[str]] | None = None) -> dict:
    """Before/after metrics and BACI effects of each of the AOI's events, and their zones (GeoPackage).

    `period_scenes` (period id -> acquisition times, from the composite stage): an event whose date falls
    inside a period that merges acquisitions from both sides of it is recorded (`mixed_periods`), with the
    settings that would separate them."""
    config, aoi_id, out = job.config, job.aoi_id, job.out
    warnings = [text for _, event in job.events.iterrows()  # (the runner logs them after the composites)
                for text in events.mixed_periods(event, period_scenes or {})]
    area_ha = pixel_area_ha(class_map)
    design_based = accuracy.get("design_based")  # a labelled validation sample: map error in the CIs
    error_matrix = np.array(design_based["confusion_matrix"]["counts"]) if design_based else None
    results = [_event_tables(config, event, class_map, area_ha, error_matrix) for _, event in job.events.iterrows()]
    metrics = [r[0] for r in results] or [pd.DataFrame(columns=events.EVENT_METRICS_COLUMNS)]
    baci = [r[1] for r in results] or [pd.DataFrame(columns=events.BACI_COLUMNS)]
    io.write_csv(pd.concat(metrics), out.event_metrics(aoi_id))
    io.write_csv(pd.concat(baci), out.baci(aoi_id))
    if results:
        zones = pd.concat([r[2] for r in results])
        if config.public.enabled:
            zones = generalise_zones(zones, grid_m=config.public.grid_m)
        io.write_gpkg(zones, out.event_zones(aoi_id), layer=f"{aoi_id} event zones")
    return {"baci_includes_map_error": error_matrix is not None, "events": [str(e) for e in job.events["event_id"]],
            "mixed_periods": warnings}


def event_window(settings: EventsConfig) -> events.Window:
    """The before/after windows of the config's `events` section."""
    (before_unit, before), (after_unit, after) = settings.window("before"), settings.window("after")
    return events.Window(before=before, after=after, before_unit=before_unit, after_unit=after_unit)


def _event_tables(config: PipelineConfig, event: pd.Series, class_map: xr.DataArray, area_ha: float,
                  error_matrix: np.ndarray | None = None) -> tuple[pd.DataFrame, pd.DataFrame, gpd.GeoDataFrame]:
    """Before/after metrics, BACI effects and the zones (polygons) of one event."""
    settings = config.events
    masks, zones = events.zone_masks(event, class_map, radius_m=settings.zone_radius_m,
                                     control_inner_m=settings.control_inner_m,
                                     control_outer_m=settings.control_outer_m,
                                     mining_classes=config.change.mining_classes)
    counts = {zone: (mask if isinstance(mask, str) else events.zone_pixel_counts(class_map, mask))
              for zone, mask in masks.items()}
    (counts,) = dask.compute(counts)
    window = event_window(settings)
    metrics = events.event_metrics_table(event, counts, config.classes, pixel_area_ha=area_ha, window=window)
    baci = events.baci_effects(event, class_map, masks, config.classes, pixel_area_ha=area_ha, window=window,
                               block_size_m=settings.block_size_m, n_bootstrap=settings.n_bootstrap,
                               seed=settings.random_state, error_matrix=error_matrix)
    drawn = {zone: polygon for zone, polygon in zones.items() if not isinstance(polygon, str)}
    zones_frame = gpd.GeoDataFrame(
        {"aoi_id": [event.get("aoi_id")] * len(drawn), "event_id": [event["event_id"]] * len(drawn),
         "zone": list(drawn)},
        geometry=[polygon.iloc[0] for polygon in drawn.values()], crs=class_map.rio.crs)
    return metrics, baci, zones_frame
