from __future__ import annotations

import dask
import geopandas as gpd
import numpy as np
import pytest
import xarray as xr

from pipeline.classify import (UNCLASSIFIED, _predict_block, accuracy_assessment, feature_stack,
                               predict_class_map, train_random_forest, training_samples)
from pipeline.config import DEFAULT_CLASSES
from pipeline.errors import InputError

from conftest import CRS


class _Threshold:
    """Class 2 where the first feature > 0.5, else class 1 (a model whose answer is known)."""

    def predict(self, X):
        return np.where(X[:, 0] > 0.5, 2, 1)


def _composites(chunks=None) -> xr.Dataset:
    coords = {"period": [2020, 2021], "y": [45.0, 15.0], "x": [15.0, 45.0, 75.0]}
    nir = xr.DataArray(np.array([[[0.1, 0.9, 0.9], [0.1, 0.1, np.nan]],
                                 [[0.9, 0.9, 0.9], [0.1, 0.1, 0.1]]], "float32"), coords, ("period", "y", "x"))
    composites = xr.Dataset({"nir": nir, "red": nir * 0 + 0.1}).rio.write_crs(CRS)
    return composites.chunk(chunks) if chunks else composites


def test_predict_block_fills_pixels_with_a_missing_feature():
    block = np.array([[[0.9, 1.0], [0.1, np.nan]], [[0.2, 0.3], [0.7, 0.0]]])
    out = _predict_block(block, _Threshold())
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[2, UNCLASSIFIED], [1, 2]])


@pytest.mark.parametrize("chunks", [None, {"x": 2}], ids=["numpy", "dask"])
def test_predict_class_map_is_lazy_and_right(chunks):
    features = feature_stack(_composites(chunks), ["nir", "red"])
    assert features.dims == ("period", "y", "x", "feature")
    class_map = predict_class_map(features, _Threshold())
    assert dask.is_dask_collection(class_map) == bool(chunks)
    assert class_map.rio.crs == features.rio.crs and class_map.rio.nodata == UNCLASSIFIED
    np.testing.assert_array_equal(class_map.values, [[[1, 2, 2], [1, 1, UNCLASSIFIED]],
                                                     [[2, 2, 2], [1, 1, 1]]])


def test_training_samples_take_the_point_period_and_pixel():
    features = feature_stack(_composites(), ["nir", "red"])
    points = gpd.GeoDataFrame({"class_code": [1, 2, 2, 1], "period": [2020, 2021, 2019, 2020]},
                              geometry=gpd.points_from_xy([14, 16, 45, 5_000], [46, 44, 45, 45]), crs=CRS)
    samples, labels = training_samples(features, points)
    # the 2019 point has no composite and the far point is outside the grid
    assert labels.attrs == {"dropped_outside": 1, "dropped_period": 1}
    np.testing.assert_allclose(samples.sel(feature="nir").values, [0.1, 0.9])
    assert list(labels["class_code"]) == [1, 2]


def test_training_samples_without_a_period_hold_for_every_period():
    features = feature_stack(_composites(), ["nir", "red"])
    points = gpd.GeoDataFrame({"class_code": [1]}, geometry=gpd.points_from_xy([15], [45]), crs=CRS)
    samples, labels = training_samples(features, points)
    assert list(labels["period"]) == [2020, 2021]
    np.testing.assert_allclose(samples.sel(feature="nir").values, [0.1, 0.9])


def test_random_forest_is_reproducible_and_holds_out_a_stratified_share():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (50, 3)), rng.normal(4, 1, (50, 3))])
    y = np.repeat([1, 2], 50)
    model_a, X_test, y_test = train_random_forest(X, y, n_estimators=10, test_fraction=0.2, random_state=3)
    model_b, _, _ = train_random_forest(X, y, n_estimators=10, test_fraction=0.2, random_state=3)
    assert len(y_test) == 20 and (y_test == 1).sum() == 10
    np.testing.assert_array_equal(model_a.predict(X), model_b.predict(X))
    assert (model_a.predict(X_test) == y_test).mean() > 0.95


def test_random_forest_names_classes_with_too_few_labels():
    with pytest.raises(InputError, match=r"classes \[3\] have fewer than 2 usable samples"):
        train_random_forest(np.zeros((5, 2)), np.array([1, 1, 2, 2, 3]))


def test_accuracy_assessment_by_hand():
    y_true = np.array([1, 1, 1, 1, 2, 2, 2, 2, 2, 2])
    y_pred = np.array([1, 1, 1, 2, 2, 2, 2, 2, 2, 1])
    report = accuracy_assessment(y_true, y_pred, DEFAULT_CLASSES[:2])
    assert report["overall_accuracy"] == 0.8
    assert report["confusion_matrix"]["counts"] == [[3, 1], [1, 5]]
    water, trees = report["classes"]
    assert water["producers_accuracy"] == 0.75 and water["users_accuracy"] == 0.75
    assert trees["producers_accuracy"] == pytest.approx(5 / 6, abs=1e-4)
    # kappa = (0.8 - pe) / (1 - pe), pe = 0.4 * 0.4 + 0.6 * 0.6 = 0.52
    assert report["kappa"] == pytest.approx((0.8 - 0.52) / 0.48, abs=1e-4)
