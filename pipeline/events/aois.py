"""Mine areas (AOIs) made from the events table: one per mine, so a database of cases runs without
drawing a polygon per mine.

    aois_from_events   records -> one AOI per mine: the mine point plus a radius, grown to hold the
                       origin, site and impact points and outlines of its events with a margin
    configured_aois    the AOIs of a config: its `aoi.path` file, or made from its events table

The builder lives here, not beside the AOI reader in `ingest`: it needs the events table, and ingest is
above events in the layer order. The runner, `midr validate`, `midr aois` and the notebooks' explore
module all take their AOIs from `configured_aois`.

Records of one mine share its AOI: those with the same `aoi_id` where the table has that column, else
those with the same mine point. An AOI is named after its mine (the `mine` text before any parenthesis,
as a safe id: `Ahafo South (Ahafo gold mine)` -> `ahafo_south`), made unique with a suffix (`_2`).
Records without a mine point get no AOI; `midr aois` lists them.
"""

from __future__ import annotations

import logging
import re
import unicodedata

import geopandas as gpd
import pandas as pd
import shapely

from pipeline.config import SAFE_NAME, PipelineConfig
from pipeline.errors import InputError
from pipeline.events.records import normalise_events, read_events
from pipeline.ingest import read_aois

__all__ = ["AOI_COLUMNS", "aois_from_events", "unplaced_events", "configured_aois"]

log = logging.getLogger(__name__)

AOI_COLUMNS = ["aoi_id", "name", "mine", "company", "country", "commodity", "event_ids", "n_events", "mine_lat",
               "mine_lon", "radius_m", "margin_m"]

_POINTS = (("origin_lat", "origin_lon"), ("site_lat", "site_lon"))
_OUTLINES = ("origin_wkt", "site_wkt", "impact_wkt")
_ID_LENGTH = 48


def _slug(text: object) -> str:
    """A safe id from free text: ASCII letters and digits, '_' between words, at most 48 characters."""
    if not isinstance(text, str):
        return ""
    ascii_text = unicodedata.normalize("NFKD", text.split("(")[0]).encode("ascii", "ignore").decode()
    words = re.findall(r"[A-Za-z0-9]+", ascii_text.lower())
    slug = ""
    for word in words:
        if len(slug) + len(word) + bool(slug) > _ID_LENGTH:
            break
        slug = f"{slug}_{word}" if slug else word
    return slug or "_".join(words)[:_ID_LENGTH]


def _group_keys(events: pd.DataFrame) -> pd.Series:
    """The mine each record belongs to: its aoi_id where the table has one, else its mine point."""
    if "aoi_id" in events.columns and events["aoi_id"].notna().any():
        ids = events["aoi_id"].where(events["aoi_id"].notna(), None)
        for event_id, aoi_id in zip(events["event_id"], ids):
            if aoi_id is not None and not SAFE_NAME.match(str(aoi_id)):
                raise InputError(f"event {event_id!r}: aoi_id {aoi_id!r} cannot name an AOI's files; use letters, "
                                 "digits, '-', '_' and '.' (not first: '-' or '.')")
        return ids.map(lambda v: None if v is None else ("id", str(v)))
    located = events["mine_lat"].notna() & events["mine_lon"].notna()
    return pd.Series([("point", round(float(lat), 6), round(float(lon), 6)) if ok else None
                      for lat, lon, ok in zip(events["mine_lat"], events["mine_lon"], located)], index=events.index)


def unplaced_events(events: pd.DataFrame) -> pd.DataFrame:
    """The records that `aois_from_events` can give no AOI: no mine point (and, with an aoi_id column, no
    aoi_id, or an aoi_id none of whose records has a mine point)."""
    keys = _group_keys(events)
    located = events["mine_lat"].notna() & events["mine_lon"].notna()
    placed_keys = set(keys[located & keys.notna()])
    return events[~keys.isin(placed_keys) | keys.isna()]


def aois_from_events(events: pd.DataFrame, *, radius_m: float, margin_m: float) -> gpd.GeoDataFrame:
    """One AOI per mine of the (normalised) events table, in WGS84, columns `AOI_COLUMNS` + geometry.

    The AOI is the convex hull of a disc of `radius_m` around each mine point of its records and of a
    disc of `margin_m` around each origin and site point (and the outlines origin_wkt, site_wkt and
    impact_wkt grown by `margin_m`), drawn in the local UTM zone. `event_ids` lists its records
    (';'-separated, in table order); `name` is the first record's mine.
    """
    keys = _group_keys(events)
    located = events["mine_lat"].notna() & events["mine_lon"].notna()
    rows, geometries, taken = [], [], set()
    for key in dict.fromkeys(k for k in keys[located & keys.notna()]):
        members = events[keys == key]
        mines = members[members["mine_lat"].notna() & members["mine_lon"].notna()]
        first = members.iloc[0]
        metric = gpd.GeoSeries(gpd.points_from_xy(mines["mine_lon"], mines["mine_lat"]),
                               crs="EPSG:4326").estimate_utm_crs()
        parts = list(_points(mines, "mine_lat", "mine_lon").to_crs(metric).buffer(radius_m))
        for lat, lon in _POINTS:
            if lat in members.columns and lon in members.columns:
                parts += list(_points(members, lat, lon).to_crs(metric).buffer(margin_m))
        for column in _OUTLINES:
            if column in members.columns:
                outlines = members[column].dropna()
                if len(outlines):
                    parts += list(gpd.GeoSeries.from_wkt(outlines.tolist(), crs="EPSG:4326").to_crs(metric)
                                  .buffer(margin_m))
        hull = gpd.GeoSeries([shapely.union_all(parts).convex_hull], crs=metric).to_crs("EPSG:4326").iloc[0]
        if key[0] == "id":
            aoi_id = key[1]
        else:
            aoi_id = _slug(first.get("mine")) or _common_prefix(members["event_id"]) or "mine"
            base, n = aoi_id, 2
            while aoi_id in taken:
                aoi_id, n = f"{base}_{n}", n + 1
        taken.add(aoi_id)
        rows.append({"aoi_id": aoi_id, "name": _text(first.get("mine")) or aoi_id, "mine": _text(first.get("mine")),
                     "company": _text(first.get("company")), "country": _text(first.get("country")),
                     "commodity": _text(first.get("commodity")), "event_ids": ";".join(members["event_id"]),
                     "n_events": len(members), "mine_lat": float(mines["mine_lat"].mean()),
                     "mine_lon": float(mines["mine_lon"].mean()), "radius_m": float(radius_m),
                     "margin_m": float(margin_m)})
        geometries.append(hull)
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=AOI_COLUMNS), geometry=geometries, crs="EPSG:4326")


def _points(table: pd.DataFrame, lat: str, lon: str) -> gpd.GeoSeries:
    located = table[table[lat].notna() & table[lon].notna()]
    return gpd.GeoSeries(gpd.points_from_xy(located[lon], located[lat]), crs="EPSG:4326")


def _text(value: object) -> str | None:
    return str(value) if isinstance(value, str) and value.strip() else None


def _common_prefix(event_ids: pd.Series) -> str:
    """The '_'-separated words all the ids start with ('vale_moatize' of 'vale_moatize_cateme' and
    'vale_moatize_25setembro'), as a safe id; '' if none."""
    split = [re.split(r"[_\-]", str(i)) for i in event_ids]
    common = []
    for words in zip(*split):
        if len(set(words)) > 1:
            break
        common.append(words[0])
    return _slug(" ".join(common))


def configured_aois(config: PipelineConfig, records: pd.DataFrame | None = None) -> gpd.GeoDataFrame:
    """The config's AOIs with their `aoi_id`: the `aoi.path` file, or one per mine of the events table
    (`aoi.from_events`; `records`: the normalised table where the caller has it); `aoi.ids` applied."""
    settings = config.aoi
    if settings.from_events is not None:
        if records is None:
            records = normalise_events(read_events(config.events.path))
        aois = aois_from_events(records, radius_m=settings.from_events.radius_m,
                                margin_m=settings.from_events.margin_m)
        if aois.empty:
            raise InputError(f"{config.events.path}: no record has a mine point (mine_lat, mine_lon), so "
                             "aoi.from_events makes no AOI")
        unplaced = unplaced_events(records)
        if len(unplaced):
            log.warning("aoi.from_events: %d record(s) without a mine point get no AOI: %s", len(unplaced),
                        ", ".join(unplaced["event_id"]))
        where = f"{config.events.path} (aoi.from_events)"
    else:
        aois = read_aois(settings.path, id_field=settings.id_field)
        where = str(settings.path)
    if settings.ids is not None:
        unknown = sorted(set(settings.ids) - set(aois["aoi_id"]))
        if unknown:
            raise InputError(f"{where}: no AOI with id {unknown} (aoi.ids); ids are {sorted(aois['aoi_id'])}")
        aois = aois[aois["aoi_id"].isin(settings.ids)]
    return aois
