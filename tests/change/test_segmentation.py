"""change.segmentation: the kernel on hand-made series whose answer can be read off, its xarray wrapper,
the disturbance table, and the stage on the small demo (against its truth)."""

import dask
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

from pipeline.change.maps import _first_change_np
from pipeline.change.segmentation import (
    NO_DISTURBANCE,
    NOT_SEGMENTED,
    SEGMENT_OUTPUTS,
    decimal_years,
    disturbance_area_table,
    segment_index,
    segment_np,
)
from pipeline.change.stage import segmentation_index, segmentation_stage
from pipeline.composite.periods import make_periods, period_coords
from pipeline.config import load_config
from pipeline.demo import truth_class_map
from pipeline.errors import InputError
from pipeline.ingest.grid import pixel_area_ha
from pipeline.job import AoiJob
from pipeline.results import OutputLayout, open_run, read_table

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


def _index(values: np.ndarray) -> xr.DataArray:
    """(period, y, x) index over yearly periods 2010.. with the period coordinates of a run."""
    periods = make_periods(pd.to_datetime([f"{2010 + k}-06-01" for k in range(values.shape[0])]), kind="year")
    index = xr.DataArray(values, dims=("period", "y", "x"),
                         coords={"y": 30.0 * np.arange(values.shape[1])[::-1], "x": 30.0 * np.arange(values.shape[2])})
    return index.assign_coords(period_coords(periods)).rio.write_crs("EPSG:32736")


@pytest.mark.parametrize("chunks", [None, {"y": 2, "x": 2}], ids=["numpy", "dask"])
def test_segment_index_wraps_the_kernel_lazily(chunks):
    values = np.full((10, 4, 4), 0.8)
    values[5:, :2] = 0.3
    values[:6, 3, 3] = np.nan                                               # 4 observations: no model
    index = _index(values)
    if chunks:
        index = index.chunk(chunks)
    out = segment_index(index)
    assert dask.is_dask_collection(out) == bool(chunks)
    assert out.rio.crs == index.rio.crs
    expected = np.repeat([[True, True, False, False]], 4, axis=0).T
    np.testing.assert_array_equal(out["disturbed"].values, expected)
    assert float(out["disturbance_time"].values[0, 0]) == 2015.5            # the middle of period 2015
    number = out["disturbance_period"].values
    assert number.dtype == np.uint16
    assert (number[:2] == 6).all()                                          # 2015 is the 6th period
    assert number[2, 0] == NO_DISTURBANCE and number[3, 3] == NOT_SEGMENTED


def test_disturbance_area_table_counts_each_period_and_the_share_of_segmented_pixels():
    number = np.array([[0, 2, 2], [3, NOT_SEGMENTED, 0]], dtype=np.uint16)
    magnitude = np.array([[np.nan, 0.2, 0.4], [0.5, np.nan, np.nan]], dtype=np.float32)
    table = disturbance_area_table(number, magnitude, ["2010", "2011", "2012"], pixel_area_ha=0.09, aoi_id="a")
    assert table["period"].tolist() == ["2010", "2011", "2012"]
    np.testing.assert_allclose(table["disturbed_area_ha"], [0, 0.18, 0.09])
    np.testing.assert_allclose(table["disturbed_pct"], [0, 40, 20])          # of the 5 segmented pixels
    np.testing.assert_allclose(table["median_magnitude"].iloc[1:], [0.3, 0.5])
    assert np.isnan(table["median_magnitude"].iloc[0])


def test_segmentation_index_takes_or_computes_the_index_and_names_what_is_missing():
    nir = _index(np.full((6, 2, 2), 0.5))
    composites = xr.Dataset({"nir": nir, "swir2": nir * 0 + 0.1, "red": nir * 0 + 0.3})
    nbr = segmentation_index(composites, "nbr")
    np.testing.assert_allclose(nbr.values, (0.5 - 0.1) / (0.5 + 0.1), rtol=1e-6)
    assert nbr.dtype == np.float32
    with pytest.raises(InputError, match=r"change.segmentation.index: the composites have no 'ndbi'"):
        segmentation_index(composites, "ndbi")
    with pytest.raises(InputError, match=r"no 'nbr' \(or the bands nir, swir2\)"):
        segmentation_index(composites.drop_vars("swir2"), "nbr")


def test_segmentation_of_the_demo_finds_the_mine_without_labels(demo_run, tmp_path):
    """change.segmentation on the small demo's composites: maps and table written, the truth's conversions
    to mining found and dated, few never-changed pixels flagged."""
    run = open_run(demo_run / "outputs" / "demo_small")
    periods = run.periods("demo_mine")
    class_map = run.class_map("demo_mine")
    composites = xr.concat([run.composite("demo_mine", p) for p in periods], dim=pd.Index(periods, name="period"))
    composites = composites.rio.write_crs(class_map.rio.crs)
    config = load_config(demo_run / "config.yaml", overrides={"change": {"segmentation": {"min_magnitude": 0.15}}})
    job = AoiJob(config, pd.Series({"aoi_id": "demo_mine"}), None, pd.DataFrame(), OutputLayout(tmp_path))
    facts = segmentation_stage(job, composites)
    layout = OutputLayout(tmp_path)
    with rasterio.open(layout.disturbance("demo_mine", "period")) as src:
        number, tags = src.read(1), src.tags()
        assert src.dtypes[0] == "uint16" and src.nodata == NOT_SEGMENTED and src.crs == class_map.rio.crs
    assert tags["PERIOD_1"] == periods[0] and tags["INDEX"] == "ndvi" and tags["MIN_MAGNITUDE"] == "0.15"
    for name in ("magnitude", "duration", "recovery"):
        with rasterio.open(layout.disturbance("demo_mine", name)) as src:
            values = src.read(1)
            assert src.dtypes[0] == "float32"
        assert np.isfinite(values[(number > 0) & (number != NOT_SEGMENTED)]).all()
        assert np.isnan(values[number == NO_DISTURBANCE]).all()
    table = read_table(layout.disturbance_area("demo_mine"))
    assert table["period"].tolist() == periods and {"period_start", "period_end"} <= set(table.columns)
    disturbed = int(((number > 0) & (number != NOT_SEGMENTED)).sum())
    assert facts["disturbed_pixels"] == disturbed
    np.testing.assert_allclose(table["disturbed_area_ha"].sum(), disturbed * pixel_area_ha(class_map))

    truth = np.moveaxis(truth_class_map(demo_run / "data" / "truth", class_map.load()).values, 0, -1)
    first = _first_change_np(truth, 255).astype(int)
    segmented = number != NOT_SEGMENTED
    found = segmented & (number > 0)
    to_mining = segmented & (first > 0) & (first < 65535) & (truth[..., -1] == 6)
    never = segmented & (first == 0)
    on_time = found & (np.abs(number.astype(int) - first) <= 1)
    assert to_mining.sum() > 100
    assert found[to_mining].mean() > 0.7 and on_time[to_mining].mean() > 0.65   # measured 0.79 and 0.76
    assert found[never].mean() < 0.12                                          # measured 0.077


def test_decimal_years():
    times = np.array(["2016-01-01", "2016-07-02"], dtype="datetime64[ns]")
    np.testing.assert_allclose(decimal_years(times), [2016.0, 2016.0 + 183 / 366])
    np.testing.assert_array_equal(decimal_years(np.array([2008, 2009])), [2008.0, 2009.0])
