"""Mine areas (AOIs): the vector file of the config's `aoi` section, one polygon per mine.

AOI ids name the AOI's output folder and files: they follow the safe-name rule of
`pipeline.results.check_id`. An invalid polygon (a ring crossing itself, overlapping parts) is repaired
with shapely's `make_valid` keeping every part, with a warning giving its area before and after; a
polygon with nothing left after the repair is refused.
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import shapely

from pipeline import io
from pipeline.errors import InputError
from pipeline.results import check_id

__all__ = ["read_aois", "aoi_outline"]

log = logging.getLogger(__name__)

_FIX = "fix the outline, e.g. in QGIS with Processing > Vector geometry > Fix geometries"


def read_aois(path: Path, *, id_field: str) -> gpd.GeoDataFrame:
    """Mine areas (one polygon feature per AOI) with a unique, safe id column `aoi_id`; invalid polygons
    repaired (`repair_polygons`), the repairs listed in `.attrs["repaired"]` (aoi_id -> message)."""
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
    for aoi_id in aois["aoi_id"]:
        check_id(aoi_id, what="AOI", where=f"{path} (aoi.id_field {id_field!r})")
    duplicated = aois["aoi_id"][aois["aoi_id"].str.lower().duplicated()].unique()
    if len(duplicated):  # also ignoring case: 'Mine_A' and 'mine_a' would share a folder on macOS and Windows
        raise InputError(f"{path}: AOI ids must be unique (ignoring case), repeated: {list(duplicated)}")
    if not aois.geom_type.isin(["Polygon", "MultiPolygon"]).all():
        raise InputError(f"{path}: every AOI must be a polygon")
    return repair_polygons(aois, path=path)


def repair_polygons(aois: gpd.GeoDataFrame, *, path: Path | str) -> gpd.GeoDataFrame:
    """The AOIs with every invalid polygon made valid (shapely `make_valid`, method "structure": the
    union of the outer rings less the holes, so every part and every overlap is kept once), each
    repair logged as a warning with the area before and after; InputError if nothing is left."""
    invalid = ~aois.geometry.is_valid
    repaired = dict(aois.attrs.get("repaired", {}))
    if not invalid.any():
        return aois
    metric = aois.crs if aois.crs.is_projected else aois.estimate_utm_crs()
    fixed = aois.copy()
    for index in aois.index[invalid]:
        aoi_id, geometry = aois.at[index, "aoi_id"], aois.geometry[index]
        reason = shapely.is_valid_reason(geometry)
        valid = _polygonal(shapely.make_valid(geometry, method="structure", keep_collapsed=False))
        if valid.is_empty:
            raise InputError(f"{path}: AOI {aoi_id!r}: the polygon is invalid ({reason}) and nothing of it is "
                             f"left once repaired; {_FIX}")
        before, after = (gpd.GeoSeries([g], crs=aois.crs).to_crs(metric).area.iloc[0] / 1e4 for g in (geometry, valid))
        parts = len(getattr(valid, "geoms", [valid]))
        message = (f"{path}: AOI {aoi_id!r}: the polygon is invalid ({reason}); repaired with make_valid keeping "
                   f"every part: {after:,.1f} ha in {parts} part(s), where the outline as drawn measures "
                   f"{before:,.1f} ha; {_FIX} to silence this warning")
        log.warning("%s", message)
        repaired[aoi_id] = message
        fixed.loc[[index], "geometry"] = gpd.GeoSeries([valid], index=[index], crs=aois.crs)
    fixed.attrs["repaired"] = repaired
    return fixed


def _polygonal(geometry):
    """The polygons of a geometry (make_valid may add lines or points where rings touch), as one geometry."""
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    parts = [g for g in getattr(geometry, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def aoi_outline(geometry, crs, *, buffer_m: float = 0.0) -> gpd.GeoSeries:
    """An AOI's outline as a one-row GeoSeries, grown by `buffer_m` metres (in its UTM zone) if given.

    No `buffer(0)`: the polygon is valid already (`read_aois`), and buffer(0) of an invalid one keeps
    only part of it."""
    outline = gpd.GeoSeries([geometry], crs=crs)
    if buffer_m:
        metric = outline.to_crs(outline.estimate_utm_crs())
        outline = metric.buffer(buffer_m)
    return outline
