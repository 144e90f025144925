from __future__ import annotations

import dask
import numpy as np
import pytest
import xarray as xr

from pipeline.change import (NO_CHANGE, change_summary, class_area_table, class_pixel_counts,
                             first_change_year, mining_footprint_table, ring_summary, transition_counts,
                             transition_table)
from pipeline.ingest import pixel_area_ha
from pipeline.config import DEFAULT_CLASSES

from conftest import CRS


def _class_map(chunks=None) -> xr.DataArray:
    # 2x3 pixels of 30 m (0.09 ha); 2010: three water, three built-up; 2011: one built-up became bare
    values = np.array([[[1, 1, 1], [5, 5, 5]], [[1, 1, 1], [5, 5, 6]], [[1, 1, 255], [6, 6, 6]]], "uint8")
    class_map = xr.DataArray(values, dims=("period", "y", "x"),
                             coords={"period": [2010, 2011, 2012], "y": [15.0, -15.0], "x": [15.0, 45.0, 75.0]})
    class_map = class_map.rio.write_crs(CRS)
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
    assert area[2010, 5] == pytest.approx(0.27) and area[2011, 5] == pytest.approx(0.18)
    assert area[2011, 6] == pytest.approx(0.09) and area[2012, 1] == pytest.approx(0.18)  # nodata not counted
    assert len(table) == 3 * len(DEFAULT_CLASSES)
    share = table.set_index(["period", "class_code"])["area_pct"]
    assert share[2011, 5] == pytest.approx(200 / 6) and share[2012, 1] == pytest.approx(40.0)


@pytest.mark.parametrize("chunks", [None, {"x": 2}], ids=["numpy", "dask"])
def test_transitions_between_consecutive_periods(chunks):
    counts = transition_counts(_class_map(chunks)).compute()
    table = transition_table(counts, DEFAULT_CLASSES, pixel_area_ha=0.09, aoi_id="mine_a")
    assert list(table.columns) == ["aoi_id", "period_from", "period_to", "class_from", "class_to", "area_ha"]
    area = table.set_index(["period_from", "class_from", "class_to"])["area_ha"]
    assert area[2010, 5, 6] == pytest.approx(0.09) and area[2010, 5, 5] == pytest.approx(0.18)
    assert area[2011, 5, 6] == pytest.approx(0.18)
    assert area[2011, 1, 1] == pytest.approx(0.18)  # the pixel gone to nodata is not a transition
    assert set(table["period_to"]) == {2011, 2012}


def test_first_to_last_transitions_skip_the_middle():
    counts = transition_counts(_class_map(), steps="first_last")
    table = transition_table(counts, DEFAULT_CLASSES, pixel_area_ha=0.09, aoi_id="mine_a")
    assert set(zip(table.period_from, table.period_to)) == {(2010, 2012)}
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
    assert water["annual_rate_pct"] == pytest.approx(100 * np.log(2 / 3) / 2)


def test_mining_footprint_and_its_expansion():
    class_map = _class_map()
    areas = class_area_table(class_pixel_counts(class_map), DEFAULT_CLASSES, pixel_area_ha=0.09, aoi_id="a")
    footprint = mining_footprint_table(areas, [6]).set_index("period")
    assert list(footprint["area_ha"].round(2)) == [0.0, 0.09, 0.27]
    assert footprint.loc[2012, "expansion_rate_ha_per_year"] == pytest.approx(0.18)


@pytest.mark.parametrize("chunks", [None, {"x": 2}], ids=["numpy", "dask"])
def test_first_change_year(chunks):
    out = first_change_year(_class_map(chunks))
    assert out.dtype == np.int16 and out.rio.nodata == NO_CHANGE
    # row 0: water throughout (the last pixel goes to nodata, which is no change); row 1: 5 -> 6
    np.testing.assert_array_equal(out.values, [[0, 0, 0], [2012, 2012, 2011]])


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


def test_first_change_year_of_a_single_period_is_no_change():
    out = first_change_year(_class_map().isel(period=[0]))
    assert (out.values == NO_CHANGE).all() and out.shape == (2, 3)
