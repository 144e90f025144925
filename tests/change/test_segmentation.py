"""Tests of segmentation.segment_np on hand-made series whose answer can be read off."""

import dask
import numpy as np
import pytest
import xarray as xr

from pipeline.change.segmentation import SEGMENT_OUTPUTS, decimal_years, segment_index, segment_np

YEARS = np.arange(2010, 2020, dtype=float)                                 # 10 periods


def one(series, **kwargs) -> dict:
    out = segment_np(np.asarray(series, dtype=float)[None], YEARS, **kwargs)
    return {k: v[0] for k, v in out.items()}


def test_flat_series_has_no_model_and_no_disturbance():
    out = one([0.7] * 10)
    assert not out["disturbed"] and out["n_segments"] == 0 and np.isnan(out["magnitude"])


def test_abrupt_loss_is_dated_to_the_first_period_that_shows_it():
    out = one([0.8] * 5 + [0.3] * 5)                                       # loss between 2014 and 2015
    assert out["disturbed"]
    assert out["disturbance_time"] == 2015 and out["disturbance_start"] == 2014
    assert out["duration"] == 1
    assert out["magnitude"] == pytest.approx(0.5, abs=1e-6)
    assert out["pre_value"] == pytest.approx(0.8, abs=1e-6) and out["post_value"] == pytest.approx(0.3, abs=1e-6)
    assert out["recovery"] == pytest.approx(0.0, abs=1e-6)
    assert out["n_segments"] == 3                                          # flat, drop, flat: no extra vertex


def test_partial_recovery_is_the_share_of_the_loss_regained():
    # 0.8, then 0.3 in 2015 rising 0.05 a year to 0.5 in 2019: 0.2 of 0.5 regained
    out = one([0.8] * 5 + [0.3, 0.35, 0.4, 0.45, 0.5])
    assert out["disturbance_time"] == 2015 and out["magnitude"] == pytest.approx(0.5, abs=1e-6)
    assert out["recovery"] == pytest.approx(0.4, abs=1e-6)


def test_gradual_loss_has_its_duration():
    out = one([0.8, 0.8, 0.8, 0.7, 0.6, 0.5, 0.4, 0.4, 0.4, 0.4])       # falls 2012 -> 2016
    assert out["disturbance_start"] == 2012 and out["disturbance_time"] == 2013
    assert out["duration"] == 4 and out["magnitude"] == pytest.approx(0.4, abs=1e-6)


def test_gap_at_the_loss_moves_detection_to_the_next_observation():
    series = [0.8] * 5 + [np.nan] + [0.3] * 4                              # 2015 missing
    out = one(series)
    assert out["disturbance_start"] == 2014 and out["disturbance_time"] == 2016 and out["duration"] == 2


def test_one_period_spike_is_dampened():
    series = [0.8] * 4 + [0.2] + [0.8] * 5                                 # e.g. a cloud in the 2014 composite
    assert not one(series)["disturbed"]
    assert not one(series, spike_threshold=1.0, recovery_threshold=0.25)["disturbed"]  # fast recovery disallowed


def test_small_changes_need_a_lower_min_magnitude():
    series = [0.8] * 5 + [0.75] * 5
    assert not one(series)["disturbed"]
    out = one(series, min_magnitude=0.04)
    assert out["disturbed"] and out["magnitude"] == pytest.approx(0.05, abs=1e-6)


def test_increase_direction_for_indices_that_rise_with_disturbance():
    series = [0.1] * 6 + [0.5] * 4                                         # e.g. NDBI of a new pit
    assert not one(series)["disturbed"]                                    # a gain, not a loss, by default
    out = one(series, direction="increase")
    assert out["disturbed"] and out["disturbance_time"] == 2016
    assert out["pre_value"] == pytest.approx(0.1, abs=1e-6) and out["post_value"] == pytest.approx(0.5, abs=1e-6)


def test_too_few_observations_give_no_model():
    series = [0.8, np.nan, 0.8, np.nan, np.nan, 0.3, np.nan, 0.3, np.nan, 0.3]   # 5 valid < 6
    out = one(series)
    assert out["n_segments"] == 0 and not out["disturbed"] and np.isnan(out["p_value"]) and np.isnan(out["rmse"])
    assert one(series, min_observations=5)["disturbed"]


def test_noise_alone_is_rarely_a_disturbance_and_a_step_is_found():
    rng = np.random.default_rng(1)
    noise = 0.6 + rng.normal(0, 0.02, (2000, 10))
    stepped = noise.copy()
    stepped[:, 6:] -= 0.3
    assert segment_np(noise, YEARS)["disturbed"].mean() < 0.01
    out = segment_np(stepped, YEARS)
    assert out["disturbed"].mean() > 0.99 and np.mean(out["disturbance_time"] == 2016) > 0.95


def test_shapes_blocks_and_dtypes():
    rng = np.random.default_rng(2)
    values = 0.6 + rng.normal(0, 0.05, (3, 4, 10))
    values[0, 0, 3] = np.nan
    whole = segment_np(values, YEARS)
    blocked = segment_np(values, YEARS, block_pixels=5)
    assert set(whole) == set(SEGMENT_OUTPUTS)
    for name in SEGMENT_OUTPUTS:
        assert whole[name].shape == (3, 4)
        np.testing.assert_array_equal(whole[name], blocked[name])
    assert whole["disturbed"].dtype == bool and whole["n_segments"].dtype == np.int8
    assert whole["magnitude"].dtype == np.float32


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="time steps"):
        segment_np(np.zeros((2, 10)), YEARS[:9])
    with pytest.raises(ValueError, match="increasing"):
        segment_np(np.zeros((2, 10)), YEARS[::-1])
    with pytest.raises(ValueError, match="direction"):
        segment_np(np.zeros((2, 10)), YEARS, direction="down")


@pytest.mark.parametrize("chunks", [None, {"y": 2, "x": 2}], ids=["numpy", "dask"])
def test_segment_index_wraps_the_kernel_lazily(chunks):
    values = np.full((10, 4, 4), 0.8)
    values[5:, :2] = 0.3
    index = xr.DataArray(values, dims=("period", "y", "x"),
                         coords={"period": np.arange(2010, 2020), "y": np.arange(4.0), "x": np.arange(4.0)})
    index = index.rio.write_crs("EPSG:32736")
    if chunks:
        index = index.chunk(chunks)
    out = segment_index(index)
    assert dask.is_dask_collection(out) == bool(chunks)
    assert out.rio.crs == index.rio.crs
    np.testing.assert_array_equal(out["disturbed"].values, np.repeat([[True, True, False, False]], 4, axis=0).T)
    assert float(out["disturbance_time"].values[0, 0]) == 2015


def test_decimal_years():
    times = np.array(["2016-01-01", "2016-07-02"], dtype="datetime64[ns]")
    np.testing.assert_allclose(decimal_years(times), [2016.0, 2016.0 + 183 / 366])
    np.testing.assert_array_equal(decimal_years(np.array([2008, 2009])), [2008.0, 2009.0])
