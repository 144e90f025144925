"""`midr export RUN_DIR`: a finished run's tables gathered over all AOIs and written for other tools.

    exports/<table>.csv and .parquet     every per-AOI table, all AOIs together
    exports/event_zones.gpkg             layer "event zones with BACI effects" (as QGIS lists it)
    exports/events.sav                   SPSS: one row per event x zone x class, labelled
    exports/kumu.json                    Kumu network of companies, mines, events, communities, sites
    summary/effects_by_indicator.csv     BACI effects by country, company, commodity, stage, event type
    summary/<indicator>_<zone>_<class>.png
Runs at the end of `midr run` too. Where the run's config has `public.enabled`, the event records and
zones written here are the generalised ones (the run already wrote them so). An AOI that failed in the
run keeps the rows the earlier exports had for it (`pipeline.products.kept`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import matplotlib.pyplot as plt
import pandas as pd

from pipeline import io
from pipeline.products import exports
from pipeline.products.kept import kept_aois
from pipeline.results import OutputLayout, RunOutputs, open_run, read_table

__all__ = ["export_run", "HEADLINE_EFFECTS", "EVENT_ZONES_LAYER"]

log = logging.getLogger(__name__)

# (zone, class name) pairs charted and carried on the Kumu connections
HEADLINE_EFFECTS = (("origin_community", "built-up"), ("origin_community", "cropland"),
                    ("resettlement_site", "built-up"), ("resettlement_site", "cropland"))

# the layer name of exports/event_zones.gpkg: what QGIS shows in its layer panel
EVENT_ZONES_LAYER = "event zones with BACI effects"

# table -> the stage that writes it
_TABLES = {"class_area": "change", "transitions": "change", "transitions_first_last": "change",
           "change_summary": "change", "mining_footprint": "change", "rings": "change",
           "event_metrics": "events", "baci": "events"}


def export_run(run_dir: Path, manifest: dict | None = None, keep: set[str] | None = None) -> list[Path]:
    """Write the exports and summaries of a finished run; returns the files written.

    `manifest`: the run's manifest, where it is not yet on disk (the runner exports before writing it).
    `keep`: AOIs whose rows are taken from the earlier exports, not from their tables (default: the AOIs
    that failed in the run, `kept_aois`).
    """
    run = open_run(run_dir) if manifest is None else RunOutputs(OutputLayout(Path(run_dir)), manifest)
    layout = run.layout
    keep = kept_aois(run) if keep is None else set(keep)
    written: list[Path] = []
    tables = {}
    for name, stage in _TABLES.items():
        earlier = _earlier_rows(layout, f"{name}.parquet", keep)
        done = set(_done(run, stage))
        parts = [earlier.get(a) if a in keep else read_table(getattr(layout, name)(a)) if a in done else None
                 for a in run.aoi_ids]
        parts = [p for p in parts if p is not None and not p.empty]
        tables[name] = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    records = read_table(layout.event_records) if layout.event_records.exists() else pd.DataFrame()
    tables["event_records"] = records
    for name, table in tables.items():
        for suffix, write in ((".csv", io.write_csv), (".parquet", io.write_parquet)):
            path = layout.export(f"{name}{suffix}")
            write(table, path)
            written.append(path)
    linked = records[records["aoi_id"].notna()] if "aoi_id" in records else records
    baci = tables["baci"]
    if not baci.empty and not linked.empty:
        written += _event_exports(run, [a for a in _done(run, "events") if a not in keep], baci, linked,
                                  kept_zones=_earlier_rows(layout, "event_zones.gpkg", keep))
    log.info("exported %d files to %s", len(written), layout.exports)
    return written


def _done(run: RunOutputs, stage: str) -> list[str]:
    """The AOIs whose `stage` finished (a later stage may have failed)."""
    return [a for a in run.aoi_ids
            if run.manifest["aois"][a].get("stages", {}).get(stage, {}).get("status") == "done"]


def _earlier_rows(layout: OutputLayout, name: str, aoi_ids: set[str]) -> dict[str, pd.DataFrame]:
    """aoi_id -> its rows in the earlier export `exports/<name>` (Parquet or GPKG), for the AOIs kept."""
    path = layout.export(name)
    if not aoi_ids or not path.is_file():
        return {}
    try:
        table = gpd.read_file(path) if path.suffix == ".gpkg" else pd.read_parquet(path)
    except Exception as err:  # a damaged earlier export: nothing to keep from it, say so
        log.warning("cannot read the earlier %s (%s); the AOIs that failed lose their rows in it", path, err)
        return {}
    if "aoi_id" not in table.columns:
        return {}
    return {a: rows.reset_index(drop=True) for a, rows in table.groupby("aoi_id", sort=False) if a in aoi_ids}


def _event_exports(run, done: list[str], baci: pd.DataFrame, linked: pd.DataFrame,
                   kept_zones: dict[str, gpd.GeoDataFrame]) -> list[Path]:
    layout = run.layout
    written = []
    zones = {a: gpd.read_file(layout.event_zones(a)).to_crs(4326) for a in done if layout.event_zones(a).exists()}
    zones |= {a: rows[["aoi_id", "event_id", "zone", "geometry"]] for a, rows in kept_zones.items()}
    zones = [zones[a] for a in run.aoi_ids if a in zones]
    if zones:
        frame = pd.concat(zones, ignore_index=True)
        wide = baci[baci["status"] == "ok"].pivot_table(index=["event_id", "zone"], columns="class_name",
                                                        values="effect_ha").add_prefix("effect_ha_").reset_index()
        wide.columns = [c.replace(" ", "_").replace("/", "_").replace("&", "and") for c in wide.columns]
        frame = frame.merge(wide, on=["event_id", "zone"], how="left")
        frame = frame.merge(linked[["event_id", *exports.INDICATORS]], on="event_id", how="left")
        path = layout.export("event_zones.gpkg")
        io.write_gpkg(gpd.GeoDataFrame(frame, geometry="geometry", crs=4326), path, layer=EVENT_ZONES_LAYER)
        written.append(path)
    class_names = {c.code: c.name for c in run.classes}
    table, labels, value_labels = exports.spss_table(baci, linked, class_names)
    path = layout.export("events.sav")
    measure, formats, widths = exports.spss_dictionary(table)
    exports.write_sav(table, path, column_labels=labels, value_labels=value_labels, measure=measure,
                      formats=formats, widths=widths)
    written.append(path)
    network = exports.kumu_network(linked, baci, headline=HEADLINE_EFFECTS)
    path = layout.export("kumu.json")
    io.write_json(network, path)
    written.append(path)
    summary = exports.effects_by_indicator(baci, linked, class_names=sorted({c for _, c in HEADLINE_EFFECTS}))
    path = layout.effects_by_indicator
    io.write_csv(summary, path)
    written.append(path)
    for indicator in exports.INDICATORS:
        for zone, class_name in HEADLINE_EFFECTS:
            figure = exports.effects_figure(summary, indicator, zone=zone, class_name=class_name)
            path = layout.summary_chart(indicator, zone, class_name)
            io.write_figure(figure, path)
            plt.close(figure)
            written.append(path)
    return written
