"""AOIs made from the events table (aoi.from_events, `midr aois`): one per mine of the 29 real records."""

from __future__ import annotations

import geopandas as gpd
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import SAFE_NAME, load_config
from pipeline.events import aois_from_events, configured_aois, link_events, normalise_events, read_events, unplaced_events
from pipeline.ingest import read_aois

from conftest import DATA, ROOT

REAL_EVENTS = DATA / "resettlement_events" / "events.csv"


@pytest.fixture(scope="module")
def records():
    return normalise_events(read_events(REAL_EVENTS))


def _metric(aois: gpd.GeoDataFrame, lat: float, lon: float):
    """The AOI's polygons and a point in the point's UTM zone."""
    point = gpd.GeoSeries(gpd.points_from_xy([lon], [lat]), crs="EPSG:4326")
    crs = point.estimate_utm_crs()
    return aois.to_crs(crs), point.to_crs(crs).iloc[0]


def test_one_aoi_per_mine_of_the_29_real_records(records):
    aois = aois_from_events(records, radius_m=10_000, margin_m=2_000)
    # 26 records have a mine point; events of one mine share its AOI (Moatize, Ahafo, Cerrejon, Garzweiler,
    # the Fundao dam): 21 mines
    assert len(aois) == 21 and aois["n_events"].sum() == 26
    assert sorted(unplaced_events(records)["event_id"]) == [
        "amplats_mogalakwena_motlhotlo", "amplats_twickenham_magobading", "newmont_ahafo_north"]
    assert aois["aoi_id"].is_unique and all(SAFE_NAME.match(i) for i in aois["aoi_id"])
    by_id = aois.set_index("aoi_id")
    assert by_id.loc["germano_mine", "event_ids"] == "samarco_fundao_bento_rodrigues;samarco_fundao_paracatu"
    assert by_id.loc["moatize_coal_mine", "event_ids"] == "vale_moatize_cateme;vale_moatize_25setembro"
    for row in aois.itertuples():  # each AOI holds the disc of 10 km around its mine
        metric, mine = _metric(aois[aois["aoi_id"] == row.aoi_id], row.mine_lat, row.mine_lon)
        polygon = metric.geometry.iloc[0]
        assert polygon.contains(mine.buffer(9_990)), row.aoi_id
        assert polygon.area < 1.05 * mine.buffer(10_000).area or row.aoi_id == "hambach"


def test_an_aoi_grows_to_hold_the_resettlement_site_with_its_margin(records):
    aois = aois_from_events(records, radius_m=2_000, margin_m=1_000)
    manheim = records.set_index("event_id").loc["rwe_hambach_manheim"]
    metric, site = _metric(aois[aois["aoi_id"] == "hambach"], manheim["site_lat"], manheim["site_lon"])
    assert metric.geometry.iloc[0].contains(site.buffer(990))  # the site ~5 km from the mine, beyond 2 km


def test_midr_aois_writes_a_geopackage_that_feeds_back_as_aoi_path(tmp_path):
    config = tmp_path / "db.yaml"
    config.write_text(f"""\
run_name: db
aoi: {{from_events: {{radius_m: 5000}}}}
ingest: {{scenes: 'scenes/*.tif'}}
events: {{path: {REAL_EVENTS}}}
""")
    gpkg = tmp_path / "aois.gpkg"
    result = CliRunner().invoke(app, ["aois", str(config), "--out", str(gpkg)])
    assert result.exit_code == 0, result.output
    assert "21 AOI(s) for 26 of 29 event record(s)" in result.output
    assert "no AOI for 3 record(s) without a mine point" in result.output
    written = read_aois(gpkg, id_field="aoi_id")
    assert len(written) == 21 and written["aoi_id"].is_unique
    edited = tmp_path / "edited.yaml"
    edited.write_text(config.read_text().replace("{from_events: {radius_m: 5000}}",
                                                 "{path: aois.gpkg}"))
    assert load_config(edited).aoi.path.name == "aois.gpkg"


def test_aoi_needs_a_path_or_from_events(tmp_path):
    config = tmp_path / "db.yaml"
    config.write_text("run_name: db\naoi: {id_field: aoi_id}\ningest: {scenes: 'scenes/*.tif'}\n")
    result = CliRunner().invoke(app, ["validate", str(config)])
    assert result.exit_code == 2 and "give either path" in result.output


def test_the_database_config_makes_an_aoi_for_every_linkable_record():
    """configs/resettlement_database.yaml loads (not run: no imagery); each record with a mine point links to
    exactly the AOI made for it, and its control ring fits inside that AOI."""
    config = load_config(ROOT / "configs" / "resettlement_database.yaml")
    records = normalise_events(read_events(config.events.path))
    aois = configured_aois(config, records)
    linked = link_events(records, aois, how=config.events.link, distance_m=config.events.link_distance_m)
    assert len(aois) == 21 and sorted(linked["event_id"]) == sorted(records["event_id"][records["allows_link_spatial"]])
    made_for = {e: a for a, ids in zip(aois["aoi_id"], aois["event_ids"]) for e in ids.split(";")}
    assert all(made_for[e] == a for e, a in zip(linked["event_id"], linked["aoi_id"]))
    assert config.events.control_outer_m < config.aoi.from_events.radius_m
