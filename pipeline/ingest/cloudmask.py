"""Cloud and shadow masks for archives without a quality band: spectral and temporal rules.

`cloud_mask.method` chooses per run how clouds are found (`sources` resolves it per source):

    qa        the source's quality band (QA_PIXEL, SCL, a user's `mask` rule): `pipeline.ingest.sensors`
    spectral  single-date Fmask-like tests on the reflectance bands (`spectral_cloud_shadow`)
    temporal  with 3 or more dates: a pixel far brighter in blue, or darker in NIR/SWIR1, or far lower
              in NDVI, than its clear neighbours in time (`temporal_cloud_shadow`)
    none      no cloud mask

The kernels take and return plain arrays and return the pipeline's mask codes (`MASK_CODES`: 0 clear,
1 cloud, 2 shadow; `MASK_NODATA` 255); `spectral_mask` and `temporal_mask` wrap them for Dask. The
mask is applied at ingest, where the scene stack is built (masked pixels become NaN there), which is why
this module sits in the ingest room and not in `pipeline.composite`, which comes after ingest.

Kernels and thresholds are adapted from the research in issue 15 (scratch `cloud_rules.py`); measured on
the Slovenia series against its s2cloudless mask by `benchmarks/cloudmask_slovenia.py`.

References
----------
- [ZW12] Zhu & Woodcock (2012), Object-based cloud and cloud shadow detection in Landsat imagery, RSE 118,
  83-94: equations 1-5 (potential cloud pixels, water test), numbers as in python-fmask `fmask/config.py`.
- [ZWW15] Zhu, Wang & Woodcock (2015), RSE 159, 269-277: the same tests for Landsat 4-8 and Sentinel-2.
- [GEE-S2C] Google Earth Engine community tutorial "Sentinel-2 Cloud Masking with s2cloudless":
  NIR_DRK_THRESH 0.15 (dark non-water pixels may be shadow), CLD_PRJ_DIST 1 km; its CLM product averages
  the cloud probability over a 4-pixel disk (`average_over`).
- [TDOM] geeViz `getImagesLib.simpleTDOM2`: a shadow has nir + swir1 < 0.35.
- [CCD] LCMAP pyccd `ccd/parameters.yaml` MEDIAN_GREEN_FILTER 400 (0.04 above the series median is
  cloud-like; applied here to blue, the band of Hagolle et al. 2010, RSE 114, 1747-1755).
- [BISE] Viovy, Arino & Belward (1992), IJRS 13(8), 1585-1590: clouds depress NDVI, a drop that
  recovers is noise; 20 % threshold; 40-day sliding period (phenex `bise()` default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import bottleneck as bn
import dask.array as da
import numpy as np
import xarray as xr
from scipy import ndimage

from pipeline.ingest.sensors import MASK_CODES, MASK_NODATA

__all__ = ["METHODS", "SPECTRAL_BANDS", "CloudPlan", "spectral_cloud_shadow", "temporal_cloud_shadow", "smooth_cloud",
           "spectral_mask", "temporal_mask", "can_spectral", "can_temporal"]

METHODS = ("qa", "spectral", "temporal", "none")
SPECTRAL_BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")
CLEAR, CLOUD, SHADOW = MASK_CODES["clear"], MASK_CODES["cloud"], MASK_CODES["shadow"]

# --- spectral (single date) thresholds, reflectance 0..1; the same for Landsat and Sentinel-2 [ZWW15] ---
SWIR2_MIN = 0.03           # [ZW12] eq. 1: swir2 > 0.03
NDSI_MAX = 0.8             # [ZW12] eq. 1: NDSI < 0.8 (snow is not cloud)
NDVI_MAX = 0.8             # [ZW12] eq. 1: NDVI < 0.8
WHITENESS_MAX = 0.7        # [ZW12] eq. 2: sum |band - mean_vis| / mean_vis < 0.7
HOT_RED_WEIGHT, HOT_OFFSET = 0.5, 0.08   # [ZW12] eq. 3: blue - 0.5 red - 0.08 > 0 (haze-optimised transform)
NIR_SWIR1_MIN = 0.75       # [ZW12] eq. 4: nir / swir1 > 0.75
WATER = ((0.01, 0.11), (0.1, 0.05))      # [ZW12] eq. 5: (NDVI < 0.01 and nir < 0.11) or (NDVI < 0.1 and nir < 0.05)
SHADOW_NIR = 0.15          # [GEE-S2C] NIR_DRK_THRESH: a shadow is dark in NIR
SHADOW_IR_SUM = 0.35       # [TDOM] shadowSumThresh: and nir + swir1 < 0.35

# --- temporal thresholds ---
BLUE_BRIGHTENING = 0.04    # [CCD] 0.04 above the clear reference in blue = cloud
SHADOW_DARKENING = 0.04    # our choice: the same step, downwards in nir (and swir1) = shadow
NDVI_RELATIVE_DROP = 0.2   # [BISE] NDVI more than 20 % below the clear reference = cloud
NDVI_MIN_DROP = 0.05       # our choice: and at least 0.05 lower (noise on bare or winter pixels)
NDVI_MIN_REFERENCE = 0.15  # our choice: cloud NDVI is ~0-0.1, so below a median of 0.15 (water, rock, bare
                           # soil, built-up) a cloud cannot be told from noise by NDVI
SEASON_DAYS = 40.0         # [BISE] neighbours within 40 days of the date's day of year, in any year
N_NEIGHBOURS = 3           # our choice: clear observations used on each side of a date
N_ITERATIONS = 1           # our choice: refinement passes after the envelope pass
YEAR_DAYS = 365.25


@dataclass(frozen=True)
class CloudPlan:
    """How one source's clouds are masked: by the quality band where a scene has it (`use_qa`; with
    `require_qa` a scene without it is an error), else by `other`. The default is today's "qa" method.

    `shadow_search_m` (spectral: a shadow lies this close to a cloud) and `smooth_m` (temporal: majority
    filter radius) are metres, turned into pixels of the AOI grid by `pixels`."""

    use_qa: bool = True
    require_qa: bool = True
    other: Literal["spectral", "temporal", "none"] = "none"
    shadow_search_m: float = 1000.0
    smooth_m: float = 40.0

    @staticmethod
    def pixels(metres: float, grid) -> int:
        """A distance in metres as whole pixels of `grid` (an odc GeoBox in a metre CRS)."""
        return int(round(metres / abs(grid.resolution.x)))


def can_spectral(bands: set[str]) -> bool:
    """Whether the spectral rules can run on a source with these common bands (blue and red: HOT test)."""
    return {"blue", "red"} <= bands


def can_temporal(bands: set[str]) -> bool:
    """Whether the temporal rules can find clouds with these common bands (blue, ndvi, or red and nir)."""
    return "blue" in bands or "ndvi" in bands or {"red", "nir"} <= bands


# ------------------------------------------------------------------------------------------ spectral


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return a / b


def _nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _ratio(a - b, a + b)


def spectral_cloud_shadow(
    blue: np.ndarray,
    red: np.ndarray,
    *,
    green: np.ndarray | None = None,
    nir: np.ndarray | None = None,
    swir1: np.ndarray | None = None,
    swir2: np.ndarray | None = None,
    shadow_search_px: int = 0,
) -> np.ndarray:
    """Single-date Fmask-like cloud and shadow codes from reflectance.

    Parameters
    ----------
    blue, red, green, nir, swir1, swir2
        (..., y, x) float reflectance 0..1, NaN = nodata; None for a band the sensor lacks. A pixel is
        cloud when every test its bands allow passes: whiteness (blue, green, red) and HOT (blue, red)
        always; swir2 > 0.03, NDSI < 0.8 (green, swir1), NDVI < 0.8 (nir), nir / swir1 > 0.75 when
        those bands exist [ZW12]. Shadow: nir < 0.15 (and nir + swir1 < 0.35), not water, not cloud;
        no nir, no shadows.
    shadow_search_px
        A shadow must lie within this many pixels of a cloud of at least 3 x 3 pixels (an isotropic
        stand-in for the sun-angle projection, 1 km in [GEE-S2C]); 0: every dark non-water pixel.

    Returns
    -------
    np.ndarray
        (..., y, x) uint8: 0 clear, 1 cloud, 2 shadow, 255 nodata (NaN in any given band).
    """
    given = [b for b in (blue, green, red, nir, swir1, swir2) if b is not None]
    nodata = np.zeros(np.shape(blue), bool)
    for band in given:
        nodata |= ~np.isfinite(band)
    visible = [b for b in (blue, green, red) if b is not None]
    mean_vis = sum(visible) / len(visible)
    whiteness = sum(np.abs(_ratio(b - mean_vis, mean_vis)) for b in visible)
    cloud = (whiteness < WHITENESS_MAX) & (blue - HOT_RED_WEIGHT * red - HOT_OFFSET > 0)
    if swir2 is not None:
        cloud &= swir2 > SWIR2_MIN
    if green is not None and swir1 is not None:
        cloud &= _nd(green, swir1) < NDSI_MAX
    shadow = np.zeros(cloud.shape, bool)
    if nir is not None:
        ndvi = _nd(nir, red)
        cloud &= ndvi < NDVI_MAX
        if swir1 is not None:
            cloud &= _ratio(nir, swir1) > NIR_SWIR1_MIN
        (ndvi_1, nir_1), (ndvi_2, nir_2) = WATER
        water = ((ndvi < ndvi_1) & (nir < nir_1)) | ((ndvi < ndvi_2) & (nir < nir_2))
        shadow = (nir < SHADOW_NIR) & ~water & ~cloud
        if swir1 is not None:
            shadow &= nir + swir1 < SHADOW_IR_SUM
        if shadow_search_px > 0:
            shadow &= _near(_opened(cloud & ~nodata), shadow_search_px)
    codes = np.where(cloud, CLOUD, np.where(shadow, SHADOW, CLEAR)).astype("uint8")
    codes[nodata] = MASK_NODATA
    return codes


def _near(mask: np.ndarray, radius_px: int) -> np.ndarray:
    """True within `radius_px` (Euclidean) of a True pixel, per 2-D slice of (..., y, x)."""
    out = np.zeros(mask.shape, bool)
    for index in np.ndindex(mask.shape[:-2]):
        if mask[index].any():
            out[index] = ndimage.distance_transform_edt(~mask[index]) <= radius_px
    return out


def _opened(mask: np.ndarray) -> np.ndarray:
    """Binary opening with a 3 x 3 square per 2-D slice (our choice): cloud specks cast no searched shadow."""
    structure = np.ones((1,) * (mask.ndim - 2) + (3, 3), bool)
    return ndimage.binary_opening(mask, structure=structure)


def spectral_mask(bands: Mapping[str, da.Array], *, shadow_search_px: int = 0) -> da.Array:
    """(y, x) mask codes of one scene from its gridded common bands (Dask arrays of one shape, lazily).

    Needs blue and red; green, nir, swir1 and swir2 are used where given. With a shadow search the
    blocks overlap by the search distance, so a cloud in one chunk finds its shadow in the next."""
    names = [name for name in SPECTRAL_BANDS if name in bands]
    if not can_spectral(set(names)):
        raise ValueError("the spectral cloud mask needs the blue and red bands")

    def block(*arrays: np.ndarray) -> np.ndarray:
        given = dict(zip(names, arrays))
        return spectral_cloud_shadow(given.pop("blue"), given.pop("red"), shadow_search_px=shadow_search_px,
                                     **given)

    arrays = [bands[name].rechunk(bands[names[0]].chunks) for name in names]
    if shadow_search_px <= 0:
        return da.map_blocks(block, *arrays, dtype="uint8")
    return _overlapping(block, *arrays, depth=shadow_search_px + 1).rechunk(arrays[0].chunks)


def _overlapping(function, *arrays: da.Array, depth: int, **kwargs) -> da.Array:
    """`function` over the blocks of (..., y, x) arrays that overlap by `depth` pixels in y and x (at most
    the array's size less one, which already reaches across the whole array)."""
    ndim = arrays[0].ndim
    depths = {axis: min(depth, max(arrays[0].shape[axis] - 1, 0)) if axis >= ndim - 2 else 0
              for axis in range(ndim)}
    return da.map_overlap(function, *arrays, depth=depths, boundary="none", dtype="uint8", **kwargs)


# ------------------------------------------------------------------------------------------ temporal


def _side_reference(values: np.ndarray, usable: np.ndarray, days: np.ndarray, t: int, *, side: int, k: int,
                    season_days: float | None, stat: str) -> np.ndarray:
    """Statistic of the `k` nearest usable observations before (side -1) or after (+1) date t.

    values, usable: (time, n). With `season_days`, only dates within that many days of date t's day of
    year (in any year) count, nearest in time first: a dense series uses its close neighbours, a sparse
    (quarterly) one the same season of the years around. (n,) float; NaN where the side has none."""
    lag = days - days[t]
    candidates = (lag < 0) if side < 0 else (lag > 0)
    if season_days is not None:
        candidates &= np.abs(lag - YEAR_DAYS * np.round(lag / YEAR_DAYS)) <= season_days
    index = np.flatnonzero(candidates)
    index = index[np.argsort(np.abs(lag[index]), kind="stable")][:4 * k]
    if index.size == 0:
        return np.full(values.shape[1], np.nan, "float32")
    window, ok = values[index], usable[index]
    picked = np.where(ok & (np.cumsum(ok, axis=0) <= k), window, np.nan)
    return {"min": bn.nanmin, "max": bn.nanmax, "median": bn.nanmedian}[stat](picked, axis=0)


def _transient_excess(values: np.ndarray, usable: np.ndarray, days: np.ndarray, *, direction: int, k: int,
                      season_days: float | None, stat: str) -> np.ndarray:
    """How far each observation departs in `direction` (+1 above, -1 below) from its neighbours in time:
    the smaller of the departures from the mean of the before and after references and from the after
    reference alone, so a lasting step (land change) is not a departure (the dates after it agree with
    it) [BISE]. (time, n); NaN where neither side has a usable observation."""
    out = np.full(values.shape, np.nan, "float32")
    for t in range(values.shape[0]):
        before = _side_reference(values, usable, days, t, side=-1, k=k, season_days=season_days, stat=stat)
        after = _side_reference(values, usable, days, t, side=+1, k=k, season_days=season_days, stat=stat)
        middle = np.where(np.isnan(before), after, np.where(np.isnan(after), before, (before + after) / 2))
        later = np.where(np.isnan(after), before, after)
        out[t] = np.minimum(direction * (values[t] - middle), direction * (values[t] - later))
    return out


def temporal_cloud_shadow(
    *,
    days: np.ndarray,
    blue: np.ndarray | None = None,
    nir: np.ndarray | None = None,
    swir1: np.ndarray | None = None,
    ndvi: np.ndarray | None = None,
    season_days: float | None = SEASON_DAYS,
    n_neighbours: int = N_NEIGHBOURS,
    n_iterations: int = N_ITERATIONS,
) -> np.ndarray:
    """Multi-date cloud and shadow codes: transient departures from each pixel's clear neighbours in time.

    For every date the reference comes from up to `n_neighbours` observations on each side in the same
    season. The first pass uses their envelope (lowest blue, highest NDVI), so cloudy neighbours do not
    hide a cloud; later passes the median of the neighbours not yet flagged.

    Parameters
    ----------
    days
        (time,) float, ascending acquisition times in days (any epoch).
    blue, nir, swir1
        (time, y, x) float reflectance, NaN = nodata. Cloud: blue brighter than the reference by more
        than 0.04. Shadow: nir (and swir1) darker by more than 0.04 each and nir + swir1 < 0.35
        (nir < 0.15 without swir1).
    ndvi
        (time, y, x) float NDVI, NaN = nodata. Cloud: NDVI below the reference by more than
        max(0.05, 0.2 x reference), on pixels whose median NDVI is at least 0.15. Finds no shadows.

    Returns
    -------
    np.ndarray
        (time, y, x) uint8: 0 clear, 1 cloud, 2 shadow, 255 nodata (NaN in any given input). A pixel with
        fewer than 3 valid dates is clear: there is nothing to compare it with.
    """
    given = {name: a for name, a in {"blue": blue, "nir": nir, "swir1": swir1, "ndvi": ndvi}.items()
             if a is not None}
    if blue is None and ndvi is None:
        raise ValueError("the temporal cloud mask needs blue or ndvi to find clouds")
    shape = next(iter(given.values())).shape
    n_time = shape[0]
    flat = {k: np.asarray(a, "float32").reshape(n_time, -1) for k, a in given.items()}
    valid = np.ones(next(iter(flat.values())).shape, bool)
    for values in flat.values():
        valid &= np.isfinite(values)
    window = {"days": np.asarray(days, "float64"), "k": n_neighbours, "season_days": season_days}

    def cloud_test(usable: np.ndarray, first: bool) -> np.ndarray:
        cloud = np.zeros(valid.shape, bool)
        if "blue" in flat:
            excess = _transient_excess(flat["blue"], usable, direction=+1, stat="min" if first else "median",
                                       **window)
            cloud |= excess > BLUE_BRIGHTENING
        if "ndvi" in flat:
            drop = _transient_excess(flat["ndvi"], usable, direction=-1, stat="max" if first else "median",
                                     **window)
            reference = flat["ndvi"] + drop
            typical = bn.nanmedian(np.where(usable, flat["ndvi"], np.nan), axis=0)
            cloud |= (drop > np.maximum(NDVI_MIN_DROP, NDVI_RELATIVE_DROP * reference)) & (
                typical >= NDVI_MIN_REFERENCE)
        return cloud

    def shadow_test(usable: np.ndarray) -> np.ndarray:
        if "nir" not in flat:
            return np.zeros(valid.shape, bool)
        dark = _transient_excess(flat["nir"], usable, direction=-1, stat="median", **window) > SHADOW_DARKENING
        if "swir1" in flat:
            dark &= _transient_excess(flat["swir1"], usable, direction=-1, stat="median",
                                      **window) > SHADOW_DARKENING
            return dark & (flat["nir"] + flat["swir1"] < SHADOW_IR_SUM)
        return dark & (flat["nir"] < SHADOW_NIR)

    with np.errstate(invalid="ignore"):
        cloud = cloud_test(valid, first=True)
        shadow = shadow_test(valid & ~cloud) & ~cloud
        for _ in range(n_iterations):
            cloud = cloud_test(valid & ~cloud & ~shadow, first=False)
            shadow = shadow_test(valid & ~cloud & ~shadow) & ~cloud
    codes = np.where(cloud, CLOUD, np.where(shadow, SHADOW, CLEAR)).astype("uint8")
    codes[:, valid.sum(axis=0) < 3] = CLEAR
    codes[~valid] = MASK_NODATA
    return codes.reshape(shape)


def smooth_cloud(codes: np.ndarray, *, radius_px: int) -> np.ndarray:
    """Majority filter on the cloud code, per (y, x) plane: cloud where more than half of a disk of
    `radius_px` is cloud (like s2cloudless's `average_over` [GEE-S2C]); isolated flags become clear.

    (..., y, x) uint8 codes in, same out; nodata stays nodata, shadows are kept unless voted cloud."""
    out = codes.copy()
    if radius_px <= 0:
        return out
    yy, xx = np.mgrid[-radius_px:radius_px + 1, -radius_px:radius_px + 1]
    disk = ((yy ** 2 + xx ** 2) <= radius_px ** 2).astype("float32")
    disk /= disk.sum()
    for index in np.ndindex(codes.shape[:-2]):
        share = ndimage.convolve((codes[index] == CLOUD).astype("float32"), disk, mode="mirror")
        plane = out[index]
        plane[(plane == CLOUD) & (share <= 0.5)] = CLEAR
        plane[(share > 0.5) & (plane != MASK_NODATA)] = CLOUD
    return out


def temporal_mask(stack: xr.Dataset, *, smooth_px: int = 0) -> xr.DataArray:
    """(time, y, x) uint8 mask codes of a scene stack from its own series, lazily.

    Uses blue (clouds) with nir and swir1 (shadows) where the stack has them, else NDVI (the stack's
    own, or from red and nir). The time axis is one chunk (each pixel needs its whole series); then
    a majority filter of `smooth_px` pixels per date (0: none)."""
    names = set(stack.data_vars)
    if not can_temporal(names):
        raise ValueError("the temporal cloud mask needs blue, ndvi, or red and nir")
    inputs: dict[str, xr.DataArray] = {}
    if "blue" in names:
        inputs["blue"] = stack["blue"]
        inputs.update({b: stack[b] for b in ("nir", "swir1") if b in names and (b != "swir1" or "nir" in names)})
    else:
        ndvi = stack["ndvi"] if "ndvi" in names else (stack["nir"] - stack["red"]) / (stack["nir"] + stack["red"])
        inputs["ndvi"] = ndvi.where(np.isfinite(ndvi)).astype("float32")
    times = stack["time"].values.astype("datetime64[s]").astype("float64") / 86400.0
    order = list(inputs)

    def kernel(*arrays: np.ndarray) -> np.ndarray:  # arrays (y, x, time) -> codes (y, x, time)
        series = {name: np.moveaxis(a, -1, 0) for name, a in zip(order, arrays)}
        return np.moveaxis(temporal_cloud_shadow(days=times, **series), 0, -1)

    chunked = [inputs[n].chunk({"time": -1}) if inputs[n].chunks else inputs[n] for n in order]
    codes = xr.apply_ufunc(kernel, *chunked, input_core_dims=[["time"]] * len(order),
                           output_core_dims=[["time"]], dask="parallelized", output_dtypes=[np.uint8])
    codes = codes.transpose("time", "y", "x")
    if smooth_px > 0:
        if isinstance(codes.data, da.Array):
            smoothed = _overlapping(smooth_cloud, codes.data, depth=smooth_px, radius_px=smooth_px)
        else:
            smoothed = smooth_cloud(codes.values, radius_px=smooth_px)
        codes = codes.copy(data=smoothed)
    return codes.rename("mask")
