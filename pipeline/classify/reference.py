"""Training labels sampled from an existing categorical land-cover map (WorldCover, Dynamic World,
MapBiomas, a national map, ...), for mines that have no hand-made labels (`classify.training: {map: ...}`).

    reference_on_grid         I/O edge: any categorical GeoTIFF, any CRS -> codes on the composites' grid
    sample_reference_pixels   kernel: translate, erode, drop spectral outliers, stratified spread sample

The kernels work on plain arrays on the composites' grid. The cleaning follows the literature on
automated training-sample extraction from existing maps:

* **Spatial cleaning first** (Radoux et al. 2014, Remote Sensing 6: 3965-3987): each class is eroded
  by `edge_px` pixels (a pixel is kept only if its whole (2 edge_px + 1)^2 window carries the same
  translated class), so mixed edge pixels and small misregistrations drop out.
* **Spectral cleaning second, mild** (map errors, change since the map's date, cloud residue): per class
  and feature the modified z-score |x - median| / (1.4826 MAD) of Iglewicz & Hoaglin (1993); a pixel is
  dropped if any feature exceeds `outlier_z` (3.5, their recommended cut). Median/MAD rather than a
  covariance because land-cover classes are often multimodal and small classes support no covariance.
  Random forests tolerate a share of wrong labels (Wessels et al. 2016, Remote Sensing 8: 888), so the
  cleaning aims at the gross errors, not at purity.
* **Stratified by class, spread in space**: `per_class` pixels per class, drawn so that every cell of a
  regular grid (side `spread_px`) with candidates gives one pixel before any cell gives a second, which
  keeps samples from piling up in one large patch (and keeps spatial cross-validation honest).

Measured on the demo and on Slovenia's LULC map: docs/training_without_labels.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
import xarray as xr
from rasterio.enums import Resampling
from rasterio.warp import calculate_default_transform, reproject
from scipy import ndimage

from pipeline.composite.periods import label_periods, periods_of
from pipeline.errors import InputError

__all__ = [
    "MAP_NODATA",
    "UNMAPPED",
    "check_reference_map",
    "interior_mask",
    "reference_on_grid",
    "robust_outliers",
    "sample_reference_pixels",
    "spread_sample",
    "translate_codes",
]

MAP_NODATA = -1  # reference_on_grid: pixels the map does not cover
UNMAPPED = 0  # translated code of pixels that no class of ours takes (nodata, untranslated map codes)


def check_reference_map(path: Path) -> None:
    """Raise InputError (naming the file and `classify.training.map`) unless `path` is a readable raster
    with integer codes in band 1 and a CRS; reads only its header."""
    where = f"{path} (classify.training.map)"
    if not Path(path).is_file():
        raise InputError(f"{where}: reference map not found")
    try:
        with rasterio.open(path) as src:
            dtype = np.dtype(src.dtypes[0])
            crs = src.crs
    except rasterio.errors.RasterioError as err:
        raise InputError(f"{where}: cannot read the reference map ({err})") from None
    if not np.issubdtype(dtype, np.integer):
        raise InputError(f"{where}: band 1 is {dtype}, not integer class codes; a reference map must be "
                         "categorical (e.g. WorldCover, Dynamic World's label band, MapBiomas)")
    if crs is None:
        raise InputError(f"{where}: the reference map has no CRS")


def reference_on_grid(path: Path, like: xr.DataArray, *,
                      resampling: Literal["auto", "nearest", "mode"] = "auto") -> tuple[np.ndarray, dict]:
    """A categorical map (first band of any GeoTIFF, any CRS) on the grid of `like` (y, x, with CRS).

    Nearest neighbour, or the mode of the map's pixels in each grid pixel when the map is finer than the
    grid (``"auto"``: the map's pixel, in the grid's CRS, is under 3/4 of the grid's; e.g. WorldCover 10 m
    onto Landsat 30 m). Returns (y, x) int32 codes, `MAP_NODATA` where the map has no data or does not
    reach, and a record for the accuracy document (file, CRS, resampling, share of the grid covered).
    Raises InputError naming the file when it is missing, unreadable, not integer, without a CRS, or does
    not overlap the grid.
    """
    where = f"{path} (classify.training.map)"
    check_reference_map(path)
    shape = (like.sizes["y"], like.sizes["x"])
    try:
        with rasterio.open(path) as src:
            grid_res = abs(like.rio.resolution()[0])
            fitted, _, _ = calculate_default_transform(src.crs, like.rio.crs, src.width, src.height, *src.bounds)
            map_res = abs(fitted.a)
            method = resampling if resampling != "auto" else ("mode" if map_res < 0.75 * grid_res else "nearest")
            codes = np.full(shape, MAP_NODATA, dtype=np.int32)
            reproject(rasterio.band(src, 1), codes, dst_transform=like.rio.transform(), dst_crs=like.rio.crs,
                      src_nodata=src.nodata, dst_nodata=MAP_NODATA,
                      resampling=Resampling.mode if method == "mode" else Resampling.nearest)
            record = {"map": str(path), "map_crs": src.crs.to_string(), "map_resolution": round(map_res, 3),
                      "grid_resolution": round(grid_res, 3), "resampling": method}
    except rasterio.errors.RasterioError as err:
        raise InputError(f"{where}: cannot read the reference map ({err})") from None
    covered = float((codes != MAP_NODATA).mean())
    if covered == 0:
        raise InputError(f"{where}: the reference map does not overlap this AOI's grid ({like.rio.crs}); check "
                         "its extent and CRS")
    record["share_of_grid_covered"] = round(covered, 4)
    return codes, record


def translate_codes(ref_codes: np.ndarray, translate: Mapping[int, int | None], *,
                    nodata: Iterable[int] = ()) -> tuple[np.ndarray, dict[int, int]]:
    """Map codes -> our class codes, (y, x) int; UNMAPPED where a code is nodata, translated to None, or
    not in `translate`. Also returns the untranslated map codes (not nodata, not in `translate`) with
    their pixel counts, for the report."""
    if any(v == UNMAPPED for v in translate.values() if v is not None):
        raise ValueError(f"class code {UNMAPPED} is reserved for 'no class'; translate to None to drop a code")
    codes, counts = np.unique(ref_codes, return_counts=True)
    lookup = {int(c): (translate.get(int(c)) if int(c) in translate else None) for c in codes}
    nodata = {int(v) for v in nodata}
    untranslated = {int(c): int(n) for c, n in zip(codes, counts)
                    if int(c) not in translate and int(c) not in nodata}
    out = np.full(ref_codes.shape, UNMAPPED, dtype=np.int32)
    for code, ours in lookup.items():
        if ours is not None and code not in nodata:
            out[ref_codes == code] = ours
    return out, untranslated


def interior_mask(classes: np.ndarray, edge_px: int) -> np.ndarray:
    """(y, x) bool: pixels whose (2 edge_px + 1)^2 window holds only their own class (UNMAPPED pixels are
    never interior; pixels beyond the array border do not count against a pixel)."""
    if edge_px < 0:
        raise ValueError(f"edge_px must be >= 0, got {edge_px}")
    mapped = classes != UNMAPPED
    if edge_px == 0:
        return mapped
    size = 2 * edge_px + 1
    # Same class everywhere in the window  <=>  window minimum == window maximum == the pixel's class.
    low = ndimage.minimum_filter(classes, size=size, mode="nearest")
    high = ndimage.maximum_filter(classes, size=size, mode="nearest")
    return mapped & (low == classes) & (high == classes)


def robust_outliers(features: np.ndarray, *, outlier_z: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows of `features` (n, f) whose modified z-score |x - median| / (1.4826 MAD) exceeds `outlier_z` in
    any feature: ((n,) bool, (n,) float32 max |z|). A feature with MAD 0 uses the mean absolute deviation
    x 1.2533 (Iglewicz & Hoaglin's fallback); a constant feature flags nothing."""
    if features.shape[0] == 0:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=np.float32)
    median = np.median(features, axis=0)
    deviation = np.abs(features - median)
    scale = 1.4826 * np.median(deviation, axis=0)
    fallback = 1.2533 * deviation.mean(axis=0)
    scale = np.where(scale > 0, scale, fallback)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scale > 0, deviation / scale, 0.0)
    z_max = z.max(axis=1)
    return z_max > outlier_z, z_max.astype(np.float32)


def spread_sample(rows: np.ndarray, cols: np.ndarray, n: int, *, spread_px: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Indices of `n` of the candidate pixels (rows, cols), spread over a grid of `spread_px` cells:
    random order within each cell, then all first picks of the cells (in random cell order), then all
    second picks, ... Every candidate if there are at most `n`."""
    if len(rows) <= n:
        return np.arange(len(rows))
    cell = (rows // spread_px) * (int(cols.max()) // spread_px + 1) + cols // spread_px
    order = rng.permutation(len(rows))                                    # random within cells
    by_cell = order[np.argsort(cell[order], kind="stable")]
    sorted_cells = cell[by_cell]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_cells)) + 1]
    rank = np.arange(len(by_cell)) - np.repeat(starts, np.diff(np.r_[starts, len(by_cell)]))
    cell_priority = rng.permutation(sorted_cells.max() + 1)[sorted_cells]  # random order of the cells
    pick = np.lexsort((cell_priority, rank))[:n]
    return np.sort(by_cell[pick])


def sample_reference_pixels(
    ref_codes: np.ndarray,
    features: np.ndarray,
    *,
    translate: Mapping[int, int | None],
    per_class: int = 500,
    edge_px: int | Mapping[int, int] = 1,
    outlier_z: float | None = 3.5,
    seed: int = 42,
    nodata: Iterable[int] = (),
    classes: Iterable[int] | None = None,
    spread_px: int | None = None,
    exclude: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Training pixels drawn from a categorical reference map on the features' grid.

    Parameters
    ----------
    ref_codes : (y, x) int
        The reference map's codes on the grid of `features`.
    features : (y, x, feature) float
        Feature values (e.g. one period's composite bands and indices); NaN = missing.
    translate : mapping map code -> our class code (or None to drop the code)
        From config, e.g. WorldCover {10: 2, 20: 3, 30: 3, 40: 4, 50: 5, 60: 6, 80: 1}. Codes absent
        from it are dropped and listed in the report (``untranslated_codes``). Several map codes may
        share one class; edges are judged after translation.
    per_class : int, default 500
        Pixels drawn per class (all of them if fewer remain; reported under ``short_classes``).
    edge_px : int or mapping class code -> int, default 1
        Erosion radius: a pixel is kept only if all pixels within `edge_px` (a 3 x 3 window for 1) carry
        its class. 0 = no erosion. A mapping sets it per class (e.g. {5: 0} keeps narrow built-up and road
        pixels that any erosion would remove); classes not in it get 1.
    outlier_z : float or None, default 3.5
        Modified z-score cut for spectral outliers per class (None = no spectral cleaning).
    seed : int, default 42
        Seed of the random draw.
    nodata : iterable of int
        Map codes meaning "no data" (not reported as untranslated).
    classes : iterable of int, optional
        Our class codes the map should provide (default: the values of `translate`); those it lacks
        after cleaning are reported under ``missing_classes``.
    spread_px : int, optional
        Side of the spreading grid's cells, pixels; default sqrt(y * x / per_class) (about `per_class`
        cells over the image).
    exclude : (y, x) bool, optional
        Pixels never to sample, e.g. those a change detection flags between the map's date and the
        imagery's (Wessels et al. 2016 used such a no-change mask). They still count as their class for
        the edge test (they do not create edges).

    Returns
    -------
    rows, cols : (n,) int64
        Pixel positions of the samples, sorted by class then position.
    codes : (n,) int32
        Our class code of each sample.
    report : dict
        ``per_class``: for each class code {"map_pixels", "interior", "with_features" (interior, all
        features finite, not excluded), "outliers", "candidates", "sampled"}; ``missing_classes``: class
        codes with no sample, each with the step that emptied it; ``short_classes``: codes with fewer
        than `per_class` samples; ``heavily_eroded``: codes that lost more than 3/4 of their pixels to
        the erosion (narrow or small patches: consider ``edge_px={code: 0}``); ``untranslated_codes``:
        {map code: pixels}; ``settings``: the settings used.
    """
    ref_codes = np.asarray(ref_codes)
    features = np.asarray(features)
    if ref_codes.ndim != 2:
        raise ValueError(f"ref_codes must be (y, x), got shape {ref_codes.shape}")
    if features.ndim != 3 or features.shape[:2] != ref_codes.shape:
        raise ValueError(f"features must be (y, x, feature) on the reference map's grid {ref_codes.shape}, "
                         f"got shape {features.shape}; put the map on the composites' grid first")
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    rng = np.random.default_rng(seed)
    expected = sorted({int(c) for c in (classes if classes is not None else translate.values()) if c is not None})
    if spread_px is None:
        spread_px = max(1, round(np.sqrt(ref_codes.size / per_class)))
    translated, untranslated = translate_codes(ref_codes, translate, nodata=nodata)
    radius = dict(edge_px) if isinstance(edge_px, Mapping) else {}
    radius = {code: int(radius.get(code, 1 if radius else edge_px)) for code in expected}
    interiors = {r: interior_mask(translated, r) for r in set(radius.values())}
    has_features = np.isfinite(features).all(axis=-1)
    if exclude is not None:
        if np.shape(exclude) != ref_codes.shape:
            raise ValueError(f"exclude must be (y, x) {ref_codes.shape}, got shape {np.shape(exclude)}")
        has_features = has_features & ~np.asarray(exclude, dtype=bool)
    report: dict = {"per_class": {}, "missing_classes": {}, "short_classes": [], "heavily_eroded": [],
                    "untranslated_codes": untranslated,
                    "settings": {"per_class": per_class, "edge_px": radius, "outlier_z": outlier_z,
                                 "seed": seed, "spread_px": spread_px}}
    parts = []
    for code in expected:
        in_class = translated == code
        interior = interiors[radius[code]]
        usable = in_class & interior & has_features
        r, c = np.nonzero(usable)
        outliers = np.zeros(len(r), dtype=bool)
        if outlier_z is not None and len(r):
            outliers, _ = robust_outliers(features[r, c].astype(np.float64), outlier_z=outlier_z)
        r, c = r[~outliers], c[~outliers]
        picked = spread_sample(r, c, per_class, spread_px=spread_px, rng=rng) if len(r) else np.zeros(0, int)
        counts = {"map_pixels": int(in_class.sum()), "interior": int((in_class & interior).sum()),
                  "with_features": int(usable.sum()), "outliers": int(outliers.sum()),
                  "candidates": len(r), "sampled": len(picked)}
        report["per_class"][code] = counts
        if counts["map_pixels"] and counts["interior"] < 0.25 * counts["map_pixels"]:
            report["heavily_eroded"].append(code)
        if not len(picked):
            step = ("absent from the map" if not counts["map_pixels"] else
                    f"no pixel {radius[code]} px inside its patches (edge_px)" if not counts["interior"] else
                    "no interior pixel with all features (or all excluded)" if not counts["with_features"] else
                    "every interior pixel is a spectral outlier (outlier_z)")
            report["missing_classes"][code] = step
        elif len(picked) < per_class:
            report["short_classes"].append(code)
        parts.append((r[picked], c[picked], np.full(len(picked), code, dtype=np.int32)))
    rows = np.concatenate([p[0] for p in parts]).astype(np.int64) if parts else np.zeros(0, np.int64)
    cols = np.concatenate([p[1] for p in parts]).astype(np.int64) if parts else np.zeros(0, np.int64)
    codes = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.int32)
    return rows, cols, codes, report


def map_training_samples(features: xr.DataArray, reference, *, seed: int, classes: Iterable[int],
                         required: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Training samples from a reference map (`config.ReferenceMapConfig`) for a (period, y, x, feature)
    feature stack: (X (n, feature) float32, y (n,) class codes, xy (n, 2) pixel centres in the grid's CRS,
    the record for the accuracy document).

    The map's `year` (a year or a period id) picks the periods sampled (`composite.periods.label_periods`:
    a year holds for every period of that year); the pixels are drawn once (`sample_reference_pixels`, on
    the features of all those periods side by side) and give one sample per period. Computes those
    periods' features (one composite for a yearly run). `required` (bool per feature, default all): the
    features a pixel must have to be sampled; the others (gaps of sub-period composites) may be missing,
    stand in at their median for the outlier test, and stay NaN in X for the model.
    """
    periods = label_periods(reference.year, periods_of(features))
    ids = [str(p) for p in features["period"].values]
    if not periods:
        raise InputError(f"classify.training.year: {reference.year!r} is not a period of this run "
                         f"({', '.join(ids)}); set it to the map's year or period id")
    codes, record = reference_on_grid(reference.map, features, resampling=reference.resampling)
    stack = np.asarray(features.sel(period=periods).transpose("y", "x", "period", "feature").values)
    if required is not None and not np.all(required):
        optional = ~np.asarray(required, dtype=bool)
        sampled = stack.copy()
        with np.errstate(all="ignore"):
            median = np.nanmedian(sampled[..., optional].reshape(-1, int(optional.sum())), axis=0)
        gaps = ~np.isfinite(sampled[..., optional])
        sampled[..., optional] = np.where(gaps, np.nan_to_num(median, nan=0.0), sampled[..., optional])
    else:
        sampled = stack
    side_by_side = sampled.reshape(*sampled.shape[:2], -1)
    edge = {int(k): int(v) for k, v in reference.edge_px.items()} if isinstance(reference.edge_px, dict) \
        else int(reference.edge_px)
    rows, cols, labels, report = sample_reference_pixels(
        codes, side_by_side, translate=reference.classes, per_class=reference.per_class, edge_px=edge,
        outlier_z=reference.outlier_z, seed=seed, nodata=[*reference.nodata, MAP_NODATA], classes=classes)
    n_features = stack.shape[-1]
    X = np.concatenate([stack[rows, cols, k].reshape(len(rows), n_features) for k in range(len(periods))])
    xs, ys = features["x"].values[cols], features["y"].values[rows]
    xy = np.tile(np.stack([xs, ys], axis=1), (len(periods), 1))
    record.update(source="reference map", year=str(reference.year), periods_sampled=periods,
                  translation={str(k): v for k, v in reference.classes.items()}, **report,
                  n_pixels=len(rows), n_samples=len(X))
    return X.astype(np.float32), np.tile(labels, len(periods)), xy, record
