"""Sensor profiles: native bands -> common band names, scale and offset, cloud/shadow masks, harmonisation.

A profile knows how one archive names its bands (in file names and as STAC asset keys), how its digital
numbers become physical reflectance, and how its quality band becomes the pipeline's common mask classes
(`MASK_CODES`). Kernels here are plain NumPy (`landsat_qa_classes`, `scl_classes`, `rule_classes`); the
xarray wrappers live in `pipeline.ingest`.

References
----------
- Landsat 4-9 Collection 2 Level-2 Science Product Guide (USGS, LSDS-1618 / LSDS-1619), table
  "Pixel Quality Assessment (QA_PIXEL) bit index": bit 0 fill, 1 dilated cloud, 2 cirrus (OLI only),
  3 cloud, 4 cloud shadow, 5 snow, 6 clear, 7 water, 8-15 confidences. SR scale 0.0000275, offset -0.2,
  fill 0. TM/ETM+ bands 1-5, 7 are blue..swir2; OLI bands 2-7 are blue..swir2.
- Sentinel-2 L2A Product Specification / ESA "Level-2A Algorithm Overview", Scene Classification (SCL):
  0 no data, 1 saturated or defective, 2 dark area pixels (topographic shadow), 3 cloud shadows,
  4 vegetation, 5 not vegetated, 6 water, 7 unclassified, 8 cloud medium probability, 9 cloud high
  probability, 10 thin cirrus, 11 snow or ice. Reflectance = (DN + BOA_ADD_OFFSET) / 10000 with
  BOA_ADD_OFFSET = -1000 from processing baseline 04.00 on, 0 before; read from each product's metadata
  by `pipeline.ingest.baselines` (the acquisition date is only the last resort).
- Harmonisation: ETM+/TM -> OLI surface reflectance, OLS coefficients of Roy et al. (2016), Remote
  Sensing of Environment 185, table 2; Sentinel-2A/B MSI -> OLI bandpass adjustment of HLS
  (Claverie et al. 2018; https://hls.gsfc.nasa.gov/algorithms/bandpass-adjustment/).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from pipeline.ingest.baselines import date_offset

__all__ = [
    "HARMONISATION",
    "MASK_CODES",
    "MASK_NODATA",
    "PROFILES",
    "SensorProfile",
    "landsat_qa_classes",
    "profile_for",
    "rule_classes",
    "scl_classes",
]

# The pipeline's common mask classes (uint8); MASK_NODATA marks pixels without data (fill / SCL 0).
MASK_CODES: dict[str, int] = {
    "clear": 0, "cloud": 1, "shadow": 2, "snow": 3, "cirrus": 4, "dilated_cloud": 5, "saturated": 6,
}
MASK_NODATA = 255

# QA_PIXEL bit numbers (Landsat Collection 2 Level-2 Science Product Guide).
QA_FILL, QA_DILATED, QA_CIRRUS, QA_CLOUD, QA_SHADOW, QA_SNOW = 0, 1, 2, 3, 4, 5

# SCL class values (Sentinel-2 L2A product specification) -> common mask class.
SCL_CLASSES: dict[int, int] = {
    0: MASK_NODATA, 1: MASK_CODES["saturated"], 3: MASK_CODES["shadow"], 8: MASK_CODES["cloud"],
    9: MASK_CODES["cloud"], 10: MASK_CODES["cirrus"], 11: MASK_CODES["snow"],
}

# Linear harmonisation to Landsat 8 OLI: profile platform group -> common band -> (slope, intercept).
HARMONISATION: dict[str, dict[str, tuple[float, float]]] = {
    "tm-etm": {  # Roy et al. 2016, table 2, OLS ETM+ -> OLI (used for TM as well)
        "blue": (0.8474, 0.0003), "green": (0.8483, 0.0088), "red": (0.9047, 0.0061),
        "nir": (0.8462, 0.0412), "swir1": (0.8937, 0.0254), "swir2": (0.9071, 0.0172),
    },
    "msi": {  # HLS bandpass adjustment, Sentinel-2A MSI -> OLI (nir = B8A equivalent)
        "blue": (0.9778, -0.004), "green": (1.0053, -0.0009), "red": (0.9765, 0.0009),
        "nir": (0.9983, -0.0001), "swir1": (0.9987, -0.0011), "swir2": (1.003, -0.0012),
    },
}

_TM_ETM_BANDS = {"blue": "SR_B1", "green": "SR_B2", "red": "SR_B3", "nir": "SR_B4", "swir1": "SR_B5",
                 "swir2": "SR_B7"}
_OLI_BANDS = {"blue": "SR_B2", "green": "SR_B3", "red": "SR_B4", "nir": "SR_B5", "swir1": "SR_B6",
              "swir2": "SR_B7"}


@dataclass(frozen=True)
class SensorProfile:
    """How one archive's files become common-name reflectance and mask classes.

    `bands` are the native names in file names or band descriptions; `stac_bands` the STAC asset keys
    (Planetary Computer / Earth Search conventions; matched case-insensitively, or by `eo:bands` common
    name). `mask` is "landsat-qa", "scl", "values", "bits" or None; for "values"/"bits" `mask_rule` maps
    a common class name to values or bit numbers. `metadata_scale` / `metadata_offset`: each product's
    metadata decide the scale / offset (Sentinel-2 baselines), unless the config gives them.
    `stac_types`: (data type, nodata) of the reflectance assets and of the mask asset, for catalogs whose
    items lack `raster:bands` (Planetary Computer Sentinel-2), without which odc-stac reads 0 as NaN.
    """

    name: str
    bands: Mapping[str, str]
    scale: float = 1.0
    offset: float = 0.0
    nodata: float | None = None
    mask_band: str | None = None
    mask: str | None = None
    mask_rule: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    stac_bands: Mapping[str, str] = field(default_factory=dict)
    stac_mask_band: str | None = None
    date_pattern: str = r"(\d{8})"
    date_format: str = "%Y%m%d"
    band_pattern: str | None = None
    band_override: Mapping[str, str] | None = None
    metadata_scale: bool = False
    metadata_offset: bool = False
    stac_types: Mapping[str, tuple[str, float]] = field(default_factory=dict)

    def bands_for(self, scene_id: str) -> Mapping[str, str]:
        """Common -> native band names for one scene (Landsat: TM/ETM+ or OLI numbering by mission)."""
        if self.band_override:
            return self.band_override
        if self.name == "landsat-c2-l2":
            return _TM_ETM_BANDS if scene_id[:4].upper() in ("LT04", "LT05", "LE07") else _OLI_BANDS
        return self.bands

    def offset_at(self, when: datetime) -> float:
        """The additive offset (reflectance units) of an acquisition without product metadata: for
        Sentinel-2 (unless the config gives an offset) the one of the baseline in use at that time."""
        if self.name == "sentinel-2-l2a" and self.metadata_offset:
            return date_offset(when)
        return self.offset

    def harmonisation_group(self, scene_id: str) -> str | None:
        """Which HARMONISATION table brings this scene to OLI (None: it is OLI already, or unknown)."""
        if self.name == "landsat-c2-l2":
            return "tm-etm" if scene_id[:4].upper() in ("LT04", "LT05", "LE07") else None
        if self.name == "sentinel-2-l2a":
            return "msi"
        return None

    def mask_classes(self, raw: np.ndarray) -> np.ndarray:
        """(...) native quality values -> (...) uint8 common mask classes (MASK_CODES, MASK_NODATA)."""
        if self.mask == "landsat-qa":
            return landsat_qa_classes(raw)
        if self.mask == "scl":
            return scl_classes(raw)
        return rule_classes(raw, self.mask_rule, bits=self.mask == "bits")


PROFILES: dict[str, SensorProfile] = {
    # Landsat 4-9 Collection 2 Level-2, e.g. LC08_L2SP_044034_20200110_20200823_02_T1_SR_B4.TIF
    "landsat-c2-l2": SensorProfile(
        name="landsat-c2-l2", bands=_OLI_BANDS, scale=0.0000275, offset=-0.2, nodata=0,
        mask_band="QA_PIXEL", mask="landsat-qa",
        stac_bands={"blue": "blue", "green": "green", "red": "red", "nir": "nir08", "swir1": "swir16",
                    "swir2": "swir22"},
        stac_mask_band="qa_pixel", stac_types={"bands": ("uint16", 0), "mask": ("uint16", 1)},
        date_pattern=r"^L[CTOE]0\d_L2S[PR]_\d{6}_(\d{8})_", date_format="%Y%m%d",
        band_pattern=r"_(SR_B\d|QA_PIXEL)\.TIF$",
    ),
    # Sentinel-2 L2A (SAFE granule IMG_DATA), e.g. T33TWM_20220315T100031_B04_10m.jp2
    "sentinel-2-l2a": SensorProfile(
        name="sentinel-2-l2a",
        bands={"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir1": "B11", "swir2": "B12"},
        scale=1e-4, offset=0.0, nodata=0, mask_band="SCL", mask="scl",
        stac_bands={"blue": "blue", "green": "green", "red": "red", "nir": "nir", "swir1": "swir16",
                    "swir2": "swir22"},
        stac_mask_band="scl", stac_types={"bands": ("uint16", 0), "mask": ("uint8", 0)},
        metadata_scale=True, metadata_offset=True,
        date_pattern=r"_(\d{8}T\d{6})_", date_format="%Y%m%dT%H%M%S",
        band_pattern=r"_(B\d[\dA]|SCL)_\d+m\.(?:jp2|tif|TIF)$",
    ),
    "generic": SensorProfile(
        name="generic", bands={b: b for b in ("blue", "green", "red", "nir", "swir1", "swir2")},
        scale=1.0, offset=0.0, nodata=None,
    ),
}


def profile_for(sensor: str, **overrides) -> SensorProfile:
    """The named profile with the config's overrides (None values are ignored)."""
    try:
        base = PROFILES[sensor]
    except KeyError:
        raise ValueError(f"unknown sensor {sensor!r}; known: {sorted(PROFILES)}") from None
    changes = {k: v for k, v in overrides.items() if v is not None}
    return base.__class__(**{**base.__dict__, **changes})


def landsat_qa_classes(qa: np.ndarray) -> np.ndarray:
    """Landsat C2 QA_PIXEL (uint16) -> uint8 common mask classes.

    Priority when several bits are set: fill > cloud > dilated cloud > cirrus > cloud shadow > snow.
    """
    qa = np.asarray(qa).astype("uint16", copy=False)
    out = np.zeros(qa.shape, "uint8")
    for bit, code in ((QA_SNOW, MASK_CODES["snow"]), (QA_SHADOW, MASK_CODES["shadow"]),
                      (QA_CIRRUS, MASK_CODES["cirrus"]), (QA_DILATED, MASK_CODES["dilated_cloud"]),
                      (QA_CLOUD, MASK_CODES["cloud"]), (QA_FILL, MASK_NODATA)):
        out[(qa >> bit) & 1 == 1] = code
    return out


def scl_classes(scl: np.ndarray) -> np.ndarray:
    """Sentinel-2 L2A SCL (uint8) -> uint8 common mask classes; other SCL values are clear, NaN (SCL
    read as float without its nodata) is nodata."""
    scl = np.asarray(scl)
    out = np.zeros(scl.shape, "uint8")
    for value, code in SCL_CLASSES.items():
        out[scl == value] = code
    if scl.dtype.kind == "f":
        out[~np.isfinite(scl)] = MASK_NODATA
    return out


def rule_classes(raw: np.ndarray, rule: Mapping[str, tuple[int, ...]], *, bits: bool) -> np.ndarray:
    """A user's mask rule: class name -> values (or bit numbers, `bits=True`) -> uint8 mask classes.

    Class "nodata" marks pixels without data (MASK_NODATA). Later classes in `rule` win.
    """
    raw = np.asarray(raw)
    out = np.zeros(raw.shape, "uint8")
    for name, values in rule.items():
        code = MASK_NODATA if name == "nodata" else MASK_CODES[name]
        if bits:
            integer = raw.astype("int64", copy=False)
            hit = np.zeros(raw.shape, bool)
            for bit in values:
                hit |= (integer >> int(bit)) & 1 == 1
        else:
            hit = np.isin(raw, list(values))
        out[hit] = code
    return out
