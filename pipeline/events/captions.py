"""What an event is called in captions, subtitles, the report and the exports."""

from __future__ import annotations

import pandas as pd

__all__ = ["event_caption"]


def event_caption(event: pd.Series, *, public: bool = False) -> str:
    """A one-line caption, e.g. '2013: 240 households resettled from Village A to New Village A'.

    `public` leaves out the names of the origin community and the resettlement site.
    """
    start = event.get("year_start") if pd.notna(event.get("year_start")) else event.get("year_end")
    end = event.get("year_end") if pd.notna(event.get("year_end")) else None
    years = "" if pd.isna(start) else (f"{int(start)}-{int(end)}" if end and end != start else str(int(start)))
    count = event.get("displaced_count")
    unit = event.get("displaced_unit_kind") or event.get("displaced_unit")
    who = f"{int(count):,} {unit if isinstance(unit, str) else ''}".strip() if pd.notna(count) else "people"
    text = f"{years}: {who} resettled" if years else f"{who} resettled"
    if not public and isinstance(event.get("origin_community"), str):
        text += f" from {event['origin_community']}"
    if not public and isinstance(event.get("resettlement_site"), str):
        text += f" to {event['resettlement_site']}"
    return text
