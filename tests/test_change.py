from __future__ import annotations

import dask
import numpy as np
import pytest
import xarray as xr

from pipeline.change import (class_area_table, class_pixel_counts, pixel_area_ha, transition_counts,
                             transition_table)
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
    assert list(table.columns) == ["aoi_id", "period", "class_code", "class_name", "area_ha"]
    area = table.set_index(["period", "class_code"])["area_ha"]
    assert area[2010, 5] == pytest.approx(0.27) and area[2011, 5] == pytest.approx(0.18)
    assert area[2011, 6] == pytest.approx(0.09) and area[2012, 1] == pytest.approx(0.18)  # nodata not counted
    assert len(table) == 3 * len(DEFAULT_CLASSES)


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
