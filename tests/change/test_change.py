from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipeline.change import (FIRST_CHANGE_NODATA, NO_CHANGE, change_summary, class_area_table, class_pixel_counts,
                             first_change, first_change_tags, mining_footprint_table, ring_summary,
                             transition_counts, transition_table)
from pipeline.composite.periods import make_periods, period_coords
from pipeline.ingest import pixel_area_ha
from pipeline.config import DEFAULT_CLASSES

from conftest import CRS


def _class_map(chunks=None) -> xr.DataArray:
    # 2x3 pixels of 30 m (0.09 ha); 2010: three water, three built-up; 2011: one built-up became bare
    values = np.array([[[1, 1, 1], [5, 5, 5]], [[1, 1, 1], [5, 5, 6]], [[1, 1, 255], [6, 6, 6]]], "uint8")
    periods = make_periods(pd.to_datetime(["2010-06-01", "2011-06-01", "2012-06-01"]))
    class_map = xr.DataArray(values, dims=("period", "y", "x"), coords={"y": [15.0, -15.0], "x": [15.0, 45.0, 75.0]})
    class_map = class_map.assign_coords(period_coords(periods)).rio.write_crs(CRS)
    return class_map.chunk(chunks) if chunks else class_map


@pytest.mark.parametrize("chunks", [None, {"x": 2}], ids=["numpy", "dask"])
def test_class_areas_in_hectares(chunks):
    class_map = _class_map(chunks)
    counts = class_pixel_counts(class_map)
    assert dask.is_dask_collection(counts) == bool(chunks)
    table = class_area_table(counts.compute(), DEFAULT_CLASSES, pixel_area_ha=pixel_area_ha(class_map),
                             aoi_id="mine_a")
    assert list(table.columns) == ["aoi_id", "period", "class_code", "class_name", "area_ha", "area_pct"]
    area = table.set_index(["period", "class_code"])["area_ha"]
    assert area["2010", 5] == pytest.approx(0.27) and area["2011", 5] == pytest.approx(0.18)
    assert area["2011", 6] == pytest.approx(0.09) and area["2012", 1] == pytest.approx(0.18)  # nodata not counted
    assert len(table) == 3 * len(DEFAULT_CLASSES)
    share = table.set_index(["period", "class_code"])["area_pct"]
    assert share["2011", 5] == pytest.approx(200 / 6) and share["2012", 1] == pytest.approx(40.0)


@pytest.mark.parametrize("chunks", [None, {"x": 2}], ids=["numpy", "dask"])
def test_transitions_between_consecutive_periods(chunks):
    counts = transition_counts(_class_map(chunks)).compute()
    table = transition_table(counts, DEFAULT_CLASSES, pixel_area_ha=0.09, aoi_id="mine_a")
    assert list(table.columns) == ["aoi_id", "period_from", "period_to", "class_from", "class_to", "area_ha"]
    area = table.set_index(["period_from", "class_from", "class_to"])["area_ha"]
    assert area["2010", 5, 6] == pytest.approx(0.09) and area["2010", 5, 5] == pytest.approx(0.18)
    assert area["2011", 5, 6] == pytest.approx(0.18)
    assert area["2011", 1, 1] == pytest.approx(0.18)  # the pixel gone to nodata is not a transition
    assert set(table["period_to"]) == {"2011", "2012"}


def test_first_to_last_transitions_skip_the_middle():
    counts = transition_counts(_class_map(), steps="first_last")
    table = transition_table(counts, DEFAULT_CLASSES, pixel_area_ha=0.09, aoi_id="mine_a")
    assert set(zip(table.period_from, table.period_to)) == {("2010", "2012")}
    area = table.set_index(["class_from", "class_to"])["area_ha"]
    assert area[5, 6] == pytest.approx(0.27) and area[1, 1] == pytest.approx(0.18)


def test_change_summary_gross_net_and_rates():
    class_map = _class_map()
    area_ha = pixel_area_ha(class_map)
    areas = class_area_table(class_pixel_counts(class_map), DEFAULT_CLASSES, pixel_area_ha=area_ha, aoi_id="a")
    moves = transition_table(transition_counts(class_map), DEFAULT_CLASSES, pixel_area_ha=area_ha, aoi_id="a")
    summary = change_summary(areas, moves).set_index("class_code")
    bare, built = summary.loc[6], summary.loc[5]
    assert bare["gross_gain_ha"] == pytest.approx(0.27) and bare["gross_loss_ha"] == 0
    assert built["gross_loss_ha"] == pytest.approx(0.27) and built["net_change_ha"] == pytest.approx(-0.27)
    assert bare["annual_change_ha"] == pytest.approx(0.135) and np.isnan(bare["annual_rate_pct"])
    water = summary.loc[1]  # 0.27 -> 0.18 ha over 2 years: 100 * ln(2/3) / 2 % a year
    assert water["annual_rate_pct"] == pytest.approx(100 * np.log(2 / 3) / 2, rel=1e-3)
    assert water["years_elapsed"] == pytest.approx(2.0, abs=0.01)  # middle of 2010 to middle of 2012


def test_annual_rates_use_the_real_time_between_irregular_periods():
    """Months three apart: the rate is per year of real elapsed time, not per period."""
    table = pd.DataFrame({"aoi_id": "a", "period": ["2019-01", "2019-04"], "period_start": ["2019-01-01", "2019-04-01"],
                          "period_end": ["2019-01-31", "2019-04-30"], "class_code": 6, "class_name": "bare",
                          "area_ha": [10.0, 12.0], "area_pct": 1.0})
    summary = change_summary(table, pd.DataFrame(columns=["class_from", "class_to", "area_ha"])).iloc[0]
    years = (pd.Timestamp("2019-04-16") - pd.Timestamp("2019-01-16T12:00")) / pd.Timedelta(days=365.25)  # middles
    assert summary["years_elapsed"] == pytest.approx(years, abs=1e-4)
    assert summary["annual_change_ha"] == pytest.approx(2.0 / years, rel=1e-3)
    footprint = mining_footprint_table(table, [6]).set_index("period")
    assert footprint.loc["2019-04", "expansion_rate_ha_per_year"] == pytest.approx(2.0 / years, rel=1e-3)


def test_mining_footprint_and_its_expansion():
    class_map = _class_map()
    areas = class_area_table(class_pixel_counts(class_map), DEFAULT_CLASSES, pixel_area_ha=0.09, aoi_id="a")
    footprint = mining_footprint_table(areas, [6]).set_index("period")
    assert list(footprint["area_ha"].round(2)) == [0.0, 0.09, 0.27]
    assert footprint.loc["2012", "expansion_rate_ha_per_year"] == pytest.approx(0.18, rel=1e-3)


@pytest.mark.parametrize("chunks", [None, {"x": 2}], ids=["numpy", "dask"])
def test_first_change_is_the_number_of_the_period_of_change(chunks):
    out = first_change(_class_map(chunks))
    assert out.dtype == np.uint16 and out.rio.nodata == FIRST_CHANGE_NODATA
    # row 0: water throughout (the last pixel goes to nodata: observed twice, never changed);
    # row 1: built-up -> bare in the third period (2012), the last pixel in the second (2011)
    np.testing.assert_array_equal(out.values, [[NO_CHANGE, NO_CHANGE, NO_CHANGE], [3, 3, 2]])
    assert first_change_tags(["2010", "2011", "2012"])["PERIOD_3"] == "2012"


def test_a_change_across_a_period_without_data_counts_where_it_is_seen():
    """A, nodata, B is a change at B; a pixel seen in fewer than two periods is nodata, not 'never'."""
    values = np.array([[[3, 3, 3]], [[255, 255, 3]], [[6, 255, 3]]], "uint8")
    class_map = _class_map().isel(y=[0]).copy(data=values)
    np.testing.assert_array_equal(first_change(class_map).values, [[3, FIRST_CHANGE_NODATA, NO_CHANGE]])


def test_rings_around_the_mining_footprint():
    values = np.full((1, 2, 7), 255, "uint8")
    values[0, 0] = 3
    values[0, 0, 0] = 6  # mine at the west end of a row of 30 m pixels (the second row is nodata)
    values[0, 0, 4] = 5
    class_map = xr.DataArray(values, dims=("period", "y", "x"),
                             coords={"period": [2020], "y": [45.0, 15.0], "x": 15.0 + 30 * np.arange(7)})
    rings = ring_summary(class_map.rio.write_crs(CRS), DEFAULT_CLASSES, mining_classes=[6], rings_m=[60, 200],
                         aoi_id="a")
    area = rings.set_index(["ring_to_m", "class_code"])["area_ha"]
    assert area[60, 3] == pytest.approx(0.18)       # 30 and 60 m away (nodata below is no class)
    assert area[200, 3] == pytest.approx(0.27) and area[200, 5] == pytest.approx(0.09)  # 90-180 m
    assert area[60, 6] == 0  # the footprint itself is not in a ring


def test_first_change_of_a_single_period_is_nodata():
    out = first_change(_class_map().isel(period=[0]))
    assert (out.values == FIRST_CHANGE_NODATA).all() and out.shape == (2, 3)


def test_an_aoi_without_any_mining_class_has_an_empty_footprint_table():
    areas = class_area_table(class_pixel_counts(_class_map()), DEFAULT_CLASSES, pixel_area_ha=0.09, aoi_id="a")
    footprint = mining_footprint_table(areas, [42])
    assert footprint.empty and "expansion_rate_ha_per_year" in footprint.columns


def test_class_areas_state_the_observed_nodata_and_gap_filled_areas_of_each_period():
    """2012 (raw): one pixel of six has no data; gap filling gave it water. The AOI is the six pixels."""
    raw = _class_map()
    cleaned = raw.copy(data=np.where(raw.values == 255, 1, raw.values).astype("uint8"))
    filled_only = cleaned.where(raw == 255, 255).astype("uint8")
    table = class_area_table(class_pixel_counts(cleaned), DEFAULT_CLASSES, pixel_area_ha=0.09, aoi_id="a",
                             raw_counts=class_pixel_counts(raw), filled_counts=class_pixel_counts(filled_only),
                             aoi_pixels=6).set_index(["period", "class_code"])
    water_2012 = table.loc[("2012", 1)]
    assert water_2012["area_ha"] == pytest.approx(0.27) and water_2012["raw_area_ha"] == pytest.approx(0.18)
    assert water_2012["area_pct"] == pytest.approx(50.0)       # 3 of the 6 mapped pixels
    assert water_2012["raw_area_pct"] == pytest.approx(40.0)   # 2 of the 5 observed pixels
    assert water_2012["observed_ha"] == pytest.approx(0.45) and water_2012["nodata_ha"] == pytest.approx(0.09)
    assert water_2012["nodata_pct"] == pytest.approx(100 / 6) and water_2012["filled_pct"] == pytest.approx(100 / 6)
    assert water_2012["filled_ha"] == pytest.approx(0.09) and water_2012["unmapped_ha"] == pytest.approx(0.0)
    assert table.loc[("2011", 1), "nodata_ha"] == 0 and table.loc[("2011", 1), "filled_ha"] == 0
    # observed + nodata is the AOI in every period
    per_period = table.groupby("period")[["observed_ha", "nodata_ha"]].first().sum(axis=1)
    assert per_period.to_numpy() == pytest.approx([0.54] * 3)
    footprint = mining_footprint_table(table.reset_index(), [6]).set_index("period")
    assert {"area_pct", "raw_area_ha", "unmapped_ha"} <= set(footprint.columns)
    assert footprint.loc["2012", "area_pct"] == pytest.approx(50.0)
