"""Which features classify land cover best: classify.features variants measured on real data.

    .venv/bin/python benchmarks/phenology_features.py slovenia          # ~10 min on 2 shared cores
    .venv/bin/python benchmarks/phenology_features.py modis             # ~5 min
        (the 23 dates: --modis-scenes /work/shared/data/modis_mod13q1_sinop_sits; tests/data holds 6)
    .venv/bin/python benchmarks/phenology_features.py demo              # ~30 min (the default demo, generated once)
    .venv/bin/python benchmarks/phenology_features.py slovenia --variants a,d_ni --importance d_ni

For each data set and feature variant it runs the pipeline's own stages on the data set's config with
`classify.features` replaced by the variant's: `composite_stage` (timed: the extra layers are computed
in the composite pass, from the same scene reads), then `train_and_predict` on the written composites
(spatially blocked CV with the config's folds and blocks, the hold-out, the gap report), then the lazy
class map and confidence of every period computed (timed: prediction throughput in Mpx/s of pixels x
periods, including reading the composite COGs and filling the gaps). The CV folds are the same for every
variant: the samples are the labelled pixels whose composite has a value (checked: `n_samples` equal),
and the blocks and the fold draw depend only on their coordinates and `classify.random_state`. For the
demo the class maps are also compared with the generator's truth, period by period.

Prints markdown tables (OA, kappa, per-class F1, samples with gaps, composite-stage seconds and their
ratio to today's features, prediction Mpx/s), and the permutation importance of the variants named
with --importance. Figures depend on the machine's load: see the load line at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import dask
import numpy as np

from _common import ROOT, composite_run, load_average, machine

from pipeline.classify import compare_with_reference
from pipeline.classify.stage import train_and_predict
from pipeline.composite.periods import periods_from_records
from pipeline.config import load_config

warnings.filterwarnings("ignore", message="All-NaN slice")

# every key, so that a data set's own classify.features (merged under the variant) cannot leak in
TODAY = {"composite": True, "ndvi_range": True, "percentiles": [], "spread": [], "clear_count": False, "of": None,
         "sub_periods": "none", "sub_period_of": ["ndvi"], "season": None, "gap_fill": []}
STM = {"percentiles": [10, 25, 50, 75, 90], "spread": ["std", "amplitude"], "clear_count": True}


def _months(gap_fill, kind="month", **extra):
    return {"sub_periods": kind, "gap_fill": gap_fill, **extra}


# key -> (label, classify.features)
VARIANTS = {
    "a": ("(a) today: composite + NDVI min/max", TODAY),
    "b": ("(b) + percentiles p10-p90, std, amplitude, clear count", {**TODAY, **STM}),
    "c": ("(c) + month medians, gaps to the model", {**TODAY, **_months([])}),
    "c_i": ("(c) + month medians, gaps interpolated", {**TODAY, **_months(["interpolate"])}),
    "c_n": ("(c) + month medians, gaps from neighbouring periods", {**TODAY, **_months(["neighbours"])}),
    "c_ni": ("(c) + month medians, gaps: neighbours, then interpolated", {**TODAY, **_months(["neighbours", "interpolate"])}),
    "c_bni": ("(c) + two-month medians, neighbours + interpolated", {**TODAY, **_months(["neighbours", "interpolate"], "bimonth")}),
    "c_qni": ("(c) + quarter medians, neighbours + interpolated", {**TODAY, **_months(["neighbours", "interpolate"], "quarter")}),
    "c_sni": ("(c) + season medians Apr-Sep / rest, neighbours + interp.",
              {**TODAY, **_months(["neighbours", "interpolate"], "season", season={"start": "04-01", "end": "09-30"})}),
    "d": ("(d) both: percentiles + months, gaps to the model", {**TODAY, **STM, **_months([])}),
    "d_ni": ("(d) both: percentiles + months, neighbours + interpolated", {**TODAY, **STM, **_months(["neighbours", "interpolate"])}),
    "d_qni": ("(d) both: percentiles + quarters, neighbours + interpolated", {**TODAY, **STM, **_months(["neighbours", "interpolate"], "quarter")}),
    "default": ("the defaults of classify.features (= c_ni)", {}),
}

DATASETS = {
    "slovenia": {"config": "s2_slovenia_eolearn.yaml",
                 "variants": ["a", "b", "c", "c_i", "c_n", "c_ni", "c_bni", "c_qni", "c_sni", "d", "d_ni", "d_qni"]},
    "modis": {"config": "modis_mod13q1_sinop_sits.yaml",
              "variants": ["a", "b", "c", "c_i", "c_ni", "c_qni", "d", "d_ni", "d_qni"]},
    "demo": {"config": "demo.yaml", "variants": ["a", "b", "c_ni", "c_qni", "d_ni", "d_qni"]},
}


def _demo_overrides() -> dict:
    """configs/demo.yaml on the default demo, generated once into build/benchmarks/demo_default."""
    folder = ROOT / "build" / "benchmarks" / "demo_default"
    if not (folder / ".complete").is_file():
        from pipeline import demo

        print(f"generating the default demo into {folder} ...", flush=True)
        demo.generate_demo(folder / "data", folder / "aoi.geojson", size="default", seed=42)
        (folder / ".complete").write_text("default demo, seed 42\n")
    data = folder / "data"
    return {"aoi": {"path": str(folder / "aoi.geojson"), "id_field": "aoi_id"},
            "ingest": {"scenes": str(data / "scenes" / "demo_*.tif"), "date_pattern": r"(\d{8})",
                       "date_format": "%Y%m%d", "scale": 0.0001, "nodata": 0},
            "classify": {"training": str(data / "training_points.gpkg")},
            "events": None, "_truth": data / "truth"}


def _modis_overrides(folder: str | None) -> dict:
    """configs/modis_mod13q1_sinop_sits.yaml with its scenes read from `folder` (all 23 dates), if given."""
    if not folder:
        return {}
    import yaml

    source = yaml.safe_load((ROOT / "configs" / DATASETS["modis"]["config"]).read_text())["ingest"]["sources"][0]
    scenes = Path(folder).resolve() / Path(source["scenes"]).name
    if not list(scenes.parent.glob(scenes.name)):
        raise SystemExit(f"--modis-scenes: no file matches {scenes}")
    return {"ingest": {"sources": [{**source, "scenes": str(scenes)}]}}


def measure(dataset: str, key: str, *, base: dict, importance: bool, extra: dict | None = None) -> dict:
    """One variant on one data set: composite stage, classification, prediction; figures as a dict."""
    label, features = VARIANTS[key]
    overrides = {k: v for k, v in base.items() if not k.startswith("_")}
    classify_overrides = {**overrides.get("classify", {}), "features": features,
                          "importance_repeats": 5 if importance else 0}
    with tempfile.TemporaryDirectory(prefix="midr_phenology_") as tmp:
        overrides.update(output_dir=tmp, classify=classify_overrides, **(extra or {}))
        config = load_config(ROOT / "configs" / DATASETS[dataset]["config"], overrides=overrides)
        run = composite_run(config)
        facts, composites, points = run.facts, run.composites, run.points
        composite_s, composite_cpu = run.composite_seconds, run.composite_cpu
        periods = periods_from_records(facts["period_records"])
        wall = time.perf_counter()
        predicted, accuracy, _ = train_and_predict(config, composites, points, facts["feature_groups"])
        train_s = time.perf_counter() - wall
        wall, cpu = time.perf_counter(), time.process_time()
        predicted = predicted.compute()
        predict_s, predict_cpu = time.perf_counter() - wall, time.process_time() - cpu
        cv = accuracy["spatial_cv"]
        n_px = predicted["class_map"].size
        row = {"dataset": dataset, "key": key, "label": label, "periods": len(periods),
               "n_features": len(accuracy["features"]), "n_samples": cv["n_samples"],
               "with_gaps": (accuracy.get("gaps") or {}).get("samples_with_gaps", 0),
               "gaps_left": (accuracy.get("gaps") or {}).get("samples_with_gaps_left", 0),
               "cv_oa": cv["overall_accuracy"], "cv_kappa": cv["kappa"], "fold_oa": cv["fold_overall_accuracy"],
               "f1": {c["name"]: c["f1"] for c in cv["classes"] if c["n_reference"]},
               "holdout_oa": accuracy["overall_accuracy"],
               "composite_s": composite_s, "composite_cpu_s": composite_cpu, "train_cv_s": train_s,
               "predict_s": predict_s, "predict_cpu_s": predict_cpu, "mpx_s": n_px / predict_s / 1e6,
               "mpx_cpu_s": n_px / max(predict_cpu, 1e-9) / 1e6,
               "unclassified_share": float((predicted["class_map"].values == 255).mean()),
               "importance": cv.get("importance"), "features": accuracy["features"]}
        if "_truth" in base:
            row["truth"] = _truth_agreement(predicted["class_map"], base["_truth"], config.classes)
    return row


def _truth_agreement(class_map, truth_dir: Path, classes) -> dict[str, float]:
    """Per period: the share of pixels whose class equals the demo truth's (both valid)."""
    import rioxarray

    out = {}
    for period in [str(p) for p in class_map["period"].values]:
        truth = rioxarray.open_rasterio(truth_dir / f"{period}.tif").squeeze("band", drop=True)
        out[period] = compare_with_reference(class_map.sel(period=period), truth, classes)["overall_accuracy"]
    return out


def markdown(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    def cell(value):
        if isinstance(value, float):
            return f"{value:.3f}"
        return "" if value is None else str(value)
    lines = ["| " + " | ".join(h for h, _ in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(_get(r, k)) for _, k in columns) + " |" for r in rows]
    return "\n".join(lines)


def _get(row: dict, key: str):
    value = row
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def report(dataset: str, rows: list[dict]) -> None:
    today = next((r for r in rows if r["key"] == "a"), rows[0])
    for r in rows:
        r["composite_ratio"] = r["composite_s"] / today["composite_s"]
        r["composite_cpu_ratio"] = r["composite_cpu_s"] / max(today["composite_cpu_s"], 1e-9)
        r["fold_oa_text"] = " ".join(f"{v:.3f}" for v in r["fold_oa"])
        if "truth" in r:
            r["truth_min"] = min(r["truth"].values())
            r["truth_mean"] = float(np.mean(list(r["truth"].values())))
    classes = list(dict.fromkeys(name for r in rows for name in r["f1"]))
    same = len({r["n_samples"] for r in rows}) == 1
    print(f"\n### {dataset}: spatially blocked CV per feature set (random forest, the config's folds and blocks; "
          f"{'the same samples and folds for every variant' if same else 'WARNING: the sample sets differ'})\n")
    columns = [("variant", "label"), ("features", "n_features"), ("samples", "n_samples"), ("with gaps", "with_gaps"),
               ("gaps left", "gaps_left"), ("CV OA", "cv_oa"), ("CV kappa", "cv_kappa")]
    columns += [(f"F1 {c}", f"f1.{c}") for c in classes]
    columns += [("hold-out OA", "holdout_oa")]
    if "truth_min" in rows[0]:
        columns += [("truth min", "truth_min"), ("truth mean", "truth_mean")]
    print(markdown(rows, columns))
    print(f"\n### {dataset}: cost (composite stage wall and process CPU seconds, ratio to (a); prediction of "
          "every period's class map and confidence)\n")
    print(markdown(rows, [("variant", "key"), ("composite s", "composite_s"), ("x (a)", "composite_ratio"),
                          ("composite CPU s", "composite_cpu_s"), ("CPU x (a)", "composite_cpu_ratio"),
                          ("train + CV s", "train_cv_s"), ("predict s", "predict_s"), ("Mpx/s", "mpx_s"),
                          ("Mpx per CPU s", "mpx_cpu_s"), ("unclassified share", "unclassified_share"),
                          ("fold OA", "fold_oa_text")]))
    if "truth" in rows[0]:
        print(f"\n### {dataset}: agreement with the truth per period\n")
        periods = list(rows[0]["truth"])
        print(markdown(rows, [("variant", "key")] + [(p, f"truth.{p}") for p in periods]))
    for r in rows:
        if r.get("importance"):
            print(f"\n### {dataset}: permutation importance of ({r['key']}) on the spatial-CV test folds "
                  "(OA drop; groups: the family's features shuffled together)\n")
            print(markdown(r["importance"]["features"][:25], [("feature", "feature"), ("kind", "kind"),
                                                                 ("mean", "mean_oa_drop"), ("sd", "sd_oa_drop"),
                                                                 ("min", "min_oa_drop"), ("max", "max_oa_drop")]))
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="+", choices=[*DATASETS, "all"])
    parser.add_argument("--variants", help="comma-separated variant keys (default: the data set's list)")
    parser.add_argument("--importance", default="", help="comma-separated variants whose importance to compute")
    parser.add_argument("--periods", default=None,
                        help="modis: 'year' (calendar years) or 'crop' (one Sep-Aug crop-year season); default: both")
    parser.add_argument("--modis-scenes", default=None,
                        help="modis: folder of the MOD13Q1 GeoTIFFs (default: the config's, tests/data: 6 of 23 dates)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    dask.config.set(scheduler="threads", num_workers=args.threads)
    start_load = load_average()
    names = list(DATASETS) if "all" in args.datasets else args.datasets
    wanted_importance = set(filter(None, args.importance.split(",")))
    for dataset in names:
        base = (_demo_overrides() if dataset == "demo" else
                _modis_overrides(args.modis_scenes) if dataset == "modis" else {})
        keys = args.variants.split(",") if args.variants else DATASETS[dataset]["variants"]
        extras = {None: None}
        if dataset == "modis":
            crop = {"composite": {"indices": [], "period": "season", "season": {"start": "09-01", "end": "08-31"}}}
            year = {"composite": {"indices": [], "period": "year", "season": None}}
            extras = {"crop": crop, "year": year}
            if args.periods:
                extras = {args.periods: extras[args.periods]}
        for name, extra in extras.items():
            rows = []
            for key in keys:
                t0 = time.perf_counter()
                rows.append(measure(dataset, key, base=base, importance=key in wanted_importance, extra=extra))
                print(f"  {dataset}{'/' + name if name else ''} {key}: CV OA {rows[-1]['cv_oa']:.3f} "
                      f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
            report(f"{dataset}{' (' + name + ' periods)' if name else ''}", rows)
    print(f"\nmachine: {machine()}; {os.cpu_count()} cores; dask threads {args.threads}; load average "
          f"at start {start_load}, at end {load_average()}")


if __name__ == "__main__":
    main()
