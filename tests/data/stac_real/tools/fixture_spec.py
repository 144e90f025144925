"""What the fixture writes for each real item: which assets, how reflectance is encoded, which mask.

Known reflectances (`REFLECTANCE`, `WATER`, `CLOUD`) are encoded into raw DN with each item's own rule
(`encode`), so a test can decode with the rule it believes in and compare. The same numbers are used
for every item, so every source must come out the same after a correct ingest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

ROLES = ("blue", "green", "red", "nir", "swir1", "swir2")

# Surface reflectance of the three surfaces drawn in every fixture (unitless).
REFLECTANCE = {"blue": 0.05, "green": 0.08, "red": 0.10, "nir": 0.30, "swir1": 0.20, "swir2": 0.12}  # land
WATER = {"blue": 0.04, "green": 0.05, "red": 0.03, "nir": 0.01, "swir1": 0.005, "swir2": 0.003}
CLOUD = {role: 0.5 for role in ROLES}

Encoding = Literal["landsat-c2-l2", "s2-boa-offset", "s2-no-offset"]


@dataclass(frozen=True)
class ItemSpec:
    """One real item of items/: its catalog, the asset key per role, the DN rule and the mask kind."""

    catalog: Literal["planetary-computer", "earth-search"]
    assets: dict[str, str]          # role (ROLES + "mask") -> asset key in the real item
    encoding: Encoding
    mask: Literal["qa_pixel", "scl"]
    why: str                        # why this DN rule applies to this item


LANDSAT_KEYS = {"blue": "blue", "green": "green", "red": "red", "nir": "nir08", "swir1": "swir16",
                "swir2": "swir22", "mask": "qa_pixel"}
PC_S2_KEYS = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir1": "B11", "swir2": "B12",
              "mask": "SCL"}
ES_S2_KEYS = {"blue": "blue", "green": "green", "red": "red", "nir": "nir", "swir1": "swir16",
              "swir2": "swir22", "mask": "scl"}

SPECS: dict[str, ItemSpec] = {
    "planetary-computer_landsat-c2-l2": ItemSpec(
        "planetary-computer", LANDSAT_KEYS, "landsat-c2-l2", "qa_pixel",
        "USGS C2 L2 SR: refl = DN * 0.0000275 - 0.2 (also in raster:bands)"),
    "earth-search_landsat-c2-l2": ItemSpec(
        "earth-search", LANDSAT_KEYS, "landsat-c2-l2", "qa_pixel",
        "USGS C2 L2 SR: refl = DN * 0.0000275 - 0.2 (also in raster:bands)"),
    "planetary-computer_sentinel-2-l2a": ItemSpec(
        "planetary-computer", PC_S2_KEYS, "s2-boa-offset", "scl",
        "s2:processing_baseline 05.10 >= 04.00, PC serves ESA's DN unchanged: refl = DN / 10000 - 0.1"),
    "planetary-computer_sentinel-2-l2a_same-overpass": ItemSpec(
        "planetary-computer", PC_S2_KEYS, "s2-boa-offset", "scl",
        "as above; adjacent MGRS tile of the same datatake, same datetime"),
    "planetary-computer_sentinel-2-l2a_baseline-04.00": ItemSpec(
        "planetary-computer", PC_S2_KEYS, "s2-boa-offset", "scl",
        "s2:processing_baseline 04.00: refl = DN / 10000 - 0.1"),
    "planetary-computer_sentinel-2-l2a_baseline-02.12": ItemSpec(
        "planetary-computer", PC_S2_KEYS, "s2-no-offset", "scl",
        "s2:processing_baseline 02.12 < 04.00: refl = DN / 10000"),
    "earth-search_sentinel-2-l2a": ItemSpec(
        "earth-search", ES_S2_KEYS, "s2-no-offset", "scl",
        "earthsearch:boa_offset_applied true: Earth Search already removed the +1000, refl = DN / 10000, "
        "although raster:bands still says offset -0.1 (Element84/earth-search#9)"),
}


def encode(reflectance: np.ndarray, encoding: Encoding) -> np.ndarray:
    """Reflectance -> uint16 DN under one rule; NaN -> 0 (nodata in every rule here)."""
    refl = np.asarray(reflectance, dtype="float64")
    if encoding == "landsat-c2-l2":
        dn = np.round((refl + 0.2) / 0.0000275)
    elif encoding == "s2-boa-offset":
        dn = np.round(refl * 10000) + 1000
    else:
        dn = np.round(refl * 10000)
    return np.where(np.isnan(refl), 0, dn).astype("uint16")


def decode(dn: np.ndarray, encoding: Encoding) -> np.ndarray:
    """uint16 DN -> float64 reflectance under one rule; DN 0 -> NaN."""
    dn = np.asarray(dn, dtype="float64")
    if encoding == "landsat-c2-l2":
        refl = dn * 0.0000275 - 0.2
    elif encoding == "s2-boa-offset":
        refl = dn / 10000 - 0.1
    else:
        refl = dn / 10000
    return np.where(dn == 0, np.nan, refl)


# Landsat C2 QA_PIXEL values (bit 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 shadow, 5 snow, 6 clear,
# 7 water; bit pairs 8-9 cloud, 10-11 shadow, 12-13 snow/ice, 14-15 cirrus confidence: 1 low, 3 high).
def qa_value(*, fill=False, dilated=False, cirrus=False, cloud=False, shadow=False, snow=False, clear=False,
             water=False, cloud_conf=1, shadow_conf=1, snow_conf=1, cirrus_conf=1) -> int:
    bits = [fill, dilated, cirrus, cloud, shadow, snow, clear, water]
    value = sum(int(b) << i for i, b in enumerate(bits))
    return value | cloud_conf << 8 | shadow_conf << 10 | snow_conf << 12 | cirrus_conf << 14


QA = {
    "fill": 1,
    "clear": qa_value(clear=True),                              # 21824
    "water": qa_value(clear=True, water=True),                  # 21952
    "cloud": qa_value(cloud=True, cloud_conf=3),                # 22280
    "dilated_cloud": qa_value(dilated=True),                    # 21762
    "shadow": qa_value(shadow=True, clear=True, shadow_conf=3), # 23888
    "cirrus": qa_value(cirrus=True, clear=True, cirrus_conf=3), # 54596
    "snow": qa_value(snow=True, clear=True, snow_conf=3),       # 30048
}

# Sentinel-2 L2A SCL classes.
SCL = {"nodata": 0, "saturated": 1, "dark": 2, "shadow": 3, "vegetation": 4, "bare": 5, "water": 6,
       "unclassified": 7, "cloud_medium": 8, "cloud_high": 9, "cirrus": 10, "snow": 11}


def landsat_layout(n: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(QA_PIXEL uint16 (n, n), surface name per pixel (n, n) of "land"/"water"/"cloud"/"fill")."""
    qa = np.full((n, n), QA["clear"], "uint16")
    surface = np.full((n, n), "land", dtype=object)
    qa[0, :], surface[0, :] = QA["fill"], "fill"                               # top row: fill
    qa[n - 6:, :6], surface[n - 6:, :6] = QA["water"], "water"                 # water, lower left
    qa[8:10, 8:10], surface[8:10, 8:10] = QA["cloud"], "cloud"                 # 2 x 2 cloud
    qa[7, 8:10] = QA["dilated_cloud"]                                          # dilation above it
    qa[12, 12:14] = QA["shadow"]
    qa[16, 16] = QA["cirrus"]
    qa[20, 20] = QA["snow"]
    return qa, surface


def s2_layout(n: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(SCL uint8 (n, n) at 20 m, surface name per 20 m pixel (n, n))."""
    scl = np.full((n, n), SCL["vegetation"], "uint8")
    surface = np.full((n, n), "land", dtype=object)
    scl[0, :], surface[0, :] = SCL["nodata"], "fill"                           # top row: no data
    scl[n - 4:, :4], surface[n - 4:, :4] = SCL["water"], "water"               # water, lower left
    scl[4, 4:6], surface[4, 4:6] = SCL["cloud_high"], "cloud"
    scl[5, 4], surface[5, 4] = SCL["cloud_medium"], "cloud"
    scl[6, 6:8] = SCL["shadow"]
    scl[8, 8] = SCL["cirrus"]
    scl[9, 9] = SCL["snow"]
    scl[10, 10] = SCL["saturated"]
    scl[11, 11] = SCL["dark"]
    scl[3, 12] = SCL["unclassified"]
    scl[2, 2] = SCL["bare"]
    return scl, surface


def reflectance_of(surface: np.ndarray, role: str) -> np.ndarray:
    """Per-pixel reflectance of one role for a surface-name grid; NaN where "fill"."""
    table = {"land": REFLECTANCE[role], "water": WATER[role], "cloud": CLOUD[role], "fill": np.nan}
    return np.vectorize(table.__getitem__, otypes=["float64"])(surface)
