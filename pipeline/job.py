"""One AOI of a run: what every stage of it needs to know (config, outline, events, where it writes)."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import pandas as pd

from pipeline.config import PipelineConfig
from pipeline.results import OutputLayout

__all__ = ["AoiJob"]


@dataclass(frozen=True)
class AoiJob:
    """One AOI of a run: its row of the AOI file, its (buffered) outline, its linked events, where it writes."""

    config: PipelineConfig
    aoi: pd.Series
    geometry: gpd.GeoSeries
    events: pd.DataFrame
    out: OutputLayout
    batch: int = 4          # periods computed and written at once (bounded memory: one batch at a time)

    @property
    def aoi_id(self) -> str:
        return self.aoi["aoi_id"]
