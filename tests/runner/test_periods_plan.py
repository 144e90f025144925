"""`midr validate` shows the time structure: the periods each config makes of its acquisitions.

Checked by hand against tests/data/s2_slovenia_eolearn/dates.csv: 68 acquisitions on 67 days (two on
2015-12-08), in 27 months; 7, 13 and 22 of them in the April-September seasons of 2015, 2016, 2017.
"""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest

from pipeline.config import load_config
from pipeline.runner.validate import validate_inputs

from conftest import DATA, ROOT, midr

DATES = pd.to_datetime(pd.read_csv(DATA / "s2_slovenia_eolearn" / "dates.csv")["datetime_utc"])


def _plan(name: str, **overrides):
    (plan,) = validate_inputs(load_config(ROOT / "configs" / f"{name}.yaml", overrides=overrides)).plans
    return plan


def test_slovenia_by_month_makes_one_period_per_month_with_an_acquisition():
    plan = _plan("s2_slovenia_monthly")
    assert len(plan.times) == 68 and plan.outside == 0
    assert [p.id for p, _ in plan.periods][:4] == ["2015-07", "2015-08", "2015-09", "2015-12"]  # no Oct/Nov 2015
    assert len(plan.periods) == 27
    counts = dict((p.id, n) for p, n in plan.periods)
    assert counts["2015-12"] == 4 and counts["2017-07"] == 6 and sum(counts.values()) == 68
    december = next(p for p, _ in plan.periods if p.id == "2015-12")
    assert (december.start, december.end, december.label) == (dt.date(2015, 12, 1), dt.date(2015, 12, 31), "Dec 2015")


def test_slovenia_by_growing_season_leaves_the_winter_out():
    plan = _plan("s2_slovenia_season")
    assert [(p.id, n) for p, n in plan.periods] == [("2015-04-01_2015-09-30", 7), ("2016-04-01_2016-09-30", 13),
                                                  ("2017-04-01_2017-09-30", 22)]
    assert plan.outside == 68 - 42


def test_slovenia_by_scene_joins_the_two_acquisitions_of_one_day():
    plan = _plan("s2_slovenia_eolearn", composite={"period": "scene"})
    assert len(plan.periods) == 67 == DATES.dt.date.nunique()
    assert dict((p.id, n) for p, n in plan.periods)["2015-12-08"] == 2


def test_validate_prints_the_periods_of_each_aoi():
    result = midr("validate", str(ROOT / "configs" / "s2_slovenia_season.yaml"))
    assert result.returncode == 0, result.stderr
    assert "aoi 'slovenia_patch': 68 scene(s) over it, 2015-07-11 to 2017-12-22 (3 of 3 period(s) with at least 1)" \
        in result.stdout and "composite.period: season; 26 scene(s) fall in no period" in result.stdout
    assert re.search(r"2016-04-01_2016-09-30 +2016-04-01 to 2016-09-30 +13 scene\(s\)", result.stdout)


@pytest.mark.parametrize("settings, message", [
    ({"period": "season"}, "composite.season is needed with period: season"),
    ({"period": "windows", "windows": [{"name": "before", "start": "2019-02-01", "end": "2019-01-01"}]},
     "window 'before' ends (2019-01-01) before it starts (2019-02-01)"),
    ({"period": "windows", "windows": [{"name": "a/b", "start": "2019-01-01", "end": "2019-01-02"}]},
     "composite.windows.0.name: String should match pattern"),
    ({"period": "season", "season": {"start": "02-30", "end": "09-30"}}, "not a day of the year in the form MM-DD"),
])
def test_period_settings_are_checked_at_load(tmp_path, settings, message):
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match=message.replace("(", "\\(").replace(")", "\\)")):
        load_config(ROOT / "configs" / "s2_slovenia_eolearn.yaml", overrides={"composite": settings})
