"""BACI effects of a finished demo run against the generator's truth.

    .venv/bin/python benchmarks/baci_truth.py [CONFIG]     (default configs/demo.yaml; run it first)

Prints, per event zone and headline class, the mapped effect with its 95 % interval, the true effect
(the same estimator on the truth maps) and their difference, and the control ring's change.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline import events
from pipeline.ingest import pixel_area_ha
from pipeline.config import load_config
from pipeline.events.stage import event_window
from pipeline.demo import truth_class_map
from pipeline.results import open_run

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = (("origin_community", "built-up"), ("origin_community", "cropland"),
            ("resettlement_site", "built-up"), ("resettlement_site", "cropland"))


def main() -> None:
    config = load_config(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "configs" / "demo.yaml")
    run = open_run(config.run_dir)
    settings = config.events
    table = events.normalise_events(events.read_events(settings.path))
    for aoi_id in run.aoi_ids:
        class_map = run.class_map(aoi_id).compute()
        truth = truth_class_map(config.classify.training.parent / "truth", class_map)
        mapped = run.baci(aoi_id)
        for event_id in mapped["event_id"].unique():
            event = table[table["event_id"] == event_id].iloc[0]
            masks, _ = events.zone_masks(event, truth, radius_m=settings.zone_radius_m,
                                         control_inner_m=settings.control_inner_m,
                                         control_outer_m=settings.control_outer_m,
                                         mining_classes=config.change.mining_classes)
            true = events.baci_effects(event, truth, masks, config.classes, pixel_area_ha=pixel_area_ha(truth),
                                       window=event_window(settings),
                                       block_size_m=settings.block_size_m, n_bootstrap=200)
            print(f"{aoi_id} / {event_id}")
            for zone, name in HEADLINE:
                row = mapped[(mapped.zone == zone) & (mapped.class_name == name)].iloc[0]
                expected = true[(true.zone == zone) & (true.class_name == name)].iloc[0]["effect_ha"]
                inside = row["ci95_low_ha"] <= expected <= row["ci95_high_ha"]
                print(f"  {zone:<18} {name:<10} mapped {row['effect_ha']:7.2f} ha "
                      f"[{row['ci95_low_ha']:.2f}, {row['ci95_high_ha']:.2f}]  truth {expected:7.2f} ha  "
                      f"diff {100 * (row['effect_ha'] / expected - 1):+.1f} %  truth in CI: {inside}")
            for name in ("built-up", "cropland"):
                row = mapped[(mapped.class_name == name)].iloc[0]
                print(f"  control ring       {name:<10} change {row['control_change_pct']:+.2f} % "
                      f"[{row['control_change_ci95_low_pct']:+.2f}, {row['control_change_ci95_high_pct']:+.2f}]")


if __name__ == "__main__":
    main()
