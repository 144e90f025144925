"""`midr report RUN_DIR`: a finished run as a small static website, opened from disk (no server, no JS).

    report/index.html                   every AOI (country, company, commodity, stage, mining footprint,
                                        events, status), the run-level summaries and exports, provenance
    report/<aoi_id>.html                class maps with legend, class areas, first -> last transitions,
                                        accuracy, each event's BACI effects with 95 % CIs, the video
    report/assets/report.css            the style sheet
    report/assets/<aoi_id>/*.png        class-map previews (Pillow) and charts (matplotlib, Agg)

Links are relative (the video and poster are linked where the run wrote them, not copied), nothing
comes from the internet, and the same run folder gives byte-identical files: no timestamps, durations
or absolute paths, PNGs without metadata. Where the run's config has `public.enabled`, no community or
site name and no coordinates appear (the run's event records are already generalised; captions are
written with `event_caption(..., public=True)`). AOIs whose stages were skipped or failed get a page
that says so; an AOI that failed in this run but had a page from an earlier run keeps that page and its
images (`pipeline.products.kept`), and the overview marks it as failed in this run.
"""

from __future__ import annotations

import io as _bytes_io
import logging
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import geopandas as gpd
import jinja2
import numpy as np
import pandas as pd
import rasterio
from matplotlib.figure import Figure

from pipeline import io
from pipeline.products import files, plots, previews
from pipeline.config import ClassDef
from pipeline.events.captions import ZONE_NAMES, event_caption
from pipeline.video.panels import LegendEntry, colour_classes
from pipeline.video.publish import png_bytes
from pipeline.video.style import NODATA_RGB
from pipeline.products.kept import kept_aois
from pipeline.results import OutputLayout, RunOutputs, open_run, read_table

__all__ = ["PREVIEW_MAX_SIDE", "write_report"]

log = logging.getLogger(__name__)

PREVIEW_MAX_SIDE = 480  # class-map previews are decimated (nearest) to at most this many pixels a side
_TEMPLATES = Path(__file__).parent / "templates" / "report"
_STAGES = ("ingest", "composite", "classify", "change", "events", "video")
_ZONES = ZONE_NAMES  # zone -> its name (pipeline.events.captions: the one place for the words)
_INDICATOR_NAMES = {"country": "Country", "company": "Company", "commodity": "Commodity",
                    "lifecycle_stage": "Lifecycle stage", "event_type": "Event type"}
_CHART_DPI = 110
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/\\])(?:[A-Za-z]:[\\/]|/)(?:[^\s;,'\"()/\\]+[\\/])+([^\s;,'\"()/\\]+)")
_NODATA_COLOUR = "#{:02x}{:02x}{:02x}".format(*NODATA_RGB)


def write_report(run_dir: Path, manifest: dict | None = None, keep: set[str] | None = None) -> list[Path]:
    """Write the HTML report of a finished run under `run_dir`/report; returns the files written.

    `manifest`: the run's manifest, where it is not yet on disk. Files left in report/ by an earlier
    report that this one does not write are removed (a report made before `public.enabled` was set
    must not linger beside the public one), except the pages and images of the AOIs in `keep` (default:
    the AOIs that failed in the run, `kept_aois`), which stay as the earlier report made them.
    """
    run = open_run(run_dir) if manifest is None else RunOutputs(OutputLayout(Path(run_dir)), manifest)
    layout = run.layout
    keep = kept_aois(run) if keep is None else set(keep)
    files: dict[Path, bytes] = {layout.report_assets() / "report.css": (_TEMPLATES / "report.css").read_bytes()}
    kept: set[Path] = set()
    env = _environment()
    records = _event_records(layout)
    aois = []
    for aoi_id in run.aoi_ids:
        if aoi_id in keep and layout.report_page(aoi_id).is_file():  # its last good page, as it was
            kept |= {layout.report_page(aoi_id), *(p for p in layout.report_assets(aoi_id).rglob("*") if p.is_file())}
            aois.append({**_aoi_row(run, aoi_id, records), "kept": True})
            continue
        page, assets = _aoi_page(run, aoi_id, records)
        files.update(assets)
        html = env.get_template("aoi.html").render(run=_run_facts(run), aoi=page, classes=run.classes)
        files[layout.report_page(aoi_id)] = _text(html)
        aois.append(page)
    html = env.get_template("index.html").render(run=_run_facts(run), aois=aois, summaries=_summaries(run),
                                                 exports=_exports(run), provenance=_provenance(run),
                                                 files=_run_files(run))
    files[layout.report_index] = _text(html)
    for path, content in files.items():
        io.write_bytes(content, path)
    _remove_stale(layout.report, set(files) | kept)
    log.info("report: %d files under %s", len(files), layout.report)
    return sorted(files)


# ----------------------------------------------------------------------------------- reading the run


def _event_records(layout: OutputLayout) -> pd.DataFrame:
    """The run's event records (generalised where the run is public); empty without events."""
    if not layout.event_records.exists():
        return pd.DataFrame(columns=["event_id", "aoi_id"])
    return read_table(layout.event_records)


def _linked(records: pd.DataFrame, aoi_id: str) -> pd.DataFrame:
    """The records linked to an AOI (an event near several AOIs lists them as "a;b")."""
    if "aoi_id" not in records or records.empty:
        return records.iloc[0:0]
    return records[[aoi_id in str(ids).split(";") for ids in records["aoi_id"].fillna("")]]


def _stage(run: RunOutputs, aoi_id: str, stage: str) -> dict:
    return run.manifest["aois"][aoi_id].get("stages", {}).get(stage, {})


def _done(run: RunOutputs, aoi_id: str, stage: str) -> bool:
    return _stage(run, aoi_id, stage).get("status") == "done"


def _csv(path: Path) -> pd.DataFrame | None:
    return read_table(path) if path.exists() else None


# ----------------------------------------------------------------------------------- the overview


def _run_facts(run: RunOutputs) -> dict:
    config = run.manifest["config"]
    public = config.get("public") or {}
    statuses = [a.get("status") for a in run.manifest["aois"].values()]
    return {
        "name": run.manifest["run_name"],
        "status": "failed" if "failed" in statuses else "done",  # the manifest's says "running" until the end
        "n_aois": len(statuses),
        "n_done": statuses.count("done"),
        "public": bool(public.get("enabled")),
        "grid_m": public.get("grid_m"),
        "package": run.manifest.get("versions", {}).get("midr-pipeline", ""),
        "config_sha256": run.manifest.get("config_sha256", ""),
    }


def _provenance(run: RunOutputs) -> dict:
    manifest = run.manifest
    inputs = manifest.get("inputs", [])
    paths = [os.path.normpath(i["path"]) for i in inputs]
    try:  # shown relative to the folder holding them all: no machine-specific folders in the report
        root = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else ""
    except ValueError:  # paths on different drives
        root = ""
    return {
        "config_file": Path(manifest.get("config_file", "")).name,
        "config_sha256": manifest.get("config_sha256", ""),
        "versions": sorted(manifest.get("versions", {}).items(),
                           key=lambda kv: (kv[0] != "midr-pipeline", kv[0] != "python", kv[0].lower())),
        "inputs": [{"path": Path(os.path.relpath(p, root) if root else p).as_posix(), "size": i.get("size"),
                    "sha256": i.get("sha256", "")[:12]} for p, i in zip(paths, inputs)],
    }


def _summaries(run: RunOutputs) -> dict | None:
    """The run-level effects by indicator: the table (summary/effects_by_indicator.csv) as rows
    (indicator, value) x columns (zone, class) of mean effects, and the charts drawn from it."""
    layout = run.layout
    table = _csv(layout.effects_by_indicator)
    if table is None or table.empty:
        return None
    columns = list(dict.fromkeys(zip(table["zone"], table["class_name"])))
    rows = []
    for indicator, title in _INDICATOR_NAMES.items():
        here = table[table["indicator"] == indicator]
        for value in sorted(here["value"].astype(str).unique()):
            cells = here[here["value"].astype(str) == value].set_index(["zone", "class_name"])
            rows.append({"indicator": title, "value": value, "n_events": int(cells["n_events"].max()),
                         "effects": [_pooled_cell(cells, c) for c in columns]})
    charts = []
    for indicator, title in _INDICATOR_NAMES.items():
        for zone, class_name in columns:
            path = layout.summary_chart(indicator, zone, class_name)
            if path.is_file():
                charts.append({"href": _href(path, layout.report), "indicator": title,
                               "label": f"{class_name} at the {_ZONES.get(zone, zone)}"})
    return {"columns": [{"zone": _ZONES.get(z, z), "class_name": c} for z, c in columns], "rows": rows,
            "charts": charts, "table": _href(layout.effects_by_indicator, layout.report)}


def _pooled_cell(cells: pd.DataFrame, column: tuple[str, str]) -> dict | None:
    """One cell of the across-events table: the events' pooled effect and its 95 % CI (ha), with n."""
    if column not in cells.index:
        return None
    row = cells.loc[column]
    pooled = "pooled_effect_ha" in row.index  # a summary exported before the pooled columns: the mean only
    return {"effect": row["pooled_effect_ha" if pooled else "mean_effect_ha"],
            "low": row["pooled_ci95_low_ha"] if pooled else None,
            "high": row["pooled_ci95_high_ha"] if pooled else None, "n": int(row["n_events"])}


def _exports(run: RunOutputs) -> list[dict]:
    """The run's exports and summary tables on disk (the charts are shown above): one entry per
    table with its formats (CSV, Parquet, ...) and sizes."""
    layout = run.layout
    found = sorted(p for folder in (layout.exports, layout.summary) if folder.is_dir()
                   for p in folder.iterdir() if p.is_file() and p.suffix != ".png" and not p.name.startswith("."))
    groups: dict[str, list[dict]] = {}
    for path in found:
        name = path.relative_to(layout.run_dir).with_suffix("").as_posix()
        groups.setdefault(name, []).append({"format": path.suffix.lstrip("."), "href": _href(path, layout.report),
                                            "size": path.stat().st_size, "kind": files.file_format(path)})
    return [{"name": name, "files": files} for name, files in groups.items()]


def _run_files(run: RunOutputs) -> list[dict]:
    """The run-level files (manifest, event records, STAC catalog; exports and summaries are listed
    apart), by folder and format."""
    layout = run.layout
    aoi_dirs = [layout.aoi_dir(a) for a in run.aoi_ids]
    return [group for group in files.file_groups(layout.run_dir, layout.report)
            if not any(group["folder"].startswith(f"{d.name}/") for d in aoi_dirs)
            and not group["folder"].startswith(("exports/", "summary/"))]


def _aoi_row(run: RunOutputs, aoi_id: str, records: pd.DataFrame) -> dict:
    record = run.manifest["aois"][aoi_id]
    linked = _linked(records, aoi_id)

    def values(column: str) -> str:
        if column not in linked:
            return ""
        return "; ".join(sorted({str(v) for v in linked[column].dropna()}))

    skipped = sorted({s.get("reason", "") for s in record.get("stages", {}).values()
                      if s.get("status") == "skipped"})
    return {
        "id": aoi_id,
        "href": _href(run.layout.report_page(aoi_id), run.layout.report),
        "mine": values("mine"), "country": values("country"), "company": values("company"),
        "commodity": values("commodity"), "lifecycle_stage": values("lifecycle_stage"),
        "n_events": len(linked),
        "status": record.get("status", "unknown"),
        "error": _without_folders(record.get("error", "")),
        "skipped": [s for s in skipped if s],
        "footprint": _footprint(run, aoi_id),
        "kept": False,
    }


def _footprint(run: RunOutputs, aoi_id: str) -> dict | None:
    """Mining footprint in the first and last period and its growth; None without the change stage."""
    if not _done(run, aoi_id, "change"):
        return None
    table = _csv(run.layout.mining_footprint(aoi_id))
    if table is None or table.empty:
        return None
    first, last = table.iloc[0], table.iloc[-1]
    growth = float(last["area_ha"] - first["area_ha"])
    labels = run.period_labels(aoi_id)
    return {"first_period": labels.get(first["period"], first["period"]),
            "last_period": labels.get(last["period"], last["period"]),
            "first_ha": float(first["area_ha"]), "last_ha": float(last["area_ha"]), "growth_ha": growth,
            "growth_pct": growth / float(first["area_ha"]) * 100 if first["area_ha"] > 0 else None}


# ----------------------------------------------------------------------------------- one AOI's page


def _aoi_page(run: RunOutputs, aoi_id: str, records: pd.DataFrame) -> tuple[dict, dict[Path, bytes]]:
    """What the AOI's page shows, and the assets (path -> PNG bytes) it needs."""
    layout, assets = run.layout, {}
    folder = layout.report_assets(aoi_id)
    page = _aoi_row(run, aoi_id, records)
    page["stages"] = [{"name": s, **_stage(run, aoi_id, s)} for s in _STAGES if _stage(run, aoi_id, s)]
    labels = run.period_labels(aoi_id) if _done(run, aoi_id, "composite") else {}
    page["periods"] = list(labels.values())
    page["change_done"] = _done(run, aoi_id, "change")
    page["class_maps"], page["class_area"], page["transitions"] = [], None, None
    page["accuracy"], page["events"], page["video"] = None, [], None
    page["composites"], page["first_change"], page["zones_map"] = [], None, None
    if _done(run, aoi_id, "classify"):
        for period, content in _class_map_previews(run, aoi_id):
            path = folder / f"classes_{period}.png"
            assets[path] = content
            page["class_maps"].append({"period": labels.get(period, period), "src": _href(path, layout.report)})
        page["accuracy"] = _accuracy(run, aoi_id)
    if _done(run, aoi_id, "change"):
        page["class_area"] = _class_area(run, aoi_id)
        if page["class_area"]["periods"] > 1:
            path = folder / "class_area.png"
            assets[path] = _png(plots.class_area_figure(run.class_area(aoi_id), run.classes))
            page["class_area"]["src"] = _href(path, layout.report)
        page["transitions"] = _transition_matrix(read_table(layout.transitions_first_last(aoi_id)), run.classes,
                                                 labels)
    if _done(run, aoi_id, "events"):
        page["events"], charts = _events(run, aoi_id, records, folder)
        assets.update(charts)
    if _done(run, aoi_id, "composite"):
        page["composites"] = _composite_previews(run, aoi_id, folder, assets)
    if _done(run, aoi_id, "change") and layout.first_change(aoi_id).is_file():
        path = folder / "first_change.png"
        assets[path] = _png(previews.first_change_figure(layout.first_change(aoi_id), labels=list(labels.values())))
        page["first_change"] = _href(path, layout.report)
    if _done(run, aoi_id, "events") and layout.event_zones(aoi_id).is_file() and page["periods"]:
        page["zones_map"] = _zones_map(run, aoi_id, records, folder, assets)
    page["files"] = files.file_groups(layout.aoi_dir(aoi_id), layout.report)
    if _done(run, aoi_id, "video") and layout.video(aoi_id).is_file():
        page["video"] = {name: _href(path, layout.report) for name, path in (
            ("src", layout.video(aoi_id)), ("poster", layout.poster(aoi_id)),
            ("subtitles", layout.subtitles(aoi_id)), ("youtube", layout.youtube(aoi_id))) if path.is_file()}
    return page, assets


def _stretch_percentiles(run: RunOutputs) -> tuple[float, float]:
    return tuple((run.manifest["config"].get("video") or {}).get("stretch_percentiles", (2.0, 98.0)))


def _composite_previews(run: RunOutputs, aoi_id: str, folder: Path, assets: dict[Path, bytes]) -> list[dict]:
    """A true-colour thumbnail per period (one stretch for the series, as the video) with its nodata
    share; none where the composites lack red, green or blue."""
    layout = run.layout
    paths = {p: layout.composite(aoi_id, p) for p in run.periods(aoi_id) if layout.composite(aoi_id, p).is_file()}
    shown = []
    for preview in previews.composite_previews(paths, percentiles=_stretch_percentiles(run)):
        path = folder / f"composite_{preview.period}.png"
        assets[path] = png_bytes(preview.image)
        shown.append({"period": preview.period, "src": _href(path, layout.report),
                      "nodata_share": preview.nodata_share, "file": _href(paths[preview.period], layout.report)})
    return shown


def _zones_map(run: RunOutputs, aoi_id: str, records: pd.DataFrame, folder: Path,
               assets: dict[Path, bytes]) -> dict | None:
    """The event zones over the composite of the last period before the AOI's first event (the land
    the zones were drawn on), or of the first period."""
    layout = run.layout
    zones = gpd.read_file(layout.event_zones(aoi_id))
    periods = run.periods(aoi_id)
    if zones.empty or not layout.composite(aoi_id, periods[0]).is_file():
        return None
    linked = _linked(records, aoi_id)
    starts = pd.to_datetime(linked["event_start"], errors="coerce").dropna() if "event_start" in linked else []
    table = run.period_table(aoi_id)
    ends = dict(zip(table["period"], pd.to_datetime(table["period_end"])))
    before = [p for p in periods if len(starts) and ends[p] < starts.min()]
    period = before[-1] if before else periods[0]
    label = dict(zip(table["period"], table["period_label"]))[period]
    with rasterio.open(layout.composite(aoi_id, period)) as src:
        if not {"red", "green", "blue"} <= set(src.descriptions):
            return None
    path = folder / "event_zones.png"
    assets[path] = _png(previews.zones_figure(layout.composite(aoi_id, period), zones, period=label,
                                              percentiles=_stretch_percentiles(run)))
    return {"src": _href(path, layout.report), "period": label,
            "zones": [previews.ZONE_STYLES[z][0] for z in previews.ZONE_STYLES if z in set(zones["zone"])]}


def _class_area(run: RunOutputs, aoi_id: str) -> dict:
    """The number of periods with class areas and, for the last, each class's area (ha, %)."""
    table = run.class_area(aoi_id)
    if table.empty:
        return {"periods": 0, "last": None, "rows": [], "src": None}
    last_period = table["period"].iloc[-1]
    last = table[table["period"] == last_period]
    colours = {c.code: c.colour for c in run.classes}
    return {"periods": int(table["period"].nunique()), "last": run.period_labels(aoi_id).get(last_period, last_period),
            "src": None, "coverage": _coverage(run, aoi_id, table),
            "rows": [{"name": r["class_name"], "colour": colours.get(r["class_code"], _NODATA_COLOUR),
                      "area_ha": r["area_ha"], "area_pct": r["area_pct"]} for r in last.to_dict("records")]}


def _coverage(run: RunOutputs, aoi_id: str, table: pd.DataFrame) -> dict | None:
    """The AOI's area, the most of it without data in any period (and which), the gap filling and the
    minimum mapping unit; None for a run without them (metrics/aoi.csv)."""
    path = run.layout.aoi_table(aoi_id)
    if not path.exists() or "nodata_pct" not in table:
        return None
    aoi = read_table(path).iloc[0]
    per_period = table.drop_duplicates("period").set_index("period")
    worst = per_period["nodata_pct"].idxmax()
    return {"aoi_ha": float(aoi["area_ha"]), "gap_fill": aoi["gap_fill"], "mmu_ha": float(aoi["mmu_ha"]),
            "mmu_connectivity": int(aoi["mmu_connectivity"]),
            "worst_period": run.period_labels(aoi_id).get(worst, worst),
            "worst_nodata_pct": float(per_period.at[worst, "nodata_pct"]),
            "worst_filled_pct": float(per_period.at[worst, "filled_pct"]),
            "unmapped_pct_max": float((per_period["unmapped_ha"] / float(aoi["area_ha"]) * 100).max())
            if float(aoi["area_ha"]) else None}


def _class_map_previews(run: RunOutputs, aoi_id: str) -> list[tuple[str, bytes]]:
    """Each period's cleaned class map (the maps as classified in a run from before cleaning) coloured with
    the class legend (nodata dark grey), as PNG bytes."""
    cleaned = run.layout.cleaned_class_map(aoi_id, run.periods(aoi_id)[0]).exists()
    maps = run.class_map(aoi_id, cleaned=cleaned)
    step = max(1, math.ceil(max(maps.sizes["y"], maps.sizes["x"]) / PREVIEW_MAX_SIDE))
    maps = maps.isel(y=slice(None, None, step), x=slice(None, None, step)).values
    legend = [LegendEntry(c.code, c.name, c.colour) for c in run.classes]
    return [(p, png_bytes(colour_classes(m, legend, nodata=255))) for p, m in zip(run.periods(aoi_id), maps)]


def _transition_matrix(table: pd.DataFrame, classes: Sequence[ClassDef], labels: dict[str, str]) -> dict | None:
    """First -> last period areas (ha): rows = class in the first period, columns = in the last."""
    if table.empty:
        return None
    codes = [c.code for c in classes if c.code in set(table["class_from"]) | set(table["class_to"])]
    matrix = (table.pivot_table(index="class_from", columns="class_to", values="area_ha", aggfunc="sum")
              .reindex(index=codes, columns=codes).fillna(0.0))
    names = {c.code: c for c in classes}
    return {
        "period_from": labels.get(table["period_from"].iloc[0], table["period_from"].iloc[0]),
        "period_to": labels.get(table["period_to"].iloc[0], table["period_to"].iloc[0]),
        "classes": [names[c] for c in codes],
        "rows": [{"cls": names[a], "cells": [{"value": float(matrix.loc[a, b]), "diagonal": a == b} for b in codes],
                  "total": float(matrix.loc[a].sum())} for a in codes],
        "totals": [float(matrix[b].sum()) for b in codes],
        "total": float(matrix.values.sum()),
    }


def _accuracy(run: RunOutputs, aoi_id: str) -> dict | None:
    layout = run.layout
    if not layout.accuracy(aoi_id).exists():
        return None
    document = run.accuracy(aoi_id)
    names = {c.code: c for c in run.classes}
    spatial = {c["code"]: c for c in (document.get("spatial_cv") or {}).get("classes", [])}
    matrix = document.get("confusion_matrix")
    confusion = None
    if matrix:
        counts = np.asarray(matrix["counts"])
        counts = counts.T if matrix.get("rows") == "map" else counts  # shown as rows = reference
        labels = [int(c) for c in matrix["labels"]]
        confusion = {"labels": [names.get(c, ClassDef(code=c, name=str(c), colour=_NODATA_COLOUR)) for c in labels],
                     "rows": [{"cls": names.get(a, ClassDef(code=a, name=str(a), colour=_NODATA_COLOUR)),
                               "cells": [{"value": int(v), "diagonal": a == b} for b, v in zip(labels, row)],
                               "total": int(row.sum())} for a, row in zip(labels, counts)],
                     "totals": [int(v) for v in counts.sum(axis=0)], "total": int(counts.sum())}
    design = document.get("design_based")
    method = _without_folders(design.get("method", "")) if design else ""
    return {
        "overall_accuracy": document.get("overall_accuracy"), "kappa": document.get("kappa"),
        "n_samples": document.get("n_samples"), "method": _sentence(document.get("method", "")),
        "spatial_cv": document.get("spatial_cv"),
        "classes": [{**c, "cls": names.get(c["code"]), "spatial": spatial.get(c["code"])}
                    for c in document.get("classes", [])],
        "confusion": confusion,
        "design_based": design and {**design, "method": method},
        "area_estimates": _records(_csv(layout.area_estimates(aoi_id))),
        "change_area_estimates": _records(_csv(layout.change_area_estimates(aoi_id))),
        "importance": _importance(document),
        "gaps": document.get("gaps"),
    }


def _importance(document: dict, *, top: int = 15) -> dict | None:
    """The permutation importance of the spatial-CV folds: the feature families, then the `top` features."""
    importance = (document.get("spatial_cv") or {}).get("importance")
    if not importance:
        return None
    rows = importance["features"]
    return {"method": importance["method"], "groups": [r for r in rows if r["kind"] == "group"],
            "features": [r for r in rows if r["kind"] == "feature"][:top],
            "n_features": sum(r["kind"] == "feature" for r in rows)}


def _records(table: pd.DataFrame | None) -> list[dict]:
    if table is None:
        return []
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in table.to_dict("records")]


def _events(run: RunOutputs, aoi_id: str, records: pd.DataFrame,
            folder: Path) -> tuple[list[dict], dict[Path, bytes]]:
    """Each event linked to the AOI: its record, caption, before/after/control table and BACI chart."""
    layout = run.layout
    public = bool((run.manifest["config"].get("public") or {}).get("enabled"))
    baci = run.baci(aoi_id) if layout.baci(aoi_id).exists() else pd.DataFrame()
    metrics = run.event_metrics(aoi_id) if layout.event_metrics(aoi_id).exists() else pd.DataFrame()
    linked = _linked(records, aoi_id)
    ids = list(dict.fromkeys([*linked["event_id"], *(baci["event_id"].astype(str) if not baci.empty else [])]))
    events, charts = [], {}
    for event_id in ids:
        record = linked[linked["event_id"] == event_id]
        record = record.iloc[0] if len(record) else pd.Series({"event_id": event_id})
        rows = _effect_rows(baci, metrics, event_id, run.classes)
        chart = None
        if any(r["status"] == "ok" for r in rows):
            path = folder / f"event_{_slug(event_id)}.png"
            charts[path] = _png(plots.event_effects_figure(rows, run.classes, zone_names=_ZONES))
            chart = _href(path, layout.report)
        source = record.get("source")
        impact = _impact_rows(run, aoi_id, event_id)
        events.append({
            "id": event_id,
            "caption": event_caption(record, public=public),
            "source": source if isinstance(source, str) else "",
            "source_is_link": isinstance(source, str) and source.startswith(("http://", "https://")),
            "event_type": _text_or_blank(record.get("event_type")),
            "years": _years(record),
            "periods_before": rows[0]["periods_before"] if rows else "",
            "periods_after": rows[0]["periods_after"] if rows else "",
            "rows": rows, "chart": chart, "impact": impact,
            "zones": [{"name": _ZONES.get(z, str(z).replace("_", " ")), "rows": [r for r in rows if r["zone"] == z]}
                      for z in dict.fromkeys(r["zone"] for r in rows)],
        })
    return events, charts


def _impact_rows(run: RunOutputs, aoi_id: str, event_id: str) -> list[dict]:
    """A disaster's impact zones: the area changed into the impact classes and its BACI effect."""
    path = run.layout.impact(aoi_id)
    if not path.exists():
        return []
    table = read_table(path)
    table = table[table["event_id"].astype(str) == event_id]
    names = {str(c.code): c.name for c in run.classes}
    return [{**{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()},
             "zone_name": _ZONES.get(row["zone"], str(row["zone"]).replace("_", " ")),
             "classes": ", ".join(names.get(code, code) for code in str(row["impact_classes"]).split(";"))}
            for row in table.to_dict("records")]


def _effect_rows(baci: pd.DataFrame, metrics: pd.DataFrame, event_id: str,
                 classes: Sequence[ClassDef]) -> list[dict]:
    """One row per zone x class: areas before/after in the zone, class shares in the zone and the
    control ring, and the BACI effect with its 95 % CI."""
    if baci.empty:
        return []
    mine = baci[baci["event_id"].astype(str) == event_id]
    colours = {c.code: c.colour for c in classes}
    if not metrics.empty:
        areas = metrics[metrics["event_id"].astype(str) == event_id][
            ["zone", "class_code", "area_ha_before", "area_ha_after", "change_ha"]]
        mine = mine.merge(areas, on=["zone", "class_code"], how="left")
    rows = []
    for row in mine.to_dict("records"):
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        low, high = clean.get("ci95_low_ha"), clean.get("ci95_high_ha")
        clean["colour"] = colours.get(row["class_code"], _NODATA_COLOUR)
        clean["zone_name"] = _ZONES.get(row["zone"], str(row["zone"]).replace("_", " "))
        clean["excludes_zero"] = low is not None and high is not None and (low > 0 or high < 0)
        rows.append(clean)
    return rows


def _years(record: pd.Series) -> str:
    start, end = record.get("year_start"), record.get("year_end")
    if pd.isna(start):
        return "" if pd.isna(end) else str(int(end))
    return str(int(start)) if pd.isna(end) or end == start else f"{int(start)}-{int(end)}"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("." if text and not text.endswith(".") else "")


def _text_or_blank(value: object) -> str:
    return value if isinstance(value, str) else ""


# ----------------------------------------------------------------------------------- charts


def _png(figure: Figure) -> bytes:
    """A figure as PNG bytes with no metadata (no matplotlib version), so the bytes never vary."""
    buffer = _bytes_io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_CHART_DPI, metadata={"Software": None})
    figure.clear()
    if hasattr(figure, "number"):  # made by pyplot (plots.py): free it there too
        import matplotlib.pyplot as plt

        plt.close(figure)
    return buffer.getvalue()


# ----------------------------------------------------------------------------------- HTML


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters.update(num=_num, pct=_pct, signed=_signed, size=_size)
    env.globals["nodata_colour"] = _NODATA_COLOUR
    return env


def _num(value: object, digits: int = 2) -> str:
    """1234.5 -> '1,234.50'; missing -> an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "\u2013"
    return f"{float(value):,.{digits}f}"


def _signed(value: object, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "\u2013"
    return f"{float(value):+,.{digits}f}"


def _pct(value: object, digits: int = 1) -> str:
    """A fraction as a percentage: 0.9965 -> '99.7%'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "\u2013"
    return f"{float(value) * 100:.{digits}f}%"


def _size(value: object) -> str:
    if value is None:
        return ""
    size = float(value)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return ""


def _href(target: Path, page_dir: Path) -> str:
    """A relative URL from a page in `page_dir` to `target`, each path part percent-encoded."""
    return "/".join(quote(part) for part in Path(os.path.relpath(target, page_dir)).parts)


def _without_folders(text: str) -> str:
    """Absolute paths in a message cut to their file names: '/tmp/x/sample.gpkg' -> 'sample.gpkg'."""
    return _ABSOLUTE_PATH.sub(r"\1", text)


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def _text(html: str) -> bytes:
    return html.encode("utf-8")


def _remove_stale(folder: Path, keep: set[Path]) -> None:
    """Delete files under `folder` that this report did not write (from an earlier report)."""
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file() and path not in keep:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
