"""Spectral-temporal metrics, sub-period composites and their gap filling (composite.phenology)."""

from __future__ import annotations

import warnings

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipeline.composite.periods import make_periods
from pipeline.composite.phenology import (fill_from_neighbours, interpolate_gaps, metric_names, period_phenology,
                                          spectral_temporal_metrics, sub_period_composites, sub_period_groups,
                                          sub_period_names)


def test_metrics_equal_numpy_percentiles_std_and_amplitude_and_stay_empty_without_observations():
    rng = np.random.default_rng(0)
    values = rng.normal(0.5, 0.2, (40, 9)).astype("float32")
    values[rng.random(values.shape) < 0.4] = np.nan
    values[3] = np.nan                                 # never clear
    values[4] = [0.3] + [np.nan] * 8                   # one clear observation
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # an all-NaN pixel must not warn
        got = spectral_temporal_metrics(values, percentiles=[10, 50, 90], spread=["std", "amplitude"])
    assert got.shape == (40, 5) and got.dtype == np.float32
    observed = np.delete(values, 3, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = np.stack([*np.nanpercentile(observed, [10, 50, 90], axis=1), np.nanstd(observed, axis=1),
                         np.nanmax(observed, axis=1) - np.nanmin(observed, axis=1)], axis=1)
    np.testing.assert_allclose(np.delete(got, 3, axis=0), want, rtol=1e-5, atol=1e-6)
    assert np.isnan(got[3]).all()
    np.testing.assert_allclose(got[4], [0.3, 0.3, 0.3, 0, 0], rtol=1e-6)
    assert metric_names("ndvi", percentiles=[10, 50, 90], spread=["std", "amplitude"]) == [
        "ndvi_p10", "ndvi_p50", "ndvi_p90", "ndvi_std", "ndvi_amplitude"]


def test_sub_period_composites_are_medians_of_each_month_and_gaps_where_a_month_has_no_clear_scene():
    times = pd.to_datetime(["2019-01-05", "2019-01-20", "2019-03-10", "2019-07-01"])
    groups = sub_period_groups(times, "quarter")
    assert groups.tolist() == [0, 0, 0, 2]
    values = np.array([[0.2, 0.4, np.nan, 0.8], [np.nan, np.nan, np.nan, 0.5]], dtype="float32")
    got = sub_period_composites(values, groups, n_groups=4)
    np.testing.assert_allclose(got[0], [0.3, np.nan, 0.8, np.nan])   # Q2 and Q4: no scene at all
    np.testing.assert_allclose(got[1], [np.nan, np.nan, 0.5, np.nan])
    assert sub_period_groups(times, "season", season=("04-01", "09-30")).tolist() == [1, 1, 1, 0]
    assert sub_period_names("ndvi", "quarter") == ["ndvi_q1", "ndvi_q2", "ndvi_q3", "ndvi_q4"]
    # a seasonal period (Apr-Sep) keeps only the months it spans
    assert sub_period_names("ndvi", "month", within=("04-01", "09-30")) == [f"ndvi_m{m:02d}" for m in range(4, 10)]


def test_gaps_interpolate_linearly_around_the_year_or_take_the_nearest_value_at_the_ends():
    series = np.array([[0.2, np.nan, np.nan, 0.8], [np.nan, 0.4, np.nan, np.nan], [np.nan] * 4], dtype="float32")
    cyclic = interpolate_gaps(series, cyclic=True)
    np.testing.assert_allclose(cyclic[0], [0.2, 0.4, 0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(cyclic[1], [0.4] * 4)
    assert np.isnan(cyclic[2]).all()                   # nothing observed: stays nodata
    wrapped = interpolate_gaps(np.array([[np.nan, 0.2, np.nan, 0.6]], dtype="float32"), cyclic=True)
    np.testing.assert_allclose(wrapped[0], [0.4, 0.2, 0.4, 0.6], rtol=1e-6)   # January between Dec and Feb
    ends = interpolate_gaps(np.array([[np.nan, 0.2, np.nan, 0.6]], dtype="float32"), cyclic=False)
    np.testing.assert_allclose(ends[0], [0.2, 0.2, 0.4, 0.6], rtol=1e-6)


def test_gaps_take_the_same_sub_period_of_the_previous_then_the_next_period():
    # (period, sub_period): period 1 has a gap in Q2 and Q3; period 2 is empty (nodata, not a gap)
    values = np.array([[0.1, 0.2, np.nan, 0.4], [0.5, np.nan, np.nan, 0.8], [np.nan] * 4, [0.3, 0.3, 0.9, 0.3]],
                      dtype="float32")
    got = fill_from_neighbours(values)
    np.testing.assert_allclose(got[1], [0.5, 0.2, np.nan, 0.8])     # Q3: neither neighbour has it
    np.testing.assert_allclose(got[0], [0.1, 0.2, np.nan, 0.4])     # Q3: period 1 has none either
    assert np.isnan(got[2]).all()
    np.testing.assert_allclose(got[3], values[3])


@pytest.mark.parametrize("chunks", [None, {"x": 2}], ids=["numpy", "dask"])
def test_period_phenology_gives_named_layers_per_period_from_the_clear_scenes(chunks):
    times = pd.to_datetime(["2018-02-01", "2018-05-01", "2018-08-01", "2019-02-01", "2019-08-01"])
    red = np.full((5, 2, 3), 0.1, dtype="float32")
    nir = np.array([0.3, 0.5, 0.7, 0.3, 0.6], dtype="float32")[:, None, None] * np.ones((5, 2, 3), "float32")
    nir[1, 0, 0] = np.nan                                          # one cloudy observation
    stack = xr.Dataset({"red": (("time", "y", "x"), red), "nir": (("time", "y", "x"), nir)},
                       coords={"time": times, "y": [15.0, 5.0], "x": [5.0, 15.0, 25.0]}).rio.write_crs("EPSG:32633")
    if chunks:
        stack = stack.chunk(chunks)
    periods = make_periods(times, kind="year")
    out = period_phenology(stack, periods, variables=["ndvi"], percentiles=[50], spread=["amplitude"],
                           sub_periods="quarter", sub_period_of=["ndvi"])
    assert dask.is_dask_collection(out["ndvi_p50"]) == bool(chunks)
    assert list(out.data_vars) == ["ndvi_p50", "ndvi_amplitude", "ndvi_q1", "ndvi_q2", "ndvi_q3", "ndvi_q4"]
    assert out["period"].values.tolist() == ["2018", "2019"] and "period_start" in out.coords
    ndvi = (nir - red) / (nir + red)
    got = out.compute()
    np.testing.assert_allclose(got["ndvi_p50"].sel(period="2018").values[0, 1], ndvi[1, 0, 1], rtol=1e-5)
    np.testing.assert_allclose(got["ndvi_q3"].sel(period="2019").values, ndvi[4], rtol=1e-5)
    assert np.isnan(got["ndvi_q2"].sel(period="2018").values[0, 0])   # its only Q2 scene was cloudy
    assert np.isnan(got["ndvi_q4"].values).all()                      # no scene in Q4: a gap everywhere
    np.testing.assert_allclose(got["ndvi_amplitude"].sel(period="2018").values[0, 0], ndvi[2, 0, 0] - ndvi[0, 0, 0],
                               rtol=1e-5)
