"""The events stage of one AOI: before/after metrics and BACI effects of each event, its zones, and for
disasters the impact footprint.

    events_stage      class maps + events -> before/after, BACI, impact, zones      -> events/

Each event reads only the window of the class maps that holds its zones (`zones.zone_window`), and of
it only what it needs in one pass: the before and after windows' periods, the pixels of a mining class
or classified in any period, and the class counts per zone and period. Memory grows with the zones,
not with the AOI. The class map is any (period, y, x) map of class codes, lazy or not: the classified
maps, or cleaned or gap-filled ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from pipeline import events, io
from pipeline.composite.periods import periods_of
from pipeline.config import SAFE_NAME, EventsConfig, PipelineConfig
from pipeline.errors import InputError
from pipeline.events.impact import FOOTPRINT_NODATA, IMPACT_COLUMNS, footprint_outline, impact_footprint, impact_table
from pipeline.events.public import generalise_zones
from pipeline.events.zones import IMPACT_ZONE, zone_window
from pipeline.ingest.grid import pixel_area_ha
from pipeline.job import AoiJob

__all__ = ["events_stage", "event_window", "event_tables", "EventTables"]

_FOOTPRINT_COLOURS = {0: (0, 0, 0, 0), 1: (194, 65, 12, 255)}


@dataclass
class EventTables:
    """What one event gives: its tables, its zones (polygons) and, for impact zones, its footprints."""

    metrics: pd.DataFrame
    baci: pd.DataFrame
    impact: pd.DataFrame
    zones: gpd.GeoDataFrame
    footprints: dict[str, xr.DataArray]  # impact zone -> (y, x) uint8 footprint on the zones' window


def events_stage(job: AoiJob, class_map: xr.DataArray, accuracy: dict,
                 period_scenes: dict[str, list[str]] | None = None) -> dict:
    """Before/after metrics, BACI effects and impact footprints of each of the AOI's events, and their
    zones (GeoPackage).

    `period_scenes` (period id -> acquisition times, from the composite stage): an event whose date falls
    inside a period that merges acquisitions from both sides of it is recorded (`mixed_periods`), with the
    settings that would separate them."""
    config, aoi_id, out = job.config, job.aoi_id, job.out
    warnings = [text for _, event in job.events.iterrows()  # (the runner logs them after the composites)
                for text in events.mixed_periods(event, period_scenes or {})]
    design_based = accuracy.get("design_based")  # a labelled validation sample: map error in the CIs
    error_matrix = np.array(design_based["confusion_matrix"]["counts"]) if design_based else None
    results = []
    outlines = []
    for _, event in job.events.iterrows():
        tables = event_tables(config, event, class_map, error_matrix=error_matrix)
        results.append(tables)
        for zone, footprint in tables.footprints.items():
            event_id = str(event["event_id"])
            if not SAFE_NAME.match(event_id):
                raise InputError(f"event {event_id!r} cannot name its impact footprint file; give it an id of "
                                 "letters, digits, '-', '_' and '.' (events.path)")
            io.write_cog(footprint, out.impact_footprint(aoi_id, event_id), band_names=[f"{event_id} {zone}"],
                         nodata=FOOTPRINT_NODATA, colormap=_FOOTPRINT_COLOURS,
                         tags={"EVENT_ID": event_id, "ZONE": zone, **_footprint_tags(tables.impact, zone)})
            outline = footprint_outline(footprint.values, footprint.rio.transform(), footprint.rio.crs)
            area = float((footprint.values == 1).sum()) * pixel_area_ha(class_map)
            outlines.append(gpd.GeoDataFrame({"aoi_id": [aoi_id], "event_id": [event_id], "zone": [zone],
                                              "footprint_ha": [area]}, geometry=outline.values, crs=outline.crs))
    frames = {"metrics": (out.event_metrics, events.EVENT_METRICS_COLUMNS), "baci": (out.baci, events.BACI_COLUMNS),
              "impact": (out.impact, IMPACT_COLUMNS)}
    for name, (path, columns) in frames.items():
        parts = [getattr(r, name) for r in results if len(getattr(r, name))]
        io.write_csv(pd.concat(parts) if parts else pd.DataFrame(columns=columns), path(aoi_id))
    if results:
        zones = pd.concat([r.zones for r in results])
        if config.public.enabled:
            zones = generalise_zones(zones, grid_m=config.public.grid_m)
        io.write_gpkg(zones, out.event_zones(aoi_id), layer=f"{aoi_id} event zones")
    if outlines:
        io.write_gpkg(pd.concat(outlines, ignore_index=True), out.impact_footprints(aoi_id),
                      layer=f"{aoi_id} impact footprints")
    return {"baci_includes_map_error": error_matrix is not None, "events": [str(e) for e in job.events["event_id"]],
            "mixed_periods": warnings, "impact_footprints": sum(len(r.footprints) for r in results)}


def event_window(settings: EventsConfig) -> events.Window:
    """The before/after windows of the config's `events` section."""
    (before_unit, before), (after_unit, after) = settings.window("before"), settings.window("after")
    return events.Window(before=before, after=after, before_unit=before_unit, after_unit=after_unit)


def event_tables(config: PipelineConfig, event: pd.Series, class_map: xr.DataArray, *,
                 error_matrix: np.ndarray | None = None) -> EventTables:
    """Before/after metrics, BACI effects, the impact table, the zones (polygons) and the impact
    footprints of one event. `class_map`: (period, y, x) uint8 class codes, lazy or not; only the window
    that holds the event's zones is read, once."""
    settings = config.events
    zones = events.event_zones(event, radius_m=settings.zone_radius_m, control_inner_m=settings.control_inner_m,
                               control_outer_m=settings.control_outer_m, crs=class_map.rio.crs,
                               impact_radius_m=settings.impact_radius_m)
    drawn = {zone: polygon for zone, polygon in zones.items() if not isinstance(polygon, str)}
    ys, xs = zone_window(class_map, drawn.values()) or (slice(0, 2), slice(0, 2))  # (none meets the map)
    part = class_map.isel(y=ys, x=xs)
    nodata = int(class_map.rio.nodata if class_map.rio.nodata is not None else 255)
    masks = {zone: (polygon if isinstance(polygon, str) else events.zone_mask(part, polygon))
             for zone, polygon in zones.items()}
    periods = periods_of(part)
    window = event_window(settings)
    found = events.event_periods(event, periods, window)

    # one pass over the window: counts per zone and period, mining footprint, classified pixels, windows
    mining = part.isin(list(config.change.mining_classes)).any("period")
    counted = dict(masks)
    if not isinstance(masks["control"], str):  # the control ring leaves out the mining footprint
        counted["control"] = xr.DataArray(masks["control"], dims=("y", "x")) & ~mining
    lazy = {"counts": {zone: (mask if isinstance(mask, str) else events.zone_pixel_counts(part, mask))
                       for zone, mask in counted.items()},
            "mining": mining, "classified": (part != nodata).any("period")}
    if found.before and found.after:
        lazy["values"] = part.sel(period=found.before + found.after)
    (computed,) = dask.compute(lazy)
    if not isinstance(masks["control"], str):
        masks["control"] = masks["control"] & ~np.asarray(computed["mining"].values)
    classified = np.asarray(computed["classified"].values)
    values = computed.get("values", part)
    area_ha = pixel_area_ha(class_map)

    metrics = events.event_metrics_table(event, computed["counts"], config.classes, pixel_area_ha=area_ha,
                                         window=window)
    common = {"pixel_area_ha": area_ha, "window": window, "block_size_m": settings.block_size_m,
              "n_bootstrap": settings.n_bootstrap, "seed": settings.random_state, "error_matrix": error_matrix,
              "periods": periods, "classified": classified}
    baci = events.baci_effects(event, values, masks, config.classes, **common)

    impact, footprints = pd.DataFrame(columns=IMPACT_COLUMNS), {}
    if IMPACT_ZONE in masks:
        analysable = "values" in computed and not isinstance(masks[IMPACT_ZONE], str)
        if analysable:
            is_before = np.isin(values["period"].values, found.before)
            min_pixels = max(1, math.ceil(settings.impact_min_area_ha / area_ha)) if settings.impact_min_area_ha else 1
            footprint = impact_footprint(np.asarray(values.values), is_before,
                                         impact_classes=settings.impact_classes, nodata=nodata,
                                         in_zone=masks[IMPACT_ZONE], min_pixels=min_pixels)
            footprints[IMPACT_ZONE] = xr.DataArray(
                footprint, dims=("y", "x"), coords={"y": part["y"], "x": part["x"]}, name="impact_footprint",
            ).rio.write_crs(class_map.rio.crs).rio.write_nodata(FOOTPRINT_NODATA)
        impact = impact_table(event, values, masks, config.classes, impact_classes=settings.impact_classes,
                              footprints={IMPACT_ZONE: footprints[IMPACT_ZONE].values if analysable else None},
                              **common)
    zones_frame = gpd.GeoDataFrame(
        {"aoi_id": [event.get("aoi_id")] * len(drawn), "event_id": [event["event_id"]] * len(drawn),
         "zone": list(drawn)},
        geometry=[polygon.iloc[0] for polygon in drawn.values()], crs=class_map.rio.crs)
    return EventTables(metrics, baci, impact, zones_frame, footprints)


def _footprint_tags(impact: pd.DataFrame, zone: str) -> dict[str, str]:
    row = impact[impact["zone"] == zone]
    if row.empty:
        return {}
    row = row.iloc[0]
    return {key.upper(): str(row[key]) for key in ("event_start", "event_end", "periods_before", "periods_after",
                                                    "impact_classes", "footprint_ha") if pd.notna(row[key])}
