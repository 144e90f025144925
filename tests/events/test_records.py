from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import InputError
from pipeline.events.records import normalise_events, parse_count, read_events, unit_kind

from conftest import DATA

REAL_EVENTS = DATA / "resettlement_events" / "events.csv"


def test_all_29_real_records_load_and_say_which_analyses_they_allow():
    events = normalise_events(read_events(REAL_EVENTS))
    assert len(events) == 29
    allowed = {c.removeprefix("allows_"): int(events[c].sum()) for c in events.columns if c.startswith("allows_")}
    # 3 records lack mine coordinates; only Manheim has site coordinates; none locates its origin community
    assert allowed == {"link_spatial": 26, "before_after": 29, "origin_zone": 0, "site_zone": 1, "baci": 1,
                       "displacement_count": 22}
    assert events.set_index("event_id").loc["rwe_hambach_manheim", "analyses"] == (
        "link_spatial;before_after;site_zone;baci;displacement_count")
    kinds = events["displaced_unit_kind"].value_counts(dropna=False).to_dict()
    assert kinds == {"families": 9, np.nan: 7, "people": 7, "households": 5, "other": 1}


def test_original_text_is_kept_beside_the_parsed_values():
    events = normalise_events(read_events(REAL_EVENTS)).set_index("event_id")
    malmberget = events.loc["lkab_malmberget"]
    assert np.isnan(malmberget["year_start"]) and malmberget["year_end"] == 2032  # end year only
    assert malmberget["displaced_unit_kind"] == "people"  # "people (2,000 dwellings)"
    assert events.loc["ivanhoe_oyutolgoi_khanbogd", "displaced_unit_kind"] == "families"  # herder families
    assert events.loc["centralia_mine_fire", "displaced_unit_kind"] == "other"  # residences and businesses
    assert events.loc["newmont_ahafo_south", "displaced_count_text"] == "823.0"


@pytest.mark.parametrize("text, count", [("5,000", 5000.0), ("about 3,800 families", 3800.0), (716, 716.0),
                                         ("unknown", np.nan), (None, np.nan)])
def test_parse_count(text, count):
    assert parse_count(text) == pytest.approx(count, nan_ok=True)


@pytest.mark.parametrize("unit, kind", [("families", "families"), ("Households physically displaced", "households"),
                                        ("inhabitants", "people"), ("people (approx.)", "people"),
                                        ("residences and businesses acquired, residents moved", "other"),
                                        ("", None), (np.nan, None)])
def test_unit_kind(unit, kind):
    assert unit_kind(unit) == kind


def test_a_year_that_is_not_a_year_names_the_event_and_column():
    records = pd.DataFrame({"event_id": ["x"], "year_start": ["soon"]})
    with pytest.raises(InputError, match="event 'x': year_start 'soon' is not a year"):
        normalise_events(records)


def test_a_coordinate_out_of_range_names_the_event():
    records = pd.DataFrame({"event_id": ["x"], "year_start": [2010], "mine_lat": [-116.1], "mine_lon": [33.7]})
    with pytest.raises(InputError, match="event 'x': mine_lat -116.1 is not a WGS84 coordinate"):
        normalise_events(records)


def test_duplicate_event_ids_are_refused():
    with pytest.raises(InputError, match=r"event ids must be unique, repeated: \['a'\]"):
        normalise_events(pd.DataFrame({"event_id": ["a", "a"], "year_start": [2000, 2001]}))


def test_an_outline_locates_a_zone_and_is_checked():
    square = "POLYGON ((33.70 -16.10, 33.71 -16.10, 33.71 -16.09, 33.70 -16.09, 33.70 -16.10))"
    events = normalise_events(pd.DataFrame({"event_id": ["a"], "year_start": [2010], "mine_lat": [-16.1],
                                            "mine_lon": [33.6], "origin_wkt": [square]}))
    assert events.loc[0, "allows_origin_zone"] and events.loc[0, "allows_baci"]
    with pytest.raises(InputError, match="event 'a': origin_wkt must be a polygon, got Point"):
        normalise_events(pd.DataFrame({"event_id": ["a"], "year_start": [2010], "origin_wkt": ["POINT (1 2)"]}))
    with pytest.raises(InputError, match="event 'a': site_wkt is not in WGS84"):
        normalise_events(pd.DataFrame({"event_id": ["a"], "year_start": [2010],
                                       "site_wkt": ["POLYGON ((500000 0, 500100 0, 500100 100, 500000 0))"]}))


def test_polygons_of_an_events_geopackage_become_origin_outlines(tmp_path):
    import geopandas as gpd
    from shapely.geometry import box

    path = tmp_path / "events.gpkg"
    gpd.GeoDataFrame({"event_id": ["a"], "year_start": [2010]}, geometry=[box(500000, 8200000, 500300, 8200300)],
                     crs="EPSG:32736").to_file(path, driver="GPKG")
    events = normalise_events(read_events(path))
    outline = events.loc[0, "origin_wkt"]
    assert outline.startswith("POLYGON ((33.") and events.loc[0, "allows_origin_zone"]


def test_reversed_event_years_are_refused_saying_so():
    records = pd.DataFrame({"event_id": ["ok", "late", "later"], "year_start": [2010, 2015, "2020"],
                            "year_end": [2012, 2013, "c. 2018"]})
    with pytest.raises(InputError, match=r"event 'late': year_end 2013 is before year_start 2015 \(the years are "
                                         r"reversed\); swap them in the events table \(1 more event\(s\)"):
        normalise_events(records)
    assert normalise_events(records.iloc[:1])["year_end"].iloc[0] == 2012


@pytest.mark.parametrize("bad", ["../x", "a/b", ".hidden", "ev 1"])
def test_an_unsafe_event_id_is_refused_naming_it(bad):
    with pytest.raises(InputError, match=rf"events table \(event_id\): event id '{re.escape(bad)}' is not a safe name"):
        normalise_events(pd.DataFrame({"event_id": ["ok", bad], "year_start": [2010, 2011]}))
