"""Change metrics from class maps: class areas per period, transitions, gross gain and loss, annual
rates, the mining footprint and its expansion, and rings around the mine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage

from pipeline.config import ClassDef
from pipeline.ingest.grid import pixel_area_ha

__all__ = ["class_pixel_counts", "class_area_table", "transition_counts", "transition_table", "change_summary",
           "mining_footprint_table", "ring_summary"]

_N_CODES = 256  # uint8 class codes


def _bincount(codes: xr.DataArray | np.ndarray) -> np.ndarray | da.Array:
    """Counts of each value 0..len-1 of an integer array (lazy for Dask input)."""
    values = codes.data if isinstance(codes, xr.DataArray) else codes
    if dask.is_dask_collection(values):
        return da.bincount(values.ravel(), minlength=_N_CODES * _N_CODES)
    return np.bincount(np.asarray(values).ravel(), minlength=_N_CODES * _N_CODES)


def class_pixel_counts(class_map: xr.DataArray) -> xr.DataArray:
    """Pixels per class code and period: (period, class_code) int64, class_code 0..255; lazy stays lazy."""
    counts = [_bincount(class_map.sel(period=p).astype("int64"))[:_N_CODES]
              for p in class_map["period"].values]
    stacked = da.stack(counts) if dask.is_dask_collection(class_map) else np.stack(counts)
    along_period = {name: c for name, c in class_map.coords.items() if c.dims == ("period",)}  # + period dates
    return xr.DataArray(stacked, coords={**along_period, "class_code": np.arange(_N_CODES)},
                        dims=("period", "class_code"), name="pixel_count")


def class_area_table(pixel_counts: xr.DataArray, classes: Sequence[ClassDef], *, pixel_area_ha: float,
                     aoi_id: str, raw_counts: xr.DataArray | None = None, filled_counts: xr.DataArray | None = None,
                     aoi_pixels: int | None = None) -> pd.DataFrame:
    """aoi_id, period, class_code, class_name, area_ha, area_pct: one row per period and class of the
    schema, from the pixel counts of the (cleaned) class map; area_pct is the class's share of the
    period's mapped area (pixels with a class; nodata not counted).

    With `raw_counts` (the counts of the maps as classified), `filled_counts` (of the pixels that gap filling
    gave a class) and `aoi_pixels` (pixels inside the AOI), also: raw_area_ha, raw_area_pct (the class's share
    of the observed area), and per period observed_ha (area with data), nodata_ha and nodata_pct (area of
    the AOI without data, as classified; % of the AOI), filled_ha and filled_pct (of it, the area gap
    filling gave a class) and unmapped_ha (area of the AOI without a class after cleaning). Every
    share is in %; the AOI's area is observed_ha + nodata_ha (metrics/aoi.csv states it once).
    """
    codes = [c.code for c in classes]
    rows = []
    for period in pixel_counts["period"].values:
        counts = pixel_counts.sel(period=period)
        mapped = float(counts.sel(class_code=codes).sum())
        per_period = {}
        if raw_counts is not None:
            raw = raw_counts.sel(period=period)
            observed = float(raw.sel(class_code=codes).sum())
        if aoi_pixels is not None and raw_counts is not None:
            nodata = max(float(aoi_pixels) - observed, 0.0)
            filled = float(filled_counts.sel(period=period, class_code=codes).sum()) if filled_counts is not None \
                else 0.0
            per_period = {"observed_ha": observed * pixel_area_ha, "nodata_ha": nodata * pixel_area_ha,
                          "nodata_pct": 100 * nodata / aoi_pixels if aoi_pixels else np.nan,
                          "filled_ha": filled * pixel_area_ha,
                          "filled_pct": 100 * filled / aoi_pixels if aoi_pixels else np.nan,
                          "unmapped_ha": max(float(aoi_pixels) - mapped, 0.0) * pixel_area_ha}
        for c in classes:
            n = float(counts.sel(class_code=c.code))
            row = {"aoi_id": aoi_id, "period": str(period), "class_code": c.code, "class_name": c.name,
                   "area_ha": n * pixel_area_ha, "area_pct": 100 * n / mapped if mapped else np.nan}
            if raw_counts is not None:
                n_raw = float(raw.sel(class_code=c.code))
                row.update(raw_area_ha=n_raw * pixel_area_ha, raw_area_pct=100 * n_raw / observed if observed else np.nan)
            rows.append({**row, **per_period})
    return pd.DataFrame(rows)


def transition_counts(class_map: xr.DataArray,
                      steps: Literal["consecutive", "first_last"] = "consecutive") -> xr.DataArray:
    """Pixels moving from each class to each class between consecutive periods (or first to last).

    (step, class_from, class_to) int64 with coordinates `period_from`, `period_to` on `step`;
    pixels that are nodata in either period appear under code 255 and are left to the caller.
    """
    periods = class_map["period"].values
    if steps == "first_last":
        periods = periods[[0, -1]] if len(periods) > 1 else periods[:0]
    counts = []
    for before, after in zip(periods[:-1], periods[1:]):
        pairs = class_map.sel(period=before).astype("int64") * _N_CODES + class_map.sel(period=after)
        counts.append(_bincount(pairs).reshape(_N_CODES, _N_CODES))
    if not counts:  # one period: no transition
        stacked = np.zeros((0, _N_CODES, _N_CODES), "int64")
    else:
        stacked = da.stack(counts) if dask.is_dask_collection(class_map) else np.stack(counts)
    return xr.DataArray(
        stacked,
        coords={"period_from": ("step", periods[:-1]), "period_to": ("step", periods[1:]),
                "class_from": np.arange(_N_CODES), "class_to": np.arange(_N_CODES)},
        dims=("step", "class_from", "class_to"), name="transition_count",
    )


def transition_table(counts: xr.DataArray, classes: Sequence[ClassDef], *, pixel_area_ha: float,
                     aoi_id: str) -> pd.DataFrame:
    """aoi_id, period_from, period_to, class_from, class_to, area_ha: one row per non-zero transition
    between classes of the schema (unchanged pixels appear as class_from == class_to)."""
    codes = [c.code for c in classes]
    values = np.asarray(counts.values)
    rows = []
    for step in range(counts.sizes["step"]):
        for a in codes:
            for b in codes:
                if values[step, a, b]:
                    rows.append({"aoi_id": aoi_id,
                                 "period_from": str(counts["period_from"].values[step]),
                                 "period_to": str(counts["period_to"].values[step]),
                                 "class_from": a, "class_to": b,
                                 "area_ha": values[step, a, b] * pixel_area_ha})
    columns = ["aoi_id", "period_from", "period_to", "class_from", "class_to", "area_ha"]
    return pd.DataFrame(rows, columns=columns)


def _elapsed_years(table: pd.DataFrame) -> pd.Series:
    """Per period of a table with period_start/period_end (ISO dates; without them the period ids are
    years): its midpoint in years since the first period's midpoint (365.25-day years), in table order."""
    dates = table.drop_duplicates("period").set_index("period")
    if dates.empty:
        return pd.Series(dtype=float)
    if "period_start" not in dates:  # a table without dates: its periods are calendar years
        dates = dates.assign(period_start=[f"{p}-01-01" for p in dates.index], period_end=[f"{p}-12-31" for p in dates.index])
    start, end = pd.to_datetime(dates["period_start"]), pd.to_datetime(dates["period_end"])
    middle = start + (end + pd.Timedelta(days=1) - start) / 2
    return (middle - middle.iloc[0]) / pd.Timedelta(days=365.25)


def change_summary(class_area: pd.DataFrame, transitions: pd.DataFrame) -> pd.DataFrame:
    """Per class, first to last period: areas, gross gain and loss summed over consecutive transitions,
    net change, mean annual change (ha/yr) and the compound annual rate of change (%/yr, after
    Puyravaud 2003: 100 * ln(A_last / A_first) / years), over the real time elapsed between the middle of
    the first and of the last period (`class_area` has period_start and period_end).
    Periods are in the table's order."""
    order = pd.unique(class_area["period"])
    first, last = order[0], order[-1]
    years = float(_elapsed_years(class_area).iloc[-1])
    moved = transitions[transitions["class_from"] != transitions["class_to"]]
    gain = moved.groupby("class_to")["area_ha"].sum()
    loss = moved.groupby("class_from")["area_ha"].sum()
    rows = []
    for (code, name), areas in class_area.groupby(["class_code", "class_name"], sort=False):
        by_period = areas.set_index("period")["area_ha"]
        a_first, a_last = by_period[first], by_period[last]
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = (100 * np.log(a_last / a_first) / years if a_first > 0 and a_last > 0 and years > 0
                    else np.nan)
        rows.append({"aoi_id": areas["aoi_id"].iloc[0], "class_code": code, "class_name": name,
                     "period_first": str(first), "period_last": str(last), "years_elapsed": round(years, 4),
                     "area_first_ha": a_first, "area_last_ha": a_last,
                     "gross_gain_ha": gain.get(code, 0.0), "gross_loss_ha": loss.get(code, 0.0),
                     "net_change_ha": a_last - a_first,
                     "annual_change_ha": (a_last - a_first) / years if years > 0 else np.nan,
                     "annual_rate_pct": rate})
    return pd.DataFrame(rows)


def mining_footprint_table(class_area: pd.DataFrame, mining_classes: Sequence[int]) -> pd.DataFrame:
    """The mining footprint per period (ha), its expansion since the previous period and its rate (ha/yr,
    over the time between the periods' middles). Periods in the table's order (with their dates). Where the
    class-area table has them: area_pct (share of the mapped area), raw_area_ha (in the maps as classified)
    and unmapped_ha (area of the AOI without a class, a bound on what the footprint may miss)."""
    mining = class_area[class_area["class_code"].isin(mining_classes)]
    keys = ["aoi_id", "period", *(c for c in ("period_start", "period_end") if c in class_area)]
    summed = {c: "sum" for c in ("area_ha", "area_pct", "raw_area_ha") if c in class_area}
    if "unmapped_ha" in class_area:
        summed["unmapped_ha"] = "first"
    footprint = mining.groupby(keys, as_index=False, sort=False).agg(summed).reset_index(drop=True)
    if footprint.empty:
        footprint = pd.DataFrame(columns=[*keys, *summed])
    footprint["expansion_ha"] = footprint["area_ha"].diff()
    years = _elapsed_years(footprint).to_numpy()
    footprint["expansion_rate_ha_per_year"] = footprint["expansion_ha"] / np.diff(years, prepend=np.nan)
    return footprint


def ring_summary(class_map: xr.DataArray, classes: Sequence[ClassDef], *, mining_classes: Sequence[int],
                 rings_m: Sequence[float], aoi_id: str) -> pd.DataFrame:
    """Class areas per period in rings of distance from that period's mining footprint.

    Rings run from 0 to rings_m[0], rings_m[0] to rings_m[1], ...; distances are Euclidean, in metres,
    between pixel centres. `class_map` is computed (period, y, x). Periods without a footprint are
    left out.
    """
    resolution = abs(class_map.rio.resolution()[0])
    area_ha = pixel_area_ha(class_map)
    edges = np.array([0.0, *rings_m])
    rows = []
    for period in class_map["period"].values:
        classes_now = np.asarray(class_map.sel(period=period).values)
        footprint = np.isin(classes_now, mining_classes)
        if not footprint.any():
            continue
        distance = ndimage.distance_transform_edt(~footprint) * resolution
        ring = np.digitize(distance, edges[1:], right=True)  # 0 .. len(rings_m); == len -> beyond
        outside_footprint = ~footprint
        for i in range(len(rings_m)):
            in_ring = (ring == i) & outside_footprint
            for c in classes:
                rows.append({"aoi_id": aoi_id, "period": str(period), "ring_from_m": edges[i],
                             "ring_to_m": edges[i + 1], "class_code": c.code, "class_name": c.name,
                             "area_ha": float(((classes_now == c.code) & in_ring).sum()) * area_ha})
    return pd.DataFrame(rows, columns=["aoi_id", "period", "ring_from_m", "ring_to_m", "class_code",
                                       "class_name", "area_ha"])
