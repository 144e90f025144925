"""Resettlement events linked to land-cover change: zones around the origin community and the
resettlement site, and their class areas N years before versus after the event.

Records follow the columns of the resettlement events table (`event_id, mine, company, ...,
mine_lat, mine_lon, site_lat, site_lon, ...`); an optional `origin_lat, origin_lon` pair locates
the origin community, and an optional `aoi_id` column links a record to an AOI by id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from rasterio.features import geometry_mask

from pipeline.change import class_pixel_counts
from pipeline.config import ClassDef
from pipeline.errors import InputError

__all__ = ["ZONES", "EVENT_METRICS_COLUMNS", "link_events", "event_zones", "zone_pixel_counts", "event_metrics_table",
           "event_caption", "event_periods"]

# zone name -> (latitude column, longitude column) in the events table
ZONES: dict[str, tuple[str, str]] = {
    "origin_community": ("origin_lat", "origin_lon"),
    "resettlement_site": ("site_lat", "site_lon"),
}


EVENT_METRICS_COLUMNS = ["aoi_id", "event_id", "zone", "class_code", "class_name", "periods_before",
                         "periods_after", "zone_area_ha", "area_ha_before", "area_ha_after", "change_ha",
                         "status"]


def link_events(events: pd.DataFrame, aois: gpd.GeoDataFrame, *, how: Literal["aoi_id", "spatial"],
                distance_m: float = 0.0) -> pd.DataFrame:
    """Events with the `aoi_id` they belong to (one row per event and AOI; unlinked events dropped).

    spatial: the mine point (mine_lat, mine_lon, WGS84) lies within `distance_m` of the AOI polygon.
    """
    if how == "aoi_id":
        if "aoi_id" not in events.columns:
            raise InputError("events.link is 'aoi_id' but the events table has no aoi_id column")
        return events[events["aoi_id"].astype(str).isin(aois["aoi_id"])].reset_index(drop=True)
    located = events.dropna(subset=["mine_lat", "mine_lon"])
    mines = gpd.GeoDataFrame(
        located.drop(columns="aoi_id", errors="ignore"),
        geometry=gpd.points_from_xy(located["mine_lon"], located["mine_lat"]), crs="EPSG:4326")
    metric_crs = aois.estimate_utm_crs()
    areas = aois[["aoi_id", "geometry"]].to_crs(metric_crs)
    areas["geometry"] = areas.buffer(distance_m)
    linked = gpd.sjoin(mines.to_crs(metric_crs), areas, predicate="within", how="inner")
    return pd.DataFrame(linked.drop(columns=["geometry", "index_right"])).reset_index(drop=True)


def event_zones(event: pd.Series, *, radius_m: float, crs) -> dict[str, gpd.GeoSeries | str]:
    """Zone name -> a one-polygon GeoSeries in `crs` (a buffer of `radius_m` around the point), or
    a string saying why the zone is skipped (e.g. no coordinates in the record)."""
    zones: dict[str, gpd.GeoSeries | str] = {}
    for zone, (lat, lon) in ZONES.items():
        if lat not in event.index or pd.isna(event.get(lat)) or pd.isna(event.get(lon)):
            zones[zone] = f"skipped: no {lat}/{lon} in the record"
            continue
        point = gpd.GeoSeries(gpd.points_from_xy([event[lon]], [event[lat]]), crs="EPSG:4326")
        zones[zone] = point.to_crs(crs).buffer(radius_m)
    return zones


def zone_pixel_counts(class_map: xr.DataArray, zone: gpd.GeoSeries) -> xr.DataArray:
    """Pixels per class code and period inside a zone polygon: (period, class_code); lazy stays lazy."""
    outside = geometry_mask(zone.to_crs(class_map.rio.crs).geometry,
                            out_shape=(class_map.sizes["y"], class_map.sizes["x"]),
                            transform=class_map.rio.transform(recalc=True))
    if dask.is_dask_collection(class_map):
        outside = da.from_array(outside, chunks=class_map.data.chunks[-2:])
    nodata = class_map.rio.nodata if class_map.rio.nodata is not None else 255
    in_zone = class_map.where(~xr.DataArray(outside, dims=("y", "x")), nodata).astype("uint8")
    return class_pixel_counts(in_zone)


def event_periods(event: pd.Series, periods: Sequence[int], *, years_before: int,
                  years_after: int) -> tuple[list[int], list[int]]:
    """The periods of the before window [start - N, start - 1] and the after window [end + 1, end + N]
    (end = year_end, or year_start where the record gives no end)."""
    start = int(event["year_start"])
    end = int(event["year_end"]) if pd.notna(event.get("year_end")) else start
    before = [p for p in periods if start - years_before <= p <= start - 1]
    after = [p for p in periods if end + 1 <= p <= end + years_after]
    return before, after


def event_metrics_table(
    event: pd.Series,
    zone_counts: dict[str, xr.DataArray | str],
    classes: Sequence[ClassDef],
    *,
    pixel_area_ha: float,
    years_before: int,
    years_after: int,
) -> pd.DataFrame:
    """Per zone and class: mean area (ha) over the before and after windows and the change.

    `zone_area_ha` is the zone's classified area (its largest over the periods; nodata not counted).

    `zone_counts`: zone -> computed (period, class_code) pixel counts, or the reason it was skipped.
    """
    rows = []
    base = {"aoi_id": event.get("aoi_id"), "event_id": event["event_id"]}
    for zone, counts in zone_counts.items():
        if isinstance(counts, str):
            rows.append(base | {"zone": zone, "status": counts})
            continue
        periods = [int(p) for p in counts["period"].values]
        before, after = event_periods(event, periods, years_before=years_before, years_after=years_after)
        codes = [c.code for c in classes]
        zone_ha = float(counts.sel(class_code=codes).sum("class_code").max()) * pixel_area_ha
        status = "ok" if before and after else (
            f"no periods in the {'before' if not before else 'after'} window")
        for c in classes:
            area = counts.sel(class_code=c.code) * pixel_area_ha
            area_before = float(area.sel(period=before).mean()) if before else np.nan
            area_after = float(area.sel(period=after).mean()) if after else np.nan
            rows.append(base | {
                "zone": zone, "class_code": c.code, "class_name": c.name,
                "periods_before": _span(before), "periods_after": _span(after),
                "zone_area_ha": zone_ha, "area_ha_before": area_before, "area_ha_after": area_after,
                "change_ha": area_after - area_before, "status": status,
            })
    return pd.DataFrame(rows, columns=EVENT_METRICS_COLUMNS)


def _span(periods: Sequence[int]) -> str:
    if not periods:
        return ""
    return f"{periods[0]}-{periods[-1]}" if len(periods) > 1 else str(periods[0])


def event_caption(event: pd.Series) -> str:
    """A one-line caption, e.g. '2013: 240 households resettled from Village A to New Village A'."""
    start = int(event["year_start"])
    end = int(event["year_end"]) if pd.notna(event.get("year_end")) else None
    years = f"{start}-{end}" if end and end != start else str(start)
    count = event.get("displaced_count")
    who = f"{int(count):,} {event.get('displaced_unit') or ''}".strip() if pd.notna(count) else "people"
    text = f"{years}: {who} resettled"
    if pd.notna(event.get("origin_community")):
        text += f" from {event['origin_community']}"
    if pd.notna(event.get("resettlement_site")):
        text += f" to {event['resettlement_site']}"
    return text
