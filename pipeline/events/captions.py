"""What an event is called: the one place for the words of captions, subtitles, youtube.txt, the report
and the Kumu map.

Each event says what happened in its type's words, with its date, and a displaced count only with its
unit and only where the record gives one: '2013: 240 households resettled from Village A to New
Village A', '2004-2007: town relocated from Chuquicamata to Calama, 2,500 families moved',
'25 Jan 2019: disaster, people displaced from Village B'.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from pipeline.events.records import event_kind, unit_kind

__all__ = ["KIND_NAMES", "ZONE_NAMES", "ZONE_LINKS", "event_caption", "event_when", "displaced_phrase",
           "zone_name", "events_phrase"]

# event kind -> what it is called
KIND_NAMES = {"resettlement": "planned resettlement", "town_relocation": "town relocation",
              "disaster": "disaster displacement", "other": "displacement"}

# zone -> what it is called in tables, reports and charts
ZONE_NAMES = {"origin_community": "origin community", "resettlement_site": "resettlement site",
              "old_town": "old town", "new_town": "new town", "impact": "impact zone", "control": "control ring"}

# zone -> (Kumu element type, the event's connection to it); the record column naming it
ZONE_LINKS = {"origin_community": ("community", "displaced from", "origin_community"),
              "resettlement_site": ("resettlement site", "resettled to", "resettlement_site"),
              "old_town": ("old town", "relocated from", "origin_community"),
              "new_town": ("new town", "relocated to", "resettlement_site")}

_SINGULAR = {"households": "household", "families": "family", "people": "person"}


def zone_name(zone: str) -> str:
    """'origin_community' -> 'origin community'; unknown zones with their underscores as spaces."""
    return ZONE_NAMES.get(zone, str(zone).replace("_", " "))


def _given(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value)) and str(value).strip() != ""


def _day(value: object) -> pd.Timestamp:
    return pd.Timestamp(str(value).strip())


def _day_text(day: pd.Timestamp) -> str:
    return f"{day.day} {day:%b %Y}"


def event_when(event: pd.Series) -> str:
    """The event's date in words: '25 Jan 2019', '1 Mar 2020 to 20 Mar 2020', '2013', '2009-2010',
    'until 2032' (an end year only); '' without any."""
    if _given(event.get("date")):
        return _day_text(_day(event["date"]))
    if _given(event.get("date_start")):
        start = _day(event["date_start"])
        end = _day(event["date_end"]) if _given(event.get("date_end")) else start
        return _day_text(start) if end == start else f"{_day_text(start)} to {_day_text(end)}"
    start, end = event.get("year_start"), event.get("year_end")
    if _given(start):
        return f"{int(start)}-{int(end)}" if _given(end) and int(end) != int(start) else str(int(start))
    if _given(end):
        return f"until {int(end)}"
    if _given(event.get("event_start")):  # parsed dates only
        start = _day(event["event_start"])
        end = _day(event["event_end"]) if _given(event.get("event_end")) else start
        return _day_text(start) if end == start else f"{_day_text(start)} to {_day_text(end)}"
    return ""


def displaced_phrase(event: pd.Series) -> tuple[str | None, str | None]:
    """(who, other): '240 households' where the record gives a count in households, families or people;
    else `other` = '545 residences and businesses acquired' for a count in another unit (its text before
    any parenthesis); (None, None) without a count or without its unit."""
    count, unit = event.get("displaced_count"), event.get("displaced_unit")
    if not _given(count) or not _given(unit):
        return None, None
    try:
        number = int(float(count))
    except (TypeError, ValueError):
        return None, None
    kind = event.get("displaced_unit_kind")
    if not _given(kind):
        kind = unit_kind(unit)
    if kind in _SINGULAR:
        return f"{number:,} {_SINGULAR[kind] if number == 1 else kind}", None
    return None, f"{number:,} {str(unit).split('(')[0].strip().rstrip(',;')}"


def event_caption(event: pd.Series, *, public: bool = False) -> str:
    """A one-line caption in the words of the event's type, e.g. '2013: 240 households resettled from
    Village A to New Village A'; see the module docstring. `public` leaves out the names of the origin
    community and the resettlement site (old and new town)."""
    kind = event_kind(event.get("event_type"))
    who, other = displaced_phrase(event)
    origin = event.get("origin_community") if not public and _given(event.get("origin_community")) else None
    site = event.get("resettlement_site") if not public and _given(event.get("resettlement_site")) else None
    if kind == "resettlement":
        text = f"{who or 'people'} resettled" + (f" from {origin}" if origin else "") + (f" to {site}" if site else "")
    elif kind == "town_relocation":
        text = ("town relocated" + (f" from {origin}" if origin else "") + (f" to {site}" if site else "")
                + (f", {who} moved" if who else ""))
    elif kind == "disaster":
        text = (f"disaster, {who or 'people'} displaced" + (f" from {origin}" if origin else "")
                + (f"; resettled to {site}" if site else ""))
    else:
        named = " ".join(str(event.get("event_type")).split()) if _given(event.get("event_type")) else "displacement"
        text = (f"{named}: {who or 'people'} displaced" + (f" from {origin}" if origin else "")
                + (f" to {site}" if site else ""))
    if other:
        text += f" ({other})"
    when = event_when(event)
    return f"{when}: {text}" if when else text[0].upper() + text[1:]


def events_phrase(events: Iterable[pd.Series]) -> str:
    """'planned resettlement event', 'town relocation and disaster displacement events': the kinds of a
    set of events in words (for a video's description); '' for none."""
    kinds = [event_kind(event.get("event_type")) for event in events]
    if not kinds:
        return ""
    names = list(dict.fromkeys(KIND_NAMES[k] for k in kinds))
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{listed} event{'s' if len(kinds) > 1 else ''}"
