"""The synthetic demo's landscape: presets, the layout of mine, villages, river and fields, the surface
of every year, and the spectra of each surface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from affine import Affine
from pyproj import Transformer
from scipy import ndimage


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
