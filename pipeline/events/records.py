"""Resettlement event records as they come: messy fields parsed, original text kept, and per record
which analyses it allows.

Columns follow the resettlement events table (`event_id, mine, company, country, iso3, commodity,
lifecycle_stage, event_type, year_start, year_end, displaced_count, displaced_unit, origin_community,
resettlement_site, mine_lat, mine_lon, site_lat, site_lon, coords_note, source`), optionally with
`origin_lat, origin_lon` and `aoi_id`. An empty field means that no source gave a value, not zero.
"""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from pipeline.errors import InputError
from pipeline.results import check_id

__all__ = ["ANALYSES", "UNIT_KINDS", "normalise_events", "unit_kind", "parse_count", "read_events"]

UNIT_KINDS = ("households", "families", "people", "other")

# analysis -> what a record needs for it
ANALYSES: dict[str, str] = {
    "link_spatial": "mine coordinates (mine_lat, mine_lon)",
    "before_after": "a date (date, or date_start/date_end) or a start or end year",
    "origin_zone": "origin community coordinates (origin_lat, origin_lon) or outline (origin_wkt), and a date "
                   "or year",
    "site_zone": "resettlement site coordinates (site_lat, site_lon) or outline (site_wkt), and a date or year",
    "baci": "a date or year, mine coordinates (control ring) and an origin or site zone",
    "displacement_count": "a displaced count with its unit",
}

_UNIT_PATTERNS = [  # matched against the unit's head noun phrase: "herder families" are families
    ("households", re.compile(r"\bhouse ?holds?\b", re.I)),
    ("families", re.compile(r"\bfamil(y|ies)\b", re.I)),
    ("people", re.compile(r"\bpeople\b|\bpersons?\b|\binhabitants?\b|\bresidents?\b", re.I)),
]
_NUMBER = re.compile(r"\d[\d,.]*")
_COORDINATES = [("mine_lat", "mine_lon"), ("site_lat", "site_lon"), ("origin_lat", "origin_lon")]
_OPTIONAL = ["year_end", "date", "date_start", "date_end", "displaced_count", "displaced_unit", "origin_community", "resettlement_site",
             "mine_lat", "mine_lon", "site_lat", "site_lon", "origin_lat", "origin_lon", "country", "company",
             "commodity", "lifecycle_stage", "event_type", "mine", "iso3", "coords_note", "source"]


def unit_kind(unit: object) -> str | None:
    """households / families / people / other from a free-text unit; None where the unit is empty.

    Only the unit's head counts: its first three words before any parenthesis, so that
    "people (2,000 dwellings)" is people and "residences and businesses acquired, residents moved" other.
    """
    if unit is None or (isinstance(unit, float) and np.isnan(unit)) or not str(unit).strip():
        return None
    head = " ".join(str(unit).split("(")[0].split()[:3])
    for kind, pattern in _UNIT_PATTERNS:
        if pattern.search(head):
            return kind
    return "other"


def parse_count(value: object) -> float:
    """A count from a number or a text such as '5,000', 'about 3,800 families'; NaN if none."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.nan
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    match = _NUMBER.search(str(value))
    return float(match.group().rstrip(".,").replace(",", "")) if match else np.nan


def _year(value: object, *, event_id: str, column: str) -> float:
    if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
        return np.nan
    match = re.search(r"\b(1[89]\d\d|20\d\d|21\d\d)\b", str(value))
    if match is None:
        raise InputError(f"event {event_id!r}: {column} {value!r} is not a year")
    return float(match.group())


def _polygon(value: object, *, event_id: str, column: str) -> str | None:
    """A WGS84 polygon as WKT, checked; None where empty."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or not str(value).strip():
        return None
    try:
        geometry = shapely.from_wkt(str(value))
    except shapely.errors.GEOSException:
        raise InputError(f"event {event_id!r}: {column} is not WKT ({str(value)[:40]}...)") from None
    if not geometry.geom_type.endswith("Polygon") or geometry.is_empty:
        raise InputError(f"event {event_id!r}: {column} must be a polygon, got {geometry.geom_type}")
    minx, miny, maxx, maxy = geometry.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise InputError(f"event {event_id!r}: {column} is not in WGS84 longitude/latitude")
    return geometry.wkt


def _date(value: object, *, event_id: str, column: str) -> pd.Timestamp | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
        return None
    try:
        return pd.Timestamp(str(value).strip()).normalize()
    except ValueError:
        raise InputError(f"event {event_id!r}: {column} {value!r} is not a date (YYYY-MM-DD)") from None


def _event_dates(events: pd.DataFrame) -> pd.DataFrame:
    """`event_start` and `event_end` (ISO dates) of every record, from `date` (a one-day event), or
    `date_start`/`date_end`, or else 1 January of year_start to 31 December of year_end (either year
    standing for both where one is missing). Records given only by date get their years from it.
    Raises InputError for a date that is not one, or an end before the start."""
    reversed_years = events["year_end"] < events["year_start"]
    if reversed_years.any():
        first, more = events[reversed_years].iloc[0], int(reversed_years.sum()) - 1
        raise InputError(f"event {first['event_id']!r}: year_end {int(first['year_end'])} is before year_start "
                         f"{int(first['year_start'])} (the years are reversed); swap them in the events table"
                         + (f" ({more} more event(s) have reversed years)" if more else ""))
    events = events.copy()
    starts, ends = [], []
    for index, event in events.iterrows():
        event_id = event["event_id"]
        date = _date(event.get("date"), event_id=event_id, column="date")
        start = date or _date(event.get("date_start"), event_id=event_id, column="date_start")
        end = date or _date(event.get("date_end"), event_id=event_id, column="date_end") or start
        first, last = event["year_start"], event["year_end"]
        if start is not None:  # given by dates: the years follow from them where the record has none
            if end < start:
                raise InputError(f"event {event_id!r}: it ends ({end.date()}) before it starts ({start.date()}); "
                                 "check date_start and date_end")
            if pd.isna(first):
                events.at[index, "year_start"] = float(start.year)
            if pd.isna(last) and end.year != start.year:
                events.at[index, "year_end"] = float(end.year)
        elif pd.notna(first) or pd.notna(last):
            start = pd.Timestamp(year=int(first if pd.notna(first) else last), month=1, day=1)
            end = pd.Timestamp(year=int(last if pd.notna(last) else first), month=12, day=31)
        starts.append(start.date().isoformat() if start is not None else None)
        ends.append(end.date().isoformat() if end is not None else None)
    events["event_start"], events["event_end"] = starts, ends
    return events


def normalise_events(records: pd.DataFrame) -> pd.DataFrame:
    """Parsed records: numeric years, counts and coordinates, `displaced_unit_kind`, the original text
    of every parsed field in `<column>_text`, one boolean `allows_<analysis>` column per analysis and
    `analyses` (the allowed ones, ';'-separated). Missing optional columns are added empty."""
    if "event_id" not in records.columns:
        raise InputError("the events table has no event_id column")
    events = records.copy()
    events["event_id"] = events["event_id"].astype(str)
    for event_id in events["event_id"]:  # ids name report charts and key every table
        check_id(event_id, what="event", where="events table (event_id)")
    duplicated = events["event_id"][events["event_id"].duplicated()].unique()
    if len(duplicated):
        raise InputError(f"event ids must be unique, repeated: {list(duplicated)}")
    for column in ["year_start", *_OPTIONAL]:
        if column not in events.columns:
            events[column] = np.nan
    for column in ("year_start", "year_end"):
        events[f"{column}_text"] = events[column].astype("string")
        events[column] = [_year(v, event_id=e, column=column) for v, e in zip(events[column], events["event_id"])]
    events = _event_dates(events)
    events["displaced_count_text"] = events["displaced_count"].astype("string")
    events["displaced_count"] = events["displaced_count"].map(parse_count)
    events["displaced_unit_kind"] = events["displaced_unit"].map(unit_kind)
    for lat, lon in _COORDINATES:
        for column, limit in ((lat, 90), (lon, 180)):
            values = pd.to_numeric(events[column], errors="coerce")
            bad = values.abs() > limit
            if bad.any():
                raise InputError(f"event {events['event_id'][bad].iloc[0]!r}: {column} "
                                 f"{values[bad].iloc[0]} is not a WGS84 coordinate")
            events[column] = values
    for column in ("origin_wkt", "site_wkt"):  # optional outlines of the community and the site
        events[column] = [_polygon(v, event_id=e, column=column) for v, e in
                          zip(events.get(column, pd.Series([None] * len(events), index=events.index)),
                              events["event_id"])]
    has_year = events["event_start"].notna()
    has = {name: events[lat].notna() & events[lon].notna() for name, (lat, lon) in
           zip(("mine", "site", "origin"), _COORDINATES)}
    has["origin"] |= events["origin_wkt"].notna()
    has["site"] |= events["site_wkt"].notna()
    allows = {
        "link_spatial": has["mine"],
        "before_after": has_year,
        "origin_zone": has_year & has["origin"],
        "site_zone": has_year & has["site"],
        "baci": has_year & has["mine"] & (has["origin"] | has["site"]),
        "displacement_count": events["displaced_count"].notna() & events["displaced_unit_kind"].notna(),
    }
    for analysis, allowed in allows.items():
        events[f"allows_{analysis}"] = allowed.to_numpy()
    events["analyses"] = [";".join(a for a in ANALYSES if events.at[i, f"allows_{a}"]) for i in events.index]
    return events


def read_events(path: Path) -> pd.DataFrame:
    """Resettlement events in the columns of the resettlement events table (CSV or GeoPackage).

    In a GeoPackage (or other vector file) whose features are polygons, each polygon is the origin
    community's outline and becomes the `origin_wkt` column (WGS84 WKT); point features are ignored
    (the table's coordinate columns locate the points)."""
    if not path.exists():
        raise InputError(f"{path}: events file not found (events.path)")
    try:
        if path.suffix.lower() == ".csv":
            events = pd.read_csv(path, dtype={"event_id": str})
        else:
            frame = gpd.read_file(path)
            events = pd.DataFrame(frame.drop(columns="geometry", errors="ignore"))
            if frame.crs is not None and frame.geom_type.isin(["Polygon", "MultiPolygon"]).any():
                outlines = frame.geometry.to_crs(4326)
                events["origin_wkt"] = [g.wkt if g is not None and g.geom_type.endswith("Polygon") else None
                                        for g in outlines]
    except Exception as err:  # pandas/pyogrio raise many types for unreadable files
        raise InputError(f"{path}: cannot read the events table ({err})") from None
    missing = [column for column, present in (("event_id", "event_id" in events.columns),
                                               ("year_start", bool({"year_start", "date", "date_start"}
                                                                   & set(events.columns)))) if not present]
    if missing:
        raise InputError(f"{path}: the events table lacks the column(s) {missing} (events.path; every table "
                         "needs event_id and year_start, or date / date_start for dated events; columns found: "
                         f"{sorted(map(str, events.columns))})")
    return events
