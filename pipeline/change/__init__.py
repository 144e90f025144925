"""Change: what the class maps say changed: areas, transitions, footprint, rings, change maps.

    metrics   class areas per period, transitions, change summary, mining footprint, rings
    maps      change maps (the period of first change)
    stage     the change stage of one AOI (writes metrics/, change/)

Uses: ingest (the grid), and the base modules.
"""

from pipeline.change.metrics import class_pixel_counts, class_area_table, transition_counts, transition_table, change_summary, mining_footprint_table, ring_summary
from pipeline.change.maps import NO_CHANGE, first_change_year

__all__ = ["class_pixel_counts", "class_area_table", "transition_counts", "transition_table",
           "change_summary", "mining_footprint_table", "ring_summary", "NO_CHANGE", "first_change_year"]
