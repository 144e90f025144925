"""Deterministic, seeded synthetic mine-and-resettlement scene generator.

Everything this module writes is SYNTHETIC. It invents a small landscape in Tete
province, Mozambique (scene centre about 16.10 S, 33.70 E, UTM 36S, 30 m pixels), close
to but not copying the real Moatize coal mine, so that the whole pipeline can be run
and tested offline on data whose true answer is known.

The story, year by year (``t`` = fraction of the series elapsed):

* A base landscape of coherent patches: tree cover (denser along the river) and
  grass/shrub, a meandering river, a small lake, a stable town with fields around it
  and two farming hamlets (cropland fields only).
* "Demo Mine (synthetic)": an open pit near the centre whose elliptical outline grows
  linearly every year, two waste dumps beside it that grow too, and a tailings pond
  (water) that appears from about a third of the series on and grows.
* "Village A (synthetic)", the origin village, lies east of the pit, in its path. In
  the resettlement year (2013 for ``size="default"``, 2018 for ``"small"``) it is
  cleared: its pixels become bare ground & mining, and its fields are abandoned
  (grass/shrub). The pit reaches the cleared site some years later.
* "New Village A (synthetic)", the resettlement village (a planned, rectangular
  layout), appears about 5.5 km north-east of the pit in the resettlement year, with
  new cropland fields around it; before that its site is grass/shrub or tree cover.

Scenes are 7-band uint16 GeoTIFFs (surface reflectance x 10000 for blue, green, red,
nir, swir1, swir2, plus a ``mask`` band: 0 clear, 1 cloud, 2 cloud shadow). Their
reflectance is the class spectrum of each pixel's surface on that date, times a
smooth texture, with a per-scene gain and Gaussian sensor noise; clouds are bright
smoothed-noise blobs with shadows cast at a fixed offset; about one scene in eight
has a diagonal nodata edge. Alongside: yearly truth class maps, labelled training
points, a one-row resettlement-event table and the AOI polygon.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rioxarray
import shapely
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer
from scipy import ndimage

from pipeline.io import atomic_path, write_gpkg
from pipeline.demo.landscape import (_BAND_NAMES, _CLASS_NODATA, _EPSG, _PIXEL_M, _SURFACE_CLASS, CLASS_CODES, DemoSize,
                                     _grid_transform, _landscape, _Layout, _layout, _preset, _sample_years, _texture,
                                     _yearly_surfaces)
from pipeline.demo.scenes import _Acquisition, _acquisitions, _render_scene, _year_clouds

__all__ = ["CLASS_CODES", "DemoSize", "generate_demo", "truth_class_map"]

log = logging.getLogger(__name__)


def _interior(class_map: np.ndarray) -> np.ndarray:
    """Pixels whose 3 x 3 neighbourhood is one class (and not on the scene border)."""
    same = (ndimage.minimum_filter(class_map, 3) == class_map) & (
        ndimage.maximum_filter(class_map, 3) == class_map
    )
    same[[0, -1], :] = same[:, [0, -1]] = False
    return same


def _training_points(
    truth: dict[int, np.ndarray],
    years: list[int],
    n_per_class: int,
    transform: Affine,
    rng: np.random.Generator,
) -> gpd.GeoDataFrame:
    """Stratified random points away from class boundaries, one row per point."""
    records = []
    for year in years:
        class_map = truth[year]
        interior = _interior(class_map)
        for code, name in CLASS_CODES.items():
            candidates = np.flatnonzero(interior & (class_map == code))
            if candidates.size < n_per_class:
                log.warning("year %d, class %r: only %d clean pixels", year, name, candidates.size)
            n_picked = min(n_per_class, candidates.size)
            picked = np.sort(rng.choice(candidates, n_picked, replace=False))
            row, col = np.unravel_index(picked, class_map.shape)
            x, y = transform * (col + 0.5, row + 0.5)
            records.append(
                pd.DataFrame({"class_code": code, "class_name": name, "year": year, "x": x, "y": y})
            )
    table = pd.concat(records, ignore_index=True)
    table[["class_code", "year"]] = table[["class_code", "year"]].astype("int64")
    geometry = gpd.points_from_xy(table.pop("x"), table.pop("y"))
    return gpd.GeoDataFrame(table, geometry=geometry, crs=f"EPSG:{_EPSG}")


def _to_lonlat(transform: Affine, point: tuple[float, float]) -> tuple[float, float]:
    """(row, col) continuous pixel position -> (lon, lat) rounded to 5 decimals."""
    x, y = transform * (point[1], point[0])
    lon, lat = Transformer.from_crs(_EPSG, 4326, always_xy=True).transform(x, y)
    return round(lon, 5), round(lat, 5)


def _events_table(layout: _Layout, transform: Affine, year: int, seed: int) -> pd.DataFrame:
    """The demo's single resettlement event, columns of the real events table + origin."""
    mine = _to_lonlat(transform, layout.pit_centre)
    site = _to_lonlat(transform, layout.resettle_centre)
    origin = _to_lonlat(transform, layout.origin_centre)
    row = {
        "event_id": "demo_mine_village_a",
        "mine": "Demo Mine (synthetic)",
        "company": "Demo Mining Co. (synthetic)",
        "country": "Mozambique",
        "iso3": "MOZ",
        "commodity": "coal",
        "lifecycle_stage": "expansion",
        "event_type": "planned resettlement",
        "year_start": year,
        "year_end": year,
        "displaced_count": 240,
        "displaced_unit": "households",
        "origin_community": "Village A (synthetic)",
        "resettlement_site": "New Village A (synthetic)",
        "mine_lat": mine[1],
        "mine_lon": mine[0],
        "site_lat": site[1],
        "site_lon": site[0],
        "coords_note": "synthetic coordinates: mine = pit centre, site = resettlement "
        "village centre, origin = origin village centre",
        "source": f"synthetic demo generated by pipeline.demo (seed {seed})",
        "origin_lat": origin[1],
        "origin_lon": origin[0],
    }
    return pd.DataFrame([row])


def _aoi_frame(n_px: int, transform: Affine) -> gpd.GeoDataFrame:
    """AOI polygon inset 7.5 % from the scene edges, EPSG:4326, one feature."""
    inset = 0.075 * n_px * _PIXEL_M
    west, north = transform * (0, 0)
    east, south = transform * (n_px, n_px)
    box = shapely.box(west + inset, south + inset, east - inset, north - inset)
    box = shapely.segmentize(box, 500.0)  # keep the edges straight in UTM after reprojection
    props = {
        "aoi_id": ["demo_mine"],
        "name": ["Demo Mine (synthetic)"],
        "country": ["Mozambique"],
        "company": ["Demo Mining Co. (synthetic)"],
        "commodity": ["coal"],
    }
    return gpd.GeoDataFrame(props, geometry=[box], crs=f"EPSG:{_EPSG}").to_crs(4326)


def _write_raster(
    path: Path,
    bands: np.ndarray,
    transform: Affine,
    *,
    nodata: int,
    descriptions: tuple[str, ...],
    tags: dict[str, str],
    tile: int,
) -> None:
    """Write a (band, y, x) array as a tiled, deflated GeoTIFF, atomically."""
    profile = {
        "driver": "GTiff",
        "width": bands.shape[2],
        "height": bands.shape[1],
        "count": bands.shape[0],
        "dtype": bands.dtype.name,
        "crs": CRS.from_epsg(_EPSG),
        "transform": transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": tile,
        "blockysize": tile,
        "compress": "deflate",
        "predictor": 2,
    }
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(bands)
            dst.descriptions = descriptions
            if tags:
                dst.update_tags(**tags)


def _write_table(path: Path, write: Callable[[Path], None]) -> None:
    """Run ``write(tmp)`` on a temporary sibling of ``path``, then move it into place."""
    with atomic_path(path) as tmp:
        write(tmp)


def _remove_stale(folder: Path, pattern: str, keep: set[str]) -> None:
    """Delete earlier demo outputs (same naming pattern) that this run did not write."""
    for old in folder.glob(pattern):
        if old.name not in keep:
            log.info("removing stale demo output %s", old)
            old.unlink()


def _write_truth(
    truth_dir: Path, truth: dict[int, np.ndarray], transform: Affine, tile: int
) -> None:
    """Write one class map per year as ``truth_dir/YYYY.tif``."""
    for year, class_map in truth.items():
        _write_raster(
            truth_dir / f"{year}.tif", class_map[None], transform, nodata=_CLASS_NODATA,
            descriptions=("class",), tags={}, tile=tile,
        )
    _remove_stale(truth_dir, "[0-9][0-9][0-9][0-9].tif", {f"{y}.tif" for y in truth})


def _write_scenes(
    scenes_dir: Path,
    surfaces: dict[int, np.ndarray],
    acquisitions: list[_Acquisition],
    layout: _Layout,
    texture: tuple[np.ndarray, np.ndarray],
    transform: Affine,
    tile: int,
    rngs: tuple[np.random.Generator, np.random.Generator],
) -> None:
    """Render and write every scene as ``scenes_dir/demo_YYYYMMDD.tif``, year by year."""
    cloud_rng, noise_rng = rngs
    written = set()
    for year_index, (year, surface) in enumerate(surfaces.items()):
        in_year = [a for a in acquisitions if a.year_index == year_index]
        for acq, (clouds, valid) in zip(in_year, _year_clouds(in_year, layout, cloud_rng)):
            doy = acq.date.timetuple().tm_yday
            scene = _render_scene(surface, doy, texture, clouds, valid, noise_rng)
            name = f"demo_{acq.date:%Y%m%d}.tif"
            tags = {"DATETIME": f"{acq.date:%Y-%m-%d}T00:00:00", "SENSOR": "synthetic"}
            _write_raster(
                scenes_dir / name, scene, transform, nodata=0, descriptions=_BAND_NAMES,
                tags=tags, tile=tile,
            )
            written.add(name)
        log.info("demo: wrote %d scenes of %d", len(in_year), year)
    _remove_stale(scenes_dir, "demo_*.tif", written)


def generate_demo(
    out_dir: Path, aoi_path: Path, *, size: DemoSize = "default", seed: int = 42
) -> dict[str, Path]:
    """Write a synthetic mine-and-resettlement demo data set.

    Parameters
    ----------
    out_dir : Path
        Folder for ``scenes/``, ``truth/``, ``training_points.gpkg`` and
        ``events.csv``; created if missing.
    aoi_path : Path
        Where to write the AOI (GeoJSON, EPSG:4326, one feature, ``aoi_id="demo_mine"``).
    size : {"default", "small"}
        ``"default"``: 500 x 500 px (15 km), 2008-2022, 4 scenes a year, resettlement
        in 2013. ``"small"``: 96 x 96 px, 2016-2021, 3 scenes a year, resettlement in
        2018 (geometry scaled down; for tests).
    seed : int
        Seed of ``numpy.random.default_rng``; same arguments give byte-identical rasters.

    Returns
    -------
    dict[str, Path]
        ``scenes_dir``: ``demo_YYYYMMDD.tif``, (band=7, y, x) uint16, EPSG:32736, 30 m;
        bands blue..swir2 = surface reflectance x 10000 (1..10000; 0 = nodata), band 7
        ``mask`` = 0 clear, 1 cloud, 2 cloud shadow (0 where nodata); tags
        ``DATETIME``, ``SENSOR=synthetic``.
        ``truth_dir``: ``YYYY.tif``, (y, x) uint8 class codes (``CLASS_CODES``); 255 = nodata.
        ``training_points``: GeoPackage, layer ``training_points``, EPSG:32736, columns
        ``class_code``, ``class_name``, ``year``.
        ``events``: CSV, one resettlement event (real table's columns + origin_lat/lon).
        ``aoi``: ``aoi_path``.
    """
    preset = _preset(size)
    out_dir, aoi_path = Path(out_dir), Path(aoi_path)
    scenes_dir, truth_dir = out_dir / "scenes", out_dir / "truth"
    points_path, events_path = out_dir / "training_points.gpkg", out_dir / "events.csv"
    for folder in (scenes_dir, truth_dir, aoi_path.parent):
        folder.mkdir(parents=True, exist_ok=True)
    land_rng, texture_rng, acq_rng, cloud_rng, noise_rng, point_rng = np.random.default_rng(
        seed
    ).spawn(6)
    layout, transform = _layout(preset), _grid_transform(preset.n_px)
    surfaces = _yearly_surfaces(preset, layout, _landscape(layout, land_rng))
    truth = {year: _SURFACE_CLASS[surface] for year, surface in surfaces.items()}
    _write_truth(truth_dir, truth, transform, preset.tile)
    acquisitions = _acquisitions(preset, acq_rng)
    texture = _texture(layout, texture_rng)
    rngs = (cloud_rng, noise_rng)
    _write_scenes(scenes_dir, surfaces, acquisitions, layout, texture, transform, preset.tile, rngs)
    points = _training_points(
        truth, _sample_years(preset), preset.points_per_class, transform, point_rng
    )
    write_gpkg(points, points_path, layer="training_points")  # a fixed layer date: equal runs, equal files
    events = _events_table(layout, transform, preset.resettlement_year, seed)
    _write_table(events_path, lambda p: events.to_csv(p, index=False))
    aoi = _aoi_frame(preset.n_px, transform)
    _write_table(aoi_path, lambda p: aoi.to_file(p, layer=aoi_path.stem, driver="GeoJSON"))
    log.info(
        "demo (%s, seed %d): %d scenes, %d truth maps, %d training points in %s",
        size, seed, len(acquisitions), len(truth), len(points), out_dir,
    )
    return {
        "scenes_dir": scenes_dir,
        "truth_dir": truth_dir,
        "training_points": points_path,
        "events": events_path,
        "aoi": aoi_path,
    }


def truth_class_map(truth_dir: Path, like: xr.DataArray) -> xr.DataArray:
    """The generator's truth for the periods and pixels of a class map `like` (period, y, x): uint8,
    255 where `like` is nodata in every period (outside the AOI). For accuracy and effect checks."""
    periods = [str(p) for p in like["period"].values]
    layers = [rioxarray.open_rasterio(truth_dir / f"{p}.tif").squeeze("band", drop=True)
              .sel(x=like.x, y=like.y, method="nearest", tolerance=1e-6) for p in periods]
    truth = xr.concat(layers, dim=pd.Index(periods, name="period")).assign_coords(x=like.x, y=like.y)
    mapped = (like != _CLASS_NODATA).any("period")
    truth = truth.where(mapped, _CLASS_NODATA).astype("uint8")
    return truth.rio.write_crs(like.rio.crs).rio.write_nodata(_CLASS_NODATA)
