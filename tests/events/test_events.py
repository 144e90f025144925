from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from shapely.geometry import box

from pipeline.config import DEFAULT_CLASSES
from pipeline.errors import InputError
from pipeline.composite.periods import make_periods
from pipeline.events import (Window, baci_effects, event_caption, event_metrics_table, event_periods, event_zones,
                             link_events, mixed_periods, zone_mask, zone_pixel_counts)
from pipeline.events.records import normalise_events

from conftest import CRS

EVENT = pd.Series({"event_id": "mine_a_village", "aoi_id": "mine_a", "event_type": "planned resettlement",
                   "year_start": 2013, "year_end": 2013,
                   "displaced_count": 240.0, "displaced_unit": "households",
                   "origin_community": "Village A", "resettlement_site": "New Village A",
                   "origin_lat": -16.1, "origin_lon": 33.7, "site_lat": np.nan, "site_lon": np.nan})


def test_link_events_spatially_by_mine_point():
    aois = gpd.GeoDataFrame({"aoi_id": ["mine_a"]}, geometry=[box(33.6, -16.2, 33.8, -16.0)], crs="EPSG:4326")
    events = pd.DataFrame({"event_id": ["in", "near", "far", "unlocated"],
                           "mine_lat": [-16.1, -16.1, -10.0, np.nan], "mine_lon": [33.7, 33.805, 30.0, np.nan]})
    assert list(link_events(events, aois, how="spatial")["event_id"]) == ["in"]
    linked = link_events(events, aois, how="spatial", distance_m=1_000)
    assert list(linked["event_id"]) == ["in", "near"] and set(linked["aoi_id"]) == {"mine_a"}


def _years(first: int, last: int):
    return make_periods(pd.to_datetime([f"{y}-06-01" for y in range(first, last + 1)]))


def test_event_windows_before_start_and_after_end():
    found = event_periods(EVENT, _years(2008, 2022), Window(before=2, after=3))
    assert (found.before, found.during, found.after) == (["2011", "2012"], ["2013"], ["2014", "2015", "2016"])
    no_end = EVENT.drop("year_end")
    found = event_periods(no_end, _years(2008, 2022), Window(before=1, after=1))
    assert (found.before, found.after) == (["2012"], ["2014"])


def test_dated_event_windows_in_days_or_periods_and_the_period_that_holds_it():
    """Monthly periods, an event on 25 Jan 2019: January holds it (neither before nor after)."""
    months = make_periods(pd.to_datetime(["2018-11-05", "2018-12-20", "2019-01-14", "2019-02-02", "2019-04-10"]),
                          kind="month")
    event = pd.Series({"event_id": "dam", "event_start": "2019-01-25", "event_end": "2019-01-25"})
    found = event_periods(event, months, Window(before=40, after=40, before_unit="days", after_unit="days"))
    assert (found.before, found.during, found.after) == (["2018-12"], ["2019-01"], ["2019-02"])
    found = event_periods(event, months, Window(before=2, after=2, before_unit="periods", after_unit="periods"))
    assert (found.before, found.after) == (["2018-11", "2018-12"], ["2019-02", "2019-04"])


def test_a_period_merging_both_sides_of_an_event_is_warned_about_with_the_fix():
    event = pd.Series({"event_id": "dam", "event_start": "2019-01-25", "event_end": "2019-01-25"})
    warnings = mixed_periods(event, {"2019": ["2019-01-14T13:00:00", "2019-01-30T13:00:00"],
                                     "2018": ["2018-06-01T13:00:00"]})
    assert len(warnings) == 1
    assert "falls inside period 2019" in warnings[0] and "(2019-01-14)" in warnings[0] and "(2019-01-30)" in warnings[0]
    assert "composite.period: scene" in warnings[0]
    assert "{name: before, start: 2019-01-14, end: 2019-01-24}" in warnings[0]
    assert mixed_periods(event, {"2019-01-14": ["2019-01-14T13:00:00"]}) == []


def test_event_records_take_dates_and_refuse_reversed_ones():
    records = pd.DataFrame({"event_id": ["dam", "flood", "move"], "year_start": [None, None, 2013],
                            "date": ["2019-01-25", None, None], "date_start": [None, "2020-03-01", None],
                            "date_end": [None, "2020-03-20", None]})
    events = normalise_events(records).set_index("event_id")
    assert events.loc["dam", ["event_start", "event_end", "year_start"]].tolist() == ["2019-01-25", "2019-01-25", 2019]
    assert events.loc["flood", ["event_start", "event_end"]].tolist() == ["2020-03-01", "2020-03-20"]
    assert events.loc["move", ["event_start", "event_end"]].tolist() == ["2013-01-01", "2013-12-31"]
    reversed_ = records.assign(date_end=[None, "2020-02-01", None])
    with pytest.raises(InputError, match="event 'flood': it ends \\(2020-02-01\\) before it starts \\(2020-03-01\\)"):
        normalise_events(reversed_)
    with pytest.raises(InputError, match="event 'dam': date 'soon' is not a date"):
        normalise_events(records.assign(date=["soon", None, None]))


def test_zone_without_coordinates_is_skipped_and_says_why():
    zones = event_zones(EVENT, radius_m=500, control_inner_m=1000, control_outer_m=2000, crs=CRS)
    assert zones["resettlement_site"] == "skipped: no site_lat/site_lon in the record"
    assert zones["origin_community"].iloc[0].area == pytest.approx(np.pi * 500**2, rel=0.01)


def test_event_metrics_before_after_and_change():
    # a 4x4 zone grid of 1 ha pixels; built-up (5) for 2011-2012, bare (6) from 2013
    values = np.where(np.arange(4)[:, None, None] < 2, 5, 6) * np.ones((4, 4, 4), "uint8")
    class_map = xr.DataArray(values.astype("uint8"), dims=("period", "y", "x"),
                             coords={"period": ["2011", "2012", "2013", "2014"], "y": 350.0 - 100 * np.arange(4),
                                     "x": 50.0 + 100 * np.arange(4)}).rio.write_crs(CRS).rio.write_nodata(255)
    zone = gpd.GeoSeries([box(0, 200, 200, 400)], crs=CRS)  # the top-left 2x2 pixels
    counts = zone_pixel_counts(class_map, zone_mask(class_map, zone)).compute()
    table = event_metrics_table(EVENT, {"origin_community": counts, "resettlement_site": "skipped: no x"},
                                DEFAULT_CLASSES, pixel_area_ha=1.0, window=Window(before=2, after=2))
    built = table[(table["zone"] == "origin_community") & (table["class_code"] == 5)].iloc[0]
    assert (built["area_ha_before"], built["area_ha_after"], built["change_ha"]) == (4.0, 0.0, -4.0)
    assert built["periods_before"] == "2011;2012" and built["periods_after"] == "2014"
    assert built["periods_during"] == "2013" and built["event_start"] == "2013-01-01"
    assert built["zone_area_ha"] == 4.0 and built["status"] == "ok"
    skipped = table[table["zone"] == "resettlement_site"]
    assert len(skipped) == 1 and skipped.iloc[0]["status"] == "skipped: no x"


def test_event_caption():
    assert event_caption(EVENT) == "2013: 240 households resettled from Village A to New Village A"
    assert event_caption(EVENT, public=True) == "2013: 240 households resettled"
    sparse = pd.Series({"event_type": "planned resettlement", "year_start": 2009, "year_end": 2010,
                        "displaced_count": np.nan})
    assert event_caption(sparse) == "2009-2010: people resettled"


def _baci_map(control_after: int) -> xr.DataArray:
    """20x20 pixels of 10 m (0.01 ha), 2010-2013. Left half: built-up (5) that is cleared (6) in 2012.
    Right half (control): built-up in 2010-2011; from 2012, `control_after` in its top half."""
    values = np.full((4, 20, 20), 5, "uint8")
    values[2:, :, :10] = 6
    values[2:, :10, 10:] = control_after
    return xr.DataArray(values, dims=("period", "y", "x"),
                        coords={"period": ["2010", "2011", "2012", "2013"], "y": 195.0 - 10 * np.arange(20),
                                "x": 5.0 + 10 * np.arange(20)}).rio.write_crs(CRS).rio.write_nodata(255)


@pytest.mark.parametrize("control_after, effect_ha", [(5, -2.0), (3, -1.0)], ids=["stable-control", "regional-loss"])
def test_baci_effect_is_impact_change_less_control_change(control_after, effect_ha):
    class_map = _baci_map(control_after)
    impact = np.zeros((20, 20), bool)
    impact[:, :10] = True
    event = EVENT.drop(["year_end"]).copy()
    event["year_start"] = 2012
    table = baci_effects(event, class_map, {"origin_community": impact, "resettlement_site": "skipped: no x",
                                            "control": ~impact}, DEFAULT_CLASSES, pixel_area_ha=0.01,
                         window=Window(before=2, after=1), block_size_m=20, n_bootstrap=200, seed=1)
    built = table[(table["zone"] == "origin_community") & (table["class_code"] == 5)].iloc[0]
    assert built["periods_before"] == "2010;2011" and built["periods_after"] == "2013"
    assert built["impact_change_pct"] == pytest.approx(-100)
    assert built["effect_ha"] == pytest.approx(effect_ha) and built["impact_area_ha"] == pytest.approx(2.0)
    assert built["ci95_low_ha"] <= effect_ha <= built["ci95_high_ha"]
    assert built["impact_blocks"] == 50 and built["control_blocks"] == 50  # blocks of 2x2 pixels
    skipped = table[table["zone"] == "resettlement_site"].iloc[0]
    assert skipped["status"] == "skipped: no x"


def test_baci_bootstrap_interval_widens_with_patchy_change():
    class_map = _baci_map(5)
    class_map[2:, ::2, :10] = 5  # only every other row of the impact zone is cleared: block-to-block spread
    impact = np.zeros((20, 20), bool)
    impact[:, :10] = True
    event = EVENT.copy()
    event["year_start"], event["year_end"] = 2012, 2012
    table = baci_effects(event, class_map, {"origin_community": impact, "control": ~impact}, DEFAULT_CLASSES,
                         pixel_area_ha=0.01, window=Window(before=2, after=1), block_size_m=30, n_bootstrap=500,
                         seed=1)
    built = table[(table["zone"] == "origin_community") & (table["class_code"] == 5)].iloc[0]
    assert built["effect_ha"] == pytest.approx(-1.0)
    assert built["ci95_low_ha"] < -1.0 < built["ci95_high_ha"]


def test_baci_without_control_says_so():
    table = baci_effects(EVENT, _baci_map(5), {"origin_community": np.ones((20, 20), bool),
                                               "control": "skipped: no mine_lat/mine_lon in the record"},
                         DEFAULT_CLASSES, pixel_area_ha=0.01, window=Window(before=2, after=1), block_size_m=20)
    assert list(table["status"]) == ["no control zone (skipped: no mine_lat/mine_lon in the record)"]


def test_control_ring_leaves_out_the_impact_zones():
    event = EVENT.copy()
    event["mine_lat"], event["mine_lon"] = -16.1, 33.69
    zones = event_zones(event, radius_m=300, control_inner_m=500, control_outer_m=2000, crs=CRS)
    ring, origin = zones["control"].iloc[0], zones["origin_community"].iloc[0]
    assert not ring.intersects(origin)
    full_annulus = np.pi * (2000**2 - 500**2)
    assert ring.area < full_annulus and ring.area > 0.8 * full_annulus


def test_an_origin_outline_is_the_zone_itself():
    event = EVENT.copy()
    event["origin_wkt"] = gpd.GeoSeries([box(0, 0, 300, 600)], crs=CRS).to_crs(4326).iloc[0].wkt
    zones = event_zones(event, radius_m=50, control_inner_m=1000, control_outer_m=2000, crs=CRS)
    assert zones["origin_community"].iloc[0].area == pytest.approx(300 * 600, rel=1e-3)


def test_baci_with_an_error_matrix_calibrates_shares_and_widens_the_interval():
    class_map = _baci_map(5)
    impact = np.zeros((20, 20), bool)
    impact[:, :10] = True
    event = EVENT.copy()
    event["year_start"], event["year_end"] = 2012, 2012
    errors = np.diag([20.0] * 6)
    errors[5] = [0, 0, 0, 0, 10, 10]  # half of the sampled "mining" pixels were built-up on the ground
    kwargs = dict(pixel_area_ha=0.01, window=Window(before=2, after=1), block_size_m=20, n_bootstrap=400, seed=1)
    masks = {"origin_community": impact, "control": ~impact}
    plain = baci_effects(event, class_map, masks, DEFAULT_CLASSES, **kwargs)
    calibrated = baci_effects(event, class_map, masks, DEFAULT_CLASSES, error_matrix=errors, **kwargs)
    built = calibrated[(calibrated["zone"] == "origin_community") & (calibrated["class_code"] == 5)].iloc[0]
    before = plain[(plain["zone"] == "origin_community") & (plain["class_code"] == 5)].iloc[0]
    assert built["impact_share_after"] == pytest.approx(0.5) and built["effect_ha"] == pytest.approx(-1.0)
    assert before["effect_ha"] == pytest.approx(-2.0)
    assert built["ci95_low_ha"] < -1.0 < built["ci95_high_ha"]
    assert built["ci95_high_ha"] - built["ci95_low_ha"] > before["ci95_high_ha"] - before["ci95_low_ha"]
