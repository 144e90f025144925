"""The small demo run (tests/demo_small.yaml, defaults: gap_fill agree, MMU 0.5 ha, 8-connected): tables with
observed and nodata areas, cleaned maps without specks, change maps on the cleaned maps, fewer false changes."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from scipy import ndimage

from pipeline.change import FIRST_CHANGE_NODATA, NO_CHANGE, first_change
from pipeline.classify.cleaning import CLEANING_NODATA, FILLED
from pipeline.demo import truth_class_map
from pipeline.results import open_run

EIGHT = np.ones((3, 3), bool)


@pytest.fixture(scope="module")
def run(demo_run):
    return open_run(demo_run / "outputs" / "demo_small")


def _small_patches(plane: np.ndarray, min_pixels: int, nodata: int) -> int:
    """Patches (8-connected, one value) of fewer than `min_pixels` that touch a pixel with data of
    another value: the MMU should have merged every one of them."""
    found = 0
    for value in np.unique(plane[plane != nodata]):
        labels, _ = ndimage.label(plane == value, structure=EIGHT)
        sizes = np.bincount(labels.ravel())
        for label in np.flatnonzero(sizes < min_pixels):
            if label == 0:
                continue
            ring = ndimage.binary_dilation(labels == label, structure=EIGHT) & (labels != label)
            found += bool((plane[ring] != nodata).any())
    return found


def test_class_areas_carry_the_observed_nodata_and_gap_filled_areas(run):
    aoi = run.aoi_table("demo_mine").iloc[0]
    assert aoi["gap_fill"] == "agree" and aoi["mmu_pixels"] == 6 and aoi["area_ha"] == pytest.approx(
        aoi["pixels"] * 0.09)
    table = run.class_area("demo_mine")
    per_period = table.drop_duplicates("period").set_index("period")
    np.testing.assert_allclose(per_period["observed_ha"] + per_period["nodata_ha"], aoi["area_ha"])
    assert (per_period["filled_ha"] <= per_period["nodata_ha"] + 1e-9).all()
    assert per_period["filled_ha"].sum() > 0  # the demo has clouds, and they were filled
    np.testing.assert_allclose(table.groupby("period")["area_pct"].sum(), 100.0, atol=1e-3)  # CSV rounding
    # the cleaning rasters say which pixels were filled, and the table counts them
    raw, cleaned = run.class_map("demo_mine").values, run.class_map("demo_mine", cleaned=True).values
    for i, period in enumerate(run.periods("demo_mine")):
        with rasterio.open(run.layout.cleaning("demo_mine", period)) as src:
            flags = src.read(1)
        filled = (flags != CLEANING_NODATA) & (flags & FILLED > 0)
        np.testing.assert_array_equal(filled, (raw[i] == 255) & (cleaned[i] != 255))
        assert per_period.at[period, "filled_ha"] == pytest.approx(filled.sum() * 0.09)
        assert per_period.at[period, "nodata_ha"] == pytest.approx((aoi["pixels"] - (raw[i] != 255).sum()) * 0.09)


def test_no_patch_smaller_than_the_mmu_is_left_in_the_cleaned_maps_or_the_change_maps(run):
    cleaned = run.class_map("demo_mine", cleaned=True).values
    raw = run.class_map("demo_mine").values
    assert sum(_small_patches(plane, 6, 255) for plane in raw) > 20  # the maps as classified are speckled
    assert sum(_small_patches(plane, 6, 255) for plane in cleaned) == 0
    with rasterio.open(run.layout.first_change("demo_mine")) as src:
        first = src.read(1)
    changed = np.where(first == FIRST_CHANGE_NODATA, 255, (first != NO_CHANGE).astype("uint8"))
    assert _small_patches(changed, 6, 255) == 0
    with rasterio.open(run.layout.change_first_last("demo_mine")) as src:
        first_last, tags = src.read(1), src.tags()
    assert _small_patches(first_last, 6, 255) == 0
    assert tags["CHANGE_0"] == "stable" and tags["CHANGE_1"] == "changed"
    # it is the change between the first and the last cleaned map, up to the MMU
    agree = (first_last != 0) == (cleaned[0] != cleaned[-1])
    mapped = (cleaned[0] != 255) & (cleaned[-1] != 255)
    assert agree[mapped].mean() > 0.97 and (first_last[~mapped] == 255).all()


def test_cleaning_cuts_false_change_and_keeps_the_real_change(run, demo_run):
    raw = run.class_map("demo_mine").load()
    truth = truth_class_map(demo_run / "data" / "truth", raw)
    true_first = first_change(truth).values
    inside = (truth.values != 255).all(axis=0)
    stable = inside & (true_first == NO_CHANGE)
    really_changed = inside & (true_first != NO_CHANGE) & (true_first != FIRST_CHANGE_NODATA)
    before = first_change(raw).values  # what the run wrote before the maps were cleaned
    with rasterio.open(run.layout.first_change("demo_mine")) as src:
        after = src.read(1)

    def says_changed(first):
        return (first != NO_CHANGE) & (first != FIRST_CHANGE_NODATA)

    spurious_before, spurious_after = (stable & says_changed(before)).sum(), (stable & says_changed(after)).sum()
    found_before = (really_changed & says_changed(before)).sum() / really_changed.sum()
    found_after = (really_changed & says_changed(after)).sum() / really_changed.sum()
    assert spurious_after * 5 <= spurious_before, (spurious_before, spurious_after)
    assert found_after >= 0.9 and found_after >= found_before - 0.02, (found_before, found_after)
