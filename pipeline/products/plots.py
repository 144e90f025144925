"""Figures of a run's outputs for notebooks and reports (matplotlib; no computation of their own)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from pipeline.config import ClassDef

__all__ = ["class_maps_figure", "class_area_figure", "scene_inventory_figure", "composites_figure",
           "ndvi_series_figure", "confusion_matrix_figure", "area_estimates_figure", "baci_effects_figure",
           "events_by_figure", "events_timeline_figure", "event_effects_figure"]

_ZONE_COLOUR, _CONTROL_COLOUR = "#c2410c", "#64748b"  # event charts: the event's zone, the control ring


def class_maps_figure(class_map: xr.DataArray, classes: Sequence[ClassDef], *, columns: int = 5) -> Figure:
    """A grid of class maps, one panel per period, with the class legend."""
    periods = list(class_map["period"].values)
    rows = int(np.ceil(len(periods) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows + 0.8), squeeze=False)
    lookup = np.full(256, len(classes), dtype=int)  # index of each code in the colour list; last = nodata
    for i, c in enumerate(classes):
        lookup[c.code] = i
    colours = ListedColormap([c.colour for c in classes] + ["#ffffff"])
    for ax, period in zip(axes.flat, periods):
        ax.imshow(lookup[class_map.sel(period=period).values], cmap=colours, vmin=0, vmax=len(classes),
                  interpolation="nearest")
        ax.set_title(str(period))
    for ax in axes.flat:
        ax.set_axis_off()
    figure.legend(handles=[Patch(color=c.colour, label=c.name) for c in classes], loc="lower center",
                  ncol=len(classes), frameon=False)
    return figure


def class_area_figure(class_area: pd.DataFrame, classes: Sequence[ClassDef]) -> Figure:
    """Each class's share of the mapped area per period, stacked to 100 % (top), and the share of the AOI
    without data in each period, split into what gap filling gave a class and what stayed unmapped
    (bottom), from a class_area.csv table: clouds show as grey bars, not as a change of land cover.
    A table without the share columns (an older run) gives the stacked areas (ha)."""
    codes = [c.code for c in classes if c.code in set(class_area["class_code"])]
    colours = [c.colour for c in classes if c.code in codes]
    names = [c.name for c in classes if c.code in codes]
    if "nodata_pct" not in class_area:
        table = class_area.pivot_table(index="period", columns="class_code", values="area_ha", aggfunc="sum",
                                       sort=False)
        figure, ax = plt.subplots(figsize=(9, 4.5))
        when = _period_middles(class_area, table.index)
        ax.stackplot(when, [table[c] for c in codes], colors=colours, labels=names)
        ax.set_ylabel("area (ha)")
        ax.set_xlabel("period (plotted at its middle)")
        ax.legend(loc="center left", bbox_to_anchor=(1, 0.5), frameon=False)
        ax.set_xlim(when.min(), when.max()) if len(when) > 1 else None
        figure.tight_layout()
        return figure
    table = class_area.pivot_table(index="period", columns="class_code", values="area_pct", aggfunc="sum",
                                   sort=False)
    per_period = class_area.drop_duplicates("period").set_index("period").loc[table.index]
    when = _period_middles(class_area, table.index)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.8), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1]})
    top.stackplot(when, [table[c].fillna(0) for c in codes], colors=colours, labels=names)
    top.set_ylim(0, 100)
    top.set_ylabel("share of the mapped area (%)")
    top.legend(loc="center left", bbox_to_anchor=(1, 0.5), frameon=False)
    width = _bar_width(when)
    filled = per_period["filled_pct"].to_numpy(float) if "filled_pct" in per_period else np.zeros(len(when))
    nodata = per_period["nodata_pct"].to_numpy(float)
    bottom.bar(when, filled, width, color="#9e9e9e", label="gap-filled")
    bottom.bar(when, nodata - filled, width, bottom=filled, color="#424242", label="no class")
    bottom.set_ylabel("no data\n(% of the AOI)")
    bottom.set_ylim(0, max(10.0, float(np.nanmax(nodata)) * 1.15 if len(nodata) else 10.0))
    bottom.legend(loc="center left", bbox_to_anchor=(1, 0.5), frameon=False)
    bottom.set_xlabel("period (plotted at its middle)")
    if len(when) > 1:
        top.set_xlim(when.min() - width, when.max() + width)
    figure.tight_layout()
    return figure


def _bar_width(when: pd.DatetimeIndex) -> pd.Timedelta:
    """A bar width for periods at `when`: 60 % of the smallest gap between them (a month for one)."""
    if len(when) < 2:
        return pd.Timedelta(days=30)
    return pd.Timedelta(np.diff(np.sort(when.values)).min()) * 0.6


def _period_middles(table: pd.DataFrame, periods) -> pd.DatetimeIndex:
    """The middle day of each period (from the table's period_start/period_end; a year id otherwise)."""
    if {"period_start", "period_end"} <= set(table.columns):
        dates = table.drop_duplicates("period").set_index("period").loc[list(periods)]
        start, end = pd.to_datetime(dates["period_start"]), pd.to_datetime(dates["period_end"])
        return pd.DatetimeIndex(start + (end + pd.Timedelta(days=1) - start) / 2)
    return pd.to_datetime([f"{int(p)}-07-01" for p in periods])


# ------------------------------------------------------------------------------ one AOI's scenes


def scene_inventory_figure(inventory: pd.DataFrame) -> Figure:
    """Clear share of the AOI per acquisition (top) and scenes per year, all and mostly clear (bottom),
    from `explore.scene_inventory`."""
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), gridspec_kw={"height_ratios": [2, 1]})
    dates = pd.DatetimeIndex(inventory["date"])
    top.vlines(dates, 0, inventory["clear_fraction"], color="#4a7ab5", linewidth=2)
    top.plot(dates, inventory["clear_fraction"], "o", color="#4a7ab5", markersize=4)
    top.set_ylim(0, 1.02)
    top.set_ylabel("clear share of the AOI")
    top.set_title(f"{len(inventory)} acquisitions, {dates.min():%Y-%m-%d} to {dates.max():%Y-%m-%d}")
    years = np.asarray(dates.year)
    clear = inventory["clear_fraction"].to_numpy() >= 0.5
    per_year = pd.DataFrame({"all": inventory["n_scenes"].groupby(years).sum(),
                             "at least half clear": inventory["n_scenes"].where(clear, 0).groupby(years).sum()})
    width = 0.4
    bottom.bar(per_year.index - width / 2, per_year["all"], width, label="all scenes", color="#bbbbbb")
    bottom.bar(per_year.index + width / 2, per_year["at least half clear"], width, label="at least half clear",
               color="#4a7ab5")
    bottom.set_ylabel("scenes")
    bottom.set_xticks(per_year.index)
    bottom.legend(frameon=False, loc="upper left", ncol=2)
    figure.tight_layout()
    return figure


def _stretched(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Linear display stretch of [low, high] to [0, 1], clipped; NaN stays NaN."""
    return np.clip((np.asarray(values, dtype=float) - low) / (high - low), 0, 1)


def composites_figure(composites: xr.Dataset, bands: Sequence[str], stretch: dict[str, tuple[float, float]], *,
                      columns: int = 5, title: str | None = None) -> Figure:
    """One panel per period of a (period, y, x) composite series shown with three bands as red, green
    and blue, each stretched to its (low, high) from `explore.band_stretch`; nodata is white."""
    if len(bands) != 3:
        raise ValueError(f"three bands (red, green, blue channels) are needed, got {list(bands)}")
    periods = list(composites["period"].values)
    rows = int(np.ceil(len(periods) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3.2 * rows + 0.6), squeeze=False)
    for ax, period in zip(axes.flat, periods):
        scene = composites.sel(period=period)
        rgb = np.dstack([_stretched(scene[b].values, *stretch[b]) for b in bands])
        rgb[~np.isfinite(rgb).all(axis=2)] = 1.0
        ax.imshow(rgb, interpolation="nearest")
        ax.set_title(str(period))
    for ax in axes.flat:
        ax.set_axis_off()
    figure.suptitle(title or " / ".join(bands))
    figure.tight_layout()
    return figure


def ndvi_series_figure(scene_means: pd.DataFrame, composite_means: pd.DataFrame | None = None, *,
                       event_years: Sequence[float] = ()) -> Figure:
    """NDVI over time in each area: per acquisition (dots, from `explore.zonal_mean` over `time`) and
    per period's composite (at the middle of each period, over `period`); event years as dashed lines."""
    figure, ax = plt.subplots(figsize=(11, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (area, rows) in enumerate(scene_means.groupby("area", sort=False)):
        colour = colours[i % len(colours)]
        ax.plot(pd.DatetimeIndex(rows["time"]), rows["mean"], "o-", color=colour, markersize=3, linewidth=0.6,
                alpha=0.7, label=f"{area}, per scene")
        if composite_means is not None:
            period_rows = composite_means[composite_means["area"] == area]
            middles = _period_middles(period_rows, period_rows["period"])
            ax.plot(middles, period_rows["mean"], "s--", color=colour, linewidth=1.8, markersize=5,
                    label=f"{area}, composite per period")
    for year in event_years:
        if pd.notna(year):
            ax.axvline(pd.Timestamp(f"{int(year)}-01-01"), color="black", linestyle=":", linewidth=1)
            ax.annotate(f"event {int(year)}", (pd.Timestamp(f"{int(year)}-01-01"), ax.get_ylim()[1]),
                        textcoords="offset points", xytext=(3, -12), fontsize=8)
    ax.set_ylabel("mean NDVI (clear pixels)")
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5), frameon=False, fontsize=8)
    figure.tight_layout()
    return figure


# ------------------------------------------------------------------------ classifier and validation


def confusion_matrix_figure(confusion: pd.DataFrame, *, title: str = "") -> Figure:
    """A confusion matrix (from `explore.confusion_table`) as a heat map of row shares with the counts."""
    counts = confusion.to_numpy()
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure, ax = plt.subplots(figsize=(1.1 * len(confusion.columns) + 2.5, 0.8 * len(confusion.index) + 2))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(counts):
        ax.text(j, i, str(n), ha="center", va="center", color="white" if shares[i, j] > 0.6 else "black", fontsize=9)
    ax.set_xticks(range(len(confusion.columns)), confusion.columns, rotation=35, ha="right")
    ax.set_yticks(range(len(confusion.index)), confusion.index)
    ax.set_xlabel(confusion.columns.name or "map")
    ax.set_ylabel(confusion.index.name or "reference")
    ax.set_title(title)
    figure.tight_layout()
    return figure


def area_estimates_figure(table: pd.DataFrame) -> Figure:
    """Mapped and error-adjusted area of each class with its 95 % CI (an `explore.area_estimates` table);
    the reference area as a black tick where the table has one."""
    figure, ax = plt.subplots(figsize=(9, 4.5))
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["mapped_area_ha"], 0.4, color="#bbbbbb", label="mapped")
    ax.bar(x + 0.2, table["adjusted_area_ha"], 0.4, color="#4a7ab5", label="error-adjusted (95 % CI)",
           yerr=[table["adjusted_area_ha"] - table["ci95_low_ha"], table["ci95_high_ha"] - table["adjusted_area_ha"]],
           capsize=3)
    if "reference_area_ha" in table:
        ax.plot(x + 0.2, table["reference_area_ha"], "_", color="black", markersize=18, markeredgewidth=2,
                label="reference (truth)")
    ax.set_xticks(x, table["class_name"], rotation=20, ha="right")
    ax.set_ylabel("area (ha)")
    ax.legend(frameon=False)
    figure.tight_layout()
    return figure


# -------------------------------------------------------------------------------------- across AOIs


def baci_effects_figure(baci: pd.DataFrame) -> Figure:
    """Each BACI effect (ha) with its 95 % CI, one row per event, zone and class (`explore.baci_effects`)."""
    rows = baci.sort_values(["zone", "class_name", "event_id"]).reset_index(drop=True)
    figure, ax = plt.subplots(figsize=(9, 0.35 * max(len(rows), 3) + 1.5))
    y = np.arange(len(rows))[::-1]
    colours = ["#b2182b" if v < 0 else "#2166ac" for v in rows["effect_ha"]]
    ax.errorbar(rows["effect_ha"], y, xerr=[rows["effect_ha"] - rows["ci95_low_ha"],
                                            rows["ci95_high_ha"] - rows["effect_ha"]],
                fmt="none", ecolor="#777777", capsize=3)
    ax.scatter(rows["effect_ha"], y, c=colours, zorder=3)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y, [f"{e}: {z.replace('_', ' ')}, {c}" for e, z, c in
                      zip(rows["event_id"], rows["zone"], rows["class_name"])], fontsize=8)
    ax.set_xlabel("BACI effect (ha), 95 % CI")
    figure.tight_layout()
    return figure


def events_by_figure(table: pd.DataFrame, *, title: str = "") -> Figure:
    """Events per indicator value, split by whether a displaced count is given (left), and the displaced
    households, families and people stated (right; units kept apart, not added), from `explore.events_by`."""
    rows = table.iloc[::-1]
    labels = [str(v) for v in rows.index]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 0.35 * max(len(rows), 3) + 1.6), sharey=True)
    left.barh(labels, rows["with_count"], color="#4a7ab5", label="with a displaced count")
    left.barh(labels, rows["events"] - rows["with_count"], left=rows["with_count"], color="#bbbbbb",
              label="without")
    left.set_xlabel("events")
    left.legend(frameon=False, loc="lower right")
    y = np.arange(len(rows))
    for offset, (unit, colour) in zip((-0.27, 0, 0.27), (("households", "#d95f02"), ("families", "#7570b3"),
                                                          ("people", "#1b9e77"))):
        right.barh(y + offset, rows[unit].where(rows[unit] > 0), 0.27, color=colour, label=unit)
    right.set_xscale("log")
    right.set_xlabel("displaced, as stated (sum of the records giving that unit; log scale)")
    right.legend(frameon=False, loc="lower right")
    figure.suptitle(title or f"events by {table.index.name.replace('_', ' ')}")
    figure.tight_layout()
    return figure


def events_timeline_figure(events: pd.DataFrame, *, colour_by: str = "lifecycle_stage") -> Figure:
    """One line per event from its start to its end year (a dot where no end is given), labelled by mine
    and country, coloured by an indicator; records without a year are left out (counted in the title)."""
    dated = events[events["year_start"].notna()].sort_values(["year_start", "mine"]).reset_index(drop=True)
    figure, ax = plt.subplots(figsize=(11, 0.3 * max(len(dated), 3) + 1.5))
    values = sorted(dated[colour_by].fillna("(not given)").unique())
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colour_of = {v: colours[i % len(colours)] for i, v in enumerate(values)}
    y = np.arange(len(dated))[::-1]
    for yi, (_, event) in zip(y, dated.iterrows()):
        colour = colour_of[event[colour_by] if pd.notna(event[colour_by]) else "(not given)"]
        end = event["year_end"] if pd.notna(event["year_end"]) else event["year_start"]
        ax.plot([event["year_start"], end], [yi, yi], color=colour, linewidth=3, solid_capstyle="round")
        ax.plot(event["year_start"], yi, "o", color=colour, markersize=5)
    ax.set_yticks(y, [f"{m} ({c})" for m, c in zip(dated["mine"], dated["country"])], fontsize=8)
    ax.legend(handles=[Patch(color=colour_of[v], label=v) for v in values], frameon=False,
              loc="center left", bbox_to_anchor=(1, 0.5), title=colour_by.replace("_", " "))
    ax.set_xlabel("year")
    ax.set_title(f"{len(dated)} events with a year" + (f" ({len(events) - len(dated)} without)"
                                                        if len(dated) < len(events) else ""))
    figure.tight_layout()
    return figure


def event_effects_figure(rows: Sequence[dict], classes: Sequence[ClassDef], *,
                         zone_names: dict[str, str]) -> Figure:
    """Per zone: the class shares before and after in the zone and the control ring (left), and the
    BACI effect in ha with its 95 % CI (right). `rows`: the report's effect rows of one event (zone,
    class_name, status, impact/control shares before and after, effect_ha, ci95_low_ha, ci95_high_ha)."""
    zones = list(dict.fromkeys(r["zone"] for r in rows if r["status"] == "ok"))
    names = [c.name for c in classes]
    figure = Figure(figsize=(10, 0.55 * len(names) * len(zones) + 1.2), layout="constrained")
    axes = figure.subplots(len(zones), 2, squeeze=False, sharey=True)
    y = np.arange(len(names))
    for (left, right), zone in zip(axes, zones):
        here = {r["class_name"]: r for r in rows if r["zone"] == zone and r["status"] == "ok"}

        def get(key: str, here=here) -> np.ndarray:
            return np.array([here[n][key] if n in here and here[n][key] is not None else np.nan for n in names],
                            dtype=float)

        height = 0.2
        for offset, key, colour, alpha, label in ((-1.5, "impact_share_before", _ZONE_COLOUR, 0.45, "zone, before"),
                                                  (-0.5, "impact_share_after", _ZONE_COLOUR, 1.0, "zone, after"),
                                                  (0.5, "control_share_before", _CONTROL_COLOUR, 0.45, "control, before"),
                                                  (1.5, "control_share_after", _CONTROL_COLOUR, 1.0, "control, after")):
            left.barh(y + offset * height, get(key) * 100, height=height, color=colour, alpha=alpha, label=label)
        left.set_yticks(y, names)
        left.set_xlabel("share of the area (%)")
        left.set_title(f"{zone_names.get(zone, zone)}: before and after", loc="left", fontsize=10)
        effect, low, high = get("effect_ha"), get("ci95_low_ha"), get("ci95_high_ha")
        colours = ["#b91c1c" if h < 0 else "#1d4ed8" if lo > 0 else "#9ca3af" for lo, h in zip(low, high)]
        right.barh(y, effect, height=0.5, color=colours)
        right.errorbar(effect, y, xerr=[effect - low, high - effect], fmt="none", ecolor="#111827", capsize=3,
                       linewidth=1)
        right.axvline(0, color="#111827", linewidth=0.8)
        right.set_xlabel("BACI effect (ha), 95% CI")
        right.set_title(f"{zone_names.get(zone, zone)}: effect against the control", loc="left", fontsize=10)
        for ax in (left, right):
            ax.spines[["top", "right"]].set_visible(False)
            ax.grid(axis="x", color="#e5e7eb", linewidth=0.8)
            ax.set_axisbelow(True)
    axes[0][0].invert_yaxis()  # shared by all panels: first class on top
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside upper left", ncol=4, fontsize=9, frameon=False)
    return figure
