"""What changed with an event: class areas in its zones before versus after, and BACI effects with
spatial block-bootstrap intervals."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.composite.periods import Period, periods_of
from pipeline.config import ClassDef

log = logging.getLogger(__name__)

__all__ = ["EVENT_METRICS_COLUMNS", "BACI_COLUMNS", "Window", "EventPeriods", "event_span", "event_metrics_table",
           "event_periods", "mixed_periods", "baci_effects"]


EVENT_METRICS_COLUMNS = ["aoi_id", "event_id", "event_start", "event_end", "zone", "class_code", "class_name",
                         "periods_before", "periods_during", "periods_after", "zone_area_ha", "area_ha_before",
                         "area_ha_after", "change_ha", "status"]

WindowUnit = Literal["years", "days", "periods"]


@dataclass(frozen=True)
class Window:
    """Which periods are compared before and after an event, on each side: the periods within `before`
    years (or days) of the event's start, or the `before` periods nearest to it ("periods"); the same
    after the event's end. A period that overlaps the event is in neither window ("during")."""

    before: int = 2
    after: int = 2
    before_unit: WindowUnit = "years"
    after_unit: WindowUnit = "years"

    def describe(self, side: Literal["before", "after"], start: pd.Timestamp, end: pd.Timestamp) -> str:
        """The window of an event from `start` to `end` in words: its days, or the N periods."""
        n, unit = (self.before, self.before_unit) if side == "before" else (self.after, self.after_unit)
        if unit == "periods":
            return f"the {n} period{'s' if n != 1 else ''} {side} {(start if side == 'before' else end).date()}"
        if side == "before":
            first, last = _reach(start, n, unit, -1), start - pd.Timedelta(days=1)
        else:
            first, last = end + pd.Timedelta(days=1), _reach(end, n, unit, +1)
        return f"{first.date()} to {last.date()}"


@dataclass(frozen=True)
class EventPeriods:
    """The ids of the periods before, during and after an event (each in time order)."""

    before: list[str]
    during: list[str]
    after: list[str]


def event_span(event: pd.Series) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """(first day, last day) of an event: its `event_start`/`event_end` (from date, date_start/date_end,
    see `records.normalise_events`), else 1 January of year_start to 31 December of year_end (either
    year standing for both where one is missing); None without any date or year."""
    if pd.notna(event.get("event_start")):
        start = pd.Timestamp(event["event_start"])
        return start, pd.Timestamp(event["event_end"]) if pd.notna(event.get("event_end")) else start
    first = event.get("year_start") if pd.notna(event.get("year_start")) else event.get("year_end")
    last = event.get("year_end") if pd.notna(event.get("year_end")) else first
    if pd.isna(first):
        return None
    return pd.Timestamp(year=int(first), month=1, day=1), pd.Timestamp(year=int(last), month=12, day=31)


def _reach(day: pd.Timestamp, n: int, unit: WindowUnit, sign: int) -> pd.Timestamp:
    return day + sign * (pd.DateOffset(years=n) if unit == "years" else pd.Timedelta(days=n))


def event_periods(event: pd.Series, periods: Sequence[Period], window: Window = Window()) -> EventPeriods:
    """The periods of the before window, of the event itself and of the after window.

    Before: periods that end before the event starts, within `window.before` years or days of its start,
    or the `window.before` nearest ones. After: periods that start after the event ends, likewise.
    During: periods that overlap the event. A record without date or year has empty windows.
    """
    span = event_span(event)
    if span is None:
        return EventPeriods([], [], [])
    start, end = span
    ordered = sorted(periods)
    earlier = [p for p in ordered if pd.Timestamp(p.end) < start]
    later = [p for p in ordered if pd.Timestamp(p.start) > end]
    during = [p.id for p in ordered if pd.Timestamp(p.start) <= end and pd.Timestamp(p.end) >= start]
    if window.before_unit == "periods":
        before = earlier[len(earlier) - window.before:] if window.before < len(earlier) else earlier
    else:
        reach = _reach(start, window.before, window.before_unit, -1)
        before = [p for p in earlier if pd.Timestamp(p.end) >= reach]
    if window.after_unit == "periods":
        after = later[:window.after]
    else:
        reach = _reach(end, window.after, window.after_unit, +1)
        after = [p for p in later if pd.Timestamp(p.start) <= reach]
    return EventPeriods([p.id for p in before], during, [p.id for p in after])


def mixed_periods(event: pd.Series, period_scenes: dict[str, list[str]]) -> list[str]:
    """Warnings that teach: one per period whose composite merges acquisitions from before and after the
    event, naming the scenes on each side and the `composite.period` settings that would separate them.
    `period_scenes`: period id -> the ISO times of its acquisitions (the composite stage records them)."""
    span = event_span(event)
    if span is None:
        return []
    start, end = span
    found = []
    for period, scenes in period_scenes.items():
        times = pd.to_datetime(sorted(scenes))
        before = [t for t in times if t.normalize() < start]
        after = [t for t in times if t.normalize() > end]
        if not (before and after):
            continue
        days = lambda stamps: ", ".join(s.date().isoformat() for s in stamps)  # noqa: E731
        windows = (f"[{{name: before, start: {before[0].date()}, end: {(start - pd.Timedelta(days=1)).date()}}}, "
                   f"{{name: after, start: {(end + pd.Timedelta(days=1)).date()}, end: {after[-1].date()}}}]")
        found.append(f"event {event['event_id']!r}{_when(event)} falls inside period {period}, whose composite "
                     f"merges {len(before)} acquisition(s) before it ({days(before)}) with {len(after)} after it "
                     f"({days(after)}), so the change it caused cannot be seen there; to separate them set "
                     f"composite.period: scene, or composite.period: windows with windows: {windows}")
    return found


def event_metrics_table(
    event: pd.Series,
    zone_counts: dict[str, xr.DataArray | str],
    classes: Sequence[ClassDef],
    *,
    pixel_area_ha: float,
    window: Window = Window(),
) -> pd.DataFrame:
    """Per zone and class: mean area (ha) over the before and after windows and the change.

    `zone_area_ha` is the zone's classified area (its largest over the periods; nodata not counted).
    `zone_counts`: zone -> computed (period, class_code) pixel counts (with the period dates of
    `period_coords`), or the reason it was skipped. Periods that overlap the event are listed in
    `periods_during` and are in neither window.
    """
    rows = []
    base = {"aoi_id": event.get("aoi_id"), "event_id": event["event_id"], **_dates(event)}
    warned = False
    for zone, counts in zone_counts.items():
        if isinstance(counts, str):
            rows.append(base | {"zone": zone, "status": counts})
            continue
        periods = periods_of(counts)
        found = event_periods(event, periods, window)
        codes = [c.code for c in classes]
        zone_ha = float(counts.sel(class_code=codes).sum("class_code").max()) * pixel_area_ha
        status = _window_status(event, periods, found, window)
        if status != "ok" and not warned:  # an event table spans many mines and years: report, go on
            log.warning("aoi %r: event %r%s %s; see its status in event_metrics.csv and baci.csv",
                        event.get("aoi_id"), event["event_id"], _when(event), status)
            warned = True
        for c in classes:
            area = counts.sel(class_code=c.code) * pixel_area_ha
            area_before = float(area.sel(period=found.before).mean()) if found.before else np.nan
            area_after = float(area.sel(period=found.after).mean()) if found.after else np.nan
            rows.append(base | {
                "zone": zone, "class_code": c.code, "class_name": c.name, **_listed(found),
                "zone_area_ha": zone_ha, "area_ha_before": area_before, "area_ha_after": area_after,
                "change_ha": area_after - area_before, "status": status,
            })
    return pd.DataFrame(rows, columns=EVENT_METRICS_COLUMNS)


def _dates(event: pd.Series) -> dict:
    span = event_span(event)
    return {"event_start": span[0].date().isoformat() if span else None,
            "event_end": span[1].date().isoformat() if span else None}


def _when(event: pd.Series) -> str:
    """' (2013)', ' (2013-2014)' for events dated by years; ' (2019-01-25)', ' (... to ...)' by days."""
    span = event_span(event)
    if span is None:
        return ""
    first, last = span
    if (first.month, first.day, last.month, last.day) == (1, 1, 12, 31):
        return f" ({first.year})" if first.year == last.year else f" ({first.year}-{last.year})"
    start, end = first.date().isoformat(), last.date().isoformat()
    return f" ({start})" if start == end else f" ({start} to {end})"


def _listed(found: EventPeriods) -> dict[str, str]:
    return {"periods_before": _span(found.before), "periods_during": _span(found.during),
            "periods_after": _span(found.after)}


def _window_status(event: pd.Series, periods: Sequence[Period], found: EventPeriods, window: Window) -> str:
    """"ok", or why the event cannot be compared before and after: no date or year, or an empty window
    (e.g. an event outside the dates of the imagery)."""
    if found.before and found.after:
        return "ok"
    if event_span(event) is None:
        return "not analysable: no date or year (date, date_start, year_start, year_end) in the record"
    start, end = event_span(event)
    empty = " or ".join(f"the {side} window ({window.describe(side, start, end)})"
                        for side, ids in (("before", found.before), ("after", found.after)) if not ids)
    ordered = sorted(periods)
    imagery = f"{ordered[0].start} to {ordered[-1].end}" if ordered else "none"
    during = f"; {_span(found.during)} overlap(s) the event" if found.during else ""
    return f"not analysable: no period of the imagery ({imagery}) in {empty}{during}"


def _span(periods: Sequence[str]) -> str:
    """Period ids as one cell: ';'-separated, in time order."""
    return ";".join(periods)


BACI_COLUMNS = [
    "aoi_id", "event_id", "event_start", "event_end", "zone", "class_code", "class_name", "periods_before",
    "periods_during", "periods_after",
    "impact_share_before", "impact_share_after", "control_share_before", "control_share_after",
    "impact_change_pct", "control_change_pct", "control_change_ci95_low_pct", "control_change_ci95_high_pct",
    "effect_pct_points", "effect_ha", "ci95_low_ha", "ci95_high_ha", "impact_area_ha", "impact_blocks",
    "control_blocks", "status",
]


def _block_window_counts(class_map: np.ndarray, in_zone: np.ndarray, codes: Sequence[int], window: np.ndarray,
                         *, block_px: int, nodata: int) -> tuple[np.ndarray, np.ndarray]:
    """Per spatial block of the zone, summed over the window's periods: class pixels (block, class) and
    classified pixels (block,). `class_map` (period, y, x) uint8; `window` bool over periods."""
    rows, cols = np.nonzero(in_zone)
    n_block_cols = -(-class_map.shape[2] // block_px)
    _, block = np.unique((rows // block_px) * n_block_cols + cols // block_px, return_inverse=True)
    n_blocks = int(block.max()) + 1 if len(block) else 0
    values = class_map[window][:, rows, cols]  # (window period, pixel)
    counts = np.stack([np.bincount(block, weights=(values == code).sum(axis=0), minlength=n_blocks)
                       for code in codes], axis=1)
    totals = np.bincount(block, weights=(values != nodata).sum(axis=0), minlength=n_blocks)
    return counts, totals


def _shares(counts: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Class shares (..., class) from block sums (..., block, class) and (..., block)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts.sum(axis=-2) / totals.sum(axis=-1)[..., np.newaxis]


def _calibration(error_matrix: np.ndarray) -> np.ndarray:
    """P(reference class | map class) from sample counts (rows map, columns reference); a map class
    without samples keeps its own class."""
    counts = np.asarray(error_matrix, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    return np.where(totals > 0, counts / np.where(totals > 0, totals, 1), np.eye(len(counts)))


def _calibration_draws(error_matrix: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, class, class) calibration matrices from the sample redrawn within each map stratum."""
    counts = np.asarray(error_matrix, dtype=int)
    probabilities = _calibration(counts)
    draws = np.stack([rng.multinomial(max(int(total), 1), row, size=n) for total, row in
                      zip(counts.sum(axis=1), probabilities)], axis=1)  # (n, map class, reference class)
    return draws / draws.sum(axis=2, keepdims=True)


def baci_effects(
    event: pd.Series,
    class_map: xr.DataArray,
    zone_masks: dict[str, np.ndarray | str],
    classes: Sequence[ClassDef],
    *,
    pixel_area_ha: float,
    window: Window = Window(),
    block_size_m: float,
    n_bootstrap: int = 1000,
    seed: int = 0,
    error_matrix: np.ndarray | None = None,
    periods: Sequence[Period] | None = None,
    classified: np.ndarray | None = None,
) -> pd.DataFrame:
    """Before-after-control-impact (difference-in-differences) effect per impact zone and class.

    The change of a class's share of the impact zone (mean over the after window minus the before
    window) less the same change in the control zone, in percentage points and in hectares of the
    impact zone. The 95 % interval comes from a spatial block bootstrap: square blocks of
    `block_size_m` are resampled with replacement, separately in the impact and the control zone, so
    that neighbouring (correlated) pixels move together.

    `class_map` (period, y, x), lazy or computed: only the periods of the before and after windows are
    read from it (a window of a class map holding the zones is enough; the masks are on its grid).
    `periods`: every period of the series (default: the class map's), for the windows and the status;
    `classified`: (y, x) bool, pixels classified in any period (default: in any period of `class_map`),
    which make a zone's hectares.

    With an `error_matrix` (sample counts of a design-based accuracy assessment, rows = map class,
    columns = reference class, in the order of `classes`), the map's shares are calibrated to
    reference shares (share_ref = share_map @ P, P[i, j] = n_ij / n_i., the stratified estimator of
    Olofsson et al. 2014 applied within each zone), and each bootstrap replicate also redraws the
    sample within each map stratum, so the interval carries the map's classification error too.
    """
    codes = [c.code for c in classes]
    nodata = int(class_map.rio.nodata if class_map.rio.nodata is not None else 255)
    periods = list(periods) if periods is not None else periods_of(class_map)
    found = event_periods(event, periods, window)
    base = {"aoi_id": event.get("aoi_id"), "event_id": event["event_id"], **_dates(event), **_listed(found)}
    control = zone_masks.get("control")
    impact_zones = {z: m for z, m in zone_masks.items() if z != "control"}
    status = _window_status(event, periods, found, window)
    if isinstance(control, str) or control is None:
        status = f"no control zone ({control})"
    elif not control.any():
        status = "no control zone (the control ring holds no pixel of the map)"
    rows = []
    block_px = max(1, round(block_size_m / abs(class_map.rio.resolution()[0])))
    rng = np.random.default_rng(seed)
    if status == "ok":  # read the two windows' periods only
        values = np.asarray(class_map.sel(period=found.before + found.after).values)
        is_before = np.arange(len(values)) < len(found.before)
        is_after = ~is_before
        if classified is None:
            classified = np.asarray((class_map != nodata).any("period").values)
    for zone, in_zone in impact_zones.items():
        if isinstance(in_zone, str) or status != "ok":
            rows.append(base | {"zone": zone, "status": in_zone if isinstance(in_zone, str) else status})
            continue
        sums = {(name, window): _block_window_counts(values, mask, codes, flags, block_px=block_px, nodata=nodata)
                for name, mask in (("impact", in_zone), ("control", control))
                for window, flags in (("before", is_before), ("after", is_after))}
        share = {key: _shares(*sums[key]) for key in sums}
        if error_matrix is not None:
            share = {key: value @ _calibration(error_matrix) for key, value in share.items()}
        impact_change = share["impact", "after"] - share["impact", "before"]
        control_change = share["control", "after"] - share["control", "before"]
        boot = {}
        for name in ("impact", "control"):
            n_blocks = len(sums[name, "before"][1])
            draws = rng.integers(0, n_blocks, size=(n_bootstrap, n_blocks))
            boot[name] = (_shares(sums[name, "after"][0][draws], sums[name, "after"][1][draws])
                          - _shares(sums[name, "before"][0][draws], sums[name, "before"][1][draws]))
        if error_matrix is not None:  # the same redrawn sample for impact and control in a replicate
            redrawn = _calibration_draws(error_matrix, n_bootstrap, rng)
            boot = {name: np.einsum("bc,bcd->bd", change_, redrawn) for name, change_ in boot.items()}
        # shares come from the classified pixels of each period; hectares refer to the whole zone (its
        # pixels classified in any period), so a cloudy year does not shrink the effect
        impact_ha = float((in_zone & classified).sum()) * pixel_area_ha
        effect_boot = (boot["impact"] - boot["control"]) * impact_ha
        low, high = np.nanpercentile(effect_boot, [2.5, 97.5], axis=0)
        control_low, control_high = np.nanpercentile(boot["control"] * 100, [2.5, 97.5], axis=0)
        for i, c in enumerate(classes):
            effect = impact_change[i] - control_change[i]
            rows.append(base | {
                "zone": zone, "class_code": c.code, "class_name": c.name,
                "impact_share_before": share["impact", "before"][i], "impact_share_after": share["impact", "after"][i],
                "control_share_before": share["control", "before"][i],
                "control_share_after": share["control", "after"][i],
                "impact_change_pct": impact_change[i] * 100, "control_change_pct": control_change[i] * 100,
                "control_change_ci95_low_pct": control_low[i], "control_change_ci95_high_pct": control_high[i],
                "effect_pct_points": effect * 100, "effect_ha": effect * impact_ha,
                "ci95_low_ha": low[i], "ci95_high_ha": high[i], "impact_area_ha": impact_ha,
                "impact_blocks": len(sums["impact", "before"][1]), "control_blocks": len(sums["control", "before"][1]),
                "status": "ok",
            })
    return pd.DataFrame(rows, columns=BACI_COLUMNS)
