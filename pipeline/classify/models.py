"""Classifiers by name or import path, and saving/loading trained models safely (skops).

`make_classifier("random_forest" | "lightgbm" | "kmeans" | "package.module:Class" | "package.module.Class",
params, random_state=..., allow_import=[...])`: an import path must name a scikit-learn classifier class,
or be on the config's allow-list (`classify.allow_import`); see `pipeline.config.resolve_model`. Saved
models are skops files (no pickle: loading executes no code; only types on the trusted list below, or
the ones the user names, are loaded) beside a metadata JSON with the classes, the feature names in order
and the feature settings, the training-data hash and the library versions. A model whose features differ
from the run's is refused.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.cluster import KMeans
from sklearn.ensemble import RandomForestClassifier

from pipeline.config import resolve_model
from pipeline.errors import InputError

__all__ = [
    "make_classifier",
    "ClusterClassifier",
    "model_metadata",
    "training_hash",
    "check_features",
    "accepts_missing_values",
    "dump_model",
    "load_model",
    "read_model_file",
]

_VERSIONED = ("scikit-learn", "numpy", "skops", "lightgbm", "midr-pipeline")


class ClusterClassifier(ClassifierMixin, BaseEstimator):
    """Unsupervised k-means for areas without enough labels, with a cluster -> class mapping.

    `mapping` (cluster index -> class code) may be given; clusters it leaves out take the majority class
    of the labelled samples that fall in them (`fit(X, y)`), so a handful of labels is enough. A cluster
    with neither gets `unmapped` (default 255, nodata). Clusters are numbered after sorting the centres
    by their first feature, so the numbering does not depend on k-means' random start.
    """

    def __init__(self, n_clusters: int = 8, mapping: Mapping[int, int] | None = None, unmapped: int = 255,
                 random_state: int | None = None):
        self.n_clusters = n_clusters
        self.mapping = mapping
        self.unmapped = unmapped
        self.random_state = random_state

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=float)
        if len(X) < self.n_clusters:
            raise InputError(f"k-means: {len(X)} samples for {self.n_clusters} clusters")
        kmeans = KMeans(n_clusters=self.n_clusters, n_init=10, random_state=self.random_state).fit(X)
        order = np.lexsort(kmeans.cluster_centers_.T[::-1])
        self.cluster_centers_ = kmeans.cluster_centers_[order]
        clusters = self._cluster(X)
        table = {}
        if y is not None:
            y = np.asarray(y)
            for k in range(self.n_clusters):
                members = y[clusters == k]
                if len(members):
                    values, counts = np.unique(members, return_counts=True)
                    table[k] = int(values[counts.argmax()])
        table.update({int(k): int(v) for k, v in (self.mapping or {}).items()})
        self.cluster_class_ = np.array([table.get(k, self.unmapped) for k in range(self.n_clusters)])
        self.classes_ = np.unique(self.cluster_class_)
        return self

    def _cluster(self, X) -> np.ndarray:
        distance = ((np.asarray(X, dtype=float)[:, None, :] - self.cluster_centers_[None]) ** 2).sum(axis=2)
        return distance.argmin(axis=1)

    def predict(self, X):
        return self.cluster_class_[self._cluster(X)]


def make_classifier(kind: str, params: Mapping[str, Any] | None = None, *, random_state: int,
                    allow_import: Sequence[str] = ()) -> BaseEstimator:
    """A fresh, unfitted classifier: "random_forest" (default), "lightgbm", "kmeans", or a scikit-learn
    classifier class by import path "package.module:Name"; any other callable (e.g. a function returning
    a Pipeline) only where its path is in `allow_import` (`classify.allow_import`).

    `params` are its keyword arguments; `random_state` is passed when the estimator has one and it is
    not set in `params`.
    """
    params = dict(params or {})
    if kind == "random_forest":
        params.setdefault("n_jobs", 1)
        factory = RandomForestClassifier
    elif kind == "lightgbm":
        try:
            from lightgbm import LGBMClassifier
        except ImportError:
            raise InputError("classify.model: 'lightgbm' needs the lightgbm package (pip install lightgbm)") from None
        params.setdefault("n_jobs", 1)
        params.setdefault("verbose", -1)
        params.setdefault("deterministic", True)
        factory = LGBMClassifier
    elif kind == "kmeans":
        factory = ClusterClassifier
    else:
        try:
            factory = resolve_model(kind, tuple(allow_import))
        except ValueError as err:
            raise InputError(f"classify.model: {err}") from None
    try:
        estimator = factory(**params)
    except TypeError as err:
        raise InputError(f"classify.model_params: {kind} does not take these parameters ({err})") from None
    if "random_state" not in params and "random_state" in estimator.get_params(deep=False):
        estimator.set_params(random_state=random_state)
    if not hasattr(estimator, "fit") or not hasattr(estimator, "predict"):
        raise InputError(f"classify.model: {kind} is not a classifier (no fit/predict)")
    return clone(estimator)


def training_hash(X: np.ndarray, y: np.ndarray) -> str:
    """sha256 of the training table (features and labels), to tell which data a model saw."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(X, dtype=np.float32).tobytes())
    digest.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    return digest.hexdigest()


def model_metadata(model: BaseEstimator, *, kind: str, features: Sequence[str], class_codes: Sequence[int],
                   X: np.ndarray, y: np.ndarray, feature_settings: dict | None = None) -> dict:
    """Metadata saved beside a model: what it is, what it needs and what it was trained on."""
    versions = {}
    for name in _VERSIONED:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return {
        "model": kind, "estimator": f"{type(model).__module__}.{type(model).__qualname__}",
        "params": {k: v for k, v in model.get_params(deep=False).items() if isinstance(v, (int, float, str, bool, type(None)))},
        "features": list(features), "feature_settings": feature_settings, "class_codes": [int(c) for c in class_codes],
        "n_samples": int(len(y)), "training_sha256": training_hash(X, y), "versions": versions,
    }


def check_features(metadata: dict, features: Sequence[str], *, source: str, settings: dict | None = None) -> None:
    """Refuse a model whose features (names and order) are not the run's, or whose recorded feature
    settings (classify.features: gap filling, sub-periods, ...) differ from the run's `settings`."""
    if list(metadata.get("features", [])) != list(features):
        raise InputError(f"{source}: the model was trained on features {metadata.get('features')}, but this "
                         f"run has {list(features)}; retrain (drop classify.model_path) or match "
                         "composite.indices and classify.features to the model's run")
    recorded = metadata.get("feature_settings") or {}
    differ = sorted(k for k in (settings or {}) if k in recorded and recorded[k] != settings[k])
    if differ:
        raise InputError(f"{source}: the model was trained with other classify.features settings ({', '.join(differ)}: "
                         f"{ {k: recorded.get(k) for k in differ} } there, { {k: settings.get(k) for k in differ} } "
                         "here); retrain or use the model's settings")


def accepts_missing_values(estimator: BaseEstimator) -> bool:
    """Whether the estimator takes NaN features (scikit-learn's `allow_nan` tag; LightGBM always)."""
    if type(estimator).__module__.startswith("lightgbm"):
        return True
    try:
        from sklearn.utils import get_tags

        return bool(get_tags(estimator).input_tags.allow_nan)
    except (ImportError, AttributeError, TypeError):
        return False


def dump_model(model: BaseEstimator) -> bytes:
    """The model as skops bytes (no pickle)."""
    import skops.io as sio

    return _fixed_zip_times(sio.dumps(model))


def _fixed_zip_times(archive: bytes) -> bytes:
    """The skops archive made canonical, so the same model gives the same bytes: skops names objects by
    their memory address (`"__id__": 1404...`, `"file": "1404....npy"`); these become 1, 2, 3... in
    order of appearance, and every member is dated 1980-01-01."""
    import io as bytes_io
    import re
    import zipfile

    source = zipfile.ZipFile(bytes_io.BytesIO(archive))
    schema = source.read("schema.json").decode()
    numbers: dict[str, str] = {}
    for match in re.finditer(r'"__id__": (\d+)|"file": "(\d+)\.npy"', schema):
        numbers.setdefault(match.group(1) or match.group(2), str(len(numbers) + 1))
    schema = re.sub(r'("__id__": )(\d+)', lambda m: m.group(1) + numbers[m.group(2)], schema)
    schema = re.sub(r'("file": ")(\d+)(\.npy")', lambda m: m.group(1) + numbers[m.group(2)] + m.group(3), schema)
    members = {"schema.json": schema.encode()}
    for info in source.infolist():
        stem = info.filename.removesuffix(".npy")
        if info.filename != "schema.json":
            members[f"{numbers.get(stem, stem)}.npy"] = source.read(info)
    target = bytes_io.BytesIO()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for name in sorted(members):
            out.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), members[name],
                         compress_type=zipfile.ZIP_DEFLATED)
    return target.getvalue()


def load_model(data: bytes, *, trusted: Sequence[str] = (), source: str = "model") -> BaseEstimator:
    """A model from skops bytes. Types skops does not trust by default must be named in `trusted`
    (classify.trusted_types); anything else is refused before any object is built."""
    import skops.io as sio

    try:
        untrusted = set(sio.get_untrusted_types(data=data))
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError) as err:  # not a skops zip, or one cut short
        raise InputError(f"{source}: not a readable skops model file ({type(err).__name__}: {err}); it may be "
                         "truncated or not a model: train again or point classify.model_path at another file") from None
    unknown = sorted(untrusted - set(trusted) - _TRUSTED)
    if unknown:
        raise InputError(f"{source}: the model holds types that are not trusted: {unknown}; if you trust "
                         "the file, list them in classify.trusted_types")
    try:
        return sio.loads(data, trusted=sorted(untrusted))
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, OSError) as err:
        raise InputError(f"{source}: cannot load the skops model ({type(err).__name__}: {err}); it may be damaged: "
                         "train again or point classify.model_path at another file") from None


# Types of this package and of LightGBM that the models above consist of (skops trusts sklearn's own).
_TRUSTED = {
    "pipeline.classify.models.ClusterClassifier",
    "sklearn.tree._tree.Tree",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.basic.Booster",
    "collections.OrderedDict",
    "collections.defaultdict",
}


def read_model_file(path: Path) -> tuple[bytes, dict]:
    """A saved model's skops bytes and its metadata (the JSON beside it, same stem)."""
    meta_path = path.with_suffix(".json")
    for needed in (path, meta_path):
        if not needed.is_file():
            raise InputError(f"{needed}: model file not found (classify.model_path)")
    try:
        return path.read_bytes(), json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{meta_path}: cannot read the model metadata ({err})") from None
