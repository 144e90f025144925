"""Events: resettlement records, where each is measured, and what changed with it.

    records   the events table read and parsed (messy counts, units, outlines; analyses each record allows)
    zones     events linked to AOIs; origin, site and control zones as polygons and masks
    effects   class areas before versus after, BACI effects with block-bootstrap intervals
    captions  what an event is called in captions and reports
    public    the one place that generalises events for public outputs
    stage     the events stage of one AOI (writes events/)

Uses: change, ingest (the grid), and the base modules.
"""

from pipeline.events.records import ANALYSES, normalise_events, read_events
from pipeline.events.zones import ZONES, link_events, event_zones, zone_mask, zone_masks, zone_pixel_counts
from pipeline.events.effects import (EVENT_METRICS_COLUMNS, BACI_COLUMNS, Window, event_metrics_table, event_periods,
                                     event_span, mixed_periods, baci_effects)
from pipeline.events.captions import event_caption
from pipeline.events.public import WITHHELD, generalise_events, generalise_text, generalise_zones

__all__ = ["ANALYSES", "normalise_events", "read_events", "ZONES", "link_events", "event_zones", "zone_mask",
           "zone_masks", "zone_pixel_counts", "EVENT_METRICS_COLUMNS", "BACI_COLUMNS", "event_metrics_table",
           "event_periods", "baci_effects", "Window", "event_span", "mixed_periods", "event_caption", "WITHHELD",
           "generalise_events", "generalise_text", "generalise_zones"]
