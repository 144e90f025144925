"""`midr validate`: check a config and its inputs as far as can be done without reading pixels.

What is checked, each failing with the one line a run would print (exit 2), before anything is written:

- the config (`load_config`: unknown keys, wrong values, keys the chosen form would ignore);
- the AOI file, the training labels and the events table, read as the run reads them;
- every scenes glob matches, every file's header reads, every source has the bands its profile needs,
  and its quality band where `cloud_mask.method: qa` asks for it; which cloud mask each source gets;
- every STAC source's search over every AOI, and its items' assets;
- every AOI is covered by scenes (footprints from headers or STAC metadata), its grid is in metres, and
  at least one period of `composite.period` has `composite.min_clear_scenes` scenes over it.

Returns the notes a user wants to see before a long run (cloud mask per source, scenes and grid per AOI)
and each AOI's time structure (`AoiPlan`: the periods the config makes of its acquisitions, and warnings
for events dated inside a period that merges acquisitions from both sides of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd
from shapely.geometry import box, shape

from pipeline.classify.reference import check_reference_map
from pipeline.classify.training import read_training_data
from pipeline.config import PipelineConfig
from pipeline.errors import InputError
from pipeline.composite.periods import Period, scene_indices
from pipeline.composite.stage import configured_periods
from pipeline.events import configured_aois, link_events, mixed_periods, normalise_events, read_events
from pipeline.ingest import ListedSource, find_items, list_sources
from pipeline.ingest.sources import aoi_grid

__all__ = ["AoiPlan", "Validation", "validate_inputs"]


@dataclass(frozen=True)
class AoiPlan:
    """One AOI's acquisitions (times over it) and the periods they make, with the acquisitions in each; and
    the warnings for its events whose date falls inside a period that merges both sides of them."""

    aoi_id: str
    summary: str                       # scenes over it, dates, periods usable, grid
    times: list[pd.Timestamp]
    periods: list[tuple[Period, int]]  # (period, number of acquisitions in it)
    warnings: list[str]

    @property
    def outside(self) -> int:
        """Acquisitions that fall within no period (outside the season or every window)."""
        inside = {i for period, _ in self.periods for i in scene_indices(self.times, period)}
        return len(self.times) - len(inside)


@dataclass
class Validation:
    """What `validate_inputs` found: one line per source, and per AOI its plan."""

    notes: list[str] = field(default_factory=list)
    plans: list[AoiPlan] = field(default_factory=list)


def _plan_note(source: ListedSource) -> str:
    plan, profile = source.plan, source.profile
    band = profile.mask_band if profile.mask else None
    if source.scenes is None:
        method = source.cloud_mask.method or "qa where an item has its quality asset, else spectral or temporal"
        return f"{source.key}: STAC ({source.config.api or source.config.catalog}); cloud mask: {method}"
    with_qa = sum(band in s.layers for s in source.scenes) if band and plan.use_qa else 0
    parts = [f"qa ({band}) on {with_qa} scene(s)"] if with_qa else []
    others = len(source.scenes) - with_qa
    if others:
        parts.append(f"{plan.other} on {others} scene(s)" + ("" if plan.other != "none" else " (NOT masked)"))
    return f"{source.key}: {len(source.scenes)} scene(s); cloud mask: {', '.join(parts)}"


def _footprints(source: ListedSource, items: list | None) -> list[tuple]:
    """(time, footprint in EPSG:4326) of each scene or item of a source."""
    if source.scenes is not None:
        found = []
        for scene in source.scenes:
            if scene.footprint is None:
                continue
            bounds, crs = scene.footprint
            outline = gpd.GeoSeries([box(*bounds)], crs=crs).to_crs("EPSG:4326").iloc[0]
            found.append((pd.Timestamp(scene.when), outline))
        return found
    return [(pd.Timestamp(item.datetime), shape(item.geometry) if item.geometry else box(*item.bbox))
            for item in items or []]


def validate_inputs(config: PipelineConfig) -> Validation:
    """Check the config's inputs without reading pixels; raises InputError (one line) at the first problem."""
    result = Validation()
    records = normalise_events(read_events(config.events.path)) if config.events else None
    aois = configured_aois(config, records)  # aoi.path, or one per mine of the events table (aoi.from_events)
    listed = list_sources(config.ingest, config.cloud_mask,
                          scenes_glob=config.scenes_glob if config.ingest.scenes else None)
    result.notes += [_plan_note(source) for source in listed]
    if config.classify and config.classify.reference_map is not None:
        check_reference_map(config.classify.reference_map.map)
    elif config.classify:
        read_training_data(config.classify.training, class_field=config.classify.class_field,
                           period_field=config.classify.period_field, class_codes=[c.code for c in config.classes],
                           merge_classes=config.classify.merge_classes, ignore_classes=config.classify.ignore_classes)
    events = pd.DataFrame()
    if records is not None:
        events = link_events(records, aois, how=config.events.link, distance_m=config.events.link_distance_m)
    need = config.composite.min_clear_scenes
    for _, row in aois.iterrows():
        aoi_id = str(row["aoi_id"])
        geometry = gpd.GeoSeries([row.geometry], crs=aois.crs).buffer(0)
        if config.aoi.buffer_m:
            geometry = geometry.to_crs(geometry.estimate_utm_crs()).buffer(config.aoi.buffer_m)
        outline = geometry.to_crs("EPSG:4326").union_all()
        items = find_items(listed, geometry)
        times, total = [], 0
        for source in listed:
            footprints = _footprints(source, items.get(source.key))
            total += len(footprints)
            times += [when for when, footprint in footprints if footprint.intersects(outline)]
        if not times:
            raise InputError(f"aoi {aoi_id!r} does not overlap any of the {total} scenes (scene footprints from "
                             f"their headers or STAC metadata; {config.aoi.path or config.events.path})")
        grid = aoi_grid(listed, geometry, ingest_config=config.ingest, items=items, aoi_id=aoi_id)
        times = sorted({t.tz_convert(None) if t.tzinfo else t for t in times})
        periods = [(p, len(scene_indices(times, p))) for p in configured_periods(times, config.composite)]
        usable = [p for p, n in periods if n >= need]
        if not usable:
            counts = ", ".join(f"{p.id}: {n}" for p, n in periods) or "none"
            raise InputError(f"aoi {aoi_id!r}: no period of composite.period {config.composite.period!r} has "
                             f"composite.min_clear_scenes ({need}) scenes over the AOI (scenes per period: "
                             f"{counts}); lower composite.min_clear_scenes, choose longer periods or add scenes")
        summary = (
            f"aoi {aoi_id!r}: {len(times)} scene(s) over it, {times[0].date()} to {times[-1].date()} "
            f"({len(usable)} of {len(periods)} period(s) with at least {need}); grid {grid.shape.y} x "
            f"{grid.shape.x} px of {abs(grid.resolution.x):g} m in "
            f"{grid.crs.epsg and f'EPSG:{grid.crs.epsg}' or 'a custom CRS'}; composite.period: "
            f"{config.composite.period}")
        scenes = {p.id: [times[i].isoformat() for i in scene_indices(times, p)] for p, _ in periods}
        linked = events[events["aoi_id"] == row["aoi_id"]] if len(events) else events
        result.plans.append(AoiPlan(aoi_id, summary, times, periods,
                                    [text for _, event in linked.iterrows() for text in mixed_periods(event, scenes)]))
    return result
