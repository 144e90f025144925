"""Where an event is measured: events linked to AOIs, and its zones (origin community, resettlement
site, control ring) as polygons and as masks on the class map's grid."""

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
from pipeline.errors import InputError

__all__ = ["ZONES", "link_events", "event_zones", "zone_mask", "zone_masks", "zone_pixel_counts"]


# zone name -> (latitude column, longitude column) in the events table
ZONES: dict[str, tuple[str, str]] = {
    "origin_community": ("origin_lat", "origin_lon"),
    "resettlement_site": ("site_lat", "site_lon"),
}


# zone name -> the column of its outline (WGS84 WKT polygon), used instead of a disc where given
_OUTLINES = {"origin_community": "origin_wkt", "resettlement_site": "site_wkt"}


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


def event_zones(event: pd.Series, *, radius_m: float, control_inner_m: float, control_outer_m: float,
                crs) -> dict[str, gpd.GeoSeries | str]:
    """Zone name -> a one-polygon GeoSeries in `crs`, or a string saying why the zone is skipped.

    origin_community, resettlement_site: the record's outline (origin_wkt, site_wkt), or else a disc of
    `radius_m` around its point.
    control: an annulus from `control_inner_m` to `control_outer_m` around the mine point, less the
    other zones (the caller also removes the mining footprint, which is a raster).
    """
    zones: dict[str, gpd.GeoSeries | str] = {}
    for zone, (lat, lon) in ZONES.items():
        outline = event.get(_OUTLINES[zone])
        if isinstance(outline, str):  # the record's polygon, as it is
            zones[zone] = gpd.GeoSeries.from_wkt([outline], crs="EPSG:4326").to_crs(crs)
        elif pd.isna(event.get(lat)) or pd.isna(event.get(lon)):
            zones[zone] = f"skipped: no {lat}/{lon} in the record"
        else:
            zones[zone] = _point(event, lat, lon).to_crs(crs).buffer(radius_m)
    if pd.isna(event.get("mine_lat")) or pd.isna(event.get("mine_lon")):
        zones["control"] = "skipped: no mine_lat/mine_lon in the record"
    else:
        mine = _point(event, "mine_lat", "mine_lon").to_crs(crs)
        ring = mine.buffer(control_outer_m).difference(mine.buffer(control_inner_m))
        for polygon in zones.values():
            if not isinstance(polygon, str):
                ring = ring.difference(polygon.buffer(radius_m))  # keep a margin from the impact zones
        zones["control"] = ring
    return zones


def _point(event: pd.Series, lat: str, lon: str) -> gpd.GeoSeries:
    return gpd.GeoSeries(gpd.points_from_xy([event[lon]], [event[lat]]), crs="EPSG:4326")


def zone_mask(grid: xr.DataArray, zone: gpd.GeoSeries) -> np.ndarray:
    """(y, x) bool on `grid`'s pixels: True where the pixel centre lies in the zone."""
    outside = geometry_mask(zone.to_crs(grid.rio.crs).geometry, out_shape=(grid.sizes["y"], grid.sizes["x"]),
                            transform=grid.rio.transform(recalc=True))
    return ~outside


def zone_masks(event: pd.Series, class_map: xr.DataArray, *, radius_m: float, control_inner_m: float,
               control_outer_m: float, mining_classes: Sequence[int],
               ) -> tuple[dict[str, np.ndarray | str], dict[str, gpd.GeoSeries | str]]:
    """The event's zones as (y, x) bool masks on the class map's grid (or why a zone is skipped), and
    as polygons. The control zone leaves out the mining footprint: every pixel of a mining class in
    any period. `class_map` is computed (period, y, x)."""
    zones = event_zones(event, radius_m=radius_m, control_inner_m=control_inner_m,
                        control_outer_m=control_outer_m, crs=class_map.rio.crs)
    masks = {zone: (polygon if isinstance(polygon, str) else zone_mask(class_map, polygon))
             for zone, polygon in zones.items()}
    if not isinstance(masks["control"], str):
        footprint = np.isin(np.asarray(class_map.values), list(mining_classes)).any(axis=0)
        masks["control"] = masks["control"] & ~footprint
    return masks, zones


def zone_pixel_counts(class_map: xr.DataArray, in_zone: np.ndarray) -> xr.DataArray:
    """Pixels per class code and period inside a zone mask: (period, class_code); lazy stays lazy."""
    mask = in_zone
    if dask.is_dask_collection(class_map):
        mask = da.from_array(in_zone, chunks=class_map.data.chunks[-2:])
    nodata = class_map.rio.nodata if class_map.rio.nodata is not None else 255
    zoned = class_map.where(xr.DataArray(mask, dims=("y", "x")), nodata).astype("uint8")
    return class_pixel_counts(zoned)
