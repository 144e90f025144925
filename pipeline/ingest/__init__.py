"""Ingest: from the config's sources to one lazy scene_stack per AOI on the AOI's grid.

    aois      the mine areas (vector file of the `aoi` section)
    sources   config sources -> listed scenes -> an AOI's stack (what the composite stage calls)
    scenes    scene discovery in local files (dates, bands; headers only)
    stac      STAC API search or static catalog (signing, GDAL settings, overpasses), loaded with odc-stac
    sensors   sensor profiles: band names, scale/offset, quality bits and classes, harmonisation
    baselines Sentinel-2 BOA offsets from product metadata (MTD_MSIL2A.xml, STAC properties)
    cloudmask clouds without a quality band: spectral (Fmask-like) and temporal rules
    grid      the AOI's pixel grid (metres; native grids kept); putting a scene onto it
    rasters   raster files read lazily, window by window
    stack     native bands -> common bands and masks, sources merged into one series

Uses: the base modules (errors, config, io) only.
"""

from pipeline.ingest.aois import aoi_outline, read_aois, repair_polygons
from pipeline.ingest.grid import target_grid, pixel_area_ha
from pipeline.ingest.rasters import open_raster, open_layer
from pipeline.ingest.scenes import SceneFiles, find_scene_files
from pipeline.ingest.sensors import SensorProfile, profile_for, MASK_CODES, MASK_NODATA
from pipeline.ingest.cloudmask import CloudPlan, spectral_cloud_shadow, temporal_cloud_shadow
from pipeline.ingest.sources import ListedSource, aoi_stack, cloud_plan, find_items, list_sources, source_profile
from pipeline.ingest.stack import (aoi_mask, check_bands, drop_empty_scenes, files_stack, items_stack, merge_sources,
                                   report_empty_scenes, scene_stack, scenes_with_pixels)

__all__ = ["read_aois", "aoi_outline", "repair_polygons", "target_grid", "pixel_area_ha", "open_raster",
           "open_layer", "SceneFiles", "find_scene_files", "SensorProfile", "profile_for", "MASK_CODES",
           "MASK_NODATA", "ListedSource", "aoi_stack", "cloud_plan", "find_items", "list_sources", "source_profile",
           "CloudPlan", "spectral_cloud_shadow", "temporal_cloud_shadow", "aoi_mask", "check_bands", "drop_empty_scenes",
           "files_stack", "items_stack", "merge_sources", "report_empty_scenes", "scene_stack", "scenes_with_pixels"]
