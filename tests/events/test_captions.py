"""The words for an event, by its type, as the real records give them: captions, subtitles, youtube.txt."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline.composite.periods import make_periods
from pipeline.events import event_caption, events_phrase, normalise_events, read_events
from pipeline.video import publish
from pipeline.video.stage import video_captions

from conftest import DATA

REAL_EVENTS = DATA / "resettlement_events" / "events.csv"


@pytest.fixture(scope="module")
def records():
    return normalise_events(read_events(REAL_EVENTS)).set_index("event_id", drop=False)


def test_each_type_in_its_own_words_with_a_count_only_with_its_unit(records):
    assert event_caption(records.loc["mmg_lasbambas_fuerabamba"]) == (
        "2014-2016: 441 families resettled from Fuerabamba (comunidad campesina) to Nueva Fuerabamba "
        "(about 8 km from the mine)")
    assert event_caption(records.loc["codelco_chuquicamata"]) == (
        "2004-2007: town relocated from Chuquicamata mining camp to Calama (about 15 km away), 2,500 families moved")
    assert event_caption(records.loc["lkab_kiruna"], public=True) == "2014: town relocated"  # no count given
    assert event_caption(records.loc["samarco_fundao_bento_rodrigues"], public=True) == (
        "2015: disaster, 211 families displaced")
    # a count in another unit keeps its unit; no record is "people resettled" unless it is a resettlement
    assert event_caption(records.loc["centralia_mine_fire"], public=True) == (
        "1985-1991: disaster, people displaced (545 residences and businesses acquired, residents moved)")
    captions = {e: event_caption(r) for e, r in records.iterrows()}
    assert not any("resettled from" in captions[e] for e in records.index[records["event_kind"] != "resettlement"])
    no_unit = records.loc["codelco_chuquicamata"].copy()
    no_unit["displaced_unit"], no_unit["displaced_unit_kind"] = np.nan, np.nan
    assert "2,500" not in event_caption(no_unit)  # a number without its unit says nothing


def test_a_dated_disaster_and_an_unknown_type():
    dam = pd.Series({"event_id": "dam", "event_type": "disaster displacement", "date": "2019-01-25",
                     "origin_community": "Village B", "displaced_count": np.nan})
    assert event_caption(dam) == "25 Jan 2019: disaster, people displaced from Village B"
    strike = pd.Series({"event_id": "x", "event_type": "forced eviction", "year_start": 2011,
                        "displaced_count": 40, "displaced_unit": "households"})
    assert event_caption(strike) == "2011: forced eviction: 40 households displaced"
    untyped = pd.Series({"event_id": "y", "year_start": 2011, "displaced_count": 40, "displaced_unit": "households"})
    assert event_caption(untyped) == "2011: 40 households resettled"  # no type: a planned resettlement, as before


def test_subtitles_and_youtube_text_say_what_happened(records):
    chosen = records.loc[["cerrejon_tabaco", "codelco_chuquicamata", "samarco_fundao_paracatu"]]
    periods = make_periods([dt.date(year, 6, 1) for year in range(2000, 2020)])
    captions = video_captions(chosen, periods, public=True)
    assert [(periods[i].id, text) for i, text in captions] == [
        ("2001", "2001\u20132002: 600 families resettled"),
        ("2004", "2004\u20132007: town relocated, 2,500 families moved"),
        ("2015", "2015: disaster, 98 families displaced")]
    texts = [text for _, text in captions]
    srt = publish.subtitles_srt(texts, [(10, 20), (30, 40), (50, 60)], fps=10)
    assert "00:00:05,000 --> 00:00:06,000\n2015: disaster, 98 families displaced" in srt
    phrase = events_phrase(e for _, e in chosen.iterrows())
    assert phrase == "planned resettlement, town relocation and disaster displacement events"
    text = publish.youtube_text(title="t", summary=f"... with the documented {phrase}.", captions=texts,
                                sources=[], found=[])
    assert "- 2004\u20132007: town relocated, 2,500 families moved" in text and "people resettled" not in text
