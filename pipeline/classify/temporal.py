"""Temporal consistency of annual class maps: remove flicker (a pixel that flips A -> B -> A).

Rule (applied along the periods, oldest first, to each pixel): in an interior period t, if the
class differs from both neighbours while the neighbours agree (A, B, A), and the map's confidence
in B is below `min_confidence`, B is replaced by A. With `max_gap=2`, a two-period excursion
(A, B, B, A) with both B periods below the confidence is removed too. First and last periods are
never changed (a change there cannot be told from flicker). Nodata pixel-periods are left as they
are and skipped: a period's neighbours are the nearest periods with data.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["remove_flicker", "spurious_and_true_changes"]


def _remove_flicker_np(classes: np.ndarray, confidence: np.ndarray, *, min_confidence: float,
                       max_gap: int, nodata: int, end_confidence: float = 0.0) -> np.ndarray:
    """(..., period) uint8 -> same, filtered. `confidence` (..., period) float, NaN = unknown (treated
    as not confident). Nodata periods are skipped: neighbours are the nearest valid periods."""
    out = classes.copy()
    conf = np.where(np.isfinite(confidence), confidence, -1.0)
    valid = classes != nodata
    n = out.shape[-1]
    # index of the next valid period after t (n = none), per pixel
    next_idx = np.full(out.shape, n, dtype=np.int64)
    following = np.full(out.shape[:-1], n, dtype=np.int64)
    for t in range(n - 1, -1, -1):
        next_idx[..., t] = following
        following = np.where(valid[..., t], t, following)
    padded = np.concatenate([out, np.full((*out.shape[:-1], 1), nodata, out.dtype)], axis=-1)
    padded_conf = np.concatenate([conf, np.full((*conf.shape[:-1], 1), np.inf)], axis=-1)
    padded_next = np.concatenate([next_idx, np.full((*out.shape[:-1], 1), n, np.int64)], axis=-1)
    prev = np.full(out.shape[:-1], nodata, dtype=out.dtype)

    def at(array, index):
        return np.take_along_axis(array, index[..., np.newaxis], axis=-1)[..., 0]

    for t in range(n):
        here = padded[..., t]
        doubtful = valid[..., t] & (prev != nodata) & (here != prev) & (padded_conf[..., t] < min_confidence)
        n1 = next_idx[..., t]
        single = doubtful & (at(padded, n1) == prev)
        if max_gap == 2:
            n2 = at(padded_next, n1)
            double = (doubtful & ~single & (at(padded, n1) == here) & (at(padded_conf, n1) < min_confidence)
                      & (at(padded, n2) == prev))
            rows = np.nonzero(double)
            padded[(*rows, n1[rows])] = prev[rows]
            single |= double
        padded[..., t] = np.where(single, prev, here)
        prev = np.where(valid[..., t], padded[..., t], prev)
    if end_confidence > 0:
        _settle_ends(padded[..., :n], conf, valid, end_confidence)
    return padded[..., :n]


def _settle_ends(out: np.ndarray, conf: np.ndarray, valid: np.ndarray, end_confidence: float) -> None:
    """In place: the first and the last valid period take their valid neighbour's class when they differ
    from it with a confidence below `end_confidence` (their other neighbour is unknown)."""
    n = out.shape[-1]
    order = np.where(valid, np.arange(n), n)
    first = order.min(axis=-1)
    second = np.where(order == first[..., None], n, order).min(axis=-1)
    rev = np.where(valid, np.arange(n), -1)
    last = rev.max(axis=-1)
    before_last = np.where(rev == last[..., None], -1, rev).max(axis=-1)
    for end, neighbour in ((first, second), (last, before_last)):
        ok = (end >= 0) & (end < n) & (neighbour >= 0) & (neighbour < n)
        e, nb = np.clip(end, 0, n - 1)[..., None], np.clip(neighbour, 0, n - 1)[..., None]
        here = np.take_along_axis(out, e, axis=-1)[..., 0]
        other = np.take_along_axis(out, nb, axis=-1)[..., 0]
        doubt = ok & (here != other) & (np.take_along_axis(conf, e, axis=-1)[..., 0] < end_confidence)
        np.put_along_axis(out, e, np.where(doubt, other, here)[..., None], axis=-1)


def remove_flicker(class_map: xr.DataArray, confidence: xr.DataArray | None = None, *,
                   min_confidence: float = 1.0, max_gap: int = 2, end_confidence: float = 0.0,
                   nodata: int = 255) -> xr.DataArray:
    """(period, y, x) uint8 class map with flicker removed; lazy if the input is.

    `confidence` (period, y, x) float in [0, 1] (max class probability): a flip whose confidence is at
    least `min_confidence` is kept. Without confidence (or `min_confidence=1`) every A -> B -> A flip is
    removed. `end_confidence` > 0 also settles the first and last valid periods: a class that differs
    from its one valid neighbour with a confidence below it takes the neighbour's class (a real change
    there is usually confident; 0 = leave the ends alone). The number of pixel-periods changed is
    `(out != class_map).sum()`.
    """
    if max_gap not in (1, 2):
        raise ValueError(f"max_gap must be 1 or 2, got {max_gap}")
    if confidence is None:
        confidence = xr.full_like(class_map, np.nan, dtype="float32")
    filtered = xr.apply_ufunc(
        _remove_flicker_np, class_map, confidence, input_core_dims=[["period"], ["period"]],
        output_core_dims=[["period"]], dask="parallelized", output_dtypes=[class_map.dtype],
        kwargs={"min_confidence": min_confidence, "max_gap": max_gap, "nodata": nodata,
                "end_confidence": end_confidence},
        dask_gufunc_kwargs={"allow_rechunk": True},
    ).transpose(*class_map.dims)
    filtered.attrs = dict(class_map.attrs)
    return filtered.rename(class_map.name)


def spurious_and_true_changes(class_map: np.ndarray, truth: np.ndarray, *, nodata: int = 255) -> dict[str, int]:
    """Consecutive-period changes of a (period, y, x) map judged against a truth of the same shape.

    ``spurious``: pixel-periods changed in the map but not in the truth; ``true_changes``: changed in
    the truth; ``kept``: changed in the truth and in the map (either class pair). Valid in all four.
    """
    valid = ((class_map[1:] != nodata) & (class_map[:-1] != nodata)
             & (truth[1:] != nodata) & (truth[:-1] != nodata))
    mapped = (class_map[1:] != class_map[:-1]) & valid
    real = (truth[1:] != truth[:-1]) & valid
    return {"spurious": int((mapped & ~real).sum()), "true_changes": int(real.sum()),
            "kept": int((mapped & real).sum())}
