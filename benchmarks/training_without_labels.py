"""Issue 20's figures: training from a reference land-cover map, and change without labels (segmentation).

    .venv/bin/python benchmarks/training_without_labels.py [--demo-run outputs/demo] [--slovenia DIR]

Demo (synthetic, truth known; needs a finished run of configs/demo.yaml: `make demo`):
  - the 2020 truth written in ESA WorldCover codes is the reference map (translated back with the WorldCover
    dictionary of docs/training_without_labels.md); the package's `train_and_predict` trains on the 2020
    composite and maps all 15 years: per-year agreement with the truth and mining-area error, beside the
    run's own point-trained maps (600 points x 5 years);
  - `change.segmentation` (NDVI and NBR, `min_magnitude` 0.1 and 0.15) against the truth's first change:
    detected, within +-1 year, and the false-disturbance share among never-changed pixels.
Slovenia (real Sentinel-2 NDVI, 2015-2017; /work/shared/data/s2_slovenia_eolearn, README there):
  - configs/s2_slovenia_eolearn.yaml is run as is (polygon-trained: today's figures), then its composites are
    classified with lulc.tif as the reference map: spatial CV OA and per-class F1 of each; and both designs
    scored out of fold (4 folds of 250 m blocks) against held-out map pixels and against the 88 polygons'
    pixels (map labels drawn only from the training folds' blocks);
  - segmentation of quarterly NDVI composites (the package's quarterly periods): false-disturbance share in
    the forest, raw and de-seasonalised against the first year.
Takes several minutes (two pipeline runs of Slovenia, the classification of 15 demo years).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
import xarray as xr
from _common import ROOT, load_average, machine, print_table
from sklearn.base import clone
from sklearn.metrics import f1_score
from sklearn.model_selection import GroupKFold

from pipeline.change.maps import _first_change_np
from pipeline.change.segmentation import NOT_SEGMENTED, segment_index, segment_np
from pipeline.change.stage import segmentation_index
from pipeline.classify import make_classifier, polygon_pixels
from pipeline.classify import stage as classify_stage
from pipeline.classify.reference import reference_on_grid, sample_reference_pixels
from pipeline.config import load_config
from pipeline.demo import truth_class_map
from pipeline.io import read_vector
from pipeline.results import open_run
from pipeline.runner import run_pipeline

WORLDCOVER_TO_DEMO = {10: 2, 20: 3, 30: 3, 40: 4, 50: 5, 60: 6, 80: 1, 90: 3, 95: 2, 70: None, 100: None}
DEMO_TO_WORLDCOVER = {1: 80, 2: 10, 3: 30, 4: 40, 5: 50, 6: 60}
SLOVENIA_CLASSES = {1: "cultivated", 2: "forest", 3: "grassland", 4: "shrubland", 8: "artificial"}


def composites_of(run, aoi_id: str) -> xr.Dataset:
    periods = run.periods(aoi_id)
    layers = [run.composite(aoi_id, p) for p in periods]
    stack = xr.concat(layers, dim=pd.Index(periods, name="period")).assign_coords(
        period_start=("period", pd.to_datetime(run.period_table(aoi_id)["period_start"]).values),
        period_end=("period", pd.to_datetime(run.period_table(aoi_id)["period_end"]).values))
    return stack.load().rio.write_crs(layers[0].rio.crs)


# ----------------------------------------------------------------------------------------------- demo
def demo(run_dir: Path, data_dir: Path, work: Path) -> None:
    run = open_run(run_dir)
    aoi_id = run.aoi_ids[0]
    points = run.class_map(aoi_id).load()
    composites = composites_of(run, aoi_id)
    truth = truth_class_map(data_dir / "truth", points)
    periods = [str(p) for p in points["period"].values]
    print(f"\nDEMO: {run_dir} ({len(periods)} periods, {points.sizes['y']} x {points.sizes['x']} px)")

    # the 2020 truth, as a WorldCover map would give it
    with rasterio.open(data_dir / "truth" / "2020.tif") as src:
        profile, codes = src.profile, src.read(1)
    worldcover = np.vectorize(lambda c: DEMO_TO_WORLDCOVER.get(int(c), 0), otypes=[np.uint8])(codes)
    profile.update(nodata=0)
    map_path = work / "demo_2020_worldcover.tif"
    with rasterio.open(map_path, "w", **profile) as dst:
        dst.write(worldcover, 1)
    config = load_config(ROOT / "configs" / "demo_reference_map.yaml", overrides={"classify": {
        "training": {"map": str(map_path), "year": 2020, "classes": WORLDCOVER_TO_DEMO, "nodata": [0]},
        "temporal_filter": "none"}})
    started = time.perf_counter()
    predicted, accuracy, _ = classify_stage.train_and_predict(config, composites, None, list(composites.data_vars))
    mapped = predicted["class_map"].load()
    seconds = time.perf_counter() - started
    training = accuracy["training"]
    print(f"map-trained: {accuracy['n_labels']} pixels sampled from the 2020 map (per class "
          f"{ {k: v['sampled'] for k, v in training['per_class'].items()} }), spatial CV OA "
          f"{accuracy['spatial_cv']['overall_accuracy']}; trained and mapped in {seconds:.0f} s")
    rows, oa_map, oa_points, err_map, err_points = [], [], [], [], []
    for period in periods:
        t = truth.sel(period=period).values
        valid = t != 255
        a_map = float((mapped.sel(period=period).values == t)[valid].mean())
        a_points = float((points.sel(period=period).values == t)[valid].mean())
        true_mining = float((t == 6).sum())
        e_map = 100 * ((mapped.sel(period=period).values == 6) & valid).sum() / true_mining - 100
        e_points = 100 * ((points.sel(period=period).values == 6) & valid).sum() / true_mining - 100
        rows.append([period, a_map, a_points, e_map, e_points])
        oa_map.append(a_map), oa_points.append(a_points), err_map.append(abs(e_map)), err_points.append(abs(e_points))
    f3, f1 = (lambda v: f"{v:.3f}"), (lambda v: f"{v:+.1f}")
    print_table(["period", "OA map-trained", "OA point-trained", "mining err % map", "mining err % points"], rows,
                [None, f3, f3, f1, f1])
    print(f"mean OA: map-trained {np.mean(oa_map):.3f} (worst {min(oa_map):.3f}), point-trained "
          f"{np.mean(oa_points):.3f} (worst {min(oa_points):.3f}); mean |mining-area error|: map-trained "
          f"{np.mean(err_map):.1f} %, point-trained {np.mean(err_points):.1f} %")

    # segmentation against the truth's first change
    first = _first_change_np(np.moveaxis(truth.values, 0, -1), 255).astype(int)
    changed, never = (first > 0) & (first < 65535), first == 0
    table = []
    for index in ("ndvi", "nbr"):
        series = segmentation_index(composites.assign_coords(period=periods), index)
        for min_magnitude in (0.1, 0.15):
            started = time.perf_counter()
            number = segment_index(series, min_magnitude=min_magnitude)["disturbance_period"].values.astype(int)
            seconds = time.perf_counter() - started
            seg = number != NOT_SEGMENTED
            found = seg & (number > 0)
            near = found & (np.abs(number - first) <= 1)
            table.append([index, min_magnitude, int((changed & seg).sum()), found[changed & seg].mean(),
                          near[changed & seg].mean(), near[found & changed].mean(), found[never & seg].mean(),
                          seconds])
    print("segmentation (no labels) against the truth's first change year:")
    print_table(["index", "min_magnitude", "changed px", "detected", "within +-1 yr", "within +-1 of detected",
                 "false (never changed)", "seconds"], table,
                [None, None, None, f3, f3, f3, f3, lambda v: f"{v:.1f}"])


# ------------------------------------------------------------------------------------------- Slovenia
def slovenia_runs(data: Path, work: Path):
    """Today's Slovenia config (polygons) and a quarterly, composites-only run with segmentation."""
    config = load_config(ROOT / "configs" / "s2_slovenia_eolearn.yaml", overrides={"output_dir": str(work)})
    started = time.perf_counter()
    run_pipeline(config)
    print(f"\nSLOVENIA: configs/s2_slovenia_eolearn.yaml run in {time.perf_counter() - started:.0f} s")
    quarterly = load_config(ROOT / "configs" / "s2_slovenia_eolearn.yaml", overrides={
        "output_dir": str(work), "run_name": "slovenia_quarterly", "composite": {"period": "quarter"},
        "change": {"segmentation": {"index": "ndvi", "min_observations": 6}}})
    quarterly = quarterly.model_copy(update={"classify": None})
    run_pipeline(quarterly)
    return open_run(work / config.run_name), open_run(work / "slovenia_quarterly")


def scores(y_true, y_pred, codes) -> list:
    present = [c for c in codes if (y_true == c).any()]
    f1 = f1_score(y_true, y_pred, labels=present, average=None, zero_division=0)
    by_class = dict(zip(present, f1))
    return [len(y_true), float(np.mean(y_true == y_pred)), float(np.mean(f1)),
            *[by_class.get(c) for c in (2, 3, 4, 8)]]


def slovenia_classification(run, lulc_path: Path) -> None:
    aoi_id = run.aoi_ids[0]
    composites = composites_of(run, aoi_id)
    layers = list(composites.data_vars)
    today = run.accuracy(aoi_id)
    config = load_config(ROOT / "configs" / "s2_slovenia_eolearn.yaml")
    rows = [["polygons (today's run)", "spatial CV (polygon pixels)",
             *scores_from(today["spatial_cv"])]]
    for name, edge in (("map, outliers only (edge_px 0)", 0), ("map, defaults (edge_px 1)", 1)):
        cfg = load_config(ROOT / "configs" / "s2_slovenia_eolearn.yaml", overrides={"classify": {"training": {
            "map": str(lulc_path), "year": 2016, "classes": {1: 1, 2: 2, 3: 3, 4: 4, 8: 8}, "nodata": [0],
            "edge_px": edge}}})
        _, accuracy, _ = classify_stage.train_and_predict(cfg, composites, None, layers)
        rows.append([name, "spatial CV (map samples, 2016)", *scores_from(accuracy["spatial_cv"])])
        missing = accuracy["training"]["missing_classes"]
        if missing:
            print(f"{name}: classes the map gives no sample of: {missing}")

    # out of fold, the same 250 m blocks for every design; the map's labels only from the training folds
    features = classify_stage.classify.feature_stack(composites, layers).load()
    grid = features.isel(period=0, feature=0)
    codes, _ = reference_on_grid(lulc_path, grid)
    codes = np.where(codes < 0, 0, codes)
    ny, nx = codes.shape
    xs, ys = np.meshgrid(grid["x"].values, grid["y"].values)
    block = np.floor(xs / 250).astype(np.int64) * 100_000 + np.floor(ys / 250).astype(np.int64)
    fold = np.full(codes.shape, -1)
    labelled = np.flatnonzero(codes.ravel() != 0)
    for f, (_, test) in enumerate(GroupKFold(n_splits=4, shuffle=True, random_state=42).split(
            labelled, groups=block.ravel()[labelled])):
        fold.ravel()[labelled[test]] = f
    polygons = read_vector(Path(config.classify.training), what="polygons")
    polygons = polygons[polygons["LULC_ID"] != 0]
    pts = polygon_pixels(polygons, grid, max_per_polygon=50, seed=42)
    col = np.searchsorted(grid["x"].values, pts.geometry.x.to_numpy())
    row = np.searchsorted(-grid["y"].values, -pts.geometry.y.to_numpy())
    poly = pd.DataFrame({"row": row, "col": col, "code": pts["LULC_ID"].to_numpy().astype(int)})
    poly = poly[(poly.row < ny) & (poly.col < nx)]
    poly["fold"] = fold[poly.row, poly.col]
    stack = np.moveaxis(features.values, 0, 2)                           # (y, x, period, feature)
    n_periods = stack.shape[2]
    side = stack.reshape(ny, nx, -1)
    class_codes = sorted(SLOVENIA_CLASSES)
    model = make_classifier("random_forest", {"n_estimators": 100}, random_state=42)
    designs = {"polygon pixels (today's labels)": None, "map, outliers only (edge_px 0)": 0,
               "map, defaults (edge_px 1)": 1}
    for name, edge in designs.items():
        got = {"map": ([], []), "polygons": ([], [])}
        for f in range(4):
            if edge is None:
                train = poly[(poly.fold != f) & (poly.fold >= 0)]
                r, c, lab = train.row.to_numpy(), train.col.to_numpy(), train.code.to_numpy()
            else:
                r, c, lab, _ = sample_reference_pixels(np.where((fold != f) & (fold >= 0), codes, 0), side,
                                                       translate={k: k for k in class_codes}, per_class=500,
                                                       edge_px=edge, seed=42 + f, nodata=[0], classes=class_codes)
            X = np.concatenate([stack[r, c, k] for k in range(n_periods)])
            y = np.tile(lab, n_periods)
            ok = np.isfinite(X).all(axis=1)
            fitted = clone(model).fit(X[ok], y[ok])
            test_pixels = fold == f
            tests = {"map": (np.nonzero(test_pixels), codes[test_pixels]),
                     "polygons": ((poly[poly.fold == f].row.to_numpy(), poly[poly.fold == f].col.to_numpy()),
                                  poly[poly.fold == f].code.to_numpy())}
            for key, ((tr, tc), truth) in tests.items():
                for k in range(n_periods):
                    Xt = stack[tr, tc, k]
                    good = np.isfinite(Xt).all(axis=1)
                    got[key][0].append(truth[good])
                    got[key][1].append(fitted.predict(Xt[good]))
        for key, label in (("map", "held-out map pixels"), ("polygons", "held-out polygon pixels")):
            rows.append([name, f"out of fold: {label}", *scores(np.concatenate(got[key][0]),
                                                                np.concatenate(got[key][1]), class_codes)])
    f3 = lambda v: f"{v:.3f}"
    print("classification (NDVI median/min/max per year, 2015-2017; 4-fold, 250 m blocks):")
    print_table(["training labels", "test", "n", "OA", "macro-F1", "F1 forest", "F1 grassland", "F1 shrubland",
                 "F1 artificial"], rows, [None, None, None, f3, f3, f3, f3, f3, f3])


def scores_from(cv: dict) -> list:
    by_class = {c["code"]: c["f1"] for c in cv["classes"] if c["n_reference"]}
    present = [v for v in by_class.values() if v is not None]
    return [cv["n_samples"], cv["overall_accuracy"], float(np.mean(present)),
            *[by_class.get(c) for c in (2, 3, 4, 8)]]


def slovenia_segmentation(run, lulc_path: Path) -> None:
    aoi_id = run.aoi_ids[0]
    composites = composites_of(run, aoi_id)
    index = segmentation_index(composites, "ndvi")
    codes, _ = reference_on_grid(lulc_path, index.isel(period=0))
    number = np.asarray(xr.open_dataarray(run.layout.disturbance(aoi_id, "period"), engine="rasterio").squeeze().values)
    table = pd.read_csv(run.layout.disturbance_area(aoi_id))
    print(f"segmentation of {index.sizes['period']} quarterly NDVI composites (package stage, raw series): "
          f"{(number == NOT_SEGMENTED).mean():.3f} of pixels have too few observations")
    start = pd.to_datetime(index["period_start"].values)
    quarter = start.quarter.to_numpy()
    first_year = np.arange(len(start)) < 4
    values = np.moveaxis(index.values, 0, -1)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        climate = np.stack([np.nanmedian(values[..., (quarter == q) & first_year], axis=-1) for q in range(1, 5)], -1)
    anomaly = values - climate[..., quarter - 1]
    times = (start.year + (start.quarter - 0.5) / 4).to_numpy(dtype=float)
    rows = []
    forest = codes == 2
    for name, series in (("raw quarterly NDVI (the stage)", None), ("anomaly vs first-year quarter median", anomaly)):
        for min_magnitude in (0.1, 0.15):
            if series is None:
                if min_magnitude != 0.1:
                    continue
                flagged = (number > 0) & (number != NOT_SEGMENTED)
            else:
                flagged = segment_np(series, times, min_magnitude=min_magnitude)["disturbed"]
            rows.append([name, min_magnitude, int(forest.sum()), flagged[forest].mean(),
                         flagged[codes == 3].mean() if (codes == 3).any() else None])
    print("false-disturbance share (no clearing is known in this forest, 2015 Q3 - 2017 Q4):")
    print_table(["series", "min_magnitude", "forest px", "forest flagged", "grassland flagged"], rows,
                [None, None, None, lambda v: f"{v:.4f}", lambda v: f"{v:.4f}"])
    print(f"metrics/disturbance_area.csv: {len(table)} rows, {table['disturbed_area_ha'].sum():.2f} ha disturbed in all")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-run", type=Path, default=ROOT / "outputs" / "demo", help="a finished demo run")
    parser.add_argument("--demo-data", type=Path, default=ROOT / "data" / "demo")
    parser.add_argument("--slovenia", type=Path, default=Path("/work/shared/data/s2_slovenia_eolearn"),
                        help="the Slovenia data set (its lulc.tif is the reference map)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["demo", "slovenia"])
    args = parser.parse_args()
    print(f"machine: {machine()}; load average {load_average()}")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        if "demo" not in args.skip:
            if not (args.demo_run / "manifest.json").exists():
                print(f"no demo run at {args.demo_run}: run `make demo` first (or pass --demo-run)")
                return 2
            demo(args.demo_run, args.demo_data, work)
        if "slovenia" not in args.skip:
            polygons, quarterly = slovenia_runs(args.slovenia, work)
            slovenia_classification(polygons, args.slovenia / "lulc.tif")
            slovenia_segmentation(quarterly, args.slovenia / "lulc.tif")
    print(f"load average at the end {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
