"""The output layout of a run, and reading a finished run back (for notebooks, reports and tests).

    outputs/<run_name>/manifest.json
    outputs/<run_name>/<aoi_id>/composites/<period>.tif     COG, float32, bands named
    outputs/<run_name>/<aoi_id>/classes/<period>.tif        COG, uint8 class codes, 255 = nodata
    outputs/<run_name>/<aoi_id>/metrics/class_area.csv
    outputs/<run_name>/<aoi_id>/metrics/transitions.csv
    outputs/<run_name>/<aoi_id>/metrics/accuracy.json
    outputs/<run_name>/<aoi_id>/events/event_metrics.csv
    outputs/<run_name>/<aoi_id>/video/<aoi_id>.mp4
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import rioxarray
import xarray as xr

from pipeline.config import ClassDef
from pipeline.errors import InputError

__all__ = ["OutputLayout", "RunOutputs", "open_run", "read_table", "TEXT_COLUMNS"]


# columns of the run's tables that hold ids, read back as text (a period "2008" is an id, not a number)
TEXT_COLUMNS = ("aoi_id", "event_id", "period", "period_from", "period_to", "period_first", "period_last",
                "periods_before", "periods_during", "periods_after", "period_start", "period_end", "event_start",
                "event_end")


def read_table(path: Path) -> pd.DataFrame:
    """A CSV table of a run, with its id columns (TEXT_COLUMNS) as text."""
    return pd.read_csv(path, dtype={column: str for column in TEXT_COLUMNS})


@dataclass(frozen=True)
class OutputLayout:
    """Where each output of a run lives: the one place that knows the layout."""

    run_dir: Path

    @property
    def manifest(self) -> Path:
        return self.run_dir / "manifest.json"

    def aoi_dir(self, aoi_id: str) -> Path:
        return self.run_dir / aoi_id

    def composite(self, aoi_id: str, period: str) -> Path:
        return self.aoi_dir(aoi_id) / "composites" / f"{period}.tif"

    def class_map(self, aoi_id: str, period: str) -> Path:
        return self.aoi_dir(aoi_id) / "classes" / f"{period}.tif"

    def class_area(self, aoi_id: str) -> Path:
        return self.aoi_dir(aoi_id) / "metrics" / "class_area.csv"

    def transitions(self, aoi_id: str) -> Path:
        return self.aoi_dir(aoi_id) / "metrics" / "transitions.csv"

    def accuracy(self, aoi_id: str) -> Path:
        return self.aoi_dir(aoi_id) / "metrics" / "accuracy.json"

    def confusion_matrix(self, aoi_id: str) -> Path:
        return self.aoi_dir(aoi_id) / "metrics" / "confusion_matrix.csv"

    def feature_importance(self, aoi_id: str) -> Path:
        return self.aoi_dir(aoi_id) / "metrics" / "feature_importance.csv"

    def area_estimates(self, aoi_id: str) -> Path:
        return self.aoi_dir(aoi_id) / "metrics" / "area_estimates.csv"

    def confidence(self, aoi_id: str, period: str) -> Path:
        return self.aoi_dir(aoi_id) / "classes" / f"{period}_confidence.tif"

    def model(self, aoi_id: str) -> Path:
        """The trained model (skops); its metadata is the .json beside it."""
        return self.aoi_dir(aoi_id) / "models" / f"{aoi_id}.skops"

    def sample_design(self, aoi_id: str) -> Path:
        return self.aoi_dir(aoi_id) / "validation" / "sample_design.gpkg"

    def change_sample_design(self, aoi_id: str) -> Path:
        return self.aoi_dir(aoi_id) / "validation" / "change_sample_design.gpkg"

    def change_area_estimates(self, aoi_id: str) -> Path:
        return self.aoi_dir(aoi_id) / "metrics" / "change_area_estimates.csv"

    def event_metrics(self, aoi_id: str) -> Path:
        return self.aoi_dir(aoi_id) / "events" / "event_metrics.csv"

    def baci(self, aoi_id: str) -> Path:
        return self.aoi_dir(aoi_id) / "events" / "baci.csv"

    def event_zones(self, aoi_id: str) -> Path:
        return self.aoi_dir(aoi_id) / "events" / "event_zones.gpkg"

    def transitions_first_last(self, aoi_id: str) -> Path:
        return self.aoi_dir(aoi_id) / "metrics" / "transitions_first_last.csv"

    def change_summary(self, aoi_id: str) -> Path:
        return self.aoi_dir(aoi_id) / "metrics" / "change_summary.csv"

    def mining_footprint(self, aoi_id: str) -> Path:
        return self.aoi_dir(aoi_id) / "metrics" / "mining_footprint.csv"

    def rings(self, aoi_id: str) -> Path:
        return self.aoi_dir(aoi_id) / "metrics" / "rings.csv"

    def first_change(self, aoi_id: str) -> Path:
        """uint16: the number of the period in which the class first changed (change/maps.py)."""
        return self.aoi_dir(aoi_id) / "change" / "first_change.tif"

    @property
    def event_records(self) -> Path:
        """The events table as read, parsed, with the analyses each record allows and its AOI link."""
        return self.run_dir / "event_records.csv"

    @property
    def exports(self) -> Path:
        """Run-level exports: every table as CSV and Parquet, event zones GPKG, SPSS .sav, Kumu JSON."""
        return self.run_dir / "exports"

    @property
    def summary(self) -> Path:
        """Run-level summaries of event effects across AOIs (CSV and PNG charts)."""
        return self.run_dir / "summary"

    def video(self, aoi_id: str) -> Path:
        return self.aoi_dir(aoi_id) / "video" / f"{aoi_id}.mp4"

    def poster(self, aoi_id: str) -> Path:
        """1280x720 PNG thumbnail of the video."""
        return self.aoi_dir(aoi_id) / "video" / f"{aoi_id}_poster.png"

    def subtitles(self, aoi_id: str) -> Path:
        """The event captions as SubRip subtitles, timed to the video's frames."""
        return self.aoi_dir(aoi_id) / "video" / f"{aoi_id}.srt"

    def youtube(self, aoi_id: str) -> Path:
        """Title, description (sources) and chapter timestamps to paste into YouTube."""
        return self.aoi_dir(aoi_id) / "video" / "youtube.txt"

    def class_map_style(self, aoi_id: str, period: str) -> Path:
        """The QGIS style (.qml) beside a class map: QGIS applies it when the map is loaded."""
        return self.class_map(aoi_id, period).with_suffix(".qml")

    def confidence_style(self, aoi_id: str, period: str) -> Path:
        return self.confidence(aoi_id, period).with_suffix(".qml")

    def first_change_style(self, aoi_id: str) -> Path:
        return self.first_change(aoi_id).with_suffix(".qml")

    @property
    def effects_by_indicator(self) -> Path:
        """BACI effects by country, company, commodity, lifecycle stage and event type (all AOIs)."""
        return self.summary / "effects_by_indicator.csv"

    @property
    def report(self) -> Path:
        """The run's HTML report (`midr report`): index.html, one page per AOI, assets/."""
        return self.run_dir / "report"

    @property
    def report_index(self) -> Path:
        """The report's overview page: every AOI, the run's provenance, links to the run summaries."""
        return self.report / "index.html"

    def report_page(self, aoi_id: str) -> Path:
        """One AOI's report page (an AOI named "index" gets "index_aoi.html")."""
        return self.report / f"{aoi_id if aoi_id != 'index' else 'index_aoi'}.html"

    def report_assets(self, aoi_id: str | None = None) -> Path:
        """The report's style sheet and, for an AOI, its charts and class-map previews."""
        return self.report / "assets" if aoi_id is None else self.report / "assets" / aoi_id

    @property
    def stac_catalog(self) -> Path:
        """The run's outputs as a self-contained static STAC catalog (pipeline.products.catalog, docs/outputs.md)."""
        return self.run_dir / "stac" / "catalog.json"


@dataclass(frozen=True)
class RunOutputs:
    """A finished run, read lazily from its folder."""

    layout: OutputLayout
    manifest: dict

    @property
    def aoi_ids(self) -> list[str]:
        return list(self.manifest["aois"])

    @property
    def classes(self) -> list[ClassDef]:
        return [ClassDef(**c) for c in self.manifest["config"]["classes"]]

    def periods(self, aoi_id: str) -> list[str]:
        """The AOI's period ids, in time order (file names of its composites and class maps)."""
        return [str(p) for p in self.manifest["aois"][aoi_id]["stages"]["composite"]["periods"]]

    def period_table(self, aoi_id: str) -> pd.DataFrame:
        """period, period_start, period_end, period_label (ISO dates): one row per period of the AOI."""
        records = self.manifest["aois"][aoi_id]["stages"]["composite"].get("period_records")
        if records is None:  # a run from before periods had dates: calendar years
            records = [{"id": p, "start": f"{p}-01-01", "end": f"{p}-12-31", "label": p} for p in self.periods(aoi_id)]
        return pd.DataFrame({"period": [str(r["id"]) for r in records], "period_start": [r["start"] for r in records],
                             "period_end": [r["end"] for r in records], "period_label": [r["label"] for r in records]})

    def period_labels(self, aoi_id: str) -> dict[str, str]:
        """Period id -> its label for people (e.g. '2019-01' -> 'Jan 2019')."""
        table = self.period_table(aoi_id)
        return dict(zip(table["period"], table["period_label"]))

    def class_map(self, aoi_id: str) -> xr.DataArray:
        """(period, y, x) uint8 class codes, 255 = nodata; lazy (Dask); `period_start`/`period_end` along
        the period dimension."""
        table = self.period_table(aoi_id)
        maps = [rioxarray.open_rasterio(self.layout.class_map(aoi_id, p), chunks={}).squeeze("band", drop=True)
                for p in table["period"]]
        stacked = xr.concat(maps, dim=pd.Index(list(table["period"]), name="period"))
        return stacked.assign_coords(period_start=("period", pd.to_datetime(table["period_start"]).values),
                                     period_end=("period", pd.to_datetime(table["period_end"]).values),
                                     period_label=("period", list(table["period_label"]))).rename("class_map")

    def composite(self, aoi_id: str, period: str) -> xr.Dataset:
        """One period's composite: a float32 variable per band and index, NaN = nodata; lazy."""
        raster = rioxarray.open_rasterio(self.layout.composite(aoi_id, period), chunks={})
        names = raster.attrs["long_name"]
        return raster.assign_coords(band=list(names)).to_dataset("band")

    def class_area(self, aoi_id: str) -> pd.DataFrame:
        return read_table(self.layout.class_area(aoi_id))

    def transitions(self, aoi_id: str) -> pd.DataFrame:
        return read_table(self.layout.transitions(aoi_id))

    def event_metrics(self, aoi_id: str) -> pd.DataFrame:
        return read_table(self.layout.event_metrics(aoi_id))

    def baci(self, aoi_id: str) -> pd.DataFrame:
        return read_table(self.layout.baci(aoi_id))

    def accuracy(self, aoi_id: str) -> dict:
        return json.loads(self.layout.accuracy(aoi_id).read_text())

    def video(self, aoi_id: str) -> Path:
        return self.layout.video(aoi_id)


def open_run(run_dir: str | Path) -> RunOutputs:
    """A finished run's outputs; raises InputError if the folder holds no run."""
    layout = OutputLayout(Path(run_dir))
    if not layout.manifest.exists():
        raise InputError(f"{run_dir}: no manifest.json here; is this a run folder (outputs/<run_name>)?")
    return RunOutputs(layout=layout, manifest=json.loads(layout.manifest.read_text()))
