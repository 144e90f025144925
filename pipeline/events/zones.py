"""Where an event is measured: events linked to AOIs, and its zones as polygons, as masks on the class
map's grid, and as the window of the class map that holds them.

The event's kind (`records.event_kind`) decides its zones: a planned resettlement has an origin community
and a resettlement site, a town relocation an old town and a new town (the same columns of the record),
a disaster displacement (and any other type) an impact zone around the mine, with the community and
the site too where the record locates them; every event has a control ring around the mine."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
from pipeline.events.records import event_kind

__all__ = ["ZONES", "KIND_ZONES", "IMPACT_ZONE", "link_events", "event_zones", "zone_window", "zone_mask",
           "zone_masks", "zone_pixel_counts"]


# zone measured at a point of the record -> (latitude column, longitude column, outline column)
ZONES: dict[str, tuple[str, str, str]] = {
    "origin_community": ("origin_lat", "origin_lon", "origin_wkt"),
    "resettlement_site": ("site_lat", "site_lon", "site_wkt"),
    "old_town": ("origin_lat", "origin_lon", "origin_wkt"),
    "new_town": ("site_lat", "site_lon", "site_wkt"),
}

IMPACT_ZONE = "impact"  # a disaster's zone: a disc around the mine point, or the record's impact_wkt

# event kind -> its zones besides the control ring; (zones in brackets are measured only where located)
KIND_ZONES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "resettlement": (("origin_community", "resettlement_site"), ()),
    "town_relocation": (("old_town", "new_town"), ()),
    "disaster": ((IMPACT_ZONE,), ("origin_community", "resettlement_site")),
    "other": ((IMPACT_ZONE,), ("origin_community", "resettlement_site")),
}


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


def _located(event: pd.Series, zone: str) -> bool:
    lat, lon, outline = ZONES[zone]
    return isinstance(event.get(outline), str) or (pd.notna(event.get(lat)) and pd.notna(event.get(lon)))


def event_zones(event: pd.Series, *, radius_m: float, control_inner_m: float, control_outer_m: float,
                crs, impact_radius_m: float = 2000.0) -> dict[str, gpd.GeoSeries | str]:
    """Zone name -> a one-polygon GeoSeries in `crs`, or a string saying why the zone is skipped.

    The zones follow the event's kind (`KIND_ZONES`, from `event_type`):
    origin_community / old_town, resettlement_site / new_town: the record's outline (origin_wkt,
    site_wkt), or else a disc of `radius_m` around its point.
    impact (disaster displacement, other types): the record's outline (impact_wkt), or else a disc of
    `impact_radius_m` around the mine point.
    control: an annulus from `control_inner_m` to `control_outer_m` around the mine point, less the
    other zones with a margin of `radius_m` (the caller also removes the mining footprint, a raster).
    """
    listed, where_located = KIND_ZONES[event_kind(event.get("event_type"))]
    zones: dict[str, gpd.GeoSeries | str] = {}
    for zone in (*listed, *(z for z in where_located if _located(event, z))):
        if zone == IMPACT_ZONE:
            zones[zone] = _impact(event, impact_radius_m, crs)
            continue
        lat, lon, outline_column = ZONES[zone]
        outline = event.get(outline_column)
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
        zones["control"] = ring if not ring.is_empty.all() else (
            f"skipped: the control ring ({control_inner_m:g}-{control_outer_m:g} m around the mine) lies inside the "
            "event's other zones; widen events.control_inner_m/control_outer_m")
    return zones


def _impact(event: pd.Series, radius_m: float, crs) -> gpd.GeoSeries | str:
    outline = event.get("impact_wkt")
    if isinstance(outline, str):
        return gpd.GeoSeries.from_wkt([outline], crs="EPSG:4326").to_crs(crs)
    if pd.isna(event.get("mine_lat")) or pd.isna(event.get("mine_lon")):
        return "skipped: no mine_lat/mine_lon (or impact_wkt outline) in the record"
    return _point(event, "mine_lat", "mine_lon").to_crs(crs).buffer(radius_m)


def zone_window(grid: xr.DataArray, zones: Iterable[gpd.GeoSeries]) -> tuple[slice, slice] | None:
    """(y slice, x slice) of `grid`'s pixels that hold every zone (their bounding box, clipped to the
    grid, one pixel to spare), or None where no zone meets the grid. Reading this window of a class map
    costs memory in proportion to the zones, whatever the size of the AOI."""
    polygons = [g for zone in zones for g in zone.to_crs(grid.rio.crs).geometry if g is not None and not g.is_empty]
    if not polygons:
        return None
    minx, miny, maxx, maxy = gpd.GeoSeries(polygons).total_bounds
    inverse = ~grid.rio.transform(recalc=True)
    cols, rows = zip(*(inverse * corner for corner in ((minx, miny), (minx, maxy), (maxx, miny), (maxx, maxy))))
    ny, nx = grid.sizes["y"], grid.sizes["x"]
    row0, row1 = max(0, int(np.floor(min(rows))) - 1), min(ny, int(np.ceil(max(rows))) + 1)
    col0, col1 = max(0, int(np.floor(min(cols))) - 1), min(nx, int(np.ceil(max(cols))) + 1)
    if row0 >= row1 or col0 >= col1:
        return None
    row0, col0 = min(row0, max(0, row1 - 2)), min(col0, max(0, col1 - 2))  # two pixels: a grid with a transform
    return slice(row0, row1), slice(col0, col1)


def _point(event: pd.Series, lat: str, lon: str) -> gpd.GeoSeries:
    return gpd.GeoSeries(gpd.points_from_xy([event[lon]], [event[lat]]), crs="EPSG:4326")


def zone_mask(grid: xr.DataArray, zone: gpd.GeoSeries) -> np.ndarray:
    """(y, x) bool on `grid`'s pixels: True where the pixel centre lies in the zone."""
    outside = geometry_mask(zone.to_crs(grid.rio.crs).geometry, out_shape=(grid.sizes["y"], grid.sizes["x"]),
                            transform=grid.rio.transform(recalc=True))
    return ~outside


def zone_masks(event: pd.Series, class_map: xr.DataArray, *, radius_m: float, control_inner_m: float,
               control_outer_m: float, mining_classes: Sequence[int], impact_radius_m: float = 2000.0,
               ) -> tuple[dict[str, np.ndarray | str], dict[str, gpd.GeoSeries | str]]:
    """The event's zones as (y, x) bool masks on the class map's grid (or why a zone is skipped), and
    as polygons. The control zone leaves out the mining footprint: every pixel of a mining class in
    any period. `class_map` is computed (period, y, x): for whole maps of small AOIs and truths (the
    events stage reads only the zones' window, `zone_window`)."""
    zones = event_zones(event, radius_m=radius_m, control_inner_m=control_inner_m,
                        control_outer_m=control_outer_m, crs=class_map.rio.crs, impact_radius_m=impact_radius_m)
    masks = {zone: (polygon if isinstance(polygon, str) else zone_mask(class_map, polygon))
             for zone, polygon in zones.items()}
    if not isinstance(masks["control"], str):
        footprint = np.isin(np.asarray(class_map.values), list(mining_classes)).any(axis=0)
        masks["control"] = masks["control"] & ~footprint
    return masks, zones


def zone_pixel_counts(class_map: xr.DataArray, in_zone: np.ndarray | xr.DataArray) -> xr.DataArray:
    """Pixels per class code and period inside a zone mask, (y, x) bool on the class map's grid (NumPy,
    or a lazy DataArray): (period, class_code); lazy stays lazy."""
    if isinstance(in_zone, xr.DataArray):
        mask = in_zone
    else:
        mask = in_zone
        if dask.is_dask_collection(class_map):
            mask = da.from_array(in_zone, chunks=class_map.data.chunks[-2:])
        mask = xr.DataArray(mask, dims=("y", "x"))
    nodata = class_map.rio.nodata if class_map.rio.nodata is not None else 255
    zoned = class_map.where(mask, nodata).astype("uint8")
    return class_pixel_counts(zoned)
