"""Features to classify: composite variables stacked per pixel, and within-period index statistics."""

from __future__ import annotations

from collections.abc import Sequence

import xarray as xr


__all__ = ["feature_stack", "temporal_statistics"]


def feature_stack(composites: xr.Dataset, names: Sequence[str]) -> xr.DataArray:
    """(period, y, x, feature) float32 from the named composite variables, feature in one chunk."""
    missing = [n for n in names if n not in composites]
    if missing:
        raise KeyError(f"no composite variable(s) {missing}; have {list(composites.data_vars)}")
    features = composites[list(names)].to_dataarray("feature").transpose("period", "y", "x", "feature")
    features = features.astype("float32")
    return features.chunk(feature=-1) if features.chunks else features


def temporal_statistics(index: xr.DataArray, *, quantiles: Sequence[float] = (0.1, 0.5, 0.9),
                        name: str = "ndvi") -> xr.Dataset:
    """Within-period statistics of an index across the period's (cloud-masked) scenes, as features.

    (time, y, x) float, NaN = masked -> Dataset of (period, y, x) float32 variables ``<name>_p10``,
    ``<name>_p50``, ... and ``<name>_std``, period = calendar year. Percentiles of NDVI across a year
    separate cropland (a strong seasonal cycle) from grass and shrub. Lazy if `index` is (time in one
    chunk per group).
    """
    years = index["time"].dt.year.rename("period")
    grouped = index.groupby(years)
    percentiles = grouped.quantile(list(quantiles), dim="time", skipna=True)
    variables = {f"{name}_p{round(q * 100):02d}": percentiles.sel(quantile=q, drop=True).astype("float32")
                 for q in quantiles}
    variables[f"{name}_std"] = grouped.std("time", skipna=True).astype("float32")
    return xr.Dataset(variables)
