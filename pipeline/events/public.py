"""Public mode: the one place that generalises events. Community and site points snap to a grid,
their names are withheld, also inside any other text (a source title, a note), and so are coordinates
written in text; zones become grid cells.

Every writer of an output takes the generalised events (`generalise_events`), and free text of the
config that ends up in an output (a video title, credits) goes through `generalise_text`."""

from __future__ import annotations

import re
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import box

__all__ = ["WITHHELD", "generalise_events", "generalise_text", "generalise_zones"]


WITHHELD = "[withheld]"


_SENSITIVE_POINTS = (("origin_lat", "origin_lon"), ("site_lat", "site_lon"))


_SENSITIVE_NAMES = ("origin_community", "resettlement_site")

# coordinates written in text: decimal degrees with 3+ decimals (-16.1234, 33.5678°E, -16.1/33.2 pairs) or
# degrees and minutes (16°07'24"S); not parts of longer tokens such as a DOI (10.1016/j.x.2019.01.001) or a
# version (1.2.345)
_COORDINATE_TEXT = re.compile(
    r"(?<![\w.-])(?!10\.\d{4,9}/)[-+\u2212]?\d{1,3}(?:\.\d{3,}\s*°?|\s*°\s*\d{1,2}(?:\.\d+)?\s*['′]"
    r"(?:\s*\d{1,2}(?:\.\d+)?\s*[\"″]|'')?)\s*[NSEWnsew]?(?![\w.])")


def _names(events: pd.DataFrame) -> list[str]:
    """Every community and site name in the records, also the parts of lists like 'A; B (of C)'."""
    found = set()
    for column in (c for c in _SENSITIVE_NAMES if c in events.columns):
        for text in events[column].dropna().astype(str):
            found.add(text.strip())
            found.update(p.strip() for p in re.split(r"[;,()]", text) if len(p.strip()) > 3)
    return sorted(found, key=len, reverse=True)


def _snap(lat: pd.Series, lon: pd.Series, grid_m: float) -> tuple[pd.Series, pd.Series]:
    """WGS84 points moved to the centre of their cell of a `grid_m` grid in World Mercator (EPSG:3395)."""
    valid = lat.notna() & lon.notna()
    points = gpd.GeoSeries(gpd.points_from_xy(lon[valid], lat[valid]), crs="EPSG:4326").to_crs(3395)
    snapped = gpd.GeoSeries(gpd.points_from_xy((np.floor(points.x / grid_m) + 0.5) * grid_m,
                                               (np.floor(points.y / grid_m) + 0.5) * grid_m), crs=3395).to_crs(4326)
    new_lat, new_lon = lat.copy(), lon.copy()
    new_lat[valid], new_lon[valid] = snapped.y.round(4).to_numpy(), snapped.x.round(4).to_numpy()
    return new_lat, new_lon


def generalise_events(events: pd.DataFrame, *, grid_m: float) -> pd.DataFrame:
    """Records safe to publish: community and site points snapped to a `grid_m` grid, their names
    withheld (also where they appear inside other text, e.g. a source title). Mines stay as they are,
    and so do the ids (`event_id`, `aoi_id`): they key every table, so give events ids that do not
    name a community before publishing. Coordinates written in text are withheld too. Generalising
    generalised records changes nothing."""
    public = events.copy()
    names = _names(events)
    for lat, lon in _SENSITIVE_POINTS:
        if lat in public.columns and lon in public.columns:
            public[lat], public[lon] = _snap(public[lat], public[lon], grid_m)
    for outline in ("origin_wkt", "site_wkt"):  # outlines would show exactly where people lived
        if outline in public.columns:
            public[outline] = public[outline].where(public[outline].isna(), WITHHELD)
    for column in public.columns:
        if column in ("event_id", "aoi_id"):  # keys across tables: ids are the user's to choose
            continue
        if column in _SENSITIVE_NAMES:
            public[column] = public[column].where(public[column].isna(), WITHHELD)
        elif public[column].dtype == object or pd.api.types.is_string_dtype(public[column]):
            public[column] = public[column].map(lambda v: _withhold(v, names))
    return public


def _withhold(value: object, names: Sequence[str]) -> object:
    if not isinstance(value, str):
        return value
    for name in names:
        value = re.sub(re.escape(name), WITHHELD, value, flags=re.I)
    return _COORDINATE_TEXT.sub(WITHHELD, value)


def generalise_text(text: str | None, events: pd.DataFrame) -> str | None:
    """A free text of the config or the AOI file (video title, subtitle, credits) with the names of the
    events' communities and sites, and any coordinates, withheld, as in `generalise_events`."""
    if text is None:
        return None
    return _withhold(text, _names(events))



def generalise_zones(zones: gpd.GeoDataFrame, *, grid_m: float) -> gpd.GeoDataFrame:
    """Event zones safe to publish: each community or site zone becomes the `grid_m` grid cell around
    its centre; the control ring loses its holes (they would show where the communities are)."""
    public = zones.copy()
    geometries = []
    for zone, geometry in zip(public["zone"], public.geometry):
        if geometry is None or geometry.is_empty:  # nothing to show, nothing to give away
            geometries.append(geometry)
        elif zone == "control":  # the annulus around the mine: outer disc less the inner one
            centre = geometry.convex_hull.centroid
            geometries.append(geometry.convex_hull.difference(centre.buffer(centre.distance(geometry))))
        else:
            x, y = geometry.centroid.x, geometry.centroid.y
            x0, y0 = np.floor(x / grid_m) * grid_m, np.floor(y / grid_m) * grid_m
            geometries.append(box(x0, y0, x0 + grid_m, y0 + grid_m))
    return public.set_geometry(geometries, crs=zones.crs)
