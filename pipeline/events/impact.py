"""What a disaster left: the area that changed into bare ground, mud or water after the event.

    impact_footprint   (y, x) uint8: 1 = changed into an impact class after the event, 0 = did not
    footprint_outline  the footprint as one (multi)polygon
    impact_table       the changed area and its BACI effect against the control, with block-bootstrap CIs

The footprint is a description of the change, not the zone it is measured in: the impact zone is a
disc around the mine point (or the record's outline), fixed before looking at the class maps. A zone
drawn around the pixels that changed would find exactly the change it was drawn from, and its interval
would say nothing about it.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from rasterio.features import shapes
from scipy import ndimage

from pipeline.composite.periods import Period
from pipeline.config import ClassDef
from pipeline.events.effects import Window, _dates, _listed, baci_effects, event_periods

__all__ = ["IMPACT_COLUMNS", "FOOTPRINT_NODATA", "impact_footprint", "footprint_outline", "impact_table"]

FOOTPRINT_NODATA = 255  # outside the impact zone, or not observed both before and after the event

IMPACT_COLUMNS = ["aoi_id", "event_id", "event_start", "event_end", "zone", "impact_classes", "periods_before",
                  "periods_during", "periods_after", "zone_area_ha", "footprint_ha", "effect_ha", "ci95_low_ha",
                  "ci95_high_ha", "impact_change_pct", "control_change_pct", "status"]

_IMPACT, _OTHER = 1, 2  # the two classes of the merged map: an impact class, any other class


def impact_footprint(values: np.ndarray, is_before: np.ndarray, *, impact_classes: Sequence[int], nodata: int,
                     in_zone: np.ndarray, min_pixels: int = 1) -> np.ndarray:
    """Pixels of the zone that changed into an impact class after the event.

    `values` (period, y, x) uint8 class codes of the before and after windows' periods, `is_before`
    bool over them. A pixel changed if it was observed in both windows, held no impact class in any
    observed period before, and an impact class in most of its observed periods after; patches
    (8-connected) of fewer than `min_pixels` are dropped (speckle of the classification).
    Returns (y, x) uint8: 1 changed, 0 not, `FOOTPRINT_NODATA` outside the zone or not observed both sides.
    """
    before, after = values[is_before], values[~is_before]
    seen_before, seen_after = (before != nodata).any(axis=0), (after != nodata).any(axis=0)
    was_impact = np.isin(before, impact_classes).any(axis=0)
    after_seen = (after != nodata).sum(axis=0)
    after_impact = np.isin(after, impact_classes).sum(axis=0)
    changed = in_zone & seen_before & seen_after & ~was_impact & (2 * after_impact > after_seen)
    if min_pixels > 1 and changed.any():
        labels, n = ndimage.label(changed, structure=np.ones((3, 3), bool))
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        changed &= sizes[labels] >= min_pixels
    footprint = np.where(in_zone & seen_before & seen_after, changed, FOOTPRINT_NODATA).astype("uint8")
    return footprint


def footprint_outline(footprint: np.ndarray, transform, crs) -> gpd.GeoSeries:
    """The footprint's changed pixels (value 1) as one (multi)polygon in `crs` (empty if none)."""
    parts = [shapely.geometry.shape(geometry) for geometry, value in
             shapes(footprint, mask=footprint == 1, transform=transform) if value == 1]
    return gpd.GeoSeries([shapely.union_all(parts) if parts else shapely.MultiPolygon()], crs=crs)


def _merged(class_map: xr.DataArray, impact_classes: Sequence[int], nodata: int) -> xr.DataArray:
    """The class map as two classes: an impact class (1), any other class (2); nodata kept."""
    merged = xr.where(class_map.isin(list(impact_classes)), _IMPACT,
                      xr.where(class_map != nodata, _OTHER, nodata)).astype("uint8")
    return merged.rio.write_crs(class_map.rio.crs).rio.write_nodata(nodata)


def _merged_errors(error_matrix: np.ndarray, classes: Sequence[ClassDef], impact_classes: Sequence[int]) -> np.ndarray:
    """The error matrix (rows map, columns reference) collapsed to impact / other."""
    group = np.array([0 if c.code in impact_classes else 1 for c in classes])
    counts = np.asarray(error_matrix, dtype=float)
    collapsed = np.zeros((2, 2))
    np.add.at(collapsed, (group[:, None], group[None, :]), counts)
    return collapsed


def impact_table(event: pd.Series, class_map: xr.DataArray, zone_masks: dict[str, np.ndarray | str],
                 classes: Sequence[ClassDef], *, impact_classes: Sequence[int],
                 footprints: dict[str, np.ndarray | None],
                 pixel_area_ha: float, window: Window, block_size_m: float, n_bootstrap: int, seed: int,
                 periods: Sequence[Period], classified: np.ndarray | None = None,
                 error_matrix: np.ndarray | None = None) -> pd.DataFrame:
    """Per impact zone: the area that changed into an impact class after the event (`footprint_ha`) and
    the BACI effect of the impact classes together (their share of the zone after less before, less the
    same change in the control ring, in ha of the zone) with its 95 % block-bootstrap interval, as
    `baci_effects` computes it for one class. `class_map` (period, y, x) holds at least the before and
    after windows' periods; `footprints`: impact zone -> its `impact_footprint` (None where the zone is
    skipped or the event cannot be compared before and after)."""
    nodata = int(class_map.rio.nodata if class_map.rio.nodata is not None else 255)
    names = [c.name for c in classes if c.code in impact_classes]
    merged_classes = [ClassDef(code=_IMPACT, name=" / ".join(names) or "impact", colour="#000000"),
                      ClassDef(code=_OTHER, name="other", colour="#ffffff")]
    errors = _merged_errors(error_matrix, classes, impact_classes) if error_matrix is not None else None
    masks = {zone: mask for zone, mask in zone_masks.items() if zone in footprints or zone == "control"}
    effects = baci_effects(event, _merged(class_map, impact_classes, nodata), masks, merged_classes,
                           pixel_area_ha=pixel_area_ha, window=window, block_size_m=block_size_m,
                           n_bootstrap=n_bootstrap, seed=seed, error_matrix=errors, periods=periods,
                           classified=classified)
    found = event_periods(event, periods, window)
    base = {"aoi_id": event.get("aoi_id"), "event_id": event["event_id"], **_dates(event), **_listed(found),
            "impact_classes": ";".join(str(code) for code in impact_classes)}
    rows = []
    for zone, footprint in footprints.items():
        effect = effects[(effects["zone"] == zone)]
        row = effect[effect["class_code"] == _IMPACT]
        changed = float((footprint == 1).sum()) * pixel_area_ha if footprint is not None else np.nan
        if row.empty:  # skipped, or not analysable: say why
            rows.append(base | {"zone": zone, "footprint_ha": changed, "status": effect["status"].iloc[0]})
            continue
        row = row.iloc[0]
        rows.append(base | {"zone": zone, "zone_area_ha": row["impact_area_ha"], "footprint_ha": changed,
                            **{k: row[k] for k in ("effect_ha", "ci95_low_ha", "ci95_high_ha", "impact_change_pct",
                                                   "control_change_pct", "status")}})
    return pd.DataFrame(rows, columns=IMPACT_COLUMNS)
