"""Events: resettlement records, where each is measured, and what changed with it.

    records   the events table read and parsed (messy counts, units, outlines, event types; analyses
              each record allows)
    aois      mine areas (AOIs) made from the events table, one per mine; the AOIs of a config
    zones     events linked to AOIs; their zones by event type (origin and site, old and new town,
              impact zone; control ring) as polygons, masks and the window of the map that holds them
    effects   class areas before versus after, BACI effects with block-bootstrap intervals
    impact    what a disaster left: the area changed into bare ground, mud or water, and its footprint
    captions  the words for an event (captions, subtitles, youtube.txt, report, Kumu) by its type
    public    the one place that generalises events for public outputs
    stage     the events stage of one AOI (writes events/)

Uses: change, ingest (the grid, the AOI reader), and the base modules.
"""

from pipeline.events.records import ANALYSES, EVENT_KINDS, event_kind, normalise_events, read_events
from pipeline.events.zones import (IMPACT_ZONE, KIND_ZONES, ZONES, link_events, event_zones, zone_mask, zone_masks,
                                   zone_pixel_counts, zone_window)
from pipeline.events.effects import (EVENT_METRICS_COLUMNS, BACI_COLUMNS, Window, event_metrics_table, event_periods,
                                     event_span, mixed_periods, baci_effects)
from pipeline.events.impact import IMPACT_COLUMNS, footprint_outline, impact_footprint, impact_table
from pipeline.events.captions import KIND_NAMES, ZONE_NAMES, event_caption, event_when, events_phrase, zone_name
from pipeline.events.public import WITHHELD, generalise_events, generalise_text, generalise_zones
from pipeline.events.aois import aois_from_events, configured_aois, unplaced_events

__all__ = ["ANALYSES", "EVENT_KINDS", "event_kind", "normalise_events", "read_events", "IMPACT_ZONE", "KIND_ZONES",
           "ZONES", "link_events", "event_zones", "zone_mask", "zone_masks", "zone_pixel_counts", "zone_window",
           "EVENT_METRICS_COLUMNS", "BACI_COLUMNS", "event_metrics_table", "event_periods", "baci_effects", "Window",
           "event_span", "mixed_periods", "IMPACT_COLUMNS", "footprint_outline", "impact_footprint", "impact_table",
           "KIND_NAMES", "ZONE_NAMES", "event_caption", "event_when", "events_phrase", "zone_name", "WITHHELD",
           "generalise_events", "generalise_text", "generalise_zones", "aois_from_events", "configured_aois",
           "unplaced_events"]
