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

from pipeline.events.public import WITHHELD
from pipeline.io import atomic_path, neutralise_formulas, plain_text

__all__ = ["INDICATORS", "effects_by_indicator", "effects_figure", "pooled_effect", "spss_table", "spss_dictionary",
           "kumu_network", "write_sav"]


INDICATORS = ("country", "company", "commodity", "lifecycle_stage", "event_type")


_Z95 = 1.959964


def pooled_effect(effect: Sequence[float], low: Sequence[float], high: Sequence[float]) -> tuple[float, float, float]:
    """Random-effects pooling (DerSimonian & Laird 1986) of events' effects with their 95 % intervals:
    (pooled effect, 95 % CI low, high). Each event's standard error is its interval's width / (2 x 1.96);
    the between-event variance tau^2 is DerSimonian and Laird's moment estimate. One event: its own
    effect and interval."""
    y, lo, hi = (np.asarray(v, dtype="float64") for v in (effect, low, high))
    keep = np.isfinite(y) & np.isfinite(lo) & np.isfinite(hi)
    y, se = y[keep], np.maximum((hi[keep] - lo[keep]) / (2 * _Z95), 1e-9)
    if not len(y):
        return np.nan, np.nan, np.nan
    if len(y) == 1:  # one event: its own (bootstrap, possibly asymmetric) interval
        return float(y[0]), float(lo[keep][0]), float(hi[keep][0])
    w = 1 / se**2
    fixed = np.sum(w * y) / np.sum(w)
    tau2 = 0.0
    if len(y) > 1:
        q = np.sum(w * (y - fixed) ** 2)
        tau2 = max(0.0, (q - (len(y) - 1)) / (np.sum(w) - np.sum(w**2) / np.sum(w)))
    w = 1 / (se**2 + tau2)
    pooled, se_pooled = np.sum(w * y) / np.sum(w), np.sqrt(1 / np.sum(w))
    return float(pooled), float(pooled - _Z95 * se_pooled), float(pooled + _Z95 * se_pooled)


def effects_by_indicator(baci: pd.DataFrame, events: pd.DataFrame, *, class_names: Sequence[str]) -> pd.DataFrame:
    """BACI effects summarised by the database's indicators: per indicator, value, zone and class the
    number of events, the mean, minimum and maximum effect (ha), and the events' effects pooled with
    their intervals (`pooled_effect`: pooled_effect_ha, pooled_ci95_low_ha, pooled_ci95_high_ha)."""
    effects = baci[(baci["status"] == "ok") & baci["class_name"].isin(class_names)]
    merged = effects.merge(events[["event_id", *INDICATORS]], on="event_id", how="left")
    rows = []
    for indicator in INDICATORS:
        grouped = merged.fillna({indicator: "(not given)"}).groupby([indicator, "zone", "class_name"])
        summary = grouped["effect_ha"].agg(n_events="count", mean_effect_ha="mean", min_effect_ha="min",
                                           max_effect_ha="max")
        pooled = pd.DataFrame([pooled_effect(g["effect_ha"], g["ci95_low_ha"], g["ci95_high_ha"]) for _, g in grouped],
                              columns=_POOLED, index=summary.index, dtype="float64")
        summary = summary.join(pooled).reset_index()
        rows.append(summary.rename(columns={indicator: "value"}).assign(indicator=indicator))
    columns = ["indicator", "value", "zone", "class_name", "n_events", "mean_effect_ha", "min_effect_ha",
               "max_effect_ha", *_POOLED]
    return pd.concat(rows, ignore_index=True)[columns] if rows else pd.DataFrame(columns=columns)


_POOLED = ["pooled_effect_ha", "pooled_ci95_low_ha", "pooled_ci95_high_ha"]


def effects_figure(summary: pd.DataFrame, indicator: str, *, zone: str, class_name: str) -> Figure:
    """A horizontal bar chart of the pooled effect (ha) with its 95 % CI by one indicator, for one zone
    and class."""
    rows = summary[(summary["indicator"] == indicator) & (summary["zone"] == zone)
                   & (summary["class_name"] == class_name)].sort_values("pooled_effect_ha")
    figure, ax = plt.subplots(figsize=(8, 0.5 * max(len(rows), 2) + 1.5))
    labels = [f"{v} (n={n})" for v, n in zip(rows["value"], rows["n_events"])]
    effect = rows["pooled_effect_ha"].to_numpy()
    ax.barh(labels, effect, color=["#b2182b" if v < 0 else "#2166ac" for v in effect])
    ax.errorbar(effect, labels, xerr=[effect - rows["pooled_ci95_low_ha"].to_numpy(),
                                      rows["pooled_ci95_high_ha"].to_numpy() - effect],
                fmt="none", ecolor="black", capsize=3, linewidth=1)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"BACI effect on {class_name} (ha), events pooled, 95% CI")
    ax.set_title(f"{class_name} at the {zone.replace('_', ' ')}, by {indicator.replace('_', ' ')}")
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
        "zone": {float(i): z.replace("_", " ") for z, i in zones.items()},
        "class_code": {float(code): name for code, name in class_names.items()},
        "lifecycle_stage": {float(i): s for s, i in stages.items()},
    }
    return table, labels, value_labels


def kumu_network(events: pd.DataFrame, baci: pd.DataFrame, *, headline: Sequence[tuple[str, str]]) -> dict:
    """A Kumu map (its JSON "blueprint" import): elements for mines, companies, events, communities and
    resettlement sites; connections company->mine, mine->event, event->community and event->site, the
    last two carrying the BACI effects named in `headline` ((zone, class name) pairs, e.g.
    ("origin_community", "built-up")) with their 95 % intervals.

    Every element has a stable `id` (Kumu tells elements apart by id where given, so two mines'
    communities of the same name stay two elements; connections refer to ids): "mine:<aoi or mine>",
    "company:<name>", "event:<event_id>", "community:<mine>:<name>", "site:<mine>:<name>". Labels are
    what a reader looks for: the mine's, company's, community's or site's name, an event's type and
    years ("planned resettlement, 2018"). Years and counts are integers."""
    elements: dict[str, dict] = {}
    connections = []

    def element(key: str, label: str, kind: str, **attributes) -> str:
        key, label = plain_text(key), plain_text(label)  # Kumu shows labels and attributes as text: no markup
        elements.setdefault(key, {"id": key, "label": label, "type": kind}
                            | {k: _plain_text(v) for k, v in attributes.items() if _given(v)})
        return key

    for _, event in events.iterrows():
        mine_key = str(event.get("aoi_id") if _given(event.get("aoi_id")) else event.get("mine") or event["event_id"])
        mine_name = str(event.get("mine")) if _given(event.get("mine")) else mine_key
        mine = element(f"mine:{mine_key}", mine_name, "mine", commodity=event.get("commodity"),
                       country=event.get("country"))
        years = _years_text(event)
        kind = str(event.get("event_type")) if _given(event.get("event_type")) else "event"
        node = element(f"event:{event['event_id']}", f"{kind}, {years}" if years else kind, "event",
                       event_id=str(event["event_id"]), description=str(event.get("source") or "") or None,
                       **{k: _plain(event.get(k), integer=k in _INTEGERS) for k in (
                           *INDICATORS, "year_start", "year_end", "displaced_count", "displaced_unit_kind")})
        if _given(event.get("company")):
            company = element(f"company:{event['company']}", str(event["company"]), "company")
            connections.append({"from": company, "to": mine, "type": "operates"})
        connections.append({"from": mine, "to": node, "type": "caused"})
        effects = baci[(baci["event_id"] == event["event_id"]) & (baci["status"] == "ok")]
        for zone, column, kind, prefix, verb in (
                ("origin_community", "origin_community", "community", "community", "displaced from"),
                ("resettlement_site", "resettlement_site", "resettlement site", "site", "resettled to")):
            if not _given(event.get(column)):
                continue
            withheld = event[column] == WITHHELD
            name = f"{kind} of {event['event_id']}" if withheld else str(event[column])
            key = f"{prefix}:{mine_key}:{event['event_id'] if withheld else name}"
            attributes, lines = {}, []
            for z, class_name in headline:
                rows = effects[(effects["zone"] == zone) & (effects["class_name"] == class_name)] if z == zone else []
                for _, row in (rows.iterrows() if len(rows) else ()):
                    field = f"effect_ha_{class_name}".replace(" ", "_").replace("/", "_")
                    attributes |= {field: _plain(row["effect_ha"]), f"{field}_ci95_low": _plain(row["ci95_low_ha"]),
                                   f"{field}_ci95_high": _plain(row["ci95_high_ha"])}
                    lines.append(f"{class_name}: {row['effect_ha']:+.2f} ha (95% CI {row['ci95_low_ha']:+.2f} "
                                 f"to {row['ci95_high_ha']:+.2f})")
            connection = {"from": node, "to": element(key, name, kind), "type": verb} | attributes
            if lines:
                connection["description"] = "BACI effects: " + "; ".join(lines)
            connections.append(connection)
    return {"elements": list(elements.values()), "connections": connections}


_INTEGERS = {"year_start", "year_end", "displaced_count"}


def _years_text(event: pd.Series) -> str:
    start, end = event.get("year_start"), event.get("year_end")
    if not _given(start):
        return str(int(end)) if _given(end) else ""
    return str(int(start)) if not _given(end) or int(end) == int(start) else f"{int(start)}-{int(end)}"


def _given(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value)) and str(value) != ""


def _plain_text(value: object) -> object:
    return plain_text(value) if isinstance(value, str) else _plain(value)


def _plain(value: object, *, integer: bool = False) -> object:
    """A JSON-ready value: numpy scalars to Python, NaN to None; `integer`: a whole number as int."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return None
        return int(value) if integer and float(value).is_integer() else float(value)
    return value


_SAV_CREATED = 92  # offset of creation_date (9 bytes) and creation_time (8 bytes) in the .sav header


def spss_dictionary(table: pd.DataFrame) -> tuple[dict[str, str], dict[str, str], dict[str, int]]:
    """The SPSS measurement level, display format and column width of each variable of `spss_table`:
    labelled codes nominal (zone, class) or ordinal (lifecycle stage) as F2.0; years scale F4.0; counts
    scale F8.0; percentages F8.2 and areas F10.2 (scale); strings nominal, as wide as their longest value."""
    measure, formats, widths = {}, {}, {}
    for column in table.columns:
        values = table[column]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            measure[column] = "nominal"
            widths[column] = int(max(8, values.astype(str).str.len().max() if len(values) else 0))
            continue
        if column in ("zone", "class_code", "lifecycle_stage"):
            measure[column], formats[column] = ("ordinal" if column == "lifecycle_stage" else "nominal"), "F2.0"
        elif column in ("year_start", "year_end"):
            measure[column], formats[column] = "scale", "F4.0"
        elif column == "displaced_count":
            measure[column], formats[column] = "scale", "F8.0"
        elif column.endswith("_ha"):
            measure[column], formats[column] = "scale", "F10.2"
        else:
            measure[column], formats[column] = "scale", "F8.2"
        widths[column] = max(8, int(formats[column][1:].split(".")[0]))
    return measure, formats, widths


def write_sav(table: pd.DataFrame, path: Path, *, column_labels: dict[str, str],
              value_labels: dict[str, dict], measure: dict[str, str] | None = None,
              formats: dict[str, str] | None = None, widths: dict[str, int] | None = None) -> None:
    """An SPSS .sav with variable labels and value labels, and where given the measurement levels,
    display formats and column widths (`spss_dictionary`) (pyreadstat); text cells that a spreadsheet
    would run as formulas are neutralised, as in every CSV (`pipeline.io.neutralise_formulas`)."""
    import pyreadstat

    table = neutralise_formulas(table)
    with atomic_path(path) as tmp:
        pyreadstat.write_sav(table, str(tmp), column_labels=column_labels,
                             variable_value_labels={k: v for k, v in value_labels.items() if k in table.columns},
                             variable_measure=measure, variable_format=formats, variable_display_width=widths)
        with open(tmp, "r+b") as stream:  # the header's creation date and time: fixed, so equal runs give equal files
            stream.seek(_SAV_CREATED)
            stream.write(b"01 Jan 7000:00:00")
