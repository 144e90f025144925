"""What a pixel-period is classified from (classify.features): gaps, importance, settings a saved model keeps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipeline.classify import (UNCLASSIFIED, classification_features, feature_set, permutation_importance,
                               predict_class_map)
from pipeline.classify.models import check_features, make_classifier, model_metadata
from pipeline.composite.periods import make_periods, period_coords
from pipeline.config import load_config
from pipeline.errors import ConfigError, InputError

from conftest import CRS, HERE

GROUPS = {"composite": ["ndvi"], "ndvi_range": [], "metrics": ["ndvi_p50"], "clear_count": [],
          "sub_periods": ["ndvi_q1", "ndvi_q2", "ndvi_q3", "ndvi_q4"]}


def _composites() -> xr.Dataset:
    """One year, 1 x 3 pixels: pixel 0 complete, pixel 1 without a clear scene in Q2, pixel 2 nodata."""
    periods = make_periods(pd.to_datetime(["2020-06-01"]), kind="year")
    layers = {"ndvi": [0.8, 0.2, np.nan], "ndvi_p50": [0.8, 0.2, np.nan], "ndvi_q1": [0.1, 0.1, np.nan],
              "ndvi_q2": [0.5, np.nan, np.nan], "ndvi_q3": [0.9, 0.9, np.nan], "ndvi_q4": [0.3, 0.5, np.nan]}
    data = {k: (("period", "y", "x"), np.array(v, "float32")[None, None, :]) for k, v in layers.items()}
    return xr.Dataset(data, coords={"y": [5.0], "x": [5.0, 15.0, 25.0]}).assign_coords(
        period_coords(periods)).rio.write_crs(CRS)


class _Q2:
    """Class 2 where Q2 is missing (it sees the gap), else class 1."""

    def predict(self, X):
        return np.where(np.isnan(X[:, 3]), 2, 1)


def test_a_pixel_with_a_sub_period_gap_is_classified_and_one_without_data_is_not():
    chosen = feature_set(GROUPS, sub_periods={"ndvi": GROUPS["sub_periods"]})
    assert chosen.names == ["ndvi", "ndvi_p50", "ndvi_q1", "ndvi_q2", "ndvi_q3", "ndvi_q4"]
    assert chosen.required.tolist() == [True, True, False, False, False, False]
    features = classification_features(_composites(), chosen)
    class_map = predict_class_map(features, _Q2(), required=chosen.required)
    np.testing.assert_array_equal(class_map.values[0, 0], [1, 2, UNCLASSIFIED])   # the gap reached the model


def test_gap_filling_interpolates_within_the_year_and_keeps_nodata_empty():
    chosen = feature_set(GROUPS, sub_periods={"ndvi": GROUPS["sub_periods"]}, gap_fill=["interpolate"])
    values = classification_features(_composites(), chosen).sel(feature="ndvi_q2").values[0, 0]
    np.testing.assert_allclose(values[:2], [0.5, 0.5], rtol=1e-6)     # pixel 1: between Q1 0.1 and Q3 0.9
    assert np.isnan(values[2])


def test_permutation_importance_finds_the_feature_the_model_uses():
    rng = np.random.default_rng(0)
    X = rng.random((400, 3)).astype("float32")
    y = np.where(X[:, 1] > 0.5, 2, 1)
    model = make_classifier("random_forest", {"n_estimators": 10}, random_state=0).fit(X, y)
    drops = permutation_importance(model, X, y, {"a": [0], "b": [1], "c": [2], "a+b": [0, 1]}, repeats=3, seed=0)
    assert drops["b"] > 0.3 and abs(drops["a"]) < 0.05 and abs(drops["c"]) < 0.05
    assert drops["a+b"] > 0.3


def test_a_saved_model_refuses_other_feature_settings():
    X = np.random.default_rng(0).random((20, 2))
    y = np.array([1, 2] * 10)
    model = make_classifier("random_forest", {"n_estimators": 2}, random_state=0).fit(X, y)
    metadata = model_metadata(model, kind="random_forest", features=["ndvi_m01", "ndvi_m02"], class_codes=[1, 2],
                              X=X, y=y, feature_settings={"gap_fill": ["interpolate"], "method": "median"})
    check_features(metadata, ["ndvi_m01", "ndvi_m02"], source="m.skops",
                   settings={"gap_fill": ["interpolate"], "method": "median"})
    with pytest.raises(InputError, match=r"m.skops: the model was trained with other classify.features settings "
                                         r"\(gap_fill"):
        check_features(metadata, ["ndvi_m01", "ndvi_m02"], source="m.skops", settings={"gap_fill": [], "method": "median"})


def test_feature_settings_are_checked_at_load(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text((HERE / "demo_small.yaml").read_text())
    config = load_config(path, overrides={"classify": {"temporal_stats": False}})   # the former key
    assert config.classify.features.ndvi_range is False
    for features, message in [({"percentiles": [10, 120]}, "percentiles must be distinct values in 0..100"),
                              ({"sub_periods": "season"}, "season is needed with sub_periods: season"),
                              ({"sub_periods": "fortnight"}, "classify.features.sub_periods"),
                              ({"gap_fill": ["mean"]}, "classify.features.gap_fill")]:
        with pytest.raises(ConfigError, match=message):
            load_config(path, overrides={"classify": {"features": features}})
    with pytest.raises(ConfigError, match="month composites do not fit within periods of a quarter"):
        load_config(path, overrides={"composite": {"period": "quarter"}, "classify": {"features": {"sub_periods": "month"}}})


def test_training_samples_are_the_features_of_the_map_at_their_pixels():
    """The samples are computed from the labelled pixels' composites alone (every period of them): gap filling
    from the neighbouring period and within the year gives them exactly what the whole map's features hold."""
    import geopandas as gpd
    from shapely.geometry import Point

    from pipeline.classify import training_samples
    from pipeline.classify.stage import _label_samples

    rng = np.random.default_rng(3)
    periods = make_periods(pd.to_datetime(["2019-06-01", "2020-06-01", "2021-06-01"]), kind="year")
    names = ["ndvi", "ndvi_q1", "ndvi_q2", "ndvi_q3", "ndvi_q4"]
    layers = rng.random((len(names), 3, 8, 8)).astype("float32")
    layers[1:][rng.random(layers[1:].shape) < 0.4] = np.nan      # sub-period gaps
    layers[:, 1, 0, 0] = np.nan                                   # one pixel-period without data
    composites = xr.Dataset({n: (("period", "y", "x"), v) for n, v in zip(names, layers)},
                            coords={"y": 75.0 - 10 * np.arange(8), "x": 5.0 + 10 * np.arange(8)}).assign_coords(
        period_coords(periods)).rio.write_crs(CRS).chunk({"period": 1, "y": 4, "x": 4})
    groups = {"composite": ["ndvi"], "sub_periods": names[1:]}
    chosen = feature_set(groups, sub_periods={"ndvi": names[1:]}, gap_fill=["neighbours", "interpolate"])
    features = classification_features(composites, chosen)
    points = gpd.GeoDataFrame({"class_code": [1, 2, 3, 1], "period": [2019, 2020, 2021, 2020]},
                              geometry=[Point(5, 75), Point(25, 45), Point(65, 5), Point(5, 75)], crs=CRS)
    config = load_config(HERE / "demo_small.yaml")
    X, y, _, about = _label_samples(config, composites, chosen, features, points)
    expected, _ = training_samples(features, points)
    keep = np.isfinite(expected.values[:, chosen.required]).all(axis=1)
    np.testing.assert_array_equal(X, expected.values[keep])
    assert y.tolist() == [1, 2, 3] and about["dropped_nodata_features"] == 1   # pixel (0, 0) has no data in 2020
    assert about["gaps"]["samples_with_gaps_left"] == 0 and about["gaps"]["samples_with_gaps"] >= 1
