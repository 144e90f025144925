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

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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

from pipeline.io import atomic_path

__all__ = ["CLASS_CODES", "DemoSize", "generate_demo", "truth_class_map"]

log = logging.getLogger(__name__)

DemoSize = Literal["default", "small"]
"""Name of a demo scene preset: ``"default"`` (500 x 500 px, 2008-2022, 4 scenes a
year) or ``"small"`` (96 x 96 px, 2016-2021, 3 scenes a year; for tests)."""

CLASS_CODES: dict[int, str] = {
    1: "water",
    2: "tree cover",
    3: "grass/shrub",
    4: "cropland",
    5: "built-up",
    6: "bare ground & mining",
}
"""Land-cover class codes of the truth maps (uint8; 255 = nodata)."""

_CLASS_NODATA = 255
_PIXEL_M = 30.0
_EPSG = 32736
_CENTRE_LATLON = (-16.10, 33.70)
_BAND_NAMES = ("blue", "green", "red", "nir", "swir1", "swir2", "mask")
_MASK_CLEAR, _MASK_CLOUD, _MASK_SHADOW = 0, 1, 2
_NOISE_SIGMA = 0.012  # sensor noise, reflectance units (1.2 %)
_PARTIAL_SCENE_P = 1 / 8

# Surface types: finer than the classes, so that e.g. tailings water and river water
# look different while both being class 1 (water).
_WATER, _TREE, _GRASS, _CROP, _BUILT, _PIT, _TAILINGS, _DUMP, _CLEARED = range(1, 10)
_SURFACE_CLASS = np.array([_CLASS_NODATA, 1, 2, 3, 4, 5, 6, 1, 6, 6], dtype=np.uint8)
# Amplitude of the fine (few-pixel) texture per surface: built-up is the most mixed.
_SURFACE_FINE_TEXTURE = np.array(
    [0, 0.02, 0.05, 0.05, 0.04, 0.09, 0.05, 0.03, 0.06, 0.05], dtype=np.float32
)

# Surface reflectance (blue, green, red, nir, swir1, swir2). Values are typical
# Landsat 8/9 OLI surface reflectance of these covers, rounded, as read off the USGS
# Spectral Library v7 (Kokaly et al. 2017) resampled to OLI bands and typical values
# for southern African miombo woodland, savanna grass, maize fields, informal
# settlements and open-cast coal mines reported in the remote-sensing literature.
# "wet"/"dry" pairs are blended with a seasonal greenness (see _greenness).
_SPECTRA_STATIC = {
    _WATER: (0.06, 0.07, 0.05, 0.03, 0.02, 0.01),  # clear-ish river / lake water
    _TAILINGS: (0.10, 0.12, 0.11, 0.06, 0.035, 0.02),  # turbid, brighter in visible
    _BUILT: (0.10, 0.12, 0.14, 0.20, 0.24, 0.21),  # metal / thatch roofs and bare soil
    _PIT: (0.14, 0.17, 0.21, 0.25, 0.33, 0.30),  # pit floor and benches
    _DUMP: (0.13, 0.16, 0.19, 0.24, 0.31, 0.28),  # waste-rock dumps
    _CLEARED: (0.13, 0.16, 0.20, 0.25, 0.32, 0.29),  # cleared, levelled ground
}
_SPECTRA_SEASONAL = {  # surface: (wet-season green, dry-season)
    _TREE: ((0.03, 0.06, 0.04, 0.32, 0.16, 0.07), (0.035, 0.06, 0.05, 0.27, 0.19, 0.09)),
    _GRASS: ((0.04, 0.08, 0.06, 0.30, 0.24, 0.13), (0.06, 0.085, 0.11, 0.22, 0.31, 0.20)),
    _CROP: ((0.04, 0.08, 0.05, 0.38, 0.22, 0.10), (0.09, 0.12, 0.16, 0.22, 0.30, 0.24)),
}
# Seasonal greenness 0..1 by day of year: rains Nov-Mar, maize green Jan-Apr,
# harvested May-Jun, bare soil Jul-Nov.
_GREENNESS_KNOTS = {
    _CROP: ((0, 30, 110, 170, 330, 366), (0.7, 1.0, 1.0, 0.0, 0.0, 0.7)),
    _TREE: ((0, 60, 130, 210, 290, 340, 366), (0.9, 1.0, 0.8, 0.3, 0.0, 0.5, 0.9)),
    _GRASS: ((0, 60, 130, 210, 290, 340, 366), (0.9, 1.0, 0.7, 0.2, 0.0, 0.4, 0.9)),
}
_CLOUD_SPECTRUM = (0.50, 0.50, 0.51, 0.53, 0.40, 0.30)


@dataclass(frozen=True)
class _Preset:
    """Size-dependent settings of the demo."""

    n_px: int
    years: tuple[int, ...]
    scene_doys: tuple[int, ...]  # nominal acquisition days of year
    tile: int
    points_per_class: int
    resettlement_year: int


@dataclass(frozen=True)
class _Layout:
    """Where things are, in continuous pixel coordinates (row, col); pixel (i, j)
    has its centre at (i + 0.5, j + 0.5)."""

    n_px: int
    pit_centre: tuple[float, float]
    pit_radii_start: tuple[float, float]  # (row, col) semi-axes in the first year
    pit_radii_end: tuple[float, float]
    dump_centres: tuple[tuple[float, float], ...]
    dump_radius_start: float
    dump_radius_end: float
    pond_centre: tuple[float, float]
    pond_radius_start: float
    pond_radius_end: float
    origin_centre: tuple[float, float]
    origin_radius: float
    resettle_centre: tuple[float, float]
    resettle_half: tuple[float, float]  # (row, col) half-sizes of the planned village
    town_centre: tuple[float, float]
    town_radius: float
    hamlet_centres: tuple[tuple[float, float], ...]
    lake_centre: tuple[float, float]
    lake_radii: tuple[float, float]
    river_col: float
    river_half_width: float
    shadow_offset: tuple[int, int]  # (row, col) shift of cloud shadows
    scale: float  # n_px / 500


@dataclass(frozen=True)
class _Landscape:
    """Static (y, x) layers the yearly surface maps are assembled from."""

    rows: np.ndarray  # float32 pixel-centre row coordinate
    cols: np.ndarray
    tree: np.ndarray  # bool
    water: np.ndarray  # bool: river and lake
    fields_static: np.ndarray  # bool: town and hamlet fields
    fields_origin: np.ndarray  # bool: fields of the origin village
    fields_resettle: np.ndarray  # bool: fields of the resettlement village
    town: np.ndarray
    origin: np.ndarray
    resettle: np.ndarray
    edge_noise: np.ndarray  # float32, unit std clipped to +-2.5: ragged mine edges


@dataclass(frozen=True)
class _Acquisition:
    """Everything random about one scene, drawn before rendering."""

    date: dt.date
    year_index: int
    cloud_cover: float
    partial: bool


def _preset(size: DemoSize) -> _Preset:
    """Settings of a named size."""
    if size == "default":
        return _Preset(500, tuple(range(2008, 2023)), (45, 135, 225, 315), 256, 150, 2013)
    if size == "small":
        return _Preset(96, tuple(range(2016, 2022)), (60, 182, 300), 128, 25, 2018)
    raise ValueError(f"size must be 'default' or 'small', got {size!r}")


def _grid_transform(n_px: int) -> Affine:
    """North-up 30 m transform centred near the demo centre, snapped to 30 m."""
    to_utm = Transformer.from_crs(4326, _EPSG, always_xy=True)
    east, north = to_utm.transform(_CENTRE_LATLON[1], _CENTRE_LATLON[0])
    half = n_px * _PIXEL_M / 2
    west = round((east - half) / _PIXEL_M) * _PIXEL_M
    top = round((north + half) / _PIXEL_M) * _PIXEL_M
    return Affine(_PIXEL_M, 0.0, west, 0.0, -_PIXEL_M, top)


def _layout(preset: _Preset) -> _Layout:
    """Scene geometry scaled to the scene size, with pixel floors for tiny scenes."""
    n = float(preset.n_px)
    s = n / 500
    years = preset.years
    t_res = years.index(preset.resettlement_year) / (len(years) - 1)
    pit_centre = (0.50 * n, 0.47 * n)
    pit_start, pit_end = (0.065 * n, 0.095 * n), (0.095 * n, 0.155 * n)
    origin_radius = max(0.017 * n, 3.0)
    # The origin village sits east of the pit where the (ragged, up to 1.2 x) pit
    # edge only arrives half-way between the resettlement year and the end.
    t_reach = (t_res + 1) / 2
    pit_col_reach = pit_start[1] + (pit_end[1] - pit_start[1]) * t_reach
    origin_offset = 1.2 * pit_col_reach + 1.25 * origin_radius + 1.0
    return _Layout(
        n_px=preset.n_px,
        pit_centre=pit_centre,
        pit_radii_start=pit_start,
        pit_radii_end=pit_end,
        dump_centres=((0.30 * n, 0.42 * n), (0.70 * n, 0.36 * n)),
        dump_radius_start=0.035 * n,
        dump_radius_end=0.065 * n,
        pond_centre=(0.70 * n, 0.56 * n),
        pond_radius_start=max(0.025 * n, 2.5),
        pond_radius_end=0.045 * n,
        origin_centre=(pit_centre[0], pit_centre[1] + origin_offset),
        origin_radius=origin_radius,
        resettle_centre=(0.24 * n, 0.73 * n),
        resettle_half=(max(0.012 * n, 2.5), max(0.018 * n, 3.5)),
        town_centre=(0.80 * n, 0.80 * n),
        town_radius=max(0.028 * n, 4.5),
        hamlet_centres=((0.12 * n, 0.50 * n), (0.88 * n, 0.30 * n), (0.45 * n, 0.90 * n)),
        lake_centre=(0.15 * n, 0.10 * n),
        lake_radii=(max(0.02 * n, 4.0), max(0.03 * n, 5.0)),
        river_col=0.20 * n,
        river_half_width=max(2.5 * s, 1.6),
        shadow_offset=(max(round(10 * s), 2), -max(round(14 * s), 3)),
        scale=s,
    )


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Spatially coherent random field, (y, x) float32, zero mean, unit std."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    field = ndimage.gaussian_filter(noise, sigma=max(sigma, 1.0), mode="reflect")
    return ((field - field.mean()) / field.std()).astype(np.float32)


def _ellipse_distance(
    rows: np.ndarray, cols: np.ndarray, centre: tuple[float, float], radii: tuple[float, float]
) -> np.ndarray:
    """Normalised elliptical distance, (y, x) float32; < 1 inside the ellipse."""
    return np.hypot((rows - centre[0]) / radii[0], (cols - centre[1]) / radii[1])


def _field_cluster(
    rows: np.ndarray,
    cols: np.ndarray,
    centre: tuple[float, float],
    radius: float,
    n_fields: int,
    scale: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Roughly rectangular crop fields scattered around a centre, (y, x) bool."""
    fields = np.zeros(rows.shape, dtype=bool)
    orientation = rng.uniform(0, np.pi)
    for _ in range(n_fields):
        rho, theta = radius * rng.uniform(0.35, 1.0), rng.uniform(0, 2 * np.pi)
        r0, c0 = centre[0] + rho * np.sin(theta), centre[1] + rho * np.cos(theta)
        half_u = max(rng.uniform(4, 8) * scale, 2.5)
        half_v = max(rng.uniform(3, 6) * scale, 2.0)
        angle = orientation + rng.normal(0, 0.1)
        du, dv = cols - c0, rows - r0
        u = du * np.cos(angle) + dv * np.sin(angle)
        v = -du * np.sin(angle) + dv * np.cos(angle)
        fields |= (np.abs(u) < half_u) & (np.abs(v) < half_v)
    return fields


def _river(
    rows: np.ndarray, cols: np.ndarray, layout: _Layout, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Meandering north-south river: (water (y, x) bool, distance to the centre line)."""
    n = layout.n_px
    phase = rng.uniform(0, 2 * np.pi, size=2)
    centre_line = (
        layout.river_col
        + 0.035 * n * np.sin(2 * np.pi * rows / (0.45 * n) + phase[0])
        + 0.012 * n * np.sin(2 * np.pi * rows / (0.17 * n) + phase[1])
    )
    distance = np.abs(cols - centre_line)
    return distance < layout.river_half_width, distance


def _landscape(layout: _Layout, rng: np.random.Generator) -> _Landscape:
    """Draw the static layers of the scene."""
    n, s = layout.n_px, layout.scale
    shape = (n, n)
    rows, cols = (np.mgrid[0:n, 0:n].astype(np.float32) + 0.5)
    river, river_distance = _river(rows, cols, layout, rng)
    riparian = 0.9 * np.exp(-river_distance / max(8 * s, 2.0))
    tree = _smooth_field(rng, shape, 22 * s) + riparian > 0.45
    lake_edge = _smooth_field(rng, shape, 3 * s)
    lake_dist = _ellipse_distance(rows, cols, layout.lake_centre, layout.lake_radii)
    lake = lake_dist < 1 + 0.1 * lake_edge
    village_edge = np.clip(_smooth_field(rng, shape, 2 * s), -1.5, 1.5)

    def cluster(centre, radius_frac, n_fields):
        return _field_cluster(rows, cols, centre, radius_frac * n, n_fields, s, rng)

    fields_static = cluster(layout.town_centre, 0.09, 12)
    for hamlet in layout.hamlet_centres:
        fields_static |= cluster(hamlet, 0.05, 6)
    origin_dist = _ellipse_distance(rows, cols, layout.origin_centre, (layout.origin_radius,) * 2)
    town_dist = _ellipse_distance(rows, cols, layout.town_centre, (layout.town_radius,) * 2)
    r0, c0 = layout.resettle_centre
    resettle = (np.abs(rows - r0) < layout.resettle_half[0]) & (
        np.abs(cols - c0) < layout.resettle_half[1]
    )
    return _Landscape(
        rows=rows,
        cols=cols,
        tree=tree,
        water=river | lake,
        fields_static=fields_static,
        fields_origin=cluster(layout.origin_centre, 0.07, 10),
        fields_resettle=cluster(layout.resettle_centre, 0.07, 10),
        town=town_dist < 1 + 0.15 * village_edge,
        origin=origin_dist < 1 + 0.15 * village_edge,
        resettle=resettle,
        edge_noise=np.clip(_smooth_field(rng, shape, 5 * s), -2.5, 2.5),
    )


def _lerp(start: float | tuple[float, ...], end: float | tuple[float, ...], t: float) -> tuple:
    """Linear interpolation, element-wise; always returns a tuple of floats."""
    return tuple(a + (b - a) * t for a, b in zip(np.atleast_1d(start), np.atleast_1d(end)))


def _surface_map(land: _Landscape, layout: _Layout, t: float, cleared: bool) -> np.ndarray:
    """Surface types of one year, (y, x) uint8 (see ``_SURFACE_CLASS``).

    ``t`` is the fraction of the series elapsed (0 first year, 1 last year);
    ``cleared`` is True from the resettlement year on.
    """
    rows, cols, ragged = land.rows, land.cols, 1 + 0.08 * land.edge_noise
    surface = np.where(land.tree, _TREE, _GRASS).astype(np.uint8)
    surface[land.fields_static] = _CROP
    surface[land.fields_resettle if cleared else land.fields_origin] = _CROP
    surface[land.water] = _WATER
    surface[land.town] = _BUILT
    surface[land.resettle if cleared else land.origin] = _BUILT
    (dump_radius,) = _lerp(layout.dump_radius_start, layout.dump_radius_end, t)
    for centre in layout.dump_centres:
        surface[_ellipse_distance(rows, cols, centre, (dump_radius,) * 2) < ragged] = _DUMP
    if cleared:
        surface[land.origin] = _CLEARED
    pit_radii = _lerp(layout.pit_radii_start, layout.pit_radii_end, t)
    surface[_ellipse_distance(rows, cols, layout.pit_centre, pit_radii) < ragged] = _PIT
    if t >= 1 / 3 - 1e-9:
        (pond_radius,) = _lerp(layout.pond_radius_start, layout.pond_radius_end, (t - 1 / 3) * 1.5)
        pond = _ellipse_distance(rows, cols, layout.pond_centre, (pond_radius,) * 2) < ragged
        surface[pond] = _TAILINGS
    return surface


def _greenness(surface: int, doy: float) -> float:
    """Seasonal greenness 0..1 of a vegetated surface type on a day of year."""
    knots, values = _GREENNESS_KNOTS[surface]
    return float(np.interp(doy, knots, values))


def _surface_spectra(doy: float) -> np.ndarray:
    """Reflectance of every surface type on a day of year, (surface, band) float32."""
    table = np.zeros((len(_SURFACE_CLASS), 6), dtype=np.float32)
    for surface, spectrum in _SPECTRA_STATIC.items():
        table[surface] = spectrum
    for surface, (wet, dry) in _SPECTRA_SEASONAL.items():
        g = _greenness(surface, doy)
        table[surface] = g * np.asarray(wet) + (1 - g) * np.asarray(dry)
    return table


def _texture(layout: _Layout, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Static multiplicative textures: coarse (band, y, x) ~ +-6 % and fine (y, x) unit std."""
    shape, s = (layout.n_px, layout.n_px), layout.scale
    shared = _smooth_field(rng, shape, 20 * s)
    per_band = [_smooth_field(rng, shape, 12 * s) for _ in range(6)]
    coarse = np.stack([1 + 0.05 * shared + 0.02 * band for band in per_band])
    fine = _smooth_field(rng, shape, 1.0)
    return coarse.astype(np.float32), fine


def _acquisitions(preset: _Preset, rng: np.random.Generator) -> list[_Acquisition]:
    """Dates, cloud cover and partial-swath flags of every scene.

    Each year keeps at least two scenes at <= 20 % cloud; the clearest scene of a year
    (its anchor) is never partial; at least one scene of the series is partial.
    """
    per_year = len(preset.scene_doys)
    acquisitions: list[_Acquisition] = []
    for year_index, year in enumerate(preset.years):
        clearish = rng.random(per_year) < 0.7
        cover = np.where(clearish, rng.uniform(0, 0.2, per_year), rng.uniform(0.2, 0.6, per_year))
        low = np.argsort(cover)[:2]
        cover[low] = np.minimum(cover[low], 0.2)
        cover[cover < 0.03] = 0.0
        anchor = int(np.argmin(cover))
        partial = (rng.random(per_year) < _PARTIAL_SCENE_P) & (np.arange(per_year) != anchor)
        jitter = rng.integers(-6, 7, per_year)
        for k, doy in enumerate(preset.scene_doys):
            date = dt.date(year, 1, 1) + dt.timedelta(days=int(doy + jitter[k] - 1))
            acquisitions.append(_Acquisition(date, year_index, float(cover[k]), bool(partial[k])))
    if not any(a.partial for a in acquisitions):
        year_index = int(rng.integers(len(preset.years)))
        in_year = [i for i, a in enumerate(acquisitions) if a.year_index == year_index]
        clearest = min(in_year, key=lambda i: acquisitions[i].cloud_cover)
        pick = max(in_year, key=lambda i: (acquisitions[i].cloud_cover, i != clearest))
        a = acquisitions[pick]
        acquisitions[pick] = _Acquisition(a.date, a.year_index, a.cloud_cover, True)
    return acquisitions


def _shift(mask: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    """Shift a (y, x) bool mask by (rows, cols), filling with False (no wrap-around)."""
    out = np.zeros_like(mask)
    dr, dc = offset
    src = mask[max(-dr, 0) : mask.shape[0] - max(dr, 0), max(-dc, 0) : mask.shape[1] - max(dc, 0)]
    out[max(dr, 0) : max(dr, 0) + src.shape[0], max(dc, 0) : max(dc, 0) + src.shape[1]] = src
    return out


def _clouds(
    cover: float, layout: _Layout, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cloud blobs of one scene: (cloud bool, opacity float32, shadow bool), all (y, x)."""
    shape = (layout.n_px, layout.n_px)
    coarse = _smooth_field(rng, shape, 30 * layout.scale)
    field = 0.7 * coarse + 0.3 * _smooth_field(rng, shape, 8 * layout.scale)
    if cover <= 0:
        empty = np.zeros(shape, dtype=bool)
        return empty, np.zeros(shape, dtype=np.float32), empty
    threshold = np.quantile(field, 1 - cover)
    cloud = field > threshold
    opacity = np.clip(0.75 + 0.5 * (field - threshold), 0.75, 1.0).astype(np.float32)
    shadow = _shift(cloud, layout.shadow_offset) & ~cloud
    return cloud, opacity, shadow


def _swath(layout: _Layout, rng: np.random.Generator) -> np.ndarray:
    """Valid-data mask of a partial scene with a diagonal swath edge, (y, x) bool."""
    n = layout.n_px
    rows, cols = np.mgrid[0:n, 0:n] + 0.5 - n / 2
    angle = np.pi / 4 + rng.integers(4) * np.pi / 2 + rng.normal(0, 0.08)
    offset = rng.uniform(0.25, 0.5) * n
    return cols * np.cos(angle) + rows * np.sin(angle) < offset


def _render_scene(
    surface: np.ndarray,
    doy: float,
    texture: tuple[np.ndarray, np.ndarray],
    clouds: tuple[np.ndarray, np.ndarray, np.ndarray],
    valid: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """One scene, (band=7, y, x) uint16: reflectance x 10000 (0 = nodata) and mask."""
    coarse, fine = texture
    cloud, opacity, shadow = clouds
    gain = 1 + rng.normal(0, 0.02, size=(6, 1, 1)).astype(np.float32)
    reflectance = _surface_spectra(doy)[surface].transpose(2, 0, 1)
    reflectance *= coarse * (1 + _SURFACE_FINE_TEXTURE[surface] * fine) * gain
    reflectance[:, shadow] *= 0.4
    alpha = opacity[cloud]
    cloud_bright = np.asarray(_CLOUD_SPECTRUM, dtype=np.float32)[:, None] * (0.85 + 0.3 * alpha)
    reflectance[:, cloud] = (1 - alpha) * reflectance[:, cloud] + alpha * cloud_bright
    reflectance += rng.normal(0, _NOISE_SIGMA, size=reflectance.shape).astype(np.float32)
    scene = np.zeros((7, *surface.shape), dtype=np.uint16)
    scene[:6] = np.clip(np.rint(reflectance * 10000), 1, 10000).astype(np.uint16)
    scene[6] = np.where(cloud, _MASK_CLOUD, np.where(shadow, _MASK_SHADOW, _MASK_CLEAR))
    scene[:, ~valid] = 0
    return scene


def _year_clouds(
    acquisitions: list[_Acquisition], layout: _Layout, rng: np.random.Generator
) -> list[tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]]:
    """Clouds and valid masks of one year's scenes; every pixel clear in >= 1 scene."""
    shape = (layout.n_px, layout.n_px)
    out = []
    for acq in acquisitions:
        valid = _swath(layout, rng) if acq.partial else np.ones(shape, dtype=bool)
        out.append((_clouds(acq.cloud_cover, layout, rng), valid))
    never_clear = np.logical_and.reduce(
        [~valid | cloud | shadow for (cloud, _, shadow), valid in out]
    )
    anchor = min(range(len(acquisitions)), key=lambda i: acquisitions[i].cloud_cover)
    cloud, opacity, shadow = out[anchor][0]
    out[anchor] = ((cloud & ~never_clear, opacity, shadow & ~never_clear), out[anchor][1])
    return out


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


def _sample_years(preset: _Preset) -> list[int]:
    """Years that get training points: first, resettlement (+1), middle, last."""
    years, res = preset.years, preset.resettlement_year
    chosen = {years[0], res, min(res + 1, years[-1]), years[len(years) // 2], years[-1]}
    return sorted(chosen)


def _yearly_surfaces(preset: _Preset, layout: _Layout, land: _Landscape) -> dict[int, np.ndarray]:
    """Surface-type map of every year, {year: (y, x) uint8}."""
    years, res_year = preset.years, preset.resettlement_year
    return {
        year: _surface_map(land, layout, i / (len(years) - 1), cleared=year >= res_year)
        for i, year in enumerate(years)
    }


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
    _write_table(points_path, lambda p: points.to_file(p, layer="training_points", driver="GPKG"))
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
    periods = [int(p) for p in like["period"].values]
    layers = [rioxarray.open_rasterio(truth_dir / f"{p}.tif").squeeze("band", drop=True)
              .sel(x=like.x, y=like.y, method="nearest", tolerance=1e-6) for p in periods]
    truth = xr.concat(layers, dim=pd.Index(periods, name="period")).assign_coords(x=like.x, y=like.y)
    mapped = (like != _CLASS_NODATA).any("period")
    truth = truth.where(mapped, _CLASS_NODATA).astype("uint8")
    return truth.rio.write_crs(like.rio.crs).rio.write_nodata(_CLASS_NODATA)
