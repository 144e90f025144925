"""Classification outputs of the small demo run: confidence, model file, sample design, area estimates,
model reuse, and byte-identical class maps on 1 and 2 workers."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import rioxarray
import xarray as xr

from pipeline.classify.training import read_training_data
from pipeline.classify import stage as runner
from pipeline.config import load_config
from pipeline.errors import InputError
from pipeline.results import OutputLayout, open_run

from conftest import midr


def _composites(run) -> xr.Dataset:
    periods = run.periods("demo_mine")
    composites = xr.concat([run.composite("demo_mine", p) for p in periods], dim=pd.Index(periods, name="period"))
    return composites.load().rio.write_crs(run.class_map("demo_mine").rio.crs)


def _truth(demo_run, period: str, like: xr.DataArray) -> xr.DataArray:
    truth = rioxarray.open_rasterio(demo_run / "data" / "truth" / f"{period}.tif").squeeze("band", drop=True)
    return truth.sel(x=like.x, y=like.y, method="nearest", tolerance=1e-6)


def test_classification_outputs_are_written(demo_run):
    run = open_run(demo_run / "outputs" / "demo_small")
    layout, periods = run.layout, run.periods("demo_mine")
    for period in periods:
        confidence = rioxarray.open_rasterio(layout.confidence("demo_mine", period)).squeeze("band", drop=True)
        classes = run.class_map("demo_mine").sel(period=period).values
        assert confidence.dtype == np.float32
        values = confidence.values
        assert np.isnan(values[classes == 255]).all()
        inside = values[classes != 255]
        assert np.isfinite(inside).all() and inside.min() >= 1 / 6 and inside.max() <= 1
    accuracy = run.accuracy("demo_mine")
    assert accuracy["spatial_cv"]["n_folds"] == 5 and accuracy["spatial_cv"]["overall_accuracy"] >= 0.85
    matrix = pd.read_csv(layout.confusion_matrix("demo_mine"))
    assert set(matrix["assessment"]) == {"holdout", "spatial_cv"}
    assert matrix[matrix.assessment == "spatial_cv"].filter(like="map_").to_numpy().sum() == \
        accuracy["spatial_cv"]["n_samples"]
    metadata = json.loads(layout.model("demo_mine").with_suffix(".json").read_text())
    assert metadata["features"] == accuracy["features"] and metadata["class_codes"] == [1, 2, 3, 4, 5, 6]
    assert metadata["feature_settings"]["gap_fill"] == ["neighbours", "interpolate"]
    # the test-size demo's features (demo_small.yaml: no sub-periods): composite and NDVI range, each a
    # named layer of the composite COG
    with rasterio.open(layout.composite("demo_mine", periods[0])) as cog:
        names = list(cog.descriptions)
    assert names == accuracy["features"]
    assert {"red", "nir", "ndvi", "ndwi", "ndvi_min", "ndvi_max"} <= set(names) and "ndvi_p50" not in names
    assert not [n for n in names if re.fullmatch(r"ndvi_m\d\d", n)] and "gaps" not in accuracy
    importance = pd.read_csv(layout.feature_importance("demo_mine"))
    assert set(importance["feature"][importance["kind"] == "feature"]) == set(names)
    assert "ndvi range" in set(importance["feature"]) and importance["mean_oa_drop"].max() > 0
    sample = gpd.read_file(layout.sample_design("demo_mine"), layer=0)
    stages = run.manifest["aois"]["demo_mine"]["stages"]["classify"]
    assert len(sample) == stages["sample_design"]["n_samples"] and sample["reference_code"].isna().all()
    assert (sample.groupby("map_code").size() >= 50).all()


def test_a_saved_model_is_reused_by_another_run_and_refused_on_other_features(demo_run):
    run = open_run(demo_run / "outputs" / "demo_small")
    composites = _composites(run)
    layers = list(composites.data_vars)
    groups = run.manifest["aois"]["demo_mine"]["stages"]["composite"]["feature_groups"]
    config = load_config(demo_run / "config.yaml",
                         overrides={"classify": {"model_path": str(run.layout.model("demo_mine"))}})
    points = read_training_data(config.classify.training, class_field="class_code", period_field="year")
    predicted, accuracy, saved = runner.train_and_predict(config, composites, points, groups)
    assert saved is None and accuracy["model"]["training_sha256"]
    np.testing.assert_array_equal(predicted["class_map"].values, run.class_map("demo_mine").values)
    with pytest.raises(InputError, match="the model was trained on features"):
        runner.train_and_predict(config, composites[layers[::-1]], points, layers[::-1])
    other = load_config(demo_run / "config.yaml", overrides={"classify": {
        "model_path": str(run.layout.model("demo_mine")), "features": {"gap_fill": ["interpolate"]}}})
    with pytest.raises(InputError, match=r"other classify.features settings \(gap_fill"):
        runner.train_and_predict(other, composites, points, groups)


def test_a_labelled_sample_gives_error_adjusted_areas(demo_run, tmp_path):
    """Label the run's own sample design from the truth (as a user would in QGIS), read it back."""
    run = open_run(demo_run / "outputs" / "demo_small")
    sample = gpd.read_file(run.layout.sample_design("demo_mine"), layer=0)
    period = str(sample["period"].iloc[0])
    class_map = run.class_map("demo_mine", cleaned=True).load()  # the design is drawn from the cleaned maps
    truth = _truth(demo_run, period, class_map)
    sample["reference_code"] = truth.sel(x=xr.DataArray(sample.geometry.x.to_numpy(), dims="s"),
                                         y=xr.DataArray(sample.geometry.y.to_numpy(), dims="s")).values.astype(int)
    labelled = tmp_path / "labelled.gpkg"
    sample.to_file(labelled, layer="sample_design")
    config = load_config(demo_run / "config.yaml", overrides={"classify": {"validation_sample": str(labelled)}})
    out, accuracy = OutputLayout(tmp_path / "run"), {}
    report = runner.validation_design(config, class_map, accuracy, out, "demo_mine")
    table = pd.read_csv(out.area_estimates("demo_mine"))
    assert list(table.columns[:7]) == ["class_code", "class_name", "mapped_area_ha", "adjusted_area_ha", "se_ha",
                                       "ci95_low_ha", "ci95_high_ha"]
    true_ha = np.array([(truth.values[class_map.sel(period=period).values != 255] == c).sum() for c in range(1, 7)]) * 0.09
    # + 0.2 ha (two pixels): a class the sample finds no error in has se 0, yet may miss a pixel or two
    assert (np.abs(table["adjusted_area_ha"] - true_ha) <= 3 * table["se_ha"] + 0.2).all()
    true_oa = float((truth.values == class_map.sel(period=period).values)[class_map.sel(period=period).values != 255].mean())
    assert abs(report["design_based_overall_accuracy"] - true_oa) < 0.03
    assert accuracy["design_based"]["confusion_matrix"]["rows"] == "map"
    sample.loc[0, "reference_code"] = None
    sample.to_file(labelled, layer="sample_design")
    with pytest.raises(InputError, match="1 sample\\(s\\) have no 'reference_code' yet"):
        runner.validation_design(config, class_map, {}, out, "demo_mine")


def test_threads_and_worker_processes_write_byte_identical_class_maps(demo_run):
    config = (demo_run / "config.yaml").read_text().replace("run_name: demo_small", "run_name: two_workers")
    assert "cluster: auto" in config
    config = config.replace("cluster: auto", "cluster: local\n  n_workers: 2\n  memory_limit: 2GiB")
    # the CV's figures are not compared, only the maps of the model it leaves untouched: skip it to save time
    config = config.replace("training: data/training_points.gpkg", "training: data/training_points.gpkg\n  cv_folds: 0")
    (demo_run / "two_workers.yaml").write_text(config)
    result = midr("run", str(demo_run / "two_workers.yaml"))
    assert result.returncode == 0, result.stderr
    threads, workers = open_run(demo_run / "outputs" / "demo_small"), open_run(demo_run / "outputs" / "two_workers")
    assert threads.manifest["cluster"]["mode"] == "threads" and workers.manifest["cluster"]["mode"] == "local"
    assert workers.manifest["cluster"]["workers"] == 2
    for period in threads.periods("demo_mine"):
        for path in ("class_map", "confidence"):
            first = getattr(threads.layout, path)("demo_mine", period).read_bytes()
            assert first == getattr(workers.layout, path)("demo_mine", period).read_bytes(), (path, period)


def test_a_labelled_change_sample_gives_error_adjusted_change_areas(demo_run, tmp_path):
    """The change map first -> last period (stable / grass->mining / other change): its sample design
    labelled from the truth's change map, read back into error-adjusted change areas."""
    transitions = [[3, 6]]
    class_map = open_run(demo_run / "outputs" / "demo_small").class_map("demo_mine").load()
    first, last = (str(p) for p in class_map["period"].values[[0, -1]])
    config = load_config(demo_run / "config.yaml", overrides={"classify": {"change_transitions": transitions}})
    out = OutputLayout(tmp_path / "run")
    report = runner.validation_design(config, class_map, {}, out, "demo_mine")
    assert report["change_sample_design"]["periods"] == [first, last]
    sample = gpd.read_file(out.change_sample_design("demo_mine"), layer=0)
    assert set(sample["map_class"]) == {"stable", "grass/shrub -> bare ground & mining", "other change"}
    truth_from, truth_to = _truth(demo_run, first, class_map), _truth(demo_run, last, class_map)
    true_change = np.where(truth_from.values == truth_to.values, 0, 2)
    for k, (a, b) in enumerate(transitions, start=1):
        true_change[(truth_from.values == a) & (truth_to.values == b)] = k
    at = {"x": xr.DataArray(sample.geometry.x.to_numpy(), dims="s"), "y": xr.DataArray(sample.geometry.y.to_numpy(), dims="s")}
    sample["reference_code"] = truth_from.copy(data=true_change).sel(**at).values.astype(int)
    labelled = tmp_path / "change_labelled.gpkg"
    sample.to_file(labelled, layer="change_sample_design")
    config = load_config(demo_run / "config.yaml", overrides={"classify": {
        "change_transitions": transitions, "change_validation_sample": str(labelled)}})
    runner.validation_design(config, class_map, {}, out, "demo_mine")
    table = pd.read_csv(out.change_area_estimates("demo_mine")).set_index("class_name")
    mapped = (class_map.sel(period=first).values != 255) & (class_map.sel(period=last).values != 255)
    true_ha = (true_change[mapped] == 1).sum() * 0.09  # grass/shrub -> bare ground & mining, where mapped
    row = table.loc["grass/shrub -> bare ground & mining"]
    assert row["ci95_low_ha"] <= true_ha <= row["ci95_high_ha"]
    assert row["adjusted_area_ha"] == pytest.approx(true_ha, rel=0.10)
