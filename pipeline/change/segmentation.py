"""Change without labels: per-pixel temporal segmentation of an index series (after LandTrendr).

A NumPy kernel over ``(..., time)`` arrays, vectorised over pixels (Python loops run only over
time steps and segments), so that it can run block by block on Dask chunks through
``xr.apply_ufunc(..., input_core_dims=[["period"]], dask="parallelized")``.

The method follows the structure of LandTrendr (Kennedy, Yang & Cohen 2010, Remote Sensing of
Environment 114: 2897-2910; parameters as in LT-GEE, Kennedy et al. 2018, Remote Sensing 10: 691):

1. **Despike.** An interior observation whose two valid neighbours lie close to each other but far from
   it (``|y_next - y_prev| < (1 - spike_threshold) * max(|y - y_prev|, |y - y_next|)``) is set to the
   neighbours' mean: a one-period cloud, haze or shadow residue in a composite. ``spike_threshold=1``
   turns this off.
2. **Vertices.** For every number of segments ``k = 1 .. max_segments``, the vertices (time steps, always
   the first and the last valid observation) that minimise the summed squared residuals of a straight-line
   fit per segment are found exactly, by dynamic programming over the valid observations. (LandTrendr
   finds them greedily, adding the point of largest deviation and culling by angle; with <= 40 periods
   the exact search is affordable.)
3. **Fit.** Given the vertices, the continuous piecewise-linear trajectory (a linear spline with knots at
   the vertices) is fitted by least squares (a tridiagonal system per pixel, solved for all pixels at
   once).
4. **Model choice.** Models with a recovery segment faster than ``recovery_threshold`` (share of the
   pixel's value range per year; LandTrendr's recoveryThreshold: a full recovery takes at least
   ``1 / recovery_threshold`` years), or with a vertex that lowers the SSE by less than 0.1 %, are
   disallowed. *Gate* (our addition): a pixel gets a model only if some model's F-test p-value against
   the flat model, times the number of vertex placements searched (C(n - 2, k - 1), Bonferroni), is at
   most ``p_threshold`` -- the exact search picks the best of all placements, so the plain p-value is far
   too optimistic on noisy series. Among the passing models, LandTrendr's rule: the one with the most
   segments whose plain p-value is at most ``min p / best_model_proportion``.
5. **Disturbance.** The segment of the chosen model with the largest change in the disturbance
   direction (``"decrease"`` for NDVI / NBR) is the pixel's disturbance if its magnitude reaches
   ``min_magnitude``.

NaN observations are gaps: they carry no weight, are never vertices, and a pixel with fewer than
``min_observations`` valid values gets no model (NaN outputs, ``disturbed`` False).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from scipy import special, stats

__all__ = ["NOT_SEGMENTED", "NO_DISTURBANCE", "SEGMENT_OUTPUTS", "decimal_years", "disturbance_area_table", "period_times", "segment_index",
           "segment_np"]

SEGMENT_OUTPUTS = ("disturbed", "disturbance_time", "disturbance_start", "magnitude", "duration",
                   "pre_value", "post_value", "recovery", "n_segments", "rmse", "p_value")


def segment_np(
    values: np.ndarray,
    times: np.ndarray,
    *,
    max_segments: int = 4,
    min_magnitude: float = 0.1,
    direction: Literal["decrease", "increase"] = "decrease",
    spike_threshold: float = 0.9,
    recovery_threshold: float = 0.25,
    p_threshold: float = 0.05,
    best_model_proportion: float = 0.75,
    min_observations: int = 6,
    search_adjusted: bool = True,
    block_pixels: int = 8192,
) -> dict[str, np.ndarray]:
    """Segment each pixel's series and report its largest disturbance.

    Parameters
    ----------
    values : (..., time) float
        Index series (NDVI, NBR, ...), NaN = no observation (cloud, nodata).
    times : (time,) float
        Time of each step in years (2008, 2009, ... or decimal years such as 2016.625), increasing.
    max_segments : int, default 4
        Most segments a model may have (LandTrendr maxSegments; LT-GEE examples use 6 for ~30 years).
    min_magnitude : float, default 0.1
        Smallest fitted change over one segment, in index units, that counts as a disturbance.
    direction : {"decrease", "increase"}, default "decrease"
        Which way a disturbance moves the index ("decrease" for NDVI and NBR; "increase" e.g. for NDBI).
    spike_threshold : float in (0, 1], default 0.9
        Despiking strength (LandTrendr spikeThreshold; 1 = off).
    recovery_threshold : float, default 0.25
        Fastest allowed recovery, as a share of the pixel's value range per year (LandTrendr
        recoveryThreshold: a full recovery takes at least 1 / 0.25 = 4 years).
    p_threshold : float, default 0.05
        A model whose F-test p-value exceeds this is not used (LandTrendr pvalThreshold).
    best_model_proportion : float in (0, 1], default 0.75
        A model with more segments is preferred while its p-value is at most min p / this value
        (our reading of LandTrendr bestModelProportion).
    min_observations : int, default 6
        Fewest valid observations for a model (LandTrendr minObservationsNeeded).
    search_adjusted : bool, default True
        Gate on search-adjusted p-values: a pixel gets a model only if some model's p-value times the
        number of vertex placements searched, C(n - 2, k - 1) (Bonferroni), is at most `p_threshold`.
        The exact vertex search finds the best of all placements, so the plain F-test p-value is far too
        optimistic on noisy series. The choice among passing models still uses the plain p-values
        (LandTrendr's rule). False = LandTrendr's unadjusted test.
    block_pixels : int, default 8192
        Pixels processed at once (keeps the working arrays in cache; does not change the result).

    Returns
    -------
    dict of (...) arrays
        ``disturbed`` bool: a disturbance of at least `min_magnitude` was found.
        ``disturbance_time`` float32: time of the first observation after the start vertex, i.e. the
        first period that shows the disturbance (LandTrendr's "year of detection").
        ``disturbance_start`` float32: the start vertex's time (last undisturbed period).
        ``magnitude`` float32 >= 0: fitted change (index units) over the disturbance segment.
        ``duration`` float32: end vertex time - start vertex time (years; 1 = abrupt, one period).
        ``pre_value`` / ``post_value`` float32: fitted index at the start / end vertex.
        ``recovery`` float32: share of the magnitude regained between the end vertex and the last
        observation (0 = none, 1 = full; 0 when the disturbance ends at the last observation).
        The disturbance attributes are NaN where ``disturbed`` is False.
        ``n_segments`` int8: segments of the chosen model (0 = flat: nothing significant, or too few
        observations). ``rmse`` float32: residual RMS of the chosen model (NaN if too few observations).
        ``p_value`` float32: the gate's p-value (search-adjusted if `search_adjusted`) where a model was
        chosen; NaN elsewhere (nothing significant at `p_threshold`, or too few observations).
    """
    values = np.asarray(values)
    times = np.asarray(times, dtype=np.float64)
    if values.shape[-1] != times.shape[0]:
        raise ValueError(f"values have {values.shape[-1]} time steps but times has {times.shape[0]}")
    if times.shape[0] > 1 and not np.all(np.diff(times) > 0):
        raise ValueError("times must be strictly increasing")
    if not 1 <= max_segments <= 100:
        raise ValueError(f"max_segments must be in 1..100, got {max_segments}")
    if direction not in ("decrease", "increase"):
        raise ValueError(f"direction must be 'decrease' or 'increase', got {direction!r}")
    if not 0 < spike_threshold <= 1:
        raise ValueError(f"spike_threshold must be in (0, 1], got {spike_threshold}")
    if not 0 < best_model_proportion <= 1:
        raise ValueError(f"best_model_proportion must be in (0, 1], got {best_model_proportion}")
    lead_shape, n_time = values.shape[:-1], values.shape[-1]
    flat = values.reshape(-1, n_time)
    n_pix = flat.shape[0]
    out = _empty_outputs(n_pix)
    settings = {"max_segments": max(1, min(max_segments, n_time - 1)), "min_magnitude": min_magnitude,
                    "sign": -1.0 if direction == "decrease" else 1.0, "spike_threshold": spike_threshold,
                    "recovery_threshold": recovery_threshold, "p_threshold": p_threshold,
                    "best_model_proportion": best_model_proportion, "min_observations": max(min_observations, 2),
                    "search_adjusted": search_adjusted}
    # Gap-free pixels first, so that most blocks take the fast path (their run sums over t are shared).
    order = np.argsort(~np.isfinite(flat).all(axis=1), kind="stable")
    for start in range(0, n_pix, block_pixels):
        block = order[start:start + block_pixels]
        _segment_block(np.ascontiguousarray(flat[block].T, dtype=np.float64), times, out, block, **settings)
    return {name: out[name].reshape(lead_shape) for name in SEGMENT_OUTPUTS}


def decimal_years(time: xr.DataArray | np.ndarray) -> np.ndarray:
    """(time,) float64 years: numbers (and year ids such as "2019") pass through; datetimes become
    decimal years (2016-07-02 -> 2016.5)."""
    values = np.asarray(time)
    if np.issubdtype(values.dtype, np.datetime64):
        stamps = pd.DatetimeIndex(values)
        start = pd.to_datetime(stamps.year.astype(str), format="%Y")
        length = pd.to_datetime((stamps.year + 1).astype(str), format="%Y") - start
        return (stamps.year + (stamps - start) / length).to_numpy(dtype=np.float64)
    return values.astype(np.float64)


def period_times(index: xr.DataArray, dim: str = "period") -> np.ndarray:
    """(period,) float64 decimal years of each period's middle (from `period_start`/`period_end`, as
    `composite.periods.period_coords` gives them); without them the coordinate itself (years or dates)."""
    if "period_start" in index.coords and "period_end" in index.coords:
        start = pd.to_datetime(index["period_start"].values)
        end = pd.to_datetime(index["period_end"].values) + pd.Timedelta(days=1)
        return decimal_years((start + (end - start) / 2).values)
    return decimal_years(index[dim].values)


NO_DISTURBANCE = 0                  # disturbance_period: a model was fitted and no disturbance found
NOT_SEGMENTED = 65535               # disturbance_period: too few valid observations for a model


def segment_index(index: xr.DataArray, *, dim: str = "period", **kwargs: Any) -> xr.Dataset:
    """`segment_np` over an index DataArray (e.g. NDVI composites, (period, y, x)); lazy if it is.

    Times are the periods' middles in decimal years (`period_times`). Returns a Dataset of (y, x)
    variables named as in `SEGMENT_OUTPUTS`, plus ``disturbance_period`` uint16: k = the disturbance is
    first seen in the k-th period (1-based), `NO_DISTURBANCE` (0) = none found, `NOT_SEGMENTED` (65535)
    = too few valid observations; CRS kept. Keyword arguments go to `segment_np` (e.g.
    ``min_magnitude=0.15``). `dim` is put in one chunk per block (rechunked).
    """
    times = period_times(index, dim)
    names = (*SEGMENT_OUTPUTS, "disturbance_period")

    def kernel(values: np.ndarray) -> tuple[np.ndarray, ...]:
        result = segment_np(values, times, **kwargs)
        found = result["disturbed"]
        step = np.searchsorted(times, np.where(found, result["disturbance_time"], times[0]))
        number = np.where(found, step + 1, NO_DISTURBANCE)
        number = np.where(np.isnan(result["rmse"]), NOT_SEGMENTED, number).astype(np.uint16)
        return (*(result[name] for name in SEGMENT_OUTPUTS), number)

    dtypes = [bool, np.float32, np.float32, np.float32, np.float32, np.float32, np.float32, np.float32,
              np.int8, np.float32, np.float32, np.uint16]
    outputs = xr.apply_ufunc(
        kernel, index, input_core_dims=[[dim]], output_core_dims=[[] for _ in names], dask="parallelized",
        output_dtypes=dtypes, dask_gufunc_kwargs={"allow_rechunk": True})
    dataset = xr.Dataset({name: out.rename(name) for name, out in zip(names, outputs)})
    dataset["magnitude"].attrs["units"] = "index units"
    dataset["duration"].attrs["units"] = "years"
    return dataset.rio.write_crs(index.rio.crs) if index.rio.crs is not None else dataset


def _empty_outputs(n: int) -> dict[str, np.ndarray]:
    out = {name: np.full(n, np.nan, dtype=np.float32) for name in SEGMENT_OUTPUTS}
    out["disturbed"] = np.zeros(n, dtype=bool)
    out["n_segments"] = np.zeros(n, dtype=np.int8)
    return out


def _neighbours(valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Previous / next valid step of every step, (time, pixels) int; -1 / n_time where there is none."""
    n_time, n_pix = valid.shape
    prev_idx = np.full((n_time, n_pix), -1, dtype=np.intp)
    next_idx = np.full((n_time, n_pix), n_time, dtype=np.intp)
    for s in range(1, n_time):  # loops over time: much faster than ufunc.accumulate along axis 0
        prev_idx[s] = np.where(valid[s - 1], s - 1, prev_idx[s - 1])
    for s in range(n_time - 2, -1, -1):
        next_idx[s] = np.where(valid[s + 1], s + 1, next_idx[s + 1])
    return prev_idx, next_idx


def _despike(z: np.ndarray, valid: np.ndarray, prev_idx: np.ndarray, next_idx: np.ndarray,
             spike_threshold: float) -> np.ndarray:
    """One pass of spike dampening, every point judged on the original values; (time, pixels)."""
    if spike_threshold >= 1:
        return z
    n_time = z.shape[0]
    has_both = valid & (prev_idx >= 0) & (next_idx < n_time)
    before = np.take_along_axis(z, np.clip(prev_idx, 0, n_time - 1), axis=0)
    after = np.take_along_axis(z, np.clip(next_idx, 0, n_time - 1), axis=0)
    jump = np.maximum(np.abs(z - before), np.abs(z - after))
    spike = has_both & (np.abs(after - before) < (1 - spike_threshold) * jump)
    return np.where(spike, (before + after) / 2, z)


def _segment_block(values: np.ndarray, times: np.ndarray, out: dict, block: np.ndarray, *, max_segments: int,
                   min_magnitude: float, sign: float, spike_threshold: float, recovery_threshold: float,
                   p_threshold: float, best_model_proportion: float, min_observations: int,
                   search_adjusted: bool) -> None:
    """Segment one block of pixels, (time, pixels) float64, and write its results into `out[...][block]`."""
    n_time, n_pix = values.shape
    cols = np.arange(n_pix)
    valid = np.isfinite(values)
    z = np.where(valid, sign * values, 0.0)                               # disturbance = rise of z
    prev_idx, next_idx = _neighbours(valid)
    z = _despike(z, valid, prev_idx, next_idx, spike_threshold)
    w = valid.astype(np.float64)
    t = (times - times.mean())[:, None]                                   # centred: better-conditioned sums
    n_obs = valid.sum(axis=0)
    usable = n_obs >= min_observations
    first_valid = np.argmax(valid, axis=0)
    last_valid = n_time - 1 - np.argmax(valid[::-1], axis=0)

    # prefix[q, s] = sum over steps < s of quantity q: w, w t, w t^2, w z, w t z, w z^2.
    parts = np.stack((w, w * t, w * t * t, w * z, w * t * z, w * z * z), axis=1)   # (time, 6, pix)
    prefix = np.zeros((6, n_time + 1, n_pix))
    for s in range(n_time):  # (a loop over time is much faster than np.cumsum along a middle axis)
        np.add(prefix[:, s], parts[s], out=prefix[:, s + 1])

    prefix32 = prefix.astype(np.float32)  # the vertex search runs in float32; the final fits in float64
    gap_free = bool(valid.all())
    # Dynamic programme: best[k, j] = least summed SSE of k straight-line runs from the first valid step
    # to step j, consecutive runs sharing their end step (a vertex). cost[j, i] = SSE of the run i..j.
    inf = np.float32(np.inf)
    cost = np.full((n_time, n_time, n_pix), inf, dtype=np.float32)
    best = np.full((max_segments + 1, n_time, n_pix), inf, dtype=np.float32)
    best[0][first_valid, cols] = 0
    for j in range(1, n_time):
        if gap_free:
            cost[j, :j] = _run_sse_gap_free(prefix32, j)
        else:
            cost[j, :j] = np.where(valid[:j] & valid[j], _run_sse(prefix32, j), inf)
        for k in range(1, max_segments + 1):
            best[k, j] = np.min(best[k - 1, :j] + cost[j, :j], axis=0)

    z_mean = prefix[3, -1] / np.maximum(n_obs, 1)
    sst = np.maximum(prefix[5, -1] - n_obs * z_mean ** 2, 0.0)
    value_range = np.where(valid, z, -np.inf).max(axis=0) - np.where(valid, z, np.inf).min(axis=0)
    with np.errstate(all="ignore"):  # pixels without enough observations give inf / NaN; they are dropped below
        models = [_model(k, best, cost, prefix, t[:, 0], last_valid, n_obs, sst, value_range,
                         recovery_threshold) for k in range(1, max_segments + 1)]

    # A segment that does not lower the SSE (by 0.1 %) is not worth a vertex: such a model is dropped, so
    # exact or near-exact fits keep their fewest vertices instead of splitting a straight run.
    sse_before = sst
    for m in models:
        m[3][m[2] >= sse_before * (1 - 1e-3)] = -np.inf
        sse_before = np.minimum(sse_before, m[2])
    f_all = np.stack([m[3] for m in models])                              # (K, pix) F statistics, -inf = not allowed
    ks = np.arange(1, max_segments + 1)[:, None]
    df2 = n_obs[None] - (ks + 1)
    # Whether any model: the best p-value after the search adjustment must pass p_threshold (the gate
    # against noise), i.e. some F must reach its critical value (few distinct (k, n) pairs: cheap; the
    # F distribution's tail is costly per pixel, so it is evaluated only for the pixels that pass).
    n_placements = special.comb(np.maximum(n_obs[None] - 2, 0), ks - 1) if search_adjusted else np.ones_like(f_all)
    f_critical = np.full(f_all.shape, np.inf)
    for n in np.unique(n_obs[usable]):
        for k in range(1, max_segments + 1):
            if n - k - 1 > 0:
                level = p_threshold / special.comb(n - 2, k - 1) if search_adjusted else p_threshold
                f_critical[k - 1, n_obs == n] = stats.f.isf(level, k, n - k - 1)
    chosen = usable & (f_all >= f_critical).any(axis=0)
    # Which model, for those: LandTrendr's rule on the plain F-test p-values.
    sub = np.flatnonzero(chosen)
    f_sub = f_all[:, sub]
    p_sub = special.fdtrc(ks, np.maximum(df2[:, sub], 1), np.maximum(f_sub, 0.0))
    p_sub = np.where(f_sub == -np.inf, np.inf, p_sub)                   # not allowed: never the choice
    p_min = p_sub.min(axis=0)
    good = p_sub <= p_min / best_model_proportion
    k_best = np.zeros(n_pix, dtype=np.intp)
    k_best[sub] = max_segments - np.argmax(good[::-1], axis=0)          # most segments among the good ones
    p_gate = np.full(n_pix, np.nan)
    p_gate[sub] = np.minimum(p_sub * n_placements[:, sub], 1.0).min(axis=0)

    result = {name: np.full(n_pix, np.nan) for name in ("disturbance_time", "disturbance_start", "magnitude",
                                                          "duration", "pre_value", "post_value", "recovery")}
    disturbed = np.zeros(n_pix, dtype=bool)
    n_segments = np.zeros(n_pix, dtype=np.int8)
    with np.errstate(all="ignore"):
        rmse = np.sqrt(sst / n_obs)
    for k, (vertices, fitted, sse, _) in enumerate(models, start=1):
        take = chosen & (k_best == k)
        if not take.any():
            continue
        n_segments[take] = k
        rmse[take] = np.sqrt(sse[take] / n_obs[take])
        rise = np.diff(fitted, axis=0)                                     # (k, pix)
        seg = np.argmax(rise, axis=0)                                      # largest rise of z = largest loss
        magnitude = rise[seg, cols]
        hit = take & (magnitude >= min_magnitude)
        start_step, end_step = vertices[seg, cols], vertices[seg + 1, cols]
        pre, post, last = fitted[seg, cols], fitted[seg + 1, cols], fitted[-1]
        disturbed |= hit
        result["disturbance_time"][hit] = times[next_idx[start_step, cols][hit]]
        result["disturbance_start"][hit] = times[start_step[hit]]
        result["duration"][hit] = (times[end_step] - times[start_step])[hit]
        result["magnitude"][hit] = magnitude[hit]
        result["pre_value"][hit] = sign * pre[hit]
        result["post_value"][hit] = sign * post[hit]
        result["recovery"][hit] = (post[hit] - last[hit]) / magnitude[hit]
    out["disturbed"][block] = disturbed
    for name, value in result.items():
        out[name][block] = value
    out["n_segments"][block] = n_segments
    out["rmse"][block] = np.where(usable, rmse, np.nan)
    out["p_value"][block] = p_gate


def _run_sse_gap_free(prefix: np.ndarray, j: int) -> np.ndarray:
    """`_run_sse` for a block without gaps: the sums of 1, t, t^2 are the same for every pixel."""
    n, st, stt = (prefix[q, j + 1:j + 2, :1] - prefix[q, :j, :1] for q in range(3))   # (j, 1)
    sz, stz, szz = prefix[3:, j + 1:j + 2] - prefix[3:, :j]                             # (j, pix) each
    inv_n = 1 / n
    mean_t = st * inv_n
    inv_var = 1 / (stt - st * mean_t)                                       # runs have >= 2 distinct times
    cov = stz - mean_t * sz
    sse = szz - (sz * sz) * inv_n - (cov * cov) * inv_var
    return np.maximum(sse, 0)


def _run_sse(prefix: np.ndarray, j: int) -> np.ndarray:
    """SSE of the weighted straight-line fit to the run of steps i..j, for every i < j: (j, pix), the
    dtype of `prefix`."""
    n, st, stt, sz, stz, szz = prefix[:, j + 1:j + 2] - prefix[:, :j]
    with np.errstate(divide="ignore", invalid="ignore"):
        var_t = stt - st * st / n
        cov = stz - st * sz / n
        sse = szz - sz * sz / n - np.where(var_t > 0, cov * cov / var_t, 0.0)
    return np.maximum(np.nan_to_num(sse, nan=0.0), 0.0)


def _model(k, best, cost, prefix, t, last_valid, n_obs, sst, value_range, recovery_threshold):
    """The best k-segment model of every pixel: vertex steps (k + 1, pix), fitted values at the vertices
    (k + 1, pix), SSE (pix,) and the F statistic against the flat model (pix,), -inf where the model is
    impossible or disallowed."""
    n_pix = last_valid.shape[0]
    cols = np.arange(n_pix)
    possible = np.isfinite(best[k][last_valid, cols]) & (n_obs >= k + 1)
    vertices = np.empty((k + 1, n_pix), dtype=np.intp)
    vertices[k] = last_valid
    for m in range(k, 0, -1):  # the start of the run that attains best[m, end] (same float32 sums as the DP)
        run_costs = np.take(cost, vertices[m] * cost[0].size + _grid_index(cost.shape[1:]))   # cost[end, :, pix]
        vertices[m - 1] = _argmin0(best[m - 1] + run_costs)
    fitted, sse = _spline_fit(prefix, t, vertices)
    rise = np.diff(fitted, axis=0)
    recovery_rate = np.where(rise < 0, -rise / np.diff(t[vertices], axis=0), 0.0) / value_range
    allowed = possible & ~(np.nan_to_num(recovery_rate, nan=0.0) > recovery_threshold).any(axis=0)
    df2 = n_obs - (k + 1)
    f_stat = ((sst - sse) / k) / (sse / np.maximum(df2, 1))
    f_stat = np.where(sse <= 1e-10 * sst, np.inf, np.maximum(np.nan_to_num(f_stat), 0.0))
    return vertices, fitted, sse, np.where(allowed & (sst > 0) & (df2 > 0), f_stat, -np.inf)


def _grid_index(shape: tuple[int, int]) -> np.ndarray:
    """Flat index of every element of a C-ordered (n, pix) array."""
    return np.arange(shape[0] * shape[1]).reshape(shape)


def _argmin0(a: np.ndarray) -> np.ndarray:
    """First index of the minimum along axis 0 of a (n, pix) array (np.argmin along axis 0 is slow)."""
    low = a.min(axis=0)
    index = np.zeros(a.shape[1], dtype=np.intp)
    for i in range(a.shape[0] - 1, -1, -1):
        index[a[i] == low] = i
    return index


def _spline_fit(prefix: np.ndarray, t: np.ndarray, vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least-squares continuous piecewise-linear fit with knots at the vertex steps.

    The normal equations are tridiagonal; their entries are sums over the steps between two vertices of
    w, w t, w t^2, w z, w t z, which the prefix sums give in O(segments) per pixel. Each run is half-open
    [v_s, v_s+1) except the last (the shared vertex is counted once). Returns the fitted values at the
    vertices (k + 1, pix) and the SSE (pix,).
    """
    k = vertices.shape[0] - 1
    cols = np.arange(vertices.shape[1])
    ends = vertices.copy()
    ends[-1] += 1                                                          # last run includes its end step
    _n_steps, n_pix = prefix.shape[1:]
    flat_index = ends * n_pix + cols                                       # prefix[q, ends, pix], q = 0..5
    at = np.take(prefix.reshape(6, -1), flat_index, axis=1)                # (6, k + 1, pix)
    s0, s1, s2, sz, stz, _ = at[:, 1:] - at[:, :-1]                        # sums over each run, (k, pix)
    left, right = t[vertices[:-1]], t[vertices[1:]]
    dt = right - left
    # a = (right - t) / dt (weight of the left vertex), b = (t - left) / dt = 1 - a.
    saa = (right * right * s0 - 2 * right * s1 + s2) / dt ** 2
    sbb = (left * left * s0 - 2 * left * s1 + s2) / dt ** 2
    sab = (-right * left * s0 + (right + left) * s1 - s2) / dt ** 2
    saz = (right * sz - stz) / dt
    sbz = (stz - left * sz) / dt
    diag = np.zeros((k + 1, vertices.shape[1]))
    diag[:-1] += saa
    diag[1:] += sbb
    rhs = np.zeros_like(diag)
    rhs[:-1] += saz
    rhs[1:] += sbz
    fitted = _tridiagonal_solve(sab, diag, sab, rhs)
    szz = prefix[5, -1]
    quadratic = (diag * fitted ** 2).sum(axis=0) + 2 * (sab * fitted[:-1] * fitted[1:]).sum(axis=0)
    sse = np.maximum(szz - 2 * (rhs * fitted).sum(axis=0) + quadratic, 0.0)
    return fitted, sse


def _tridiagonal_solve(lower: np.ndarray, diag: np.ndarray, upper: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Thomas algorithm for many systems at once: (n, pix) diagonal and right-hand side, (n - 1, pix)
    off-diagonals."""
    n = diag.shape[0]
    c = np.zeros_like(upper)
    d = np.empty_like(rhs)
    d[0] = rhs[0] / diag[0]
    if n > 1:
        c[0] = upper[0] / diag[0]
    for i in range(1, n):
        denom = diag[i] - lower[i - 1] * c[i - 1]
        if i < n - 1:
            c[i] = upper[i] / denom
        d[i] = (rhs[i] - lower[i - 1] * d[i - 1]) / denom
    x = np.empty_like(d)
    x[-1] = d[-1]
    for i in range(n - 2, -1, -1):
        x[i] = d[i] - c[i] * x[i + 1]
    return x


def disturbance_area_table(disturbance_period: np.ndarray, magnitude: np.ndarray, period_ids: list[str], *,
                           pixel_area_ha: float, aoi_id: str) -> pd.DataFrame:
    """metrics/disturbance_area.csv: per period, the area whose largest disturbance is first seen in it.

    `disturbance_period` (y, x) uint16 as `segment_index` gives it, `magnitude` (y, x) float32. Columns:
    aoi_id, period, disturbed_area_ha, disturbed_pct (share of the segmented pixels: those with enough
    observations), median_magnitude (index units; NaN where none), segmented_area_ha. The first period
    can hold no disturbance (a loss is seen in the period after its last undisturbed one)."""
    number = np.asarray(disturbance_period)
    segmented = int((number != NOT_SEGMENTED).sum())
    rows = []
    for k, period in enumerate(period_ids, start=1):
        here = number == k
        n = int(here.sum())
        rows.append({"aoi_id": aoi_id, "period": period, "disturbed_area_ha": n * pixel_area_ha,
                     "disturbed_pct": 100 * n / segmented if segmented else np.nan,
                     "median_magnitude": float(np.median(np.asarray(magnitude)[here])) if n else np.nan,
                     "segmented_area_ha": segmented * pixel_area_ha})
    return pd.DataFrame(rows)
