from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest

from pipeline.composite import cloud_mask, composite, make_periods, ndvi, ndvi_range, periods_of, spectral_indices

from conftest import make_scene_stack


def test_ndvi_stays_lazy_keeps_grid_and_is_right(scene_stack):
    out = ndvi(scene_stack)
    assert dask.is_dask_collection(out) == dask.is_dask_collection(scene_stack)
    assert out.rio.crs == scene_stack.rio.crs
    np.testing.assert_allclose(out.values, (0.5 - 0.1) / (0.5 + 0.1), rtol=1e-6)


def test_indices_values(scene_stack):
    out = spectral_indices(scene_stack, ["ndvi", "ndwi", "ndbi", "bsi"])
    np.testing.assert_allclose(out["ndwi"].values, (0.2 - 0.5) / (0.2 + 0.5), rtol=1e-6)
    np.testing.assert_allclose(out["ndbi"].values, (0.2 - 0.5) / (0.2 + 0.5), rtol=1e-6)
    np.testing.assert_allclose(out["bsi"].values, ((0.2 + 0.1) - (0.5 + 0.2)) / 1.0, rtol=1e-6)
    assert out["ndvi"].dtype == np.float32
    assert "ndvi" not in scene_stack  # the caller's dataset is untouched


def test_ndvi_is_nan_where_the_sum_is_zero():
    stack = make_scene_stack()
    stack["nir"][:] = 0
    stack["red"][:] = 0
    assert np.isnan(ndvi(stack).values).all()


def test_cloud_mask_drops_flagged_pixels():
    stack = make_scene_stack()
    mask = (stack["red"] * 0).astype("uint8")
    mask[0, 0, 0], mask[1, 1, 1], mask[2, 2, 2] = 1, 2, 3
    out = cloud_mask(stack.assign(mask=mask), mask_values=[1, 2])
    assert "mask" not in out
    assert np.isnan(out["red"].values[0, 0, 0]) and np.isnan(out["nir"].values[1, 1, 1])
    assert out["red"].values[2, 2, 2] == pytest.approx(0.1)  # 3 is not a dropped value


@pytest.mark.parametrize("chunks", [None, {"x": 2, "y": 2}], ids=["numpy", "dask"])
def test_composite_is_the_per_year_median_of_clear_scenes(chunks):
    stack = make_scene_stack(years=[2020, 2020, 2020, 2021, 2021], shape=(2, 2))
    stack["red"][:, 0, 0] = [0.1, 0.3, 0.2, 0.4, np.nan]
    stack["red"][:3, 1, 1] = np.nan  # no clear observation in 2020
    out = composite(stack.chunk(chunks) if chunks else stack, make_periods(stack["time"].values), min_clear_scenes=1)
    assert dask.is_dask_collection(out) == bool(chunks)
    assert list(out["period"].values) == ["2020", "2021"]
    assert [(p.start.isoformat(), p.end.isoformat()) for p in periods_of(out)] == [
        ("2020-01-01", "2020-12-31"), ("2021-01-01", "2021-12-31")]
    red = out["red"].values
    assert red[0, 0, 0] == pytest.approx(0.2) and red[1, 0, 0] == pytest.approx(0.4)
    assert np.isnan(red[0, 1, 1])
    assert out["clear_count"].values[0, 0, 0] == 3 and out["clear_count"].values[1, 0, 0] == 1
    assert out.rio.crs == stack.rio.crs


def test_composite_needs_min_clear_scenes():
    stack = make_scene_stack(years=[2020, 2020, 2020], shape=(1, 2))
    stack["red"][:2, 0, 0] = np.nan
    out = composite(stack, make_periods(stack["time"].values), min_clear_scenes=2)
    assert np.isnan(out["red"].values[0, 0, 0]) and out["red"].values[0, 0, 1] == pytest.approx(0.1)


def test_ndvi_range_spans_the_season():
    stack = make_scene_stack(years=[2020, 2020], shape=(1, 1))
    stack["nir"][:, 0, 0] = [0.5, 0.1]  # green, then bare: ndvi 0.667 then 0
    out = ndvi_range(stack, make_periods(stack["time"].values))
    assert out["ndvi_max"].values[0, 0, 0] == pytest.approx(0.4 / 0.6)
    assert out["ndvi_min"].values[0, 0, 0] == pytest.approx(0.0)


def test_scene_periods_keep_each_acquisition_and_mosaic_two_of_one_day():
    """period: scene: no compositing; two acquisitions of one day are one scene (first clear value)."""
    stack = make_scene_stack(n_time=3, shape=(1, 2))
    stack = stack.assign_coords(time=pd.to_datetime(["2015-12-08T10:04", "2015-12-08T10:11", "2015-12-18T10:04"]))
    stack["red"][:, 0, 0] = [np.nan, 0.3, 0.25]   # cloudy in the first acquisition of the day
    stack["red"][:, 0, 1] = [0.11, 0.12, np.nan]  # cloudy on 18 December: stays nodata
    periods = make_periods(stack["time"].values, kind="scene")
    assert [p.id for p in periods] == ["2015-12-08", "2015-12-18"]
    out = composite(stack, periods, method="first")
    np.testing.assert_allclose(out["red"].values[:, 0, 0], [0.3, 0.25])
    assert out["red"].values[0, 0, 1] == pytest.approx(0.11) and np.isnan(out["red"].values[1, 0, 1])
