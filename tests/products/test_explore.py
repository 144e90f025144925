"""The tables the notebooks show, on inputs small enough to work out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401
import xarray as xr

from pipeline.products import explore
from pipeline.config import ClassDef
from pipeline.events import normalise_events

from conftest import CRS, RES, X0, Y0

CLASSES = [ClassDef(code=1, name="water", colour="#1f78b4"), ClassDef(code=2, name="built-up", colour="#e31a1c")]


def _class_map(values: np.ndarray) -> xr.DataArray:
    ny, nx = values.shape
    coords = {"y": Y0 - RES / 2 - RES * np.arange(ny), "x": X0 + RES / 2 + RES * np.arange(nx)}
    return xr.DataArray(values.astype("uint8"), coords, ("y", "x")).rio.write_crs(CRS)


def test_events_by_counts_records_and_keeps_units_apart():
    events = normalise_events(pd.DataFrame({
        "event_id": ["a", "b", "c", "d"], "country": ["Ghana", "Ghana", "Peru", None],
        "year_start": [2005, 2018, 2012, 2001], "displaced_count": ["823", "25", "about 5,000", None],
        "displaced_unit": ["households", "households", "residents", None]}))
    table = explore.events_by(events, "country")
    assert table.index.tolist() == ["Ghana", "Peru", explore.NOT_GIVEN]
    assert table.loc["Ghana", ["events", "with_count", "households"]].tolist() == [2, 2, 848]
    assert np.isnan(table.loc["Ghana", "people"]) and table.loc["Peru", "people"] == 5000
    assert table.loc["Ghana", ["first_year", "last_year"]].tolist() == [2005, 2018]


def test_sample_design_follows_the_sample_size_formula_and_allocation():
    strata = _class_map(np.array([[1] * 10] * 2 + [[2] * 10] * 8))  # 20 water, 80 built-up pixels
    design = explore.sample_design(strata, CLASSES, expected_users_accuracy=0.9, target_se=0.05,
                                   min_per_stratum=10, seed=1)
    assert design.n_planned == 36  # (0.2 * 0.3 + 0.8 * 0.3) / 0.05 = 6, squared
    assert design.table["n_samples"].tolist() == [13, 22]  # 10 each, the other 16 by area: 3.2 and 12.8, floored
    assert design.points.groupby("map_code").size().tolist() == [13, 22]
    assert design.points["reference_code"].isna().all()


def test_a_sample_labelled_from_a_reference_gives_its_areas_back():
    strata = _class_map(np.array([[1] * 10] * 2 + [[2] * 10] * 8))
    truth = strata.copy(data=np.where(np.arange(100).reshape(10, 10) < 30, 1, 2).astype("uint8"))  # 30 water
    design = explore.sample_design(strata, CLASSES, min_per_stratum=20, seed=3)
    labelled = explore.label_sample(design.points, truth)
    estimate = explore.area_estimates(labelled.astype({"reference_code": int}), strata, CLASSES, reference=truth)
    table = estimate.table.set_index("class_name")
    pixel_ha = RES * RES / 10_000
    assert table.loc["water", "mapped_area_ha"] == 20 * pixel_ha
    assert table.loc["water", "reference_area_ha"] == 30 * pixel_ha
    # every built-up pixel is sampled (its stratum is smaller than the sample), so the estimate is exact
    assert np.isclose(table.loc["water", "adjusted_area_ha"], 30 * pixel_ha)
    assert table["ci_covers_reference"].all()
    assert estimate.error_matrix.loc["built-up", "water"] == 10
