"""Flicker filter: hand-made pixel histories, then spurious vs true change on the demo's truth."""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest
import rioxarray
import xarray as xr

from pipeline.classify import stage as runner
from pipeline.config import load_config
from pipeline.results import open_run
from pipeline.classify.temporal import _remove_flicker_np, remove_flicker, spurious_and_true_changes


def _histories(*rows):
    return np.array(rows, dtype=np.uint8)


def test_a_b_a_flip_is_undone_unless_confident():
    classes = _histories([1, 2, 1, 1], [1, 2, 1, 1], [1, 2, 2, 2], [3, 3, 4, 4], [1, 2, 3, 1])
    confidence = np.full(classes.shape, 0.5)
    confidence[1, 1] = 0.95
    out = _remove_flicker_np(classes, confidence, min_confidence=0.9, max_gap=1, nodata=255)
    np.testing.assert_array_equal(out, [[1, 1, 1, 1],    # flicker removed
                                        [1, 2, 1, 1],    # confident flip kept
                                        [1, 2, 2, 2],    # a lasting change kept
                                        [3, 3, 4, 4],
                                        [1, 2, 3, 1]])   # A, B, C, A is not a flip


def test_two_period_excursions_need_max_gap_2_and_ends_and_nodata_are_left_alone():
    classes = _histories([1, 2, 2, 1, 1], [2, 1, 1, 1, 1], [1, 1, 1, 1, 2], [1, 255, 1, 2, 1], [1, 2, 3, 1, 1],
                         [1, 2, 255, 1, 4], [255, 2, 1, 255, 1])
    confidence = np.zeros(classes.shape)
    one = _remove_flicker_np(classes, confidence, min_confidence=1.0, max_gap=1, nodata=255)
    two = _remove_flicker_np(classes, confidence, min_confidence=1.0, max_gap=2, nodata=255)
    np.testing.assert_array_equal(one[0], [1, 2, 2, 1, 1])
    np.testing.assert_array_equal(two[0], [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(two[1:3], classes[1:3])            # first and last period never change
    np.testing.assert_array_equal(two[3], [1, 255, 1, 1, 1])          # nodata kept; 1, 2, 1 after it filtered
    np.testing.assert_array_equal(two[4], classes[4])                 # 2, 3 is no excursion of one class
    np.testing.assert_array_equal(two[5], [1, 1, 255, 1, 4])          # neighbours across nodata
    np.testing.assert_array_equal(two[6], classes[6])                 # 2 is the first valid period


def test_ends_take_their_neighbour_when_the_change_is_doubtful():
    classes = _histories([2, 1, 1, 1], [1, 1, 1, 2], [1, 1, 1, 2], [255, 2, 1, 1], [3, 3, 255, 255])
    confidence = np.full(classes.shape, 0.5)
    confidence[2, 3] = 0.95
    out = _remove_flicker_np(classes, confidence, min_confidence=1.0, max_gap=2, nodata=255, end_confidence=0.6)
    np.testing.assert_array_equal(out, [[1, 1, 1, 1], [1, 1, 1, 1],
                                        [1, 1, 1, 2],          # a confident change at the end is kept
                                        [255, 1, 1, 1],        # the first valid period is an end
                                        [3, 3, 255, 255]])
    off = _remove_flicker_np(classes, confidence, min_confidence=1.0, max_gap=2, nodata=255, end_confidence=0.0)
    np.testing.assert_array_equal(off[:2], classes[:2])


@pytest.mark.parametrize("chunks", [None, {"x": 1}], ids=["numpy", "dask"])
def test_remove_flicker_keeps_dims_and_laziness(chunks):
    values = np.array([[[1, 3]], [[2, 3]], [[1, 3]]], dtype=np.uint8)  # (period, y, x)
    class_map = xr.DataArray(values, dims=("period", "y", "x"),
                             coords={"period": [2019, 2020, 2021], "y": [5.0], "x": [5.0, 15.0]}, name="class_map")
    class_map = class_map.chunk(chunks) if chunks else class_map
    out = remove_flicker(class_map)
    assert dask.is_dask_collection(out) == bool(chunks) and out.dims == class_map.dims and out.dtype == np.uint8
    np.testing.assert_array_equal(out.values[:, 0, 0], [1, 1, 1])
    with pytest.raises(ValueError, match="max_gap"):
        remove_flicker(class_map, max_gap=3)


def test_spurious_and_true_changes_are_counted_against_the_truth():
    truth = np.array([[1], [1], [2]])[:, :, None]
    mapped = np.array([[1], [3], [2]])[:, :, None]
    assert spurious_and_true_changes(mapped, truth) == {"spurious": 1, "true_changes": 1, "kept": 1}


def test_flicker_filter_cuts_spurious_change_3x_and_keeps_95_percent_of_true_change_on_the_demo(demo_run):
    """On the small demo's pipeline maps (with their confidence rasters), with the config defaults through
    the runner's helper: spurious transitions (map changed, truth did not) fall at least 3-fold, and at
    least 95 % of the truth's changes are still changes in the filtered map."""
    run = open_run(demo_run / "outputs" / "demo_small")
    periods = run.periods("demo_mine")
    class_map = run.class_map("demo_mine").load()
    confidence = xr.concat([rioxarray.open_rasterio(run.layout.confidence("demo_mine", p)).squeeze("band", drop=True)
                            for p in periods], dim=pd.Index(periods, name="period"))
    truth = xr.concat([rioxarray.open_rasterio(demo_run / "data" / "truth" / f"{p}.tif").squeeze("band", drop=True)
                       for p in periods], dim=pd.Index(periods, name="period"))
    truth = truth.sel(x=class_map.x, y=class_map.y, method="nearest", tolerance=1e-6).values
    config = load_config(demo_run / "config.yaml", overrides={"classify": {"temporal_filter": "flicker"}})
    predicted = xr.Dataset({"class_map": class_map, "confidence": confidence.assign_coords(x=class_map.x, y=class_map.y)})
    filtered, report = runner.filter_flicker(config, predicted)
    before = spurious_and_true_changes(class_map.values, truth)
    after = spurious_and_true_changes(filtered.values, truth)
    assert before["spurious"] > 200  # the map flickers enough to measure
    assert before["spurious"] >= 3 * after["spurious"], (before, after)
    assert after["kept"] >= 0.95 * after["true_changes"], (before, after)
    assert report["pixel_periods_changed"] == int((filtered.values != class_map.values).sum()) > 0
    assert filtered.rio.crs == class_map.rio.crs
