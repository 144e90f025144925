"""Run-level tables, summaries across events, and exports for SPSS, Kumu and QGIS.

Every table of a run (all AOIs together) as CSV and Parquet; the event zones with their statistics
as a GeoPackage; one row per event x zone x class as an SPSS .sav with variable and value labels;
the mines, companies, events, communities and sites as a Kumu network (JSON). With the public
option, communities and resettlement sites are generalised to a grid and their names withheld.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import geopandas as gpd
import matplotlib.pyplot as plt
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from shapely.geometry import box  # noqa: E402

__all__ = ["INDICATORS", "WITHHELD", "generalise_events", "generalise_zones", "effects_by_indicator",
           "effects_figure", "spss_table", "kumu_network"]

INDICATORS = ("country", "company", "commodity", "lifecycle_stage", "event_type")
WITHHELD = "[withheld]"
_SENSITIVE_POINTS = (("origin_lat", "origin_lon"), ("site_lat", "site_lon"))
_SENSITIVE_NAMES = ("origin_community", "resettlement_site")


def _names(events: pd.DataFrame) -> list[str]:
    """Every community and site name in the records, also the parts of lists like 'A; B (of C)'."""
    found = set()
    for column in _SENSITIVE_NAMES:
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
    name a community before publishing."""
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
    return value


def generalise_zones(zones: gpd.GeoDataFrame, *, grid_m: float) -> gpd.GeoDataFrame:
    """Event zones safe to publish: each community or site zone becomes the `grid_m` grid cell around
    its centre; the control ring loses its holes (they would show where the communities are)."""
    public = zones.copy()
    geometries = []
    for zone, geometry in zip(public["zone"], public.geometry):
        if zone == "control":  # the annulus around the mine: outer disc less the inner one
            centre = geometry.convex_hull.centroid
            geometries.append(geometry.convex_hull.difference(centre.buffer(centre.distance(geometry))))
        else:
            x, y = geometry.centroid.x, geometry.centroid.y
            x0, y0 = np.floor(x / grid_m) * grid_m, np.floor(y / grid_m) * grid_m
            geometries.append(box(x0, y0, x0 + grid_m, y0 + grid_m))
    return public.set_geometry(geometries, crs=zones.crs)


def effects_by_indicator(baci: pd.DataFrame, events: pd.DataFrame, *, class_names: Sequence[str]) -> pd.DataFrame:
    """BACI effects summarised by the database's indicators: per indicator, value, zone and class the
    number of events, and the mean, minimum and maximum effect (ha)."""
    effects = baci[(baci["status"] == "ok") & baci["class_name"].isin(class_names)]
    merged = effects.merge(events[["event_id", *INDICATORS]], on="event_id", how="left")
    rows = []
    for indicator in INDICATORS:
        grouped = merged.fillna({indicator: "(not given)"}).groupby([indicator, "zone", "class_name"])["effect_ha"]
        summary = grouped.agg(n_events="count", mean_effect_ha="mean", min_effect_ha="min",
                              max_effect_ha="max").reset_index()
        rows.append(summary.rename(columns={indicator: "value"}).assign(indicator=indicator))
    columns = ["indicator", "value", "zone", "class_name", "n_events", "mean_effect_ha", "min_effect_ha",
               "max_effect_ha"]
    return pd.concat(rows, ignore_index=True)[columns] if rows else pd.DataFrame(columns=columns)


def effects_figure(summary: pd.DataFrame, indicator: str, *, zone: str, class_name: str) -> Figure:
    """A horizontal bar chart of the mean effect (ha) by one indicator, for one zone and class."""
    rows = summary[(summary["indicator"] == indicator) & (summary["zone"] == zone)
                   & (summary["class_name"] == class_name)].sort_values("mean_effect_ha")
    figure, ax = plt.subplots(figsize=(8, 0.5 * max(len(rows), 2) + 1.5))
    labels = [f"{v} (n={n})" for v, n in zip(rows["value"], rows["n_events"])]
    ax.barh(labels, rows["mean_effect_ha"], color=["#b2182b" if v < 0 else "#2166ac" for v in rows["mean_effect_ha"]])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"mean BACI effect on {class_name} (ha)")
    ax.set_title(f"{class_name} at the {zone.replace('_', ' ')}, by {indicator.replace('_', ' ')}")
    figure.tight_layout()
    return figure


_SPSS_LABELS = {
    "aoi_id": "Mine area (AOI) id", "event_id": "Resettlement event id", "zone": "Event zone",
    "class_code": "Land-cover class", "periods_before": "Periods in the before window",
    "periods_after": "Periods in the after window", "impact_change_pct": "Change of class share in the zone (%)",
    "control_change_pct": "Change of class share in the control ring (%)",
    "effect_pct_points": "BACI effect (percentage points)", "effect_ha": "BACI effect (ha)",
    "ci95_low_ha": "BACI effect, 95% CI lower bound (ha)", "ci95_high_ha": "BACI effect, 95% CI upper bound (ha)",
    "impact_area_ha": "Zone area classified (ha)", "country": "Country", "iso3": "ISO 3166-1 alpha-3",
    "company": "Company", "commodity": "Main commodity", "lifecycle_stage": "Mine lifecycle stage",
    "event_type": "Event type", "year_start": "First year of the event", "year_end": "Last year of the event",
    "displaced_count": "Displaced count", "displaced_unit_kind": "Unit of the displaced count",
}


def _spss_name(name: str) -> str:
    """A valid SPSS variable name: letters, digits and _ only, starting with a letter, at most 64 chars."""
    cleaned = re.sub(r"\W", "_", name)
    return (cleaned if cleaned[:1].isalpha() else f"v_{cleaned}")[:64]


def spss_table(baci: pd.DataFrame, events: pd.DataFrame,
               class_names: dict[int, str]) -> tuple[pd.DataFrame, dict[str, str], dict[str, dict]]:
    """One row per event x zone x class with the event's indicators, and the SPSS variable labels and
    value labels (zone and class as labelled numeric codes) for pyreadstat.write_sav."""
    keep = [c for c in _SPSS_LABELS if c in baci.columns]
    table = baci[baci["status"] == "ok"][keep].merge(
        events[[c for c in ("event_id", "iso3", *INDICATORS, "year_start", "year_end", "displaced_count",
                            "displaced_unit_kind") if c in events.columns]], on="event_id", how="left")
    zones = {z: i for i, z in enumerate(sorted(table["zone"].unique()), start=1)}
    table["zone"] = table["zone"].map(zones)
    stages = {s: i for i, s in enumerate(["exploration", "construction", "operation", "expansion", "closure",
                                          "disaster"], start=1)}
    table["lifecycle_stage"] = table["lifecycle_stage"].map(stages)
    table = table.rename(columns={c: _spss_name(c) for c in table.columns})
    for column in table.columns:
        if table[column].dtype == object or pd.api.types.is_string_dtype(table[column]):
            table[column] = table[column].astype(object).where(table[column].notna(), "")
    labels = {_spss_name(c): label for c, label in _SPSS_LABELS.items() if _spss_name(c) in table.columns}
    value_labels = {
        "zone": {float(i): z.replace("_", " ") for z, i in zones.items()},
        "class_code": {float(code): name for code, name in class_names.items()},
        "lifecycle_stage": {float(i): s for s, i in stages.items()},
    }
    return table, labels, value_labels


def kumu_network(events: pd.DataFrame, baci: pd.DataFrame, *, headline: Sequence[tuple[str, str]]) -> dict:
    """A Kumu map: elements for mines, companies, events, communities and resettlement sites; connections
    company->mine, mine->event, event->community and event->site carrying the BACI effects named in
    `headline` ((zone, class name) pairs, e.g. ("origin_community", "built-up"))."""
    elements: dict[str, dict] = {}
    connections = []

    def element(label: str, kind: str, **attributes) -> str:
        key = f"{kind}: {label}"
        elements.setdefault(key, {"label": key, "type": kind} | {k: v for k, v in attributes.items() if _given(v)})
        return key

    for _, event in events.iterrows():
        mine = element(str(event.get("mine") or event.get("aoi_id") or event["event_id"]), "mine",
                       commodity=event.get("commodity"), country=event.get("country"))
        node = element(str(event["event_id"]), "event", **{k: _plain(event.get(k)) for k in (
            *INDICATORS, "year_start", "year_end", "displaced_count", "displaced_unit_kind")})
        if _given(event.get("company")):
            connections.append({"from": element(str(event["company"]), "company"), "to": mine,
                                "type": "operates"})
        connections.append({"from": mine, "to": node, "type": "caused"})
        effects = baci[(baci["event_id"] == event["event_id"]) & (baci["status"] == "ok")]
        for zone, column, kind, verb in (("origin_community", "origin_community", "community", "displaced from"),
                                         ("resettlement_site", "resettlement_site", "resettlement site",
                                          "resettled to")):
            if not _given(event.get(column)):
                continue
            label = str(event[column]) if event[column] != WITHHELD else f"{kind} of {event['event_id']}"
            attributes = {f"effect_ha_{name}".replace(" ", "_").replace("/", "_"): _plain(row["effect_ha"])
                          for z, name in headline if z == zone
                          for _, row in effects[(effects["zone"] == zone) & (effects["class_name"] == name)].iterrows()}
            connections.append({"from": node, "to": element(label, kind), "type": verb} | attributes)
    return {"elements": list(elements.values()), "connections": connections}


def _given(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value)) and str(value) != ""


def _plain(value: object) -> object:
    """A JSON-ready value: numpy scalars to Python, NaN to None."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    return value
