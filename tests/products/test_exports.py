"""Run-level exports (CSV/Parquet, GPKG, SPSS, Kumu), summaries across events, and the public option."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pyreadstat
import pytest

from pipeline.events import WITHHELD, generalise_events, normalise_events, read_events

from conftest import DATA, midr

REAL_EVENTS = DATA / "resettlement_events" / "events.csv"


def test_every_table_is_exported_as_csv_and_parquet(demo_run):
    exports = demo_run / "outputs" / "demo_small" / "exports"
    for name in ("class_area", "transitions", "change_summary", "mining_footprint", "rings", "event_metrics",
                 "baci", "event_records"):
        csv, parquet = pd.read_csv(exports / f"{name}.csv"), pd.read_parquet(exports / f"{name}.parquet")
        assert len(csv) == len(parquet) > 0, name
        assert list(csv.columns) == list(parquet.columns)


def test_spss_file_reads_back_with_variable_and_value_labels(demo_run):
    table, meta = pyreadstat.read_sav(demo_run / "outputs" / "demo_small" / "exports" / "events.sav")
    assert len(table) == 2 * 6  # one event x (origin, site) x 6 classes
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", name) for name in table.columns)
    assert meta.column_names_to_labels["effect_ha"] == "BACI effect (ha)"
    assert meta.variable_value_labels["class_code"][5.0] == "built-up"
    assert meta.variable_value_labels["zone"] == {1.0: "origin community", 2.0: "resettlement site"}
    assert set(table["country"]) == {"Mozambique"}


def test_spss_variables_have_measurement_levels_and_display_formats(demo_run):
    _, meta = pyreadstat.read_sav(demo_run / "outputs" / "demo_small" / "exports" / "events.sav", metadataonly=True)
    measure, formats = meta.variable_measure, meta.original_variable_types
    assert (measure["zone"], measure["class_code"], measure["lifecycle_stage"]) == ("nominal", "nominal", "ordinal")
    assert (formats["zone"], formats["class_code"], formats["lifecycle_stage"]) == ("F2.0",) * 3
    assert (measure["year_start"], formats["year_start"], formats["year_end"]) == ("scale", "F4.0", "F4.0")
    assert (formats["displaced_count"], formats["effect_ha"], formats["effect_pct_points"]) == ("F8.0", "F10.2", "F8.2")
    assert measure["company"] == "nominal" and meta.variable_display_width["company"] == len("Demo Mining Co. (synthetic)")
    assert "unknown" not in measure.values()


def test_kumu_network_names_only_elements_it_has(demo_run):
    network = json.loads((demo_run / "outputs" / "demo_small" / "exports" / "kumu.json").read_text())
    ids = [e["id"] for e in network["elements"]]
    assert len(ids) == len(set(ids))
    assert {e["type"] for e in network["elements"]} == {"mine", "company", "event", "community", "resettlement site"}
    assert all(c["from"] in ids and c["to"] in ids for c in network["connections"])
    event = next(e for e in network["elements"] if e["type"] == "event")
    assert event["label"] == "planned resettlement, 2018" and event["id"] == "event:demo_mine_village_a"
    assert event["year_start"] == 2018 and isinstance(event["year_start"], int) and event["displaced_count"] == 240
    displaced = next(c for c in network["connections"] if c["type"] == "displaced from")
    assert displaced["effect_ha_built-up"] < 0  # the village was cleared
    assert displaced["effect_ha_built-up_ci95_low"] < displaced["effect_ha_built-up"] < displaced[
        "effect_ha_built-up_ci95_high"] < 0
    assert "built-up: -2" in displaced["description"] and "95% CI" in displaced["description"]


def test_kumu_keeps_same_named_communities_of_two_mines_apart():
    from pipeline.products.exports import kumu_network

    events = pd.DataFrame({"event_id": ["e1", "e2", "e3"], "aoi_id": ["mine_a", "mine_b", "mine_a"],
                           "mine": ["Mine A", "Mine B", "Mine A"], "company": ["Co", "Co", "Co"],
                           "event_type": ["planned resettlement", "eviction", "planned resettlement"],
                           "year_start": [2010.0, 2012.0, 2014.0], "year_end": [2011.0, 2012.0, np.nan],
                           "origin_community": ["Ribeira", "Ribeira", "Ribeira"], "resettlement_site": [None] * 3})
    baci = pd.DataFrame(columns=["event_id", "zone", "class_name", "status", "effect_ha", "ci95_low_ha",
                                 "ci95_high_ha"])
    network = kumu_network(events, baci, headline=[("origin_community", "built-up")])
    communities = [e for e in network["elements"] if e["type"] == "community"]
    assert sorted(e["id"] for e in communities) == ["community:mine_a:Ribeira", "community:mine_b:Ribeira"]
    assert {e["label"] for e in communities} == {"Ribeira"}  # one name, two places
    assert sorted(e["label"] for e in network["elements"] if e["type"] == "event") == [
        "eviction, 2012", "planned resettlement, 2010-2011", "planned resettlement, 2014"]
    assert len([e for e in network["elements"] if e["type"] == "company"]) == 1


def test_pooled_effect_is_one_events_own_interval_or_the_random_effects_estimate():
    from pipeline.products.exports import pooled_effect

    assert pooled_effect([-3.0], [-4.5], [-2.0]) == (-3.0, -4.5, -2.0)  # bootstrap intervals may be asymmetric
    # two events, SE 1 each (interval width 2 x 1.96): Q = (1 - 3)^2 / 1 + ... = 2, tau^2 = (2 - 1) / (2 - 1) = 1
    effect, low, high = pooled_effect([1.0, 3.0], [1 - 1.959964, 3 - 1.959964], [1 + 1.959964, 3 + 1.959964])
    assert effect == pytest.approx(2.0) and high - low == pytest.approx(2 * 1.959964 * np.sqrt(1.0))  # sqrt(2 / 2)
    z = 1.959964
    same = pooled_effect([2.0, 2.0], [2 - z, 2 - z], [2 + z, 2 + z])  # no heterogeneity: the fixed-effect interval
    assert same[0] == pytest.approx(2.0) and same[2] - same[1] == pytest.approx(2 * 1.959964 / np.sqrt(2))


def test_event_zones_geopackage_has_its_layer_crs_and_effects(demo_run):
    path = demo_run / "outputs" / "demo_small" / "exports" / "event_zones.gpkg"
    assert gpd.list_layers(path)["name"].tolist() == ["event zones with BACI effects"]
    zones = gpd.read_file(path, layer="event zones with BACI effects")
    assert zones.crs.to_epsg() == 4326
    assert sorted(zones["zone"]) == ["control", "origin_community", "resettlement_site"]
    origin = zones[zones["zone"] == "origin_community"].iloc[0]
    assert origin["effect_ha_built-up"] < 0 and origin["country"] == "Mozambique"


def test_summary_by_indicator_and_its_charts(demo_run):
    summary_dir = demo_run / "outputs" / "demo_small" / "summary"
    summary = pd.read_csv(summary_dir / "effects_by_indicator.csv")
    assert set(summary["indicator"]) == {"country", "company", "commodity", "lifecycle_stage", "event_type"}
    row = summary[(summary.indicator == "commodity") & (summary.zone == "origin_community")
                  & (summary.class_name == "built-up")].iloc[0]
    assert row["value"] == "coal" and row["n_events"] == 1 and row["mean_effect_ha"] < 0
    assert row["pooled_ci95_low_ha"] < row["pooled_effect_ha"] == row["mean_effect_ha"] < row["pooled_ci95_high_ha"]
    assert (summary_dir / "commodity_origin_community_built-up.png").read_bytes()[:4] == b"\x89PNG"


def test_baci_on_the_small_demo_finds_the_village_cleared_and_the_new_one_built(demo_run):
    baci = pd.read_csv(demo_run / "outputs" / "demo_small" / "demo_mine" / "events" / "baci.csv")
    built = baci[baci["class_name"] == "built-up"].set_index("zone")
    origin, site = built.loc["origin_community"], built.loc["resettlement_site"]
    assert origin["ci95_high_ha"] < 0 < site["ci95_low_ha"]  # both effects are clear of zero
    assert abs(origin["control_change_pct"]) < 1 and abs(site["control_change_pct"]) < 1


def test_generalised_records_withhold_names_even_inside_other_text():
    events = normalise_events(read_events(REAL_EVENTS))
    public = generalise_events(events, grid_m=5000).set_index("event_id")
    manheim = public.loc["rwe_hambach_manheim"]
    assert manheim["origin_community"] == WITHHELD and manheim["resettlement_site"] == WITHHELD
    assert (manheim["site_lat"], manheim["site_lon"]) != (50.867, 6.467)
    exact = events.set_index("event_id").loc["rwe_hambach_manheim"]
    assert abs(manheim["site_lat"] - exact["site_lat"]) < 0.05  # still in the right area (5 km grid)
    cateme = public.loc["vale_moatize_cateme"]
    assert "Cateme" not in cateme["source"] and WITHHELD in cateme["source"]
    assert cateme["mine_lat"] == -16.117  # mines stay where they are


def test_public_option_leaves_no_community_name_or_location_in_any_output(demo_run):
    config = (demo_run / "config.yaml").read_text().replace("run_name: demo_small", "run_name: public")
    config = config.replace("dask:\n", "dask:\n  cluster: threads\n") + "public:\n  enabled: true\n  grid_m: 1000\n"
    (demo_run / "public.yaml").write_text(config)
    result = midr("run", str(demo_run / "public.yaml"))
    assert result.returncode == 0, result.stderr
    event = pd.read_csv(demo_run / "data" / "events.csv").iloc[0]
    secrets = [event["origin_community"], event["resettlement_site"], "Village A"]
    for lat, lon in (("origin_lat", "origin_lon"), ("site_lat", "site_lon")):
        secrets += [f"{event[lat]:.5f}", f"{event[lon]:.5f}", f"{event[lat]:.4f}", f"{event[lon]:.4f}"]
    run_dir = demo_run / "outputs" / "public"
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert len(files) > 40
    for path in files:
        text = path.read_bytes().decode("latin-1")
        found = [s for s in secrets if s in text]
        assert not found, f"{path.relative_to(run_dir)} holds {found}"
    zones = gpd.read_file(run_dir / "demo_mine" / "events" / "event_zones.gpkg")
    exact = gpd.GeoSeries(gpd.points_from_xy([event["origin_lon"]], [event["origin_lat"]]), crs=4326)
    origin = zones[zones["zone"] == "origin_community"].to_crs(zones.crs)
    cell = origin.geometry.iloc[0]
    assert cell.area == pytest.approx(1000 * 1000)  # a grid cell, not the exact disc
    assert np.isclose(cell.bounds[0] % 1000, 0) and exact.to_crs(zones.crs).within(cell).all()


def test_effects_by_indicator_of_a_run_without_headline_effects_is_an_empty_table():
    from pipeline.products.exports import effects_by_indicator

    baci = pd.DataFrame({"event_id": ["a"], "zone": ["origin_community"], "class_name": ["water"], "status": ["ok"],
                         "effect_ha": [1.0], "ci95_low_ha": [0.5], "ci95_high_ha": [1.5]})
    events = pd.DataFrame({"event_id": ["a"], "country": ["X"], "company": ["C"], "commodity": ["coal"],
                           "lifecycle_stage": ["operation"], "event_type": ["eviction"]})
    summary = effects_by_indicator(baci, events, class_names=["built-up"])
    assert summary.empty and "pooled_ci95_high_ha" in summary.columns
