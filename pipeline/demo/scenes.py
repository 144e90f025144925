"""The synthetic demo's acquisitions: dates, clouds and their shadows, partial swaths, and each
scene rendered from the surface of its year."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np


from pipeline.demo.landscape import (_CLOUD_SPECTRUM, _MASK_CLEAR, _MASK_CLOUD, _MASK_SHADOW, _NOISE_SIGMA,
                                     _PARTIAL_SCENE_P, _SURFACE_FINE_TEXTURE, _Layout, _Preset, _smooth_field,
                                     _surface_spectra)


@dataclass(frozen=True)
class _Acquisition:
    """Everything random about one scene, drawn before rendering."""

    date: dt.date
    year_index: int
    cloud_cover: float
    partial: bool


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
