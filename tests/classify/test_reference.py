"""classify.training from a reference map: the sampler on tiny hand-made maps whose answers can be worked out
by hand, the map put on the grid, the config, and a model trained from the small demo's truth map."""

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from affine import Affine

from pipeline.classify import stage as runner
from pipeline.classify.reference import (
    MAP_NODATA,
    UNMAPPED,
    check_reference_map,
    interior_mask,
    map_training_samples,
    reference_on_grid,
    robust_outliers,
    sample_reference_pixels,
    spread_sample,
    translate_codes,
)
from pipeline.composite.periods import make_periods, period_coords
from pipeline.config import load_config
from pipeline.demo import truth_class_map
from pipeline.errors import ConfigError, InputError
from pipeline.results import open_run


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
    _, _, _, report = sample_reference_pixels(ref, features, translate={1: 1, 5: 5}, per_class=100, edge_px=1,
                                              outlier_z=None)
    assert report["missing_classes"] == {5: "no pixel 1 px inside its patches (edge_px)"}
    assert report["heavily_eroded"] == [5]
    _, _, _, report = sample_reference_pixels(ref, features, translate={1: 1, 5: 5}, per_class=100,
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


CRS = "EPSG:32736"


def _write_map(path, codes: np.ndarray, *, transform: Affine, crs=CRS, nodata=None, dtype="uint8"):
    with rasterio.open(path, "w", driver="GTiff", width=codes.shape[1], height=codes.shape[0], count=1,
                       dtype=dtype, crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(codes.astype(dtype), 1)
    return path


def _grid(ny: int, nx: int, *, res: float = 30.0, periods=("2020",)) -> xr.DataArray:
    """(period, y, x, feature) features on a grid whose top-left corner is (0, ny * res)."""
    made = make_periods(pd.to_datetime([f"{p}-06-01" for p in periods]), kind="year")
    coords = {"y": res * (np.arange(ny)[::-1] + 0.5), "x": res * (np.arange(nx) + 0.5), "feature": ["ndvi"]}
    values = np.zeros((len(periods), ny, nx, 1), dtype=np.float32)
    grid = xr.DataArray(values, dims=("period", "y", "x", "feature"), coords=coords)
    return grid.assign_coords(period_coords(made)).rio.write_crs(CRS)


def test_a_finer_map_goes_onto_the_grid_by_mode_and_a_coarser_one_by_nearest(tmp_path):
    fine = np.full((6, 6), 10, dtype=np.uint8)                             # 10 m: 3 x 3 per 30 m pixel
    fine[0:3, 0:2] = 20                                                    # 6 of the top-left 9 pixels: 20
    fine[3:6, 3:6] = 30
    fine[5, 5] = 0                                                         # the file's nodata
    path = _write_map(tmp_path / "fine.tif", fine, transform=Affine(10, 0, 0, 0, -10, 60), nodata=0)
    codes, record = reference_on_grid(path, _grid(2, 2))
    assert record["resampling"] == "mode" and record["map_resolution"] == 10
    np.testing.assert_array_equal(codes, [[20, 10], [10, 30]])
    coarse = _write_map(tmp_path / "coarse.tif", np.array([[1, 2], [3, 4]]), transform=Affine(30, 0, 0, 0, -30, 60))
    codes, record = reference_on_grid(coarse, _grid(4, 4, res=15))
    assert record["resampling"] == "nearest" and record["share_of_grid_covered"] == 1
    np.testing.assert_array_equal(codes[:2, :2], [[1, 1], [1, 1]])
    np.testing.assert_array_equal(codes[2:, 2:], [[4, 4], [4, 4]])


def test_a_map_in_another_crs_keeps_its_codes_and_pixels_it_does_not_reach_are_nodata(tmp_path):
    ref = np.repeat(np.repeat(np.array([[1, 2], [3, 4]], dtype=np.uint8), 50, axis=0), 50, axis=1)
    path = _write_map(tmp_path / "utm.tif", ref, transform=Affine(3, 0, 0, 0, -3, 300))
    with rasterio.open(path) as src:                                       # the same map in EPSG:4326
        from rasterio.warp import calculate_default_transform, reproject
        transform, width, height = calculate_default_transform(src.crs, "EPSG:4326", src.width, src.height, *src.bounds)
        geographic = np.zeros((height, width), dtype=np.uint8)
        reproject(src.read(1), geographic, src_transform=src.transform, src_crs=src.crs, dst_transform=transform,
                  dst_crs="EPSG:4326", src_nodata=0, dst_nodata=0)
    moved = _write_map(tmp_path / "wgs84.tif", geographic, transform=transform, crs="EPSG:4326", nodata=0)
    grid = _grid(12, 12, res=30)                                           # reaches 60 m beyond the map's east
    codes, _ = reference_on_grid(moved, grid)
    np.testing.assert_array_equal(codes[1, 1], 1)
    np.testing.assert_array_equal(codes[8, 8], 4)
    assert (codes[:, -1] == MAP_NODATA).all()


def test_bad_reference_maps_are_refused_with_the_file_and_key(tmp_path):
    with pytest.raises(InputError, match=r"missing.tif \(classify.training.map\): reference map not found"):
        check_reference_map(tmp_path / "missing.tif")
    floats = _write_map(tmp_path / "float.tif", np.zeros((2, 2)), transform=Affine(30, 0, 0, 0, -30, 60),
                        dtype="float32")
    with pytest.raises(InputError, match="float32, not integer class codes"):
        check_reference_map(floats)
    far = _write_map(tmp_path / "far.tif", np.ones((2, 2)), transform=Affine(30, 0, 1e5, 0, -30, 1e5))
    with pytest.raises(InputError, match="does not overlap this AOI's grid"):
        reference_on_grid(far, _grid(2, 2))


def test_map_training_samples_give_one_sample_per_pixel_and_period_of_the_year(tmp_path):
    codes = np.array([[1] * 4 + [2] * 4] * 8, dtype=np.uint8)
    path = _write_map(tmp_path / "map.tif", codes, transform=Affine(30, 0, 0, 0, -30, 240))
    features = _grid(8, 8, periods=("2019", "2020"))
    features = features.copy(data=np.broadcast_to((features["x"] > 120).values[None, None, :, None] * 1.0,
                                                  features.shape).astype(np.float32))
    settings = load_reference({"map": str(path), "year": 2020, "classes": {1: 1, 2: 2, 7: 3}, "per_class": 5,
                               "edge_px": 0, "outlier_z": None}, tmp_path)
    X, y, xy, record = map_training_samples(features, settings, seed=1, classes=[1, 2, 3])
    assert record["periods_sampled"] == ["2020"] and record["year"] == "2020"
    assert len(y) == 10 and sorted(set(y.tolist())) == [1, 2]
    np.testing.assert_array_equal(X[:, 0], (y == 2) * 1.0)                  # each label on its own class's pixels
    assert ((xy[:, 0] > 120) == (y == 2)).all()
    assert record["missing_classes"] == {3: "absent from the map"}
    with pytest.raises(InputError, match=r"classify.training.year: '2018' is not a period of this run \(2019, 2020\)"):
        map_training_samples(features, settings.model_copy(update={"year": "2018"}), seed=1, classes=[1, 2])


def load_reference(training: dict, folder):
    """The classify.training section of a minimal config in `folder` (ConfigError if refused)."""
    config = {"run_name": "t", "aoi": {"path": "aoi.geojson"}, "ingest": {"scenes": "*.tif"},
              "classify": {"training": training}}
    path = folder / "config.yaml"
    path.write_text(json.dumps(config))
    return load_config(path).classify.training


def test_the_config_names_a_translation_to_an_unknown_class_and_unknown_keys(tmp_path):
    settings = load_reference({"map": "lc.tif", "year": 2021, "classes": {10: 2, 70: None}}, tmp_path)
    assert settings.map == tmp_path / "lc.tif" and settings.per_class == 500 and settings.edge_px == 1
    with pytest.raises(ConfigError, match=r"classify.training.classes: class codes \[9\] are not in the config's"):
        load_reference({"map": "lc.tif", "year": 2021, "classes": {10: 9}}, tmp_path)
    with pytest.raises(ConfigError, match=r"classify.training.per_clas: Extra inputs are not permitted"):
        load_reference({"map": "lc.tif", "year": 2021, "classes": {10: 2}, "per_clas": 5}, tmp_path)


def test_a_model_trained_on_the_demo_truth_of_one_year_maps_every_year_as_the_points_do(demo_run):
    """The small demo's 2019 truth as the reference map; every year's agreement with the truth is that of
    the run trained on 600 hand-labelled points over 5 years (within 0.03), and the accuracy document says
    where the labels came from."""
    run = open_run(demo_run / "outputs" / "demo_small")
    periods = run.periods("demo_mine")
    point_map = run.class_map("demo_mine").load()
    composites = xr.concat([run.composite("demo_mine", p) for p in periods], dim=pd.Index(periods, name="period"))
    composites = composites.load().rio.write_crs(point_map.rio.crs)
    config = load_config(demo_run / "config.yaml", overrides={"classify": {
        "training": {"map": "data/truth/2019.tif", "year": 2019, "classes": {c: c for c in range(1, 7)},
                     "per_class": 150}, "cv_block_size_m": 300}})
    predicted, accuracy, _ = runner.train_and_predict(config, composites, None, list(composites.data_vars))
    truth = truth_class_map(demo_run / "data" / "truth", point_map)
    for period in periods:
        valid = truth.sel(period=period).values != 255
        by_map = (predicted["class_map"].sel(period=period).values == truth.sel(period=period).values)[valid].mean()
        by_points = (point_map.sel(period=period).values == truth.sel(period=period).values)[valid].mean()
        assert by_map > by_points - 0.03, (period, by_map, by_points)
    training = accuracy["training"]
    assert training["source"] == "reference map" and training["map"].endswith("truth/2019.tif")
    assert training["periods_sampled"] == ["2019"] and training["missing_classes"] == {}
    assert sum(c["sampled"] for c in training["per_class"].values()) == accuracy["n_labels"] == 639
    assert "reference map 2019.tif (2019)" in accuracy["method"] and "not accuracy" in accuracy["method"]
    assert accuracy["spatial_cv"]["n_samples"] == 639 and accuracy["spatial_cv"]["overall_accuracy"] > 0.9
