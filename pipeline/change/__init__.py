"""Change: what the class maps say changed: areas, transitions, footprint, rings, change maps.

    metrics   class areas per period, transitions, change summary, mining footprint, rings
    maps      change maps (the period in which the class first changed; colours and tags of the maps
              between two periods)
    segmentation  change without labels: per-pixel temporal segmentation of an index (after LandTrendr)
    stage     the change stage of one AOI (writes metrics/, change/)

Uses: classify (the cleaned maps, the minimum mapping unit, the change map of interest), ingest (the grid),
and the base modules.
"""

from pipeline.change.metrics import class_pixel_counts, class_area_table, transition_counts, transition_table, change_summary, mining_footprint_table, ring_summary
from pipeline.change.maps import (FIRST_CHANGE_NODATA, NO_CHANGE, change_map_colours, change_map_tags, first_change,
                                  first_change_tags)
from pipeline.change.segmentation import NO_DISTURBANCE, NOT_SEGMENTED, disturbance_area_table, segment_index, segment_np

__all__ = ["class_pixel_counts", "class_area_table", "transition_counts", "transition_table",
           "change_summary", "mining_footprint_table", "ring_summary", "NO_CHANGE", "FIRST_CHANGE_NODATA", "first_change",
           "first_change_tags", "change_map_colours", "change_map_tags", "NO_DISTURBANCE", "NOT_SEGMENTED",
           "disturbance_area_table", "segment_index", "segment_np"]
