"""Run-level exports for SPSS and Kumu, and summaries of event effects across events.

One row per event x zone x class as an SPSS .sav with variable and value labels; the mines, companies,
events, communities and sites as a Kumu network (JSON); effects by the database's indicators.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.events.captions import KIND_NAMES, ZONE_LINKS, event_caption, event_when, zone_name
from pipeline.events.public import WITHHELD
from pipeline.events.records import event_kind
from pipeline.events.zones import IMPACT_ZONE, KIND_ZONES
from pipeline.io import atomic_path

__all__ = ["INDICATORS", "effects_by_indicator", "effects_figure", "spss_table", "kumu_network", "write_sav"]


INDICATORS = ("country", "company", "commodity", "lifecycle_stage", "event_type")


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
    ax.set_title(f"{class_name} in the {zone_name(zone)}, by {indicator.replace('_', ' ')}")
    figure.tight_layout()
    return figure


_SPSS_LABELS = {
    "aoi_id": "Mine area (AOI) id", "event_id": "Resettlement event id", "zone": "Event zone",
    "event_start": "First day of the event", "event_end": "Last day of the event",
    "class_code": "Land-cover class", "periods_before": "Periods in the before window",
    "periods_during": "Periods that overlap the event (in neither window)",
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
    for column in ("event_start", "event_end"):  # SPSS date variables
        if column in table.columns:
            table[column] = pd.to_datetime(table[column]).dt.date
    table = table.rename(columns={c: _spss_name(c) for c in table.columns})
    for column in table.columns:
        if table[column].dtype == object or pd.api.types.is_string_dtype(table[column]):
            table[column] = table[column].astype(object).where(table[column].notna(), "")
    labels = {_spss_name(c): label for c, label in _SPSS_LABELS.items() if _spss_name(c) in table.columns}
    value_labels = {
        "zone": {float(i): zone_name(z) for z, i in zones.items()},
        "class_code": {float(code): name for code, name in class_names.items()},
        "lifecycle_stage": {float(i): s for s, i in stages.items()},
    }
    return table, labels, value_labels


def kumu_network(events: pd.DataFrame, baci: pd.DataFrame, *, headline: Sequence[tuple[str, str]],
                 public: bool = False) -> dict:
    """A Kumu map: elements for mines, companies, events and the places the events moved people from and
    to, in the words of each event's type (community and resettlement site, old town and new town);
    connections company->mine, mine->event (labelled with what happened and when; a disaster's impact
    zone effects on it), event->community ("displaced from") and event->site ("resettled to"), or
    "relocated from" / "relocated to" for a town, carrying the BACI effects named in `headline`
    ((zone, class name) pairs, e.g. ("origin_community", "built-up")). Each event's `description` is its
    caption; `public` leaves the names out of it."""
    elements: dict[str, dict] = {}
    connections = []

    def element(label: str, kind: str, **attributes) -> str:
        key = f"{kind}: {label}"
        elements.setdefault(key, {"label": key, "type": kind} | {k: v for k, v in attributes.items() if _given(v)})
        return key

    def effects_of(zone: str, effects: pd.DataFrame) -> dict:
        return {f"effect_ha_{name}".replace(" ", "_").replace("/", "_"): _plain(row["effect_ha"])
                for z, name in headline if z == zone
                for _, row in effects[(effects["zone"] == zone) & (effects["class_name"] == name)].iterrows()}

    for _, event in events.iterrows():
        kind = event_kind(event.get("event_type"))
        mine = element(str(event.get("mine") or event.get("aoi_id") or event["event_id"]), "mine",
                       commodity=event.get("commodity"), country=event.get("country"))
        node = element(str(event["event_id"]), "event", description=event_caption(event, public=public),
                       **{k: _plain(event.get(k)) for k in (*INDICATORS, "year_start", "year_end", "event_start",
                                                            "event_end", "displaced_count", "displaced_unit_kind")})
        if _given(event.get("company")):
            connections.append({"from": element(str(event["company"]), "company"), "to": mine,
                                "type": "operates"})
        effects = baci[(baci["event_id"] == event["event_id"]) & (baci["status"] == "ok")]
        when = event_when(event)
        connections.append({"from": mine, "to": node, "type": "caused",
                            "label": f"{KIND_NAMES[kind]}{f' ({when})' if when else ''}"}
                           | effects_of(IMPACT_ZONE, effects))
        listed, located = KIND_ZONES[kind]
        for zone in (z for z in (*listed, *located) if z in ZONE_LINKS):  # (the impact zone is on mine->event)
            element_kind, verb, column = ZONE_LINKS[zone]
            if not _given(event.get(column)):
                continue
            label = str(event[column]) if event[column] != WITHHELD else f"{element_kind} of {event['event_id']}"
            connections.append({"from": node, "to": element(label, element_kind), "type": verb}
                               | effects_of(zone, effects))
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


_SAV_CREATED = 92  # offset of creation_date (9 bytes) and creation_time (8 bytes) in the .sav header


def write_sav(table: pd.DataFrame, path: Path, *, column_labels: dict[str, str],
              value_labels: dict[str, dict]) -> None:
    """An SPSS .sav with variable labels and value labels (pyreadstat)."""
    import pyreadstat

    with atomic_path(path) as tmp:
        pyreadstat.write_sav(table, str(tmp), column_labels=column_labels,
                             variable_value_labels={k: v for k, v in value_labels.items() if k in table.columns})
        with open(tmp, "r+b") as stream:  # the header's creation date and time: fixed, so equal runs give equal files
            stream.seek(_SAV_CREATED)
            stream.write(b"01 Jan 7000:00:00")
