"""Change maps from class maps: the period in which each pixel's class first changed; the colours and tags
of the change maps between two periods (stable, transitions of interest, other change:
`pipeline.classify.stage.change_of_interest`)."""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["NO_CHANGE", "FIRST_CHANGE_NODATA", "first_change", "first_change_tags", "change_map_colours",
           "change_map_tags"]

NO_CHANGE = 0                  # first_change: observed in two periods or more, the class never changed
FIRST_CHANGE_NODATA = 65535    # first_change: observed in fewer than two periods (cannot tell)


def _first_change_np(classes: np.ndarray, nodata: int) -> np.ndarray:
    """(..., period) class codes -> (...) uint16: the 1-based number of the first period whose class
    differs from the pixel's previous observed class (a period without data in between does not hide
    a change: A, nodata, B is a change at B); NO_CHANGE where the class never changed;
    FIRST_CHANGE_NODATA where fewer than two periods are observed."""
    n = classes.shape[-1]
    valid = classes != nodata
    seen = np.where(valid, np.arange(n), -1)
    last_seen = np.maximum.accumulate(seen, axis=-1)
    before = np.concatenate([np.full((*classes.shape[:-1], 1), -1), last_seen[..., :-1]], axis=-1)
    previous = np.take_along_axis(classes, np.clip(before, 0, None), axis=-1)
    changed = valid & (before >= 0) & (classes != previous)
    out = np.where(changed.any(axis=-1), changed.argmax(axis=-1) + 1, NO_CHANGE)
    return np.where(valid.sum(axis=-1) < 2, FIRST_CHANGE_NODATA, out).astype("uint16")


def first_change(class_map: xr.DataArray) -> xr.DataArray:
    """(y, x) uint16: the number (1 = the first period) of the period in which each pixel's class first
    changed; NO_CHANGE (0) where it never did; FIRST_CHANGE_NODATA (65535, the raster's nodata) where
    fewer than two periods are observed. Lazy stays lazy; `first_change_tags` names the numbers."""
    nodata = class_map.rio.nodata if class_map.rio.nodata is not None else 255
    out = xr.apply_ufunc(
        _first_change_np, class_map, kwargs={"nodata": nodata},
        input_core_dims=[["period"]], dask="parallelized", output_dtypes=[np.uint16],
        dask_gufunc_kwargs={"allow_rechunk": True},
    )
    return out.rename("first_change").rio.write_crs(class_map.rio.crs).rio.write_nodata(FIRST_CHANGE_NODATA)


def first_change_tags(period_ids: list[str]) -> dict[str, str]:
    """COG metadata naming the values of a first_change map: PERIOD_<k> = the k-th period's id."""
    return {"VALUES": f"k = first changed in period k (PERIOD_k); {NO_CHANGE} = never changed; "
                      f"{FIRST_CHANGE_NODATA} = fewer than two periods observed",
            **{f"PERIOD_{k}": period for k, period in enumerate(period_ids, start=1)}}


STABLE_COLOUR = "#d9d9d9"
TRANSITION_COLOURS = ("#e31a1c", "#1f78b4", "#33a02c", "#ff7f00", "#6a3d9a", "#b15928", "#a6cee3", "#fb9a99", "#cab2d6")
OTHER_CHANGE_COLOUR = "#000000"


def change_map_colours(n_transitions: int) -> dict[int, str]:
    """Colours of a change map between two periods: 0 stable light grey, 1..n the transitions of interest
    (qualitative colours), n + 1 any other change black (red where no transition of interest is given:
    the map is then stable / changed)."""
    colours = {0: STABLE_COLOUR}
    colours.update({k: TRANSITION_COLOURS[(k - 1) % len(TRANSITION_COLOURS)] for k in range(1, n_transitions + 1)})
    colours[n_transitions + 1] = OTHER_CHANGE_COLOUR if n_transitions else TRANSITION_COLOURS[0]
    return colours


def change_map_tags(names: dict[int, str], period_from: str, period_to: str, *, nodata: int = 255) -> dict[str, str]:
    """COG metadata naming the values of a change map between two periods: CHANGE_<value> = its name."""
    return {"VALUES": "; ".join(f"{value} = {name}" for value, name in names.items()) + f"; {nodata} = nodata "
                      "in either period", "PERIOD_FROM": period_from, "PERIOD_TO": period_to,
            **{f"CHANGE_{value}": name for value, name in names.items()}}
