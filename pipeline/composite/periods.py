"""Periods of a time series: the date ranges acquisitions are composited over, and their ids.

A `Period` is a closed range of days with an id that is safe in file names and a label for people:

    kind      id                        label                  one period per
    year      2019                      2019                   calendar year
    season    2019-05-01_2019-09-30     May–Sep 2019           year, the days from season.start to season.end
    quarter   2019-q2                   2019 Q2                calendar quarter
    month     2019-01                   Jan 2019               calendar month
    scene     2019-01-14                14 Jan 2019            day with an acquisition (no compositing)
    windows   before                    before                 named date range of the config

A season that crosses the new year (start "11-01", end "03-31") belongs to the year in which it starts:
"2019-11-01_2020-03-31" is the 2019 season. Only periods that hold an acquisition exist, except named
windows, which exist as configured (an empty one is reported by the composite stage). Periods are
ordered by start date.

On xarray objects the period is a dimension whose coordinate holds the ids, with `period_start` and
`period_end` (datetime64, inclusive days) along it: `period_coords` writes them, `periods_of` reads them
back.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["PeriodKind", "Period", "make_periods", "scene_indices", "period_coords", "periods_of",
           "periods_from_records", "label_periods", "period_table", "with_period_dates", "elapsed_years"]

PeriodKind = Literal["year", "season", "quarter", "month", "scene", "windows"]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, order=True)
class Period:
    """A closed range of days [start, end] with its id (file-name safe) and its label (for people)."""

    start: dt.date
    end: dt.date
    id: str
    label: str

    def contains(self, when: dt.date | dt.datetime | pd.Timestamp) -> bool:
        day = pd.Timestamp(when).date()
        return self.start <= day <= self.end

    @property
    def midpoint(self) -> pd.Timestamp:
        start = pd.Timestamp(self.start)
        return start + (pd.Timestamp(self.end) + pd.Timedelta(days=1) - start) / 2

    @property
    def year(self) -> int:
        """The year the period belongs to: the year it starts in."""
        return self.start.year

    def as_record(self) -> dict:
        return {"id": self.id, "start": self.start.isoformat(), "end": self.end.isoformat(), "label": self.label}


def _day(month_day: str, year: int) -> dt.date:
    month, day = (int(part) for part in month_day.split("-"))
    if month == 2 and day == 29 and not (year % 4 == 0 and (year % 100 or year % 400 == 0)):
        day = 28  # a season to 29 Feb ends on the 28th in common years
    return dt.date(year, month, day)


def _month_end(year: int, month: int) -> dt.date:
    return (pd.Timestamp(year=year, month=month, day=1) + pd.offsets.MonthEnd(0)).date()


def _season(year: int, start: str, end: str) -> Period:
    first = _day(start, year)
    last = _day(end, year if _day(end, year) >= first else year + 1)
    same_year = first.year == last.year
    label = (f"{_MONTHS[first.month - 1]}–{_MONTHS[last.month - 1]} {first.year}" if same_year
             else f"{_MONTHS[first.month - 1]} {first.year}–{_MONTHS[last.month - 1]} {last.year}")
    return Period(first, last, f"{first.isoformat()}_{last.isoformat()}", label)


def _period_of_day(day: dt.date, kind: PeriodKind, season: tuple[str, str] | None) -> Period | None:
    """The period of one kind that holds `day` (None: outside every season)."""
    if kind == "year":
        return Period(dt.date(day.year, 1, 1), dt.date(day.year, 12, 31), str(day.year), str(day.year))
    if kind == "quarter":
        quarter = (day.month - 1) // 3 + 1
        first = dt.date(day.year, 3 * quarter - 2, 1)
        return Period(first, _month_end(day.year, 3 * quarter), f"{day.year}-q{quarter}", f"{day.year} Q{quarter}")
    if kind == "month":
        return Period(dt.date(day.year, day.month, 1), _month_end(day.year, day.month), f"{day:%Y-%m}",
                      f"{_MONTHS[day.month - 1]} {day.year}")
    if kind == "scene":
        return Period(day, day, day.isoformat(), f"{day.day} {_MONTHS[day.month - 1]} {day.year}")
    if kind == "season":
        start, end = season
        for year in (day.year, day.year - 1):  # a season crossing the new year started the year before
            candidate = _season(year, start, end)
            if candidate.start <= day <= candidate.end:
                return candidate
        return None
    raise ValueError(f"no period of kind {kind!r} for a single day")


def make_periods(times: Sequence, *, kind: PeriodKind = "year", season: tuple[str, str] | None = None,
                 windows: Sequence[tuple[str, dt.date, dt.date]] = ()) -> list[Period]:
    """The periods of `kind` that hold at least one of the acquisition `times`, sorted by start.

    `season` ("MM-DD", "MM-DD") for kind "season"; `windows` (name, first day, last day) for kind
    "windows" (every window is a period, whether it holds an acquisition or not).
    """
    if kind == "windows":
        return sorted(Period(start, end, name, name) for name, start, end in windows)
    if kind == "season" and season is None:
        raise ValueError("kind 'season' needs season=(start, end)")
    days = sorted({pd.Timestamp(t).date() for t in times})
    found = {p for day in days if (p := _period_of_day(day, kind, season)) is not None}
    return sorted(found)


def scene_indices(times: Sequence, period: Period) -> np.ndarray:
    """Indices of the acquisition `times` that fall within `period` (its days, inclusive)."""
    days = np.array([pd.Timestamp(t).date() for t in times], dtype=object)
    return np.flatnonzero([period.start <= day <= period.end for day in days])


def period_coords(periods: Sequence[Period]) -> dict:
    """Coordinates for a `period` dimension: the ids, and `period_start`, `period_end`, `period_label`
    along it."""
    return {"period": [p.id for p in periods],
            "period_start": ("period", pd.to_datetime([p.start for p in periods]).values),
            "period_end": ("period", pd.to_datetime([p.end for p in periods]).values),
            "period_label": ("period", [p.label for p in periods])}


def periods_of(data: xr.DataArray | xr.Dataset) -> list[Period]:
    """The periods of an object with a `period` dimension (`period_coords`); labels default to the ids.
    Without period_start/period_end, periods whose ids are years are calendar years."""
    ids = [str(p) for p in data["period"].values]
    if "period_start" not in data.coords:
        if all(re.fullmatch(r"\d{4}", i) for i in ids):
            return [_period_of_day(dt.date(int(i), 1, 1), "year", None) for i in ids]
        raise ValueError("the object's period dimension has no period_start/period_end coordinates")
    starts = pd.to_datetime(data["period_start"].values)
    ends = pd.to_datetime(data["period_end"].values)
    labels = [str(v) for v in data["period_label"].values] if "period_label" in data.coords else ids
    return [Period(s.date(), e.date(), i, label) for i, s, e, label in zip(ids, starts, ends, labels)]


def periods_from_records(records: Sequence[dict]) -> list[Period]:
    """Periods from their `as_record()` form (the manifest keeps them so)."""
    return [Period(dt.date.fromisoformat(r["start"]), dt.date.fromisoformat(r["end"]), str(r["id"]),
                   r.get("label", str(r["id"]))) for r in records]


def label_periods(value: object, periods: Sequence[Period]) -> list[str]:
    """The ids of the periods a training label's period field holds for.

    A year (2019 or "2019"): every period that belongs to that year; a period id: that period; a date
    ("2019-01-14", or a datetime): the period that contains it. Anything else holds for none.
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, (dt.date, pd.Timestamp)):
        return [p.id for p in periods if p.contains(value)]
    text = str(value).strip()
    if re.fullmatch(r"\d{4}(\.0)?", text):  # a year (as read from a numeric field, maybe 2019.0)
        return [p.id for p in periods if p.year == int(float(text))]
    by_id = [p.id for p in periods if p.id == text]
    if by_id:
        return by_id
    try:
        day = pd.Timestamp(text)
    except (ValueError, TypeError):
        return []
    return [p.id for p in periods if p.contains(day)]


def period_table(periods: Sequence[Period]) -> pd.DataFrame:
    """period, period_start, period_end, period_label: one row per period (dates as ISO strings)."""
    return pd.DataFrame({"period": [p.id for p in periods],
                         "period_start": [p.start.isoformat() for p in periods],
                         "period_end": [p.end.isoformat() for p in periods],
                         "period_label": [p.label for p in periods]})


def with_period_dates(table: pd.DataFrame, periods: Sequence[Period], *, column: str = "period") -> pd.DataFrame:
    """`table` with `<column>_start` and `<column>_end` (ISO dates) inserted after its `column` of ids."""
    starts = {p.id: p.start.isoformat() for p in periods}
    ends = {p.id: p.end.isoformat() for p in periods}
    out = table.copy()
    where = list(out.columns).index(column) + 1
    out.insert(where, f"{column}_start", out[column].astype(str).map(starts))
    out.insert(where + 1, f"{column}_end", out[column].astype(str).map(ends))
    return out


def elapsed_years(first: Period, last: Period) -> float:
    """Years between the midpoints of two periods (365.25-day years); 0 for one period."""
    return (last.midpoint - first.midpoint) / pd.Timedelta(days=365.25)
