"""Sensor profiles: QA_PIXEL bits and SCL classes -> common mask classes, pixel by pixel; scale/offset."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from pipeline.ingest.sensors import (
    HARMONISATION,
    MASK_CODES,
    MASK_NODATA,
    PROFILES,
    landsat_qa_classes,
    profile_for,
    rule_classes,
    scl_classes,
)

CLEAR, CLOUD, SHADOW, SNOW, CIRRUS, DILATED, SATURATED = (MASK_CODES[k] for k in (
    "clear", "cloud", "shadow", "snow", "cirrus", "dilated_cloud", "saturated"))


def _qa(*bits: int) -> int:
    return sum(1 << b for b in bits)


# Landsat 8/9 C2 QA_PIXEL values as they occur in real scenes (bit 6 clear, 7 water, 8-15 confidences)
QA_CASES = {
    1: MASK_NODATA,                  # bit 0 fill
    21824: CLEAR,                    # clear, low confidences (bits 6, 8, 10, 12, 14)
    21952: CLEAR,                    # water (bit 7) is not masked
    22280: CLOUD,                    # bit 3 cloud, high cloud confidence (bits 8-9)
    21826: DILATED,                  # bit 1 dilated cloud
    54596: CIRRUS,                   # bit 2 cirrus, high cirrus confidence (bits 14-15)
    23888: SHADOW,                   # bit 4 cloud shadow
    30048: SNOW,                     # bit 5 snow, high snow confidence (bits 12-13)
    _qa(0, 3, 4): MASK_NODATA,       # fill wins over everything
    _qa(1, 3): CLOUD,                # cloud wins over dilated cloud
    _qa(2, 4): CIRRUS,               # cirrus wins over shadow
    _qa(4, 5): SHADOW,               # shadow wins over snow
}


def test_qa_pixel_cases_decode_bit_by_bit():
    assert _qa(3, 8, 9, 10, 12, 14) == 22280 and _qa(4, 6, 8, 10, 11, 12, 14) == 23888
    values = np.array(list(QA_CASES), "uint16").reshape(3, 4)
    expected = np.array(list(QA_CASES.values()), "uint8").reshape(3, 4)
    np.testing.assert_array_equal(landsat_qa_classes(values), expected)


def test_scl_classes_follow_the_l2a_product_specification():
    scl = np.arange(12, dtype="uint8").reshape(3, 4)
    expected = [MASK_NODATA, SATURATED, CLEAR, SHADOW, CLEAR, CLEAR, CLEAR, CLEAR, CLOUD, CLOUD, CIRRUS, SNOW]
    np.testing.assert_array_equal(scl_classes(scl).ravel(), expected)


def test_generic_rules_by_values_and_by_bits():
    fmask = np.array([[0, 1, 2], [3, 4, 255]])
    rule = {"shadow": (2,), "snow": (3,), "cloud": (4,), "nodata": (255,)}
    np.testing.assert_array_equal(rule_classes(fmask, rule, bits=False),
                                  [[CLEAR, CLEAR, SHADOW], [SNOW, CLOUD, MASK_NODATA]])
    flags = np.array([0, 0b1, 0b10, 0b11])
    np.testing.assert_array_equal(rule_classes(flags, {"cloud": (0,), "shadow": (1,)}, bits=True),
                                  [CLEAR, CLOUD, SHADOW, SHADOW])


def test_landsat_band_numbering_differs_between_tm_etm_and_oli():
    landsat = PROFILES["landsat-c2-l2"]
    assert landsat.bands_for("LT05_L2SP_168072_19950410_20200912_02_T1")["red"] == "SR_B3"
    assert landsat.bands_for("LE07_L2SP_168072_20010410_20200912_02_T1")["nir"] == "SR_B4"
    assert landsat.bands_for("LC08_L2SP_168072_20200515_20200820_02_T1")["red"] == "SR_B4"
    assert landsat.bands_for("LC09_L2SP_168072_20220515_20220820_02_T1")["swir1"] == "SR_B6"
    assert landsat.scale == 0.0000275 and landsat.offset == -0.2 and landsat.nodata == 0
    assert landsat.harmonisation_group("LE07_x") == "tm-etm" and landsat.harmonisation_group("LC08_x") is None


def test_sentinel2_offset_without_product_metadata_follows_the_date_baseline_4_began():
    """The last resort only: products' own metadata decide first (tests/ingest/test_archives.py)."""
    s2 = PROFILES["sentinel-2-l2a"]
    assert s2.offset_at(datetime(2022, 1, 24, 23, 59)) == 0.0
    assert s2.offset_at(datetime(2022, 1, 25, 10, 0)) == -0.1
    # DN 1500: 0.15 before, (1500 - 1000) / 10000 = 0.05 after
    assert 1500 * s2.scale + s2.offset_at(datetime(2023, 6, 1)) == pytest.approx(0.05)


def test_harmonisation_tables_cover_every_reflectance_band():
    for table in HARMONISATION.values():
        assert set(table) == {"blue", "green", "red", "nir", "swir1", "swir2"}
    assert HARMONISATION["tm-etm"]["nir"] == (0.8462, 0.0412)


def test_profile_overrides_and_unknown_sensor():
    assert profile_for("generic", scale=0.5, nodata=None).scale == 0.5
    with pytest.raises(ValueError, match="unknown sensor 'modis'"):
        profile_for("modis")
