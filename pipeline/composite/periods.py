"""Periods of a time series: which period each acquisition belongs to."""

from __future__ import annotations

from typing import Literal

import xarray as xr

__all__ = ["period_of"]


def period_of(time: xr.DataArray, period: Literal["year"] = "year") -> xr.DataArray:
    """The period label (int) of each time stamp."""
    return time.dt.year.rename("period")
