"""What changed with an event: class areas in its zones before versus after, and BACI effects with
spatial block-bootstrap intervals."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.config import ClassDef

log = logging.getLogger(__name__)

__all__ = ["EVENT_METRICS_COLUMNS", "BACI_COLUMNS", "event_metrics_table", "event_periods", "baci_effects"]


EVENT_METRICS_COLUMNS = ["aoi_id", "event_id", "zone", "class_code", "class_name", "periods_before",
                         "periods_after", "zone_area_ha", "area_ha_before", "area_ha_after", "change_ha",
                         "status"]


def event_periods(event: pd.Series, periods: Sequence[int], *, years_before: int,
                  years_after: int) -> tuple[list[int], list[int]]:
    """The periods of the before window [start - N, start - 1] and the after window [end + 1, end + N].

    end = year_end, or year_start where the record gives no end; start = year_start, or year_end
    where the record gives no start. A record with neither year has empty windows.
    """
    years = _event_years(event)
    if years is None:
        return [], []
    start, end = years
    before = [p for p in periods if start - years_before <= p <= start - 1]
    after = [p for p in periods if end + 1 <= p <= end + years_after]
    return before, after


def _event_years(event: pd.Series) -> tuple[int, int] | None:
    """(start, end) year of an event as `event_periods` reads them; None without any year."""
    start = event.get("year_start") if pd.notna(event.get("year_start")) else event.get("year_end")
    end = event.get("year_end") if pd.notna(event.get("year_end")) else start
    return None if pd.isna(start) else (int(start), int(end))


def event_metrics_table(
    event: pd.Series,
    zone_counts: dict[str, xr.DataArray | str],
    classes: Sequence[ClassDef],
    *,
    pixel_area_ha: float,
    years_before: int,
    years_after: int,
) -> pd.DataFrame:
    """Per zone and class: mean area (ha) over the before and after windows and the change.

    `zone_area_ha` is the zone's classified area (its largest over the periods; nodata not counted).

    `zone_counts`: zone -> computed (period, class_code) pixel counts, or the reason it was skipped.
    """
    rows = []
    base = {"aoi_id": event.get("aoi_id"), "event_id": event["event_id"]}
    warned = False
    for zone, counts in zone_counts.items():
        if isinstance(counts, str):
            rows.append(base | {"zone": zone, "status": counts})
            continue
        periods = [int(p) for p in counts["period"].values]
        before, after = event_periods(event, periods, years_before=years_before, years_after=years_after)
        codes = [c.code for c in classes]
        zone_ha = float(counts.sel(class_code=codes).sum("class_code").max()) * pixel_area_ha
        status = _window_status(event, periods, before, after, years_before=years_before, years_after=years_after)
        if status != "ok" and not warned:  # an event table spans many mines and years: report, go on
            years = _event_years(event)
            when = "" if years is None else f" ({_span(sorted(set(years)))})"
            log.warning("aoi %r: event %r%s %s; see its status in event_metrics.csv and baci.csv",
                        event.get("aoi_id"), event["event_id"], when, status)
            warned = True
        for c in classes:
            area = counts.sel(class_code=c.code) * pixel_area_ha
            area_before = float(area.sel(period=before).mean()) if before else np.nan
            area_after = float(area.sel(period=after).mean()) if after else np.nan
            rows.append(base | {
                "zone": zone, "class_code": c.code, "class_name": c.name,
                "periods_before": _span(before), "periods_after": _span(after),
                "zone_area_ha": zone_ha, "area_ha_before": area_before, "area_ha_after": area_after,
                "change_ha": area_after - area_before, "status": status,
            })
    return pd.DataFrame(rows, columns=EVENT_METRICS_COLUMNS)


def _window_status(event: pd.Series, periods: Sequence[int], before: Sequence[int], after: Sequence[int], *,
                   years_before: int, years_after: int) -> str:
    """"ok", or why the event cannot be compared before and after: no year, or an empty window (e.g.
    an event outside the years of the imagery)."""
    if before and after:
        return "ok"
    years = _event_years(event)
    if years is None:
        return "not analysable: no year (year_start, year_end) in the record"
    start, end = years
    windows = {"before": (before, start - years_before, start - 1), "after": (after, end + 1, end + years_after)}
    empty = " or ".join(f"the {name} window ({_span(sorted({low, high}))})"
                        for name, (found, low, high) in windows.items() if not found)
    return f"not analysable: no period of the imagery ({_span(sorted(periods))}) in {empty}"


def _span(periods: Sequence[int]) -> str:
    if not periods:
        return ""
    return f"{periods[0]}-{periods[-1]}" if len(periods) > 1 else str(periods[0])


BACI_COLUMNS = [
    "aoi_id", "event_id", "zone", "class_code", "class_name", "periods_before", "periods_after",
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
    years_before: int,
    years_after: int,
    block_size_m: float,
    n_bootstrap: int = 1000,
    seed: int = 0,
    error_matrix: np.ndarray | None = None,
) -> pd.DataFrame:
    """Before-after-control-impact (difference-in-differences) effect per impact zone and class.

    The change of a class's share of the impact zone (mean over the after window minus the before
    window) less the same change in the control zone, in percentage points and in hectares of the
    impact zone. The 95 % interval comes from a spatial block bootstrap: square blocks of
    `block_size_m` are resampled with replacement, separately in the impact and the control zone, so
    that neighbouring (correlated) pixels move together. `class_map` is computed (period, y, x).

    With an `error_matrix` (sample counts of a design-based accuracy assessment, rows = map class,
    columns = reference class, in the order of `classes`), the map's shares are calibrated to
    reference shares (share_ref = share_map @ P, P[i, j] = n_ij / n_i., the stratified estimator of
    Olofsson et al. 2014 applied within each zone), and each bootstrap replicate also redraws the
    sample within each map stratum, so the interval carries the map's classification error too.
    """
    codes = [c.code for c in classes]
    values = np.asarray(class_map.values)
    nodata = int(class_map.rio.nodata if class_map.rio.nodata is not None else 255)
    periods = [int(p) for p in class_map["period"].values]
    before, after = event_periods(event, periods, years_before=years_before, years_after=years_after)
    base = {"aoi_id": event.get("aoi_id"), "event_id": event["event_id"],
            "periods_before": _span(before), "periods_after": _span(after)}
    control = zone_masks.get("control")
    impact_zones = {z: m for z, m in zone_masks.items() if z != "control"}
    status = _window_status(event, periods, before, after, years_before=years_before, years_after=years_after)
    if isinstance(control, str) or control is None:
        status = f"no control zone ({control})"
    elif not control.any():
        status = "no control zone (the control ring holds no pixel of the map)"
    rows = []
    block_px = max(1, round(block_size_m / abs(class_map.rio.resolution()[0])))
    rng = np.random.default_rng(seed)
    for zone, in_zone in impact_zones.items():
        if isinstance(in_zone, str) or status != "ok":
            rows.append(base | {"zone": zone, "status": in_zone if isinstance(in_zone, str) else status})
            continue
        is_before = np.isin(periods, before)
        is_after = np.isin(periods, after)
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
        impact_ha = float((in_zone & (values != nodata).any(axis=0)).sum()) * pixel_area_ha
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
