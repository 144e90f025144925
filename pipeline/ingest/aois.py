"""Mine areas (AOIs): the vector file of the config's `aoi` section, one polygon per mine."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd

from pipeline import io
from pipeline.errors import InputError

__all__ = ["read_aois"]


def read_aois(path: Path, *, id_field: str) -> gpd.GeoDataFrame:
    """Mine areas (one polygon feature per AOI) with a unique id column `aoi_id`."""
    aois = io.read_vector(path, what="AOI file (aoi.path)")
    if aois.empty:
        raise InputError(f"{path}: the AOI file has no features; it needs one polygon per mine area (aoi.path)")
    if id_field not in aois.columns:
        raise InputError(
            f"{path}: no field {id_field!r} (aoi.id_field); fields are {sorted(map(str, aois.columns))}"
        )
    if aois.crs is None:
        raise InputError(f"{path}: the AOI file has no CRS")
    aois = aois.rename(columns={id_field: "aoi_id"})
    aois["aoi_id"] = aois["aoi_id"].astype(str)
    duplicated = aois["aoi_id"][aois["aoi_id"].duplicated()].unique()
    if len(duplicated):
        raise InputError(f"{path}: AOI ids must be unique, repeated: {list(duplicated)}")
    if not aois.geom_type.isin(["Polygon", "MultiPolygon"]).all():
        raise InputError(f"{path}: every AOI must be a polygon")
    return aois
