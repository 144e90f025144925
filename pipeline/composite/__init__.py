"""Composite: cloud masks, per-period composites and spectral indices, lazy in and lazy out.

    masks       cloud and shadow masks applied to a scene stack
    periods     the date ranges composited (year, season, quarter, month, scene, windows) and their ids
    composites  per-period median / mean / min / max composites
    indices     NDVI, NDWI, NDBI, BSI and NDVI's within-period range
    phenology   spectral-temporal metrics (percentiles, std, amplitude) and sub-period composites of a
                period's scenes; filling the sub-periods' gaps
    stage       the composite stage of one AOI (writes composites/<period>.tif)

Uses: ingest, and the base modules (errors, config, io, results, job).
"""

from pipeline.composite.masks import cloud_mask
from pipeline.composite.periods import Period, label_periods, make_periods, period_table, periods_of
from pipeline.composite.composites import composite
from pipeline.composite.indices import INDEX_FORMULAS, ndvi, ndvi_range, spectral_indices
from pipeline.composite.phenology import period_phenology

__all__ = ["cloud_mask", "Period", "label_periods", "make_periods", "period_table", "periods_of", "composite",
           "INDEX_FORMULAS", "ndvi", "ndvi_range", "spectral_indices", "period_phenology"]
