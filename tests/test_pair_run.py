"""A rapid event: two acquisitions 16 days apart around a dated tailings-dam failure (pipeline/demo/pair.py),
run from configs/dam_failure_pair.yaml with one period per scene and with two named windows. Change appears
only after the event; the before/after windows come from the dates."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import rasterio
from rasterio.windows import from_bounds

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


def test_one_period_per_scene_shows_the_mudflow_only_after_the_event(pair):
    run = _run(pair, "by_scene")
    assert run.periods("pair_mine") == [d.isoformat() for d in PAIR_DATES]
    with rasterio.open(run.layout.class_map("pair_mine", "2019-01-30")) as src:
        assert src.tags()["PERIOD_START"] == "2019-01-30" and src.tags()["PERIOD_LABEL"] == "30 Jan 2019"
    with rasterio.open(run.layout.first_change("pair_mine")) as src:
        first_change = src.read(1)
        assert src.tags()["PERIOD_2"] == "2019-01-30"
        bounds = src.bounds
    truth = {}
    for day in PAIR_DATES:  # the truth on the output grid (the AOI is inset from the scenes' edges)
        with rasterio.open(pair / "data" / "pair" / "truth" / f"{day.isoformat()}.tif") as src:
            truth[day] = src.read(1, window=from_bounds(*bounds, transform=src.transform))
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
