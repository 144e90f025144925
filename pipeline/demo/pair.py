"""A rapid event in two acquisitions (synthetic): a tailings-dam failure between two dated scenes.

Everything here is SYNTHETIC, like the demo mine (same grid conventions, spectra and sensor model).
A 120 x 120 px (3.6 km) landscape of grass/shrub with tree patches, a river, a mine pit, the tailings
pond behind its dam (near the middle of the scene), a village and its fields. Two acquisitions, 16 days apart (14 and 30 January
2019), frame a dam failure on 25 January 2019: after it, a mudflow (bare ground, class 6) runs from
the dam down to the river (about 1 km) over fields, trees and part of the village. Nothing else changes, so the
truth of the event's effect is known exactly; the second scene has a few clouds (masked).

Written: ``scenes/pair_YYYYMMDD.tif`` (7 bands as the demo's: reflectance x 10000 and the mask band),
``truth/YYYY-MM-DD.tif`` (class codes, 255 = nodata), ``training_points.gpkg`` (points labelled with
the ``date`` of the acquisition they hold for), ``events.csv`` (one dated disaster record without
origin or site coordinates) and the AOI.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd

from pipeline.demo.landscape import (_BAND_NAMES, _BUILT, _CLEARED, _CROP, _EPSG, _GRASS, _PIT, _SURFACE_CLASS,
                                     _TAILINGS, _TREE, _WATER, CLASS_CODES, _grid_transform, _smooth_field,
                                     _texture)
from pipeline.demo.scenes import _clouds, _render_scene
from pipeline.io import atomic_path, write_gpkg

__all__ = ["PAIR_DATES", "PAIR_EVENT_DATE", "generate_pair", "mudflow_truth"]

log = logging.getLogger(__name__)

PAIR_DATES = (dt.date(2019, 1, 14), dt.date(2019, 1, 30))  # 11 days before and 5 days after the failure
PAIR_EVENT_DATE = dt.date(2019, 1, 25)
_N_PX = 120
_CLOUD_COVER = (0.0, 0.06)
_POINTS_PER_CLASS = 40


def _surfaces(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The surface before the failure and the mudflow's extent, both (y, x).

    The dam (the record's mine point) is near the middle, so a disc around it holds the whole mudflow
    and a control ring around it fits in the scene beyond that disc."""
    n = _N_PX
    rows, cols = np.mgrid[0:n, 0:n].astype(np.float32)
    surface = np.full((n, n), _GRASS, dtype=np.uint8)
    surface[_smooth_field(rng, (n, n), 6.0) > 0.55] = _TREE
    fields = (_smooth_field(rng, (n, n), 4.0) > 0.0) & (np.hypot(rows - 0.52 * n, cols - 0.6 * n) < 0.2 * n)
    surface[fields] = _CROP
    surface[np.hypot(rows - 0.5 * n, cols - 0.64 * n) < 0.055 * n] = _BUILT            # the village
    surface[np.hypot((rows - 0.2 * n) / 1.3, cols - 0.24 * n) < 0.08 * n] = _PIT     # the pit
    surface[np.hypot(rows - 0.28 * n, (cols - 0.5 * n) / 1.4) < 0.065 * n] = _TAILINGS  # the pond behind its dam
    river_row = 0.66 * n + 0.03 * n * np.sin(cols / (0.12 * n))
    river = np.abs(rows - river_row) < 1.6
    surface[river] = _WATER
    # the mudflow: from the dam (south of the pond) down a valley to the river, widening as it spreads
    along = np.clip((rows - 0.35 * n) / (0.3 * n), 0, 1)
    centre = 0.5 * n + 0.05 * n * np.sin(3 * along)
    mud = (rows > 0.345 * n) & (rows < river_row - 1.6) & (np.abs(cols - centre) < 0.03 * n + 0.07 * n * along)
    return surface, mud & ~river


def mudflow_truth(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """The truth class maps (before, after) of the pair, (y, x) uint8 (for tests and benchmarks)."""
    surface, mud = _surfaces(np.random.default_rng(seed).spawn(4)[0])
    after = surface.copy()
    after[mud] = _CLEARED
    return _SURFACE_CLASS[surface], _SURFACE_CLASS[after]


def generate_pair(out_dir: Path, aoi_path: Path, *, seed: int = 7) -> dict[str, Path]:
    """Write the synthetic dam-failure pair (see the module docstring); returns what was written."""
    import rasterio
    from pyproj import CRS

    out_dir, aoi_path = Path(out_dir), Path(aoi_path)
    scenes_dir, truth_dir = out_dir / "scenes", out_dir / "truth"
    for folder in (scenes_dir, truth_dir, aoi_path.parent):
        folder.mkdir(parents=True, exist_ok=True)
    land_rng, texture_rng, cloud_rng, noise_rng = np.random.default_rng(seed).spawn(4)
    surface, mud = _surfaces(land_rng)
    after = surface.copy()
    after[mud] = _CLEARED
    transform = _grid_transform(_N_PX)
    layout = SimpleNamespace(n_px=_N_PX, scale=_N_PX / 500, shadow_offset=(3, 4))
    texture = _texture(layout, texture_rng)
    profile = {"driver": "GTiff", "width": _N_PX, "height": _N_PX, "crs": CRS.from_epsg(_EPSG),
               "transform": transform, "tiled": True, "blockxsize": 64, "blockysize": 64, "compress": "deflate"}
    truths = {}
    for when, land, cover in zip(PAIR_DATES, (surface, after), _CLOUD_COVER):
        clouds = _clouds(cover, layout, cloud_rng)
        scene = _render_scene(land, when.timetuple().tm_yday, texture, clouds, np.ones(land.shape, bool), noise_rng)
        path = scenes_dir / f"pair_{when:%Y%m%d}.tif"
        with atomic_path(path) as tmp, rasterio.open(tmp, "w", count=7, dtype="uint16", nodata=0, **profile) as dst:
            dst.write(scene)
            dst.descriptions = _BAND_NAMES
            dst.update_tags(DATETIME=f"{when.isoformat()}T08:30:00", SENSOR="synthetic")
        truths[when] = _SURFACE_CLASS[land]
        with atomic_path(truth_dir / f"{when.isoformat()}.tif") as tmp, \
                rasterio.open(tmp, "w", count=1, dtype="uint8", nodata=255, **profile) as dst:
            dst.write(truths[when][np.newaxis])
    points = _points(truths, transform, np.random.default_rng(seed + 1))
    write_gpkg(points, out_dir / "training_points.gpkg", layer="training_points")
    events = _event(transform)
    with atomic_path(out_dir / "events.csv") as tmp:
        events.to_csv(tmp, index=False)
    aoi = _aoi(transform)
    with atomic_path(aoi_path) as tmp:
        aoi.to_file(tmp, layer=aoi_path.stem, driver="GeoJSON")
    log.info("dam-failure pair (seed %d): 2 scenes, %d training points in %s", seed, len(points), out_dir)
    return {"scenes_dir": scenes_dir, "truth_dir": truth_dir, "training_points": out_dir / "training_points.gpkg",
            "events": out_dir / "events.csv", "aoi": aoi_path}


def _points(truths: dict[dt.date, np.ndarray], transform, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """Labelled points per acquisition date: up to _POINTS_PER_CLASS per class, away from class edges."""
    from scipy import ndimage

    rows_out = []
    for when, classes in truths.items():
        interior = (ndimage.minimum_filter(classes, 3) == classes) & (ndimage.maximum_filter(classes, 3) == classes)
        for code in CLASS_CODES:
            candidates = np.flatnonzero(interior & (classes == code))
            picked = np.sort(rng.choice(candidates, min(_POINTS_PER_CLASS, candidates.size), replace=False))
            row, col = np.unravel_index(picked, classes.shape)
            x, y = transform * (col + 0.5, row + 0.5)
            rows_out.append(pd.DataFrame({"class_code": code, "date": when.isoformat(), "x": x, "y": y}))
    table = pd.concat(rows_out, ignore_index=True)
    return gpd.GeoDataFrame(table.drop(columns=["x", "y"]), geometry=gpd.points_from_xy(table["x"], table["y"]),
                            crs=f"EPSG:{_EPSG}")


def _lonlat(transform, row: float, col: float) -> tuple[float, float]:
    from pyproj import Transformer

    x, y = transform * (col, row)
    lon, lat = Transformer.from_crs(_EPSG, 4326, always_xy=True).transform(x, y)
    return round(lon, 5), round(lat, 5)


def _event(transform) -> pd.DataFrame:
    """The failure as a record of the events table: dated, a disaster, no origin or site coordinates."""
    lon, lat = _lonlat(transform, 0.345 * _N_PX, 0.5 * _N_PX)  # the dam
    return pd.DataFrame([{
        "event_id": "pair_dam_failure", "mine": "Pair Mine (synthetic)", "company": "Pair Mining Co. (synthetic)",
        "country": "Mozambique", "iso3": "MOZ", "commodity": "iron ore", "lifecycle_stage": "operation",
        "event_type": "disaster displacement", "date": PAIR_EVENT_DATE.isoformat(), "year_start": 2019,
        "year_end": "", "displaced_count": "", "displaced_unit": "", "origin_community": "Village B (synthetic)",
        "resettlement_site": "", "mine_lat": lat, "mine_lon": lon, "site_lat": "", "site_lon": "",
        "coords_note": "synthetic: mine point = the tailings dam",
        "source": "synthetic dam-failure pair generated by pipeline.demo.pair"}])


def _aoi(transform) -> gpd.GeoDataFrame:
    import shapely

    west, north = transform * (0, 0)
    east, south = transform * (_N_PX, _N_PX)
    inset = 2 * 30.0
    outline = shapely.segmentize(shapely.box(west + inset, south + inset, east - inset, north - inset), 300.0)
    return gpd.GeoDataFrame({"aoi_id": ["pair_mine"], "name": ["Pair Mine (synthetic)"], "country": ["Mozambique"],
                             "company": ["Pair Mining Co. (synthetic)"], "commodity": ["iron ore"]},
                            geometry=[outline], crs=f"EPSG:{_EPSG}").to_crs(4326)
