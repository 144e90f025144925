"""A rapid event: two acquisitions 16 days apart around a dated tailings-dam failure (pipeline/demo/pair.py),
run from configs/dam_failure_pair.yaml with one period per scene and with two named windows. Change appears
only after the event; the before/after windows come from the dates."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.features import geometry_mask
from rasterio.windows import from_bounds

from pipeline import events

from pipeline.change import NO_CHANGE
from pipeline.config import load_config
from pipeline.demo.pair import PAIR_DATES, generate_pair
from pipeline.results import open_run
from pipeline.runner import run_pipeline

from conftest import ROOT

VIDEO = {"width": 320, "height": 180, "fps": 2, "intro_seconds": 0, "outro_seconds": 0, "crossfade_seconds": 0}
WINDOWS = {"period": "windows", "windows": [{"name": "before", "start": "2019-01-01", "end": "2019-01-24"},
                                            {"name": "after", "start": "2019-01-26", "end": "2019-02-15"}]}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("pair")
    generate_pair(root / "data" / "pair", root / "aoi" / "pair_mine.geojson")
    (root / "configs").mkdir()
    (root / "configs" / "dam_failure_pair.yaml").write_text((ROOT / "configs" / "dam_failure_pair.yaml").read_text())
    return root


def _run(pair, run_name: str, **overrides):
    config = load_config(pair / "configs" / "dam_failure_pair.yaml",
                         overrides={"run_name": run_name, "video": VIDEO, **overrides})
    result = run_pipeline(config)
    assert result.ok, result.failed
    return open_run(config.run_dir)


@pytest.fixture(scope="module")
def by_scene(pair):
    return _run(pair, "by_scene")


def _truth_on(pair, bounds) -> dict:
    """The truth class maps on the output grid (the AOI is inset from the scenes' edges)."""
    truth = {}
    for day in PAIR_DATES:
        with rasterio.open(pair / "data" / "pair" / "truth" / f"{day.isoformat()}.tif") as src:
            truth[day] = src.read(1, window=from_bounds(*bounds, transform=src.transform))
    return truth


def test_one_period_per_scene_shows_the_mudflow_only_after_the_event(pair, by_scene):
    run = by_scene
    assert run.periods("pair_mine") == [d.isoformat() for d in PAIR_DATES]
    with rasterio.open(run.layout.class_map("pair_mine", "2019-01-30")) as src:
        assert src.tags()["PERIOD_START"] == "2019-01-30" and src.tags()["PERIOD_LABEL"] == "30 Jan 2019"
    with rasterio.open(run.layout.first_change("pair_mine")) as src:
        first_change = src.read(1)
        assert src.tags()["PERIOD_2"] == "2019-01-30"
        bounds = src.bounds
    truth = _truth_on(pair, bounds)
    mud = (truth[PAIR_DATES[0]] != 6) & (truth[PAIR_DATES[1]] == 6)
    observed = first_change != 65535  # clouds in the second scene leave pixels seen once
    assert (first_change[mud & observed] == 2).mean() > 0.9   # the mudflow: changed in the second period
    assert (first_change[~mud & observed] == NO_CHANGE).mean() > 0.9
    areas = run.class_area("pair_mine").set_index(["period", "class_code"])
    assert list(areas.loc["2019-01-30"].index) == [1, 2, 3, 4, 5, 6]
    assert areas.loc[("2019-01-30", 6), "period_end"] == "2019-01-30"
    grown = areas.loc[("2019-01-30", 6), "area_ha"] - areas.loc[("2019-01-14", 6), "area_ha"]
    assert grown == pytest.approx(mud.sum() * 0.09, rel=0.15)
    metrics = run.event_metrics("pair_mine")
    control = metrics[metrics["zone"] == "control"].iloc[0]
    assert (control["periods_before"], control["periods_after"]) == ("2019-01-14", "2019-01-30")  # 30 days each side
    assert pd.isna(control["periods_during"])  # no period holds 25 January


def test_the_disaster_is_measured_in_its_impact_zone_against_the_truth(pair, by_scene):
    """The mudflow (bare ground) in the impact zone around the dam: the BACI effect of the impact classes
    within 10 % of the truth, its 95 % interval holding it; the footprint as a COG and a polygon."""
    run = by_scene
    impact = run.impact("pair_mine").iloc[0]
    with rasterio.open(run.layout.impact_footprint("pair_mine", "pair_dam_failure")) as src:
        footprint, bounds, transform, crs = src.read(1), src.bounds, src.transform, src.crs
        assert src.nodata == 255 and src.tags()["EVENT_ID"] == "pair_dam_failure"
    truth = _truth_on(pair, bounds)
    zone = events.event_zones(events.normalise_events(events.read_events(pair / "data" / "pair" / "events.csv"))
                              .iloc[0], radius_m=200, control_inner_m=1500, control_outer_m=1750,
                              crs=crs,
                              impact_radius_m=1200)["impact"]
    in_zone = ~geometry_mask(zone.geometry, out_shape=footprint.shape, transform=transform)
    before, after = truth[PAIR_DATES[0]], truth[PAIR_DATES[1]]
    mud = in_zone & ~np.isin(before, [1, 6]) & np.isin(after, [1, 6])  # nothing else changes: the truth
    true_ha = mud.sum() * 0.09
    assert impact["status"] == "ok" and impact["zone"] == "impact"
    assert impact["effect_ha"] == pytest.approx(true_ha, rel=0.10)
    assert impact["ci95_low_ha"] <= true_ha <= impact["ci95_high_ha"]
    assert ((footprint == 1) & mud).sum() / mud.sum() > 0.85  # the footprint finds the mudflow
    assert impact["footprint_ha"] == pytest.approx(true_ha, rel=0.15)
    outlines = gpd.read_file(run.layout.impact_footprints("pair_mine"))
    assert outlines.to_crs(crs).area.sum() / 1e4 == pytest.approx(impact["footprint_ha"], rel=0.01)
    # the words: a disaster, dated, not "people resettled"
    caption = "25 Jan 2019: disaster, people displaced from Village B (synthetic)"
    video = run.layout.aoi_dir("pair_mine") / "video"
    subtitles = (video / "pair_mine.srt").read_text()  # what the frame does not say: the type and source
    assert "Disaster displacement. Source: synthetic dam-failure pair" in subtitles and caption not in subtitles
    youtube = (video / "youtube.txt").read_text()
    assert f"- {caption}" in youtube and "documented disaster displacement event" in youtube
    assert "resettled" not in youtube


def test_two_named_windows_around_the_event_date(pair):
    run = _run(pair, "by_window", composite=WINDOWS)
    table = run.period_table("pair_mine")
    assert list(table["period"]) == ["before", "after"]
    assert list(table["period_start"]) == ["2019-01-01", "2019-01-26"]
    metrics = run.event_metrics("pair_mine")
    control = metrics[metrics["zone"] == "control"].iloc[0]
    assert (control["periods_before"], control["periods_after"], control["status"]) == ("before", "after", "ok")
    item = json.loads((run.layout.run_dir / "stac" / "pair_mine" / "pair_mine_after" / "pair_mine_after.json")
                      .read_text())
    assert item["properties"]["start_datetime"] == "2019-01-26T00:00:00Z"
    assert item["properties"]["end_datetime"] == "2019-02-15T23:59:59Z"


def test_a_year_period_that_merges_the_event_is_warned_about_with_the_fix(pair):
    run = _run(pair, "by_year", composite={"period": "year"})
    warnings = run.manifest["aois"]["pair_mine"]["stages"]["events"]["mixed_periods"]
    assert len(warnings) == 1 and "falls inside period 2019" in warnings[0]
    assert "1 acquisition(s) before it (2019-01-14) with 1 after it (2019-01-30)" in warnings[0]
    control = run.event_metrics("pair_mine").query("zone == 'control'").iloc[0]
    assert control["periods_during"] == "2019" and control["status"].startswith("not analysable")
