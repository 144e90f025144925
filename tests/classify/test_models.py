"""Classifier factory and safe model files (skops): round trip, refusal of untrusted types and of
models trained on other features."""

from __future__ import annotations

import numpy as np
import pytest
import skops.io as sio
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.errors import InputError
from pipeline.classify.models import (ClusterClassifier, check_features, dump_model, load_model, make_classifier,
                             model_metadata)


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    return X, np.where(X[:, 0] > 0, 2, 1)


@pytest.mark.parametrize("kind, params", [
    ("random_forest", {"n_estimators": 5}),
    ("lightgbm", {"n_estimators": 5}),
    ("kmeans", {"n_clusters": 4}),
    ("sklearn.ensemble:ExtraTreesClassifier", {"n_estimators": 5}),
    ("sklearn.linear_model.LogisticRegression", {"C": 1.0}),
    ("test_models:scaled_forest", {"n_estimators": 5}),
])
def test_every_kind_trains_and_survives_a_skops_round_trip(kind, params):
    X, y = _data()
    model = make_classifier(kind, params, random_state=7, allow_import=["test_models:scaled_forest"]).fit(X, y)
    if "random_state" in model.get_params(deep=False):
        assert model.get_params()["random_state"] == 7
    assert (model.predict(X) == y).mean() > 0.7
    loaded = load_model(dump_model(model))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_unknown_models_and_parameters_are_refused_with_the_key():
    with pytest.raises(InputError, match="classify.model: cannot import 'sklearn.nothing:Forest'"):
        make_classifier("sklearn.nothing:Forest", {}, random_state=0)
    with pytest.raises(InputError, match="classify.model: 'forest' is neither"):
        make_classifier("forest", {}, random_state=0)
    with pytest.raises(InputError, match="classify.model_params"):
        make_classifier("random_forest", {"n_trees": 5}, random_state=0)


CALLED = []


def record_call(**kwargs):
    """A function a config could name: it must never be called unless allow-listed."""
    CALLED.append(kwargs)
    return RandomForestClassifier(n_estimators=2)


@pytest.mark.parametrize("path, why", [
    ("os:system", "is not a scikit-learn classifier class"),
    ("subprocess:Popen", "is not a scikit-learn classifier class"),
    ("test_models:record_call", "is not a scikit-learn classifier class"),
    ("sklearn.linear_model:LinearRegression", "is a scikit-learn estimator but not a classifier"),
    ("builtins:eval", "is not a scikit-learn classifier class"),
])
def test_an_import_path_must_name_a_classifier_class_or_be_allow_listed(path, why):
    CALLED.clear()
    with pytest.raises(InputError, match=f"classify.model: '{path}' {why}"):
        make_classifier(path, {"command": "touch /tmp/midr-was-here"}, random_state=0)
    assert CALLED == []  # nothing was called with the config's parameters
    model = make_classifier("test_models:record_call", {"marker": 1}, random_state=0,
                            allow_import=["test_models:record_call"])
    assert CALLED == [{"marker": 1}] and isinstance(model, RandomForestClassifier)


def test_a_corrupt_skops_file_is_named(tmp_path):
    X, y = _data()
    data = dump_model(make_classifier("random_forest", {"n_estimators": 2}, random_state=0).fit(X, y))
    for name, content in (("cut.skops", data[:len(data) // 2]), ("text.skops", b"not a zip at all")):
        with pytest.raises(InputError, match=f"{name}: not a readable skops model file .*train again"):
            load_model(content, source=str(tmp_path / name))


def test_kmeans_maps_clusters_to_the_majority_label_and_explicit_mapping_wins():
    X, y = _data()
    model = ClusterClassifier(n_clusters=2, random_state=0).fit(X[:, :1], y)
    assert (model.predict(X[:, :1]) == y).mean() > 0.9
    fixed = ClusterClassifier(n_clusters=2, mapping={0: 5, 1: 6}, random_state=0).fit(X[:, :1])
    assert set(fixed.predict(X[:, :1])) == {5, 6}


def test_loading_refuses_types_it_does_not_trust():
    X, y = _data()
    data = sio.dumps(Pipeline([("model", _Custom(n_estimators=3))]).fit(X, y))
    with pytest.raises(InputError, match="not trusted.*test_models._Custom.*classify.trusted_types"):
        load_model(data, source="custom.skops")


def test_a_model_trained_on_other_features_is_refused():
    X, y = _data()
    model = make_classifier("random_forest", {"n_estimators": 3}, random_state=0).fit(X, y)
    metadata = model_metadata(model, kind="random_forest", features=["red", "nir", "ndvi"], class_codes=[1, 2],
                              X=X, y=y)
    assert metadata["features"] == ["red", "nir", "ndvi"] and len(metadata["training_sha256"]) == 64
    assert {"scikit-learn", "numpy", "skops"} <= set(metadata["versions"])
    check_features(metadata, ["red", "nir", "ndvi"], source="m.skops")
    with pytest.raises(InputError, match=r"m.skops: the model was trained on features \['red', 'nir', 'ndvi'\], "
                                         r"but this run has \['red', 'ndvi', 'nir'\]"):
        check_features(metadata, ["red", "ndvi", "nir"], source="m.skops")


class _Custom(ExtraTreesClassifier):
    pass


def scaled_forest(n_estimators: int = 10) -> Pipeline:
    """A factory returning a Pipeline, to be named by import path like a class."""
    return make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=n_estimators, random_state=0))
