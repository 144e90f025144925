"""Ingest: from the config's sources to one lazy scene_stack per AOI on the AOI's grid.

    aois      the mine areas (vector file of the `aoi` section)
    sources   config sources -> listed scenes -> an AOI's stack (what the composite stage calls)
    scenes    scene discovery in local files (dates, bands; headers only)
    stac      STAC API search or static catalog, loaded lazily with odc-stac
    sensors   sensor profiles: band names, scale/offset, quality bits and classes, harmonisation
    grid      the AOI's pixel grid; putting a scene onto it
    rasters   raster files read lazily, window by window
    stack     native bands -> common bands and masks, sources merged into one series

Uses: the base modules (errors, config, io) only.
"""

from pipeline.ingest.aois import aoi_outline, read_aois, repair_polygons
from pipeline.ingest.grid import target_grid, pixel_area_ha
from pipeline.ingest.rasters import open_raster, open_layer
from pipeline.ingest.scenes import SceneFiles, find_scene_files
from pipeline.ingest.sensors import SensorProfile, profile_for, MASK_CODES, MASK_NODATA
from pipeline.ingest.sources import ListedSource, aoi_stack, list_sources, source_profile
from pipeline.ingest.stack import (aoi_mask, check_bands, drop_empty_scenes, files_stack, items_stack, merge_sources,
                                   scene_stack)

__all__ = ["read_aois", "aoi_outline", "repair_polygons", "target_grid", "pixel_area_ha", "open_raster",
           "open_layer", "SceneFiles", "find_scene_files", "SensorProfile", "profile_for", "MASK_CODES", "MASK_NODATA", "ListedSource",
           "aoi_stack", "list_sources", "source_profile", "aoi_mask", "check_bands", "drop_empty_scenes",
           "files_stack", "items_stack", "merge_sources", "scene_stack"]
