"""The reference-map sampler (classify.reference) on tiny hand-made maps whose answers can be worked out by hand."""

import numpy as np
import pytest

from pipeline.classify.reference import (UNMAPPED, interior_mask, robust_outliers, sample_reference_pixels, spread_sample,
                                         translate_codes)


def two_class_map() -> np.ndarray:
    """6 x 6: left half code 10, right half code 20 (a vertical edge between columns 2 and 3)."""
    ref = np.full((6, 6), 10, dtype=np.uint8)
    ref[:, 3:] = 20
    return ref


def test_translate_merges_codes_and_reports_untranslated():
    ref = np.array([[10, 20, 30], [0, 99, 10]], dtype=np.uint8)
    out, untranslated = translate_codes(ref, {10: 2, 20: 3, 30: 3}, nodata=[0])
    np.testing.assert_array_equal(out, [[2, 3, 3], [UNMAPPED, UNMAPPED, 2]])
    assert untranslated == {99: 1}                                         # nodata 0 is not "untranslated"


def test_translate_to_none_drops_a_code_silently_but_zero_is_refused():
    out, untranslated = translate_codes(np.array([[70, 10]]), {70: None, 10: 2})
    np.testing.assert_array_equal(out, [[UNMAPPED, 2]])
    assert untranslated == {}
    with pytest.raises(ValueError, match="reserved"):
        translate_codes(np.array([[1]]), {1: 0})


def test_interior_drops_the_columns_beside_the_edge_but_not_the_array_border():
    classes, _ = translate_codes(two_class_map(), {10: 1, 20: 2})
    inside = interior_mask(classes, 1)
    # columns 2 and 3 touch the other class; the outer columns 0 and 5 stay (the border is not an edge)
    np.testing.assert_array_equal(inside.all(axis=0), [True, True, False, False, True, True])
    assert inside.any(axis=0).tolist() == [True, True, False, False, True, True]
    wider = interior_mask(classes, 2)
    np.testing.assert_array_equal(wider.all(axis=0), [True, False, False, False, False, True])
    np.testing.assert_array_equal(interior_mask(classes, 0), np.ones((6, 6), bool))


def test_interior_treats_unmapped_neighbours_as_an_edge():
    classes = np.ones((5, 5), dtype=np.int32)
    classes[2, 2] = UNMAPPED
    inside = interior_mask(classes, 1)
    assert not inside[1:4, 1:4].any() and inside[0, 0] and inside[4, 4]


def test_edges_are_judged_after_translation():
    ref = two_class_map()
    classes, _ = translate_codes(ref, {10: 3, 20: 3})                     # both map codes -> our class 3
    assert interior_mask(classes, 1).all()


def test_robust_outliers_flags_the_far_value_only():
    values = np.array([[1.0], [1.1], [0.9], [1.0], [1.05], [0.95], [5.0]])
    flagged, z = robust_outliers(values, outlier_z=3.5)
    assert flagged.tolist() == [False] * 6 + [True]
    # median 1.0, MAD 0.05 -> scale 0.0741; (5 - 1) / 0.0741 = 54
    assert z[-1] == pytest.approx(4.0 / (1.4826 * 0.05), rel=1e-4)


def test_robust_outliers_constant_feature_flags_nothing():
    flagged, _ = robust_outliers(np.ones((5, 2)), outlier_z=3.5)
    assert not flagged.any()


def test_spread_sample_takes_one_per_cell_before_a_second():
    # 4 cells of 2 x 2 px on a 4 x 4 grid; candidates: 4 px in cell (0, 0), 1 px in each other cell
    rows = np.array([0, 0, 1, 1, 0, 3, 3])
    cols = np.array([0, 1, 0, 1, 3, 0, 3])
    picked = spread_sample(rows, cols, 4, spread_px=2, rng=np.random.default_rng(0))
    cells = {(rows[i] // 2, cols[i] // 2) for i in picked}
    assert len(picked) == 4 and cells == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert spread_sample(rows, cols, 10, spread_px=2, rng=np.random.default_rng(0)).tolist() == list(range(7))


def test_sample_reference_pixels_counts_missing_and_short_classes():
    ref = two_class_map()
    ref[0, 0] = 30                                                         # one lonely pixel of code 30
    ref[5, 5] = 77                                                         # a code the config does not know
    features = np.zeros((6, 6, 2), dtype=np.float32)
    features[..., 0] = np.arange(36).reshape(6, 6) / 100                   # harmless spread
    features[4, 0, 1] = np.nan                                             # one pixel lacks a feature
    rows, cols, codes, report = sample_reference_pixels(
        ref, features, translate={10: 1, 20: 2, 30: 4}, per_class=3, edge_px=1, outlier_z=None, seed=1,
        classes=[1, 2, 4, 5])
    counts = report["per_class"]
    # class 1 (code 10): 18 px - (0, 0) = 17; interior: columns 0-1 (column 2 touches code 20) = 12 px,
    # less (0, 0) itself and its 3 neighbours -> 8; less (4, 0) without features -> 7
    assert counts[1]["map_pixels"] == 17 and counts[1]["interior"] == 8 and counts[1]["with_features"] == 7
    assert counts[1]["sampled"] == 3 and counts[2]["sampled"] == 3
    assert report["missing_classes"] == {4: "no pixel 1 px inside its patches (edge_px)", 5: "absent from the map"}
    assert report["untranslated_codes"] == {77: 1}
    assert set(codes) == {1, 2}
    assert np.all(ref[rows, cols] == np.where(codes == 1, 10, 20))
    # every sample is interior and has all features
    assert np.isfinite(features[rows, cols]).all() and not np.any((cols == 2) | (cols == 3))


def test_sample_reference_pixels_drops_spectral_outliers_and_is_seeded():
    ref = np.full((8, 8), 1, dtype=np.uint8)
    features = np.full((8, 8, 1), 0.5, dtype=np.float32)
    features += np.linspace(-0.01, 0.01, 64, dtype=np.float32).reshape(8, 8, 1)
    features[3, 3, 0] = 0.95                                               # e.g. a cloud left in the composite
    a = sample_reference_pixels(ref, features, translate={1: 1}, per_class=64, edge_px=0, outlier_z=3.5, seed=3)
    b = sample_reference_pixels(ref, features, translate={1: 1}, per_class=64, edge_px=0, outlier_z=3.5, seed=3)
    assert a[3]["per_class"][1]["outliers"] == 1 and len(a[0]) == 63
    assert not np.any((a[0] == 3) & (a[1] == 3))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_per_class_edge_px_keeps_a_one_pixel_road():
    ref = np.full((7, 7), 1, dtype=np.uint8)
    ref[3, :] = 5                                                          # a road one pixel wide
    features = np.zeros((7, 7, 1), dtype=np.float32)
    _, _, codes, report = sample_reference_pixels(ref, features, translate={1: 1, 5: 5}, per_class=100, edge_px=1,
                                                  outlier_z=None)
    assert report["missing_classes"] == {5: "no pixel 1 px inside its patches (edge_px)"}
    assert report["heavily_eroded"] == [5]
    _, _, codes, report = sample_reference_pixels(ref, features, translate={1: 1, 5: 5}, per_class=100,
                                                  edge_px={5: 0}, outlier_z=None)
    assert report["per_class"][5]["sampled"] == 7 and report["per_class"][1]["sampled"] == 28


def test_wrong_grid_is_an_error_that_says_what_to_do():
    with pytest.raises(ValueError, match="put the map on the composites' grid"):
        sample_reference_pixels(np.ones((4, 4)), np.ones((3, 4, 2)), translate={1: 1})


def test_excluded_pixels_are_not_sampled_but_do_not_make_edges():
    ref = np.full((5, 5), 1, dtype=np.uint8)
    features = np.zeros((5, 5, 1), dtype=np.float32)
    exclude = np.zeros((5, 5), bool)
    exclude[2, 2] = True                                                   # e.g. changed since the map's date
    rows, cols, _, report = sample_reference_pixels(ref, features, translate={1: 1}, per_class=100, edge_px=1,
                                                    outlier_z=None, exclude=exclude)
    assert len(rows) == 24 and not np.any((rows == 2) & (cols == 2))
    assert report["per_class"][1]["interior"] == 25 and report["per_class"][1]["with_features"] == 24
