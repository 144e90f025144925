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


def test_kumu_network_names_only_elements_it_has(demo_run):
    network = json.loads((demo_run / "outputs" / "demo_small" / "exports" / "kumu.json").read_text())
    labels = {e["label"] for e in network["elements"]}
    assert {e["type"] for e in network["elements"]} == {"mine", "company", "event", "community", "resettlement site"}
    assert all(c["from"] in labels and c["to"] in labels for c in network["connections"])
    displaced = next(c for c in network["connections"] if c["type"] == "displaced from")
    assert displaced["effect_ha_built-up"] < 0  # the village was cleared


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
