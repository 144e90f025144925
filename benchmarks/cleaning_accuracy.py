"""Areas and change on cloudy, speckled imagery: the maps as classified against the gap-filled maps with
the minimum mapping unit applied (pipeline.classify.cleaning), on the demo (truth known) and on real
Sentinel-2 data (Slovenia, 20 of 68 dates fully cloudy).

    .venv/bin/python benchmarks/cleaning_accuracy.py                      # after `make demo`
    .venv/bin/python benchmarks/cleaning_accuracy.py --demo-run outputs/demo --skip-slovenia

Demo (outputs/demo, truth in data/demo/truth/<period>.tif): per period and class, the area of the raw maps
(classes/, as classified: what class_area.csv counted before) and of the cleaned maps (classes_cleaned/)
against the truth, as mean absolute error in % of the AOI; the mining footprint's error per period; spurious
change (pixels whose truth never changes but whose first-change map says they did) and the share of truly
changed pixels still found: before = `first_change` of the raw maps as the pipeline wrote it, after =
change/first_change.tif (cleaned maps, MMU applied).

Slovenia (configs/s2_slovenia_eolearn.yaml by year, s2_slovenia_monthly.yaml by month; run here into
build/benchmarks/cleaning/ unless --slovenia-run gives finished runs): per period the nodata and
gap-filled shares of the AOI, and the forest class's period-to-period swing (mean and largest |change|
between consecutive periods, % of the AOI) in the raw maps and in the cleaned ones.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import rioxarray
from _common import ROOT, load_average, machine, print_table

from pipeline.change import FIRST_CHANGE_NODATA, NO_CHANGE, first_change
from pipeline.config import load_config
from pipeline.demo import truth_class_map
from pipeline.ingest import pixel_area_ha
from pipeline.results import open_run
from pipeline.runner import run_pipeline

NODATA = 255
MINING = 6
FOREST = "forest"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-run", type=Path, default=ROOT / "outputs" / "demo")
    parser.add_argument("--demo-truth", type=Path, default=ROOT / "data" / "demo" / "truth")
    parser.add_argument("--aoi", default="demo_mine")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-slovenia", action="store_true")
    parser.add_argument("--slovenia-run", type=Path, action="append", default=[],
                        help="a finished Slovenia run folder (default: run both configs here)")
    args = parser.parse_args()
    print(f"machine: {machine()}; load average at start: {load_average()}")
    if not args.skip_demo:
        demo(args.demo_run, args.demo_truth, args.aoi)
    if not args.skip_slovenia:
        runs = args.slovenia_run or [_run_slovenia(name) for name in ("s2_slovenia_eolearn", "s2_slovenia_monthly")]
        for run_dir in runs:
            slovenia(run_dir)
    print(f"load average at end: {load_average()}")


# ------------------------------------------------------------------------------------------------ demo


def demo(run_dir: Path, truth_dir: Path, aoi_id: str) -> None:
    run = open_run(run_dir)
    raw = run.class_map(aoi_id).load()
    cleaned = run.class_map(aoi_id, cleaned=True).load()
    truth = truth_class_map(truth_dir, raw).values
    inside = (truth != NODATA).all(axis=0)
    aoi_px = int(inside.sum())
    codes = {c.code: c.name for c in run.classes}
    periods = [str(p) for p in raw["period"].values]
    settings = run.aoi_table(aoi_id).iloc[0]
    pixel_ha = pixel_area_ha(raw)
    print(f"\n== demo: {run_dir} ({aoi_id}), {len(periods)} periods, AOI {aoi_px} pixels; gap_fill "
          f"{settings['gap_fill']}, MMU {settings['mmu_ha']} ha = {settings['mmu_pixels']} pixels "
          f"({settings['mmu_connectivity']}-connected)")

    rows, errors = [], {"raw": [], "cleaned": []}
    footprint = []
    for i, period in enumerate(periods):
        raw_p, clean_p, true_p = raw.values[i], cleaned.values[i], truth[i]
        row = [period, 100 * float(((raw_p == NODATA) & inside).sum()) / aoi_px,
               100 * float(((raw_p == NODATA) & (clean_p != NODATA) & inside).sum()) / aoi_px]
        per_period = {"raw": [], "cleaned": []}
        for code in codes:
            true_n = int(((true_p == code) & inside).sum())
            for name, mapped in (("raw", raw_p), ("cleaned", clean_p)):
                error = 100 * abs(int(((mapped == code) & inside).sum()) - true_n) / aoi_px
                per_period[name].append(error)
                errors[name].append(error)
        row += [np.mean(per_period["raw"]), np.mean(per_period["cleaned"]),
                max(per_period["raw"]), max(per_period["cleaned"])]
        rows.append(row)
        true_ha = ((true_p == MINING) & inside).sum() * pixel_ha
        footprint.append([period, true_ha, ((raw_p == MINING) & inside).sum() * pixel_ha - true_ha,
                          ((clean_p == MINING) & inside).sum() * pixel_ha - true_ha])
    pct = lambda v: f"{v:.2f}"
    print("\nclass areas against the truth, per period (error = |mapped - true| in % of the AOI, over the "
          f"{len(codes)} classes)")
    print_table(["period", "nodata %", "filled %", "MAE raw", "MAE cleaned", "max raw", "max cleaned"], rows,
                [None, pct, pct, pct, pct, pct, pct])
    print(f"mean absolute error over all periods and classes: raw {np.mean(errors['raw']):.2f} % of the AOI, "
          f"cleaned {np.mean(errors['cleaned']):.2f} %")

    print("\nmining footprint (bare ground & mining) against the truth (ha; error = mapped - true)")
    print_table(["period", "true ha", "error raw", "error cleaned"], footprint,
                [None, lambda v: f"{v:.1f}", lambda v: f"{v:+.1f}", lambda v: f"{v:+.1f}"])
    fp = np.array([f[2:] for f in footprint], float)
    print(f"mean |error|: raw {np.abs(fp[:, 0]).mean():.1f} ha, cleaned {np.abs(fp[:, 1]).mean():.1f} ha")

    true_first = first_change(truth_class_map(truth_dir, raw)).values
    before = first_change(raw).values
    after = rioxarray.open_rasterio(run.layout.first_change(aoi_id)).squeeze("band", drop=True).values
    stable = inside & (true_first == NO_CHANGE)
    changed_truth = inside & (true_first != NO_CHANGE) & (true_first != FIRST_CHANGE_NODATA)
    table = []
    for name, mapped in (("before (raw maps)", before), ("after (cleaned + MMU)", after)):
        says_changed = (mapped != NO_CHANGE) & (mapped != FIRST_CHANGE_NODATA)
        spurious = int((stable & says_changed).sum())
        found = int((changed_truth & says_changed).sum())
        same = int((changed_truth & (mapped == true_first)).sum())
        near = int((changed_truth & says_changed & (np.abs(mapped.astype(int) - true_first.astype(int)) <= 1)).sum())
        table.append([name, spurious, 100 * spurious / max(int(stable.sum()), 1), found,
                      100 * found / max(int(changed_truth.sum()), 1), 100 * same / max(int(changed_truth.sum()), 1),
                      100 * near / max(int(changed_truth.sum()), 1)])
    print(f"\nfirst-change map against the truth's: {int(stable.sum())} pixels never change in the truth, "
          f"{int(changed_truth.sum())} do")
    print_table(["map", "spurious px", "% of stable", "changed found", "% found", "% same period", "% within 1"],
                table, [None, str, pct, str, pct, pct, pct])
    print(f"spurious change: {table[0][1] / max(table[1][1], 1):.1f}x fewer; truly changed pixels found: "
          f"{table[1][4]:.1f} % (before {table[0][4]:.1f} %)")


# -------------------------------------------------------------------------------------------- Slovenia


def _run_slovenia(name: str) -> Path:
    output_dir = ROOT / "build" / "benchmarks" / "cleaning"
    config = load_config(ROOT / "configs" / f"{name}.yaml", overrides={"output_dir": str(output_dir),
                                                                       "video": {"preset": "720p"}})
    print(f"\nrunning {name} into {output_dir} ...", flush=True)
    result = run_pipeline(config)
    if not result.ok:
        sys.exit(f"{name} failed: {result.failed}")
    return config.run_dir


def slovenia(run_dir: Path) -> None:
    run = open_run(run_dir)
    for aoi_id in run.aoi_ids:
        raw = run.class_map(aoi_id).load()
        cleaned = run.class_map(aoi_id, cleaned=True).load()
        aoi = run.aoi_table(aoi_id).iloc[0]
        table = run.class_area(aoi_id)
        labels = run.period_labels(aoi_id)
        forest = next(c.code for c in run.classes if c.name == FOREST)
        aoi_px = int(aoi["pixels"])
        print(f"\n== {run_dir.name} ({aoi_id}): {raw.sizes['period']} periods, AOI {aoi_px} pixels "
              f"({aoi['area_ha']:.1f} ha); gap_fill {aoi['gap_fill']}, MMU {aoi['mmu_ha']} ha = "
              f"{aoi['mmu_pixels']} pixels")
        per_period = table.drop_duplicates("period").set_index("period")
        rows = []
        raw_forest = (raw == forest).sum(("y", "x")).values / aoi_px * 100
        clean_forest = (cleaned == forest).sum(("y", "x")).values / aoi_px * 100
        raw_share = table[table["class_code"] == forest].set_index("period")["raw_area_pct"]
        clean_share = table[table["class_code"] == forest].set_index("period")["area_pct"]
        for i, period in enumerate(str(p) for p in raw["period"].values):
            rows.append([labels.get(period, period), per_period.at[period, "nodata_pct"],
                         per_period.at[period, "filled_pct"],
                         100 * per_period.at[period, "unmapped_ha"] / aoi["area_ha"],
                         raw_forest[i], clean_forest[i], raw_share.get(period, np.nan), clean_share.get(period, np.nan)])
        pct = lambda v: "-" if not np.isfinite(v) else f"{v:.1f}"
        print_table(["period", "nodata %", "filled %", "unmapped %", "forest raw % AOI", "forest cleaned % AOI",
                     "raw % observed", "cleaned % mapped"], rows, [None, *[pct] * 7])
        for name, series in (("raw maps, % of the AOI (what class_area.csv counted before)", raw_forest),
                             ("cleaned maps, % of the AOI (area_ha now)", clean_forest),
                             ("raw maps, % of the observed area (raw_area_pct)", raw_share.to_numpy(float)),
                             ("cleaned maps, % of the mapped area (area_pct, the charts)", clean_share.to_numpy(float))):
            swing = np.abs(np.diff(series))
            swing = swing[np.isfinite(swing)]
            print(f"forest swing between consecutive periods, {name}: mean {swing.mean():.2f}, "
                  f"largest {swing.max():.2f} percentage points" if len(swing) else f"forest swing, {name}: -")


if __name__ == "__main__":
    main()
