"""Gap filling and the minimum mapping unit, on arrays small enough to check by hand."""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import CRS

from pipeline.classify.cleaning import (
    CLEANING_NODATA,
    FILLED,
    SIEVED,
    _gap_fill_np,
    _sieve_change_np,
    _sieve_np,
    cleaning_flags,
    gap_fill,
    mmu_pixels,
    period_middles_days,
    sieve,
    sieve_change_map,
)
from pipeline.composite.periods import make_periods, period_coords
from pipeline.errors import InputError

N = 255  # nodata
YEARS = np.array([0.0, 1.0, 2.0, 3.0, 4.0])


def test_agree_fills_a_gap_between_two_observations_of_one_class_and_the_ends():
    pixels = np.array([[3, N, N, 3, 6],    # a two-period gap inside grass: filled
                       [3, N, 6, 6, 6],    # grass, gap, mining: when it changed is unknown, the gap stays
                       [N, 3, 6, N, N],    # before the first / after the last observation: the one there is
                       [N, N, N, N, N]],   # never observed
                      "uint8")
    out = _gap_fill_np(pixels, YEARS, method="agree", nodata=N)
    np.testing.assert_array_equal(out, [[3, 3, 3, 3, 6], [3, N, 6, 6, 6], [3, 3, 6, 6, 6], [N, N, N, N, N]])


def test_nearest_takes_the_observation_nearest_in_time_and_the_earlier_on_a_tie():
    pixels = np.array([[3, N, 6, 6, 6],    # a tie (one year each side): the earlier, grass
                       [3, N, N, N, 6],
                       [N, 3, 3, N, N]], "uint8")
    out = _gap_fill_np(pixels, YEARS, method="nearest", nodata=N)
    # row 1: period 1 is 1 year from grass, 3 from mining; period 2 is 2 and 2 (a tie: grass); period 3: 3 and 1
    np.testing.assert_array_equal(out, [[3, 3, 6, 6, 6], [3, 3, 3, 6, 6], [3, 3, 3, 3, 3]])


def test_nearest_measures_real_time_between_irregular_periods():
    """Periods in days 0, 10, 100: the gap at day 10 is nearer the first."""
    pixels = np.array([[3, N, 6]], "uint8")
    np.testing.assert_array_equal(_gap_fill_np(pixels, np.array([0.0, 90.0, 100.0]), method="nearest", nodata=N),
                                  [[3, 6, 6]])
    np.testing.assert_array_equal(_gap_fill_np(pixels, np.array([0.0, 10.0, 100.0]), method="nearest", nodata=N),
                                  [[3, 3, 6]])


def test_none_leaves_the_gaps():
    pixels = np.array([[3, N, 3]], "uint8")
    np.testing.assert_array_equal(_gap_fill_np(pixels, YEARS[:3], method="none", nodata=N), pixels)


def _class_map(values: np.ndarray, dates=None, chunks=None) -> xr.DataArray:
    n, ny, nx = values.shape
    dates = dates if dates is not None else [f"{2010 + i}-06-01" for i in range(n)]
    periods = make_periods(pd.to_datetime(dates), kind="year" if len({d[:4] for d in dates}) == n else "month")
    class_map = xr.DataArray(values.astype("uint8"), dims=("period", "y", "x"),
                             coords={"y": 8_000_015.0 - 30 * np.arange(ny), "x": 500_015.0 + 30 * np.arange(nx)})
    class_map = class_map.assign_coords(period_coords(periods)).rio.write_crs(CRS).rio.write_nodata(N)
    return class_map.chunk(chunks) if chunks else class_map


@pytest.mark.parametrize("chunks", [None, {"x": 1, "y": 1}], ids=["numpy", "dask"])
def test_gap_fill_on_a_class_map_stays_lazy_and_keeps_the_grid(chunks):
    values = np.full((3, 2, 2), 3)
    values[1, 0, 0] = N
    values[1, 1, 1] = N
    values[2, 1, 1] = 6
    class_map = _class_map(values, chunks=chunks)
    out = gap_fill(class_map, "agree")
    assert dask.is_dask_collection(out) == bool(chunks)
    assert out.rio.crs == class_map.rio.crs and out.rio.nodata == N and out.dtype == np.uint8
    assert int(out.values[1, 0, 0]) == 3 and int(out.values[1, 1, 1]) == N
    assert list(out["period"].values) == list(class_map["period"].values)


def test_period_middles_in_days_from_the_period_dates():
    class_map = _class_map(np.full((3, 1, 1), 3), dates=["2019-01-10", "2019-02-10", "2019-04-10"])
    np.testing.assert_allclose(period_middles_days(class_map), [15.5, 45.0, 105.0])  # days from 1 January


def test_mmu_pixels_from_hectares_and_the_grid():
    grid = _class_map(np.full((1, 2, 2), 3))  # 30 m pixels: 0.09 ha
    assert mmu_pixels(0.5, grid) == 6   # 5 pixels = 0.45 ha are smaller than 0.5 ha; 6 = 0.54 ha are kept
    assert mmu_pixels(0.45, grid) == 5 and mmu_pixels(0, grid) == 0
    with pytest.raises(InputError, match="classify.mmu_ha"):
        mmu_pixels(0.5, grid.rio.write_crs("EPSG:4326"))


def test_sieve_merges_patches_smaller_than_the_mmu_and_never_touches_nodata():
    plane = np.full((6, 6), 3, "uint8")
    plane[1, 1] = 6                      # a one-pixel speck of mining in grass: merged
    plane[3:5, 3:5] = 2                  # four pixels of trees: kept with size 4, merged with size 5
    plane[0, 5] = N                      # nodata stays, and does not grow
    plane[5, 0] = 4                      # a speck next to nodata only on one side
    plane[5, 1] = N
    out = _sieve_np(plane, size=4, connectivity=8, nodata=N)
    assert out[1, 1] == 3 and (out[3:5, 3:5] == 2).all() and out[0, 5] == N and out[5, 1] == N
    assert out[5, 0] == 3
    assert (_sieve_np(plane, size=5, connectivity=8, nodata=N)[3:5, 3:5] == 3).all()


def test_eight_connected_patches_join_at_corners_four_connected_do_not():
    plane = np.full((5, 5), 3, "uint8")
    plane[[0, 1, 2, 3], [0, 1, 2, 3]] = 6  # a diagonal line of four mining pixels
    assert (_sieve_np(plane, size=4, connectivity=8, nodata=N)[[0, 1, 2, 3], [0, 1, 2, 3]] == 6).all()
    assert (_sieve_np(plane, size=4, connectivity=4, nodata=N)[[0, 1, 2, 3], [0, 1, 2, 3]] == 3).all()


@pytest.mark.parametrize("chunks", [None, {"x": 2, "y": 2}], ids=["numpy", "dask"])
def test_sieve_of_a_class_map_works_period_by_period_whatever_the_chunks(chunks):
    values = np.full((2, 5, 5), 3)
    values[0, 2, 2] = 6
    values[1, 0:3, 0:3] = 6  # nine pixels: kept
    out = sieve(_class_map(values, chunks=chunks), min_pixels=6)
    assert dask.is_dask_collection(out) == bool(chunks)
    expected = np.full((2, 5, 5), 3)
    expected[1, 0:3, 0:3] = 6
    np.testing.assert_array_equal(out.values, expected)


def test_a_change_map_loses_its_specks_fills_its_holes_and_settles_its_kinds():
    change = np.zeros((8, 8), "uint16")
    change[0, 7] = 4                     # a speck of change in the unchanged land: becomes unchanged (0)
    change[2:7, 1:6] = 3                 # 25 pixels changed in period 3 ...
    change[4, 3] = 0                     # ... with an unchanged hole: becomes changed, in period 3
    change[2, 5] = 5                     # ... and a one-pixel patch of period 5: takes period 3
    change[7, 7] = 65535                 # nodata stays
    out = _sieve_change_np(change, size=4, connectivity=8, unchanged=0, nodata=65535)
    expected = np.zeros((8, 8), "uint16")
    expected[2:7, 1:6] = 3
    expected[7, 7] = 65535
    np.testing.assert_array_equal(out, expected)


def test_a_large_patch_of_change_keeps_every_pixel_changed():
    change = np.zeros((6, 6), "uint8")
    change[1:5, 1:5] = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 2, 2], [3, 3, 2, 2]])
    out = sieve_change_map(xr.DataArray(change, dims=("y", "x")).rio.write_nodata(255), min_pixels=4)
    assert ((out.values != 0) == (change != 0)).all()   # no change lost, none added
    np.testing.assert_array_equal(out.values, change)   # each kind has >= 4 pixels: kept


def test_cleaning_flags_say_what_cleaning_did_to_each_pixel():
    raw = _class_map(np.array([[[3, N, 6, N]], [[3, N, 3, N]]]))
    filled = raw.copy(data=np.array([[[3, 3, 6, N]], [[3, 3, 3, N]]], "uint8"))
    cleaned = raw.copy(data=np.array([[[3, 6, 3, N]], [[3, 3, 3, N]]], "uint8"))
    flags = cleaning_flags(raw, filled, cleaned).values
    np.testing.assert_array_equal(flags, [[[0, FILLED | SIEVED, SIEVED, CLEANING_NODATA]],
                                          [[0, FILLED, 0, CLEANING_NODATA]]])
