"""Periods: ids, date ranges and labels of every kind; which periods a training label holds for."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from pipeline.composite.periods import elapsed_years, label_periods, make_periods, scene_indices

TIMES = pd.to_datetime(["2019-01-14T10:00", "2019-01-30T10:00", "2019-05-02T10:00", "2019-11-20T10:00",
                        "2020-02-03T10:00"])


def _ranges(periods):
    return [(p.id, p.start.isoformat(), p.end.isoformat(), p.label) for p in periods]


def test_years_quarters_and_months_hold_only_the_periods_with_an_acquisition():
    assert _ranges(make_periods(TIMES)) == [("2019", "2019-01-01", "2019-12-31", "2019"),
                                             ("2020", "2020-01-01", "2020-12-31", "2020")]
    assert [p.id for p in make_periods(TIMES, kind="quarter")] == ["2019-q1", "2019-q2", "2019-q4", "2020-q1"]
    months = make_periods(TIMES, kind="month")
    assert _ranges(months)[0] == ("2019-01", "2019-01-01", "2019-01-31", "Jan 2019")
    assert _ranges(months)[-1] == ("2020-02", "2020-02-01", "2020-02-29", "Feb 2020")  # a leap year


def test_a_season_across_the_new_year_belongs_to_the_year_it_starts_in():
    wet = make_periods(TIMES, kind="season", season=("11-01", "03-31"))
    assert _ranges(wet) == [("2018-11-01_2019-03-31", "2018-11-01", "2019-03-31", "Nov 2018–Mar 2019"),
                            ("2019-11-01_2020-03-31", "2019-11-01", "2020-03-31", "Nov 2019–Mar 2020")]
    assert wet[1].year == 2019
    dry = make_periods(TIMES, kind="season", season=("05-01", "09-30"))
    assert _ranges(dry) == [("2019-05-01_2019-09-30", "2019-05-01", "2019-09-30", "May–Sep 2019")]
    assert len(scene_indices(TIMES, dry[0])) == 1  # only 2 May falls in the dry season


def test_scenes_and_windows():
    scenes = make_periods(TIMES, kind="scene")
    assert _ranges(scenes)[0] == ("2019-01-14", "2019-01-14", "2019-01-14", "14 Jan 2019")
    windows = make_periods(TIMES, kind="windows", windows=[("after", dt.date(2019, 1, 26), dt.date(2019, 2, 10)),
                                                           ("before", dt.date(2019, 1, 1), dt.date(2019, 1, 24)),
                                                           ("later", dt.date(2021, 1, 1), dt.date(2021, 1, 2))])
    assert [p.id for p in windows] == ["before", "after", "later"]  # in time order; empty windows stay
    assert [list(scene_indices(TIMES, w)) for w in windows] == [[0], [1], []]


def test_a_label_holds_for_its_year_its_period_or_the_period_of_its_date():
    months = make_periods(TIMES, kind="month")
    assert label_periods(2019, months) == ["2019-01", "2019-05", "2019-11"]
    assert label_periods("2019.0", months) == ["2019-01", "2019-05", "2019-11"]  # a year read as a float
    assert label_periods("2019-05", months) == ["2019-05"]
    assert label_periods("2019-11-03", months) == ["2019-11"]
    assert label_periods(pd.Timestamp("2020-02-10"), months) == ["2020-02"]
    assert label_periods("2018-06-01", months) == [] and label_periods("grass", months) == []


def test_elapsed_years_run_between_the_middles_of_two_periods():
    first, last = make_periods(pd.to_datetime(["2008-06-01", "2022-06-01"]))
    assert elapsed_years(first, last) == pytest.approx(14.0, abs=0.01)
    march, june = make_periods(pd.to_datetime(["2019-03-05", "2019-06-20"]), kind="month")
    assert elapsed_years(march, june) == pytest.approx(92 / 365.25, abs=0.005)
