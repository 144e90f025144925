"""Features to classify: the composite layers that classify.features chooses, stacked per pixel, with the
gaps of sub-period composites filled as configured.

The composite stage writes every layer (composite.stage.feature_groups names them by kind); here they
are put together, lazily, into the (period, y, x, feature) array that training and prediction read.
Sub-period layers may hold gaps (a month without a clear scene) where every other feature has a value:
`FeatureSet.gap_tolerant` marks them, so that such a pixel is classified (the model takes the missing
value, or it was filled), never dropped, while a pixel missing any other feature is nodata as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from pipeline.composite.phenology import fill_from_neighbours, interpolate_gaps

__all__ = ["FeatureSet", "feature_stack", "feature_set", "classification_features", "FEATURE_GROUPS"]

# The kinds of composite layers, in the order the features are stacked (composite.stage.feature_groups).
FEATURE_GROUPS = ("composite", "ndvi_range", "metrics", "clear_count", "sub_periods")


@dataclass(frozen=True)
class FeatureSet:
    """The features of a run: names in order; which may be missing where the others are not (gaps of
    sub-period composites); the sub-period layers of each variable in time order (for gap filling);
    the gap-filling steps and whether the sub-periods wrap around the year."""

    names: list[str]
    gap_tolerant: list[bool]
    sub_periods: dict[str, list[str]] = field(default_factory=dict)
    gap_fill: tuple[str, ...] = ()
    cyclic: bool = True
    families: dict[str, list[str]] = field(default_factory=dict)

    @property
    def required(self) -> np.ndarray:
        """bool per feature: a pixel missing it is nodata."""
        return ~np.asarray(self.gap_tolerant, dtype=bool)

    def groups(self) -> dict[str, list[int]]:
        """Feature columns by family (for a grouped permutation importance): the composite, the NDVI
        range, the percentiles and spread of each variable, the clear count, each variable's
        sub-periods; a plain list of names is one family per feature."""
        position = {name: k for k, name in enumerate(self.names)}
        if not self.families:
            return {name: [k] for name, k in position.items()}
        return {family: [position[n] for n in names if n in position] for family, names in self.families.items()
                if any(n in position for n in names)}


def feature_set(groups: Mapping[str, Sequence[str]] | Sequence[str], *, composite: bool = True,
                metric_variables: Sequence[str] = (), sub_periods: Mapping[str, Sequence[str]] | None = None,
                gap_fill: Sequence[str] = (), cyclic: bool = True) -> FeatureSet:
    """The features from the composite stage's layer groups (`composite.stage.feature_groups`), or from a
    plain list of layer names (all required). `composite`: whether the composite's bands and indices are
    features; `metric_variables`: the variables of the percentiles and spread; `sub_periods`: the
    sub-period layers of each variable, in time order."""
    if not isinstance(groups, Mapping):
        return FeatureSet(names=list(groups), gap_tolerant=[False] * len(groups))
    names = [name for kind in FEATURE_GROUPS if composite or kind != "composite" for name in groups.get(kind, [])]
    tolerant = set(groups.get("sub_periods", []))
    families = {"composite": list(groups.get("composite", [])) if composite else [],
                "ndvi range": list(groups.get("ndvi_range", []))}
    by_length = sorted(metric_variables, key=len, reverse=True)
    for name in groups.get("metrics", []):
        variable = next((v for v in by_length if name.startswith(f"{v}_")), name)
        families.setdefault(f"{variable} percentiles and spread", []).append(name)
    families["clear count"] = list(groups.get("clear_count", []))
    for variable, layers in (sub_periods or {}).items():
        families[f"{variable} sub-periods"] = list(layers)
    return FeatureSet(names=names, gap_tolerant=[n in tolerant for n in names],
                      sub_periods={v: list(n) for v, n in (sub_periods or {}).items()},
                      gap_fill=tuple(gap_fill), cyclic=cyclic,
                      families={f: n for f, n in families.items() if n})


def feature_stack(composites: xr.Dataset, names: Sequence[str]) -> xr.DataArray:
    """(period, y, x, feature) float32 from the named composite variables, feature in one chunk; composites
    of some pixels (period, sample) give (period, sample, feature)."""
    missing = [n for n in names if n not in composites]
    if missing:
        raise KeyError(f"no composite variable(s) {missing}; have {list(composites.data_vars)}")
    layers = [composites[n].transpose("period", ...) for n in names]
    # stacked block by block in one pass (to_dataarray + rechunk took 2x the gap filling at 1000 px)
    features = xr.apply_ufunc(_stack_last, *layers, dask="parallelized", output_core_dims=[["feature"]],
                              output_dtypes=[np.float32], dask_gufunc_kwargs={"output_sizes": {"feature": len(names)}})
    return features.assign_coords(feature=list(names)).rename(None)


def _stack_last(*layers: np.ndarray) -> np.ndarray:
    out = np.empty((*np.broadcast_shapes(*(a.shape for a in layers)), len(layers)), dtype=np.float32)
    for k, layer in enumerate(layers):
        out[..., k] = layer
    return out


def classification_features(composites: xr.Dataset, features: FeatureSet) -> xr.DataArray:
    """(period, y, x, feature) float32 of `features.names`, the gaps of sub-period layers filled by the
    steps of `features.gap_fill` in order; lazy if the composites are.

    neighbours: a gap takes the same sub-period of the previous period, else of the next (adjacent
    periods of the run only); interpolate: linearly between the nearest sub-periods of the same period
    with a value (around the year where the sub-periods cover it). What is left stays NaN.
    """
    filled = fill_sub_period_gaps(composites, features.sub_periods, features.gap_fill, cyclic=features.cyclic)
    return feature_stack(filled, features.names)


def fill_sub_period_gaps(composites: xr.Dataset, sub_periods: Mapping[str, Sequence[str]], steps: Sequence[str], *,
                         cyclic: bool) -> xr.Dataset:
    """`composites` with the sub-period layers' gaps filled by `steps` (see `classification_features`)."""
    if not steps:
        return composites
    out = composites.copy()
    for names in sub_periods.values():
        names = [n for n in names if n in composites]
        if not names:
            continue
        series = feature_stack(composites, names).rename(feature="sub_period")
        if series.chunks:   # whole periods and sub-periods per block, the pixel blocks as read
            series = series.chunk({"period": -1})
        for step in steps:
            if step == "neighbours":
                series = xr.apply_ufunc(fill_from_neighbours, series, input_core_dims=[["period", "sub_period"]],
                                        output_core_dims=[["period", "sub_period"]], dask="parallelized",
                                        output_dtypes=[np.float32]).transpose(*series.dims)
            elif step == "interpolate":
                series = xr.apply_ufunc(interpolate_gaps, series, input_core_dims=[["sub_period"]],
                                        output_core_dims=[["sub_period"]], kwargs={"cyclic": cyclic},
                                        dask="parallelized", output_dtypes=[np.float32])
            else:
                raise ValueError(f"unknown gap-filling step {step!r} (neighbours, interpolate)")
        for name in names:
            out[name] = series.sel(sub_period=name, drop=True).astype("float32")
    return out
