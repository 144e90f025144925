"""The output layout of a run, and reading a finished run back (for notebooks, reports and tests).

    outputs/<run_name>/manifest.json
    outputs/<run_name>/<aoi_id>/composites/<period>.tif     COG, float32, bands named
    outputs/<run_name>/<aoi_id>/classes/<period>.tif        COG, uint8 class codes, 255 = nodata (as classified)
    outputs/<run_name>/<aoi_id>/classes_cleaned/<period>.tif          gap-filled, minimum mapping unit applied
    outputs/<run_name>/<aoi_id>/classes_cleaned/<period>_cleaning.tif what cleaning did to each pixel
    outputs/<run_name>/<aoi_id>/change/first_change.tif, first_last.tif, consecutive/<from>_to_<to>.tif
    outputs/<run_name>/<aoi_id>/metrics/aoi.csv             the AOI's area, grid and cleaning settings
    outputs/<run_name>/<aoi_id>/metrics/class_area.csv
    outputs/<run_name>/<aoi_id>/metrics/transitions.csv
    outputs/<run_name>/<aoi_id>/metrics/accuracy.json
    outputs/<run_name>/<aoi_id>/events/event_metrics.csv, baci.csv, impact.csv, event_zones.gpkg
    outputs/<run_name>/<aoi_id>/video/<aoi_id>.mp4

AOI and event ids name folders and files, so they follow a safe-name rule (`check_id`): letters,
digits, `-`, `_` and `.`, not starting with `.` or `-`; an AOI may not take the name of a run-level
folder or file (`RESERVED_NAMES`). Every path of the layout is built by `OutputLayout.path`, which
refuses one outside the run folder.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import rioxarray
import xarray as xr

from pipeline.config import ClassDef
from pipeline.errors import InputError, OutputError

__all__ = ["OutputLayout", "RunOutputs", "open_run", "read_table", "TEXT_COLUMNS", "check_id", "SAFE_ID_RULE",
           "RESERVED_NAMES"]

SAFE_ID_RULE = ("letters, digits, '-', '_' and '.' only, not starting with '.' or '-', at most 100 characters "
                "(ids name the folders and files of the outputs)")
_SAFE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")

# what the run folder itself holds beside the AOI folders: an AOI of one of these names would write into
# (and have its files removed by the clean-up of) a run-level product; compared case-insensitively
RESERVED_NAMES = frozenset({"report", "stac", "exports", "summary", "manifest.json", "event_records.csv"})

# columns of the run's tables that hold ids, read back as text (a period "2008" is an id, not a number)
TEXT_COLUMNS = ("aoi_id", "event_id", "period", "period_from", "period_to", "period_first", "period_last",
                "periods_before", "periods_during", "periods_after", "period_start", "period_end", "event_start",
                "event_end")


def read_table(path: Path) -> pd.DataFrame:
    """A CSV table of a run, with its id columns (TEXT_COLUMNS) as text."""
    return pd.read_csv(path, dtype={column: str for column in TEXT_COLUMNS})


def check_id(value: object, *, what: str = "AOI", where: str = "") -> str:
    """`value` if it is a safe id (`SAFE_ID_RULE`), else InputError naming it, where it is and the rule.

    AOI ids (`what="AOI"`) may not be one of `RESERVED_NAMES` either."""
    text = str(value)
    prefix = f"{where}: " if where else ""
    if not _SAFE_ID.fullmatch(text):
        raise InputError(f"{prefix}{what} id {text!r} is not a safe name: use {SAFE_ID_RULE}")
    if what == "AOI" and text.lower() in RESERVED_NAMES:
        raise InputError(f"{prefix}AOI id {text!r} is the name of a run-level output "
                         f"({', '.join(sorted(RESERVED_NAMES))}); give the AOI another id")
    return text


@dataclass(frozen=True)
class OutputLayout:
    """Where each output of a run lives: the one place that knows the layout."""

    run_dir: Path

    def path(self, *parts: str) -> Path:
        """`run_dir / parts[0] / parts[1] ...`: the one function every output path is built by. Refuses
        (OutputError) a part that is empty, absolute, '.', '..' or holds a path separator, so no path
        leaves the run folder."""
        for part in parts:
            text = str(part)
            if (not text or text in (".", "..") or "/" in text or "\\" in text or "\0" in text
                    or os.path.isabs(text)):
                raise OutputError(f"refusing to write {text!r} under {self.run_dir}: an output path must stay "
                                  "inside the run folder (a part may not be empty, '.', '..', absolute or hold "
                                  "a path separator)")
        path = Path(self.run_dir, *map(str, parts))
        root = os.path.normpath(os.path.abspath(self.run_dir))
        if parts and not os.path.normpath(os.path.abspath(path)).startswith(root + os.sep):
            raise OutputError(f"refusing to write {path}: outside the run folder {self.run_dir}")
        return path

    @property
    def manifest(self) -> Path:
        return self.path("manifest.json")

    def aoi_dir(self, aoi_id: str) -> Path:
        """An AOI's folder; the id must be safe (`check_id`)."""
        return self._aoi_path(aoi_id)

    def _aoi_path(self, aoi_id: str, *parts: str) -> Path:
        try:
            check_id(aoi_id)
        except InputError as err:
            raise OutputError(f"refusing to write the outputs of AOI {aoi_id!r} under {self.run_dir}: {err}") from None
        return self.path(aoi_id, *parts)

    def composite(self, aoi_id: str, period: str) -> Path:
        return self._aoi_path(aoi_id, "composites", f"{period}.tif")

    def class_map(self, aoi_id: str, period: str) -> Path:
        return self._aoi_path(aoi_id, "classes", f"{period}.tif")

    def cleaned_class_map(self, aoi_id: str, period: str) -> Path:
        """The class map gap-filled and with the minimum mapping unit applied (pipeline.classify.cleaning):
        what every area, transition, footprint, ring and event effect is counted on."""
        return self._aoi_path(aoi_id, "classes_cleaned", f"{period}.tif")

    def cleaning(self, aoi_id: str, period: str) -> Path:
        """uint8 per pixel: 0 observed, 1 gap-filled, 2 reassigned by the MMU, 3 both; 255 no class."""
        return self._aoi_path(aoi_id, "classes_cleaned", f"{period}_cleaning.tif")

    def aoi_table(self, aoi_id: str) -> Path:
        """One row: the AOI's area (stated once for every table), its grid and the cleaning settings."""
        return self._aoi_path(aoi_id, "metrics", "aoi.csv")

    def class_area(self, aoi_id: str) -> Path:
        return self._aoi_path(aoi_id, "metrics", "class_area.csv")

    def transitions(self, aoi_id: str) -> Path:
        return self._aoi_path(aoi_id, "metrics", "transitions.csv")

    def accuracy(self, aoi_id: str) -> Path:
        return self._aoi_path(aoi_id, "metrics", "accuracy.json")

    def confusion_matrix(self, aoi_id: str) -> Path:
        return self._aoi_path(aoi_id, "metrics", "confusion_matrix.csv")

    def feature_importance(self, aoi_id: str) -> Path:
        return self.aoi_dir(aoi_id) / "metrics" / "feature_importance.csv"

    def area_estimates(self, aoi_id: str) -> Path:
        return self._aoi_path(aoi_id, "metrics", "area_estimates.csv")

    def confidence(self, aoi_id: str, period: str) -> Path:
        return self._aoi_path(aoi_id, "classes", f"{period}_confidence.tif")

    def model(self, aoi_id: str) -> Path:
        """The trained model (skops); its metadata is the .json beside it."""
        return self._aoi_path(aoi_id, "models", f"{aoi_id}.skops")

    def sample_design(self, aoi_id: str) -> Path:
        return self._aoi_path(aoi_id, "validation", "sample_design.gpkg")

    def change_sample_design(self, aoi_id: str) -> Path:
        return self._aoi_path(aoi_id, "validation", "change_sample_design.gpkg")

    def change_area_estimates(self, aoi_id: str) -> Path:
        return self._aoi_path(aoi_id, "metrics", "change_area_estimates.csv")

    def event_metrics(self, aoi_id: str) -> Path:
        return self._aoi_path(aoi_id, "events", "event_metrics.csv")

    def baci(self, aoi_id: str) -> Path:
        return self._aoi_path(aoi_id, "events", "baci.csv")

    def event_zones(self, aoi_id: str) -> Path:
        return self._aoi_path(aoi_id, "events", "event_zones.gpkg")

    def impact(self, aoi_id: str) -> Path:
        """Disasters (and other types measured as an impact): the area changed into bare ground, mud or
        water after the event, and its BACI effect against the control ring."""
        return self.aoi_dir(aoi_id) / "events" / "impact.csv"

    def impact_footprints(self, aoi_id: str) -> Path:
        """The impact footprint of each event of the AOI as one (multi)polygon (GeoPackage)."""
        return self.aoi_dir(aoi_id) / "events" / "impact_footprints.gpkg"

    def impact_footprint(self, aoi_id: str, event_id: str) -> Path:
        """COG, uint8: 1 = changed into an impact class after the event, 0 = not, 255 = outside the impact
        zone or not observed before and after; it covers the event's zones."""
        return self.aoi_dir(aoi_id) / "events" / f"impact_{event_id}.tif"

    def transitions_first_last(self, aoi_id: str) -> Path:
        return self._aoi_path(aoi_id, "metrics", "transitions_first_last.csv")

    def change_summary(self, aoi_id: str) -> Path:
        return self._aoi_path(aoi_id, "metrics", "change_summary.csv")

    def mining_footprint(self, aoi_id: str) -> Path:
        return self._aoi_path(aoi_id, "metrics", "mining_footprint.csv")

    def rings(self, aoi_id: str) -> Path:
        return self._aoi_path(aoi_id, "metrics", "rings.csv")

    def first_change(self, aoi_id: str) -> Path:
        """uint16: the number of the period in which the class first changed (change/maps.py)."""
        return self._aoi_path(aoi_id, "change", "first_change.tif")

    def change_first_last(self, aoi_id: str) -> Path:
        """uint8, first -> last period: 0 stable, k = k-th transition of interest, then other change."""
        return self._aoi_path(aoi_id, "change", "first_last.tif")

    def change_consecutive(self, aoi_id: str, period_from: str, period_to: str) -> Path:
        """The change map of one pair of consecutive periods (change.consecutive_maps), coded as first_last."""
        return self._aoi_path(aoi_id, "change", "consecutive", f"{period_from}_to_{period_to}.tif")
    def disturbance(self, aoi_id: str, name: str) -> Path:
        """change.segmentation: change/disturbance_<name>.tif, name = period (uint16 k), magnitude (index
        units), duration (years) or recovery (share regained) (change/segmentation.py)."""
        return self._aoi_path(aoi_id, "change", f"disturbance_{name}.tif")

    def disturbance_area(self, aoi_id: str) -> Path:
        """change.segmentation: area disturbed per period."""
        return self._aoi_path(aoi_id, "metrics", "disturbance_area.csv")

    @property
    def event_records(self) -> Path:
        """The events table as read, parsed, with the analyses each record allows and its AOI link."""
        return self.path("event_records.csv")

    @property
    def exports(self) -> Path:
        """Run-level exports: every table as CSV and Parquet, event zones GPKG, SPSS .sav, Kumu JSON."""
        return self.path("exports")

    @property
    def summary(self) -> Path:
        """Run-level summaries of event effects across AOIs (CSV and PNG charts)."""
        return self.path("summary")

    def video(self, aoi_id: str) -> Path:
        return self._aoi_path(aoi_id, "video", f"{aoi_id}.mp4")

    def poster(self, aoi_id: str) -> Path:
        """1280x720 PNG thumbnail of the video."""
        return self._aoi_path(aoi_id, "video", f"{aoi_id}_poster.png")

    def subtitles(self, aoi_id: str) -> Path:
        """The event captions as SubRip subtitles, timed to the video's frames."""
        return self._aoi_path(aoi_id, "video", f"{aoi_id}.srt")

    def youtube(self, aoi_id: str) -> Path:
        """Title, description (sources) and chapter timestamps to paste into YouTube."""
        return self._aoi_path(aoi_id, "video", "youtube.txt")

    def class_map_style(self, aoi_id: str, period: str) -> Path:
        """The QGIS style (.qml) beside a class map: QGIS applies it when the map is loaded."""
        return self.class_map(aoi_id, period).with_suffix(".qml")

    def composite_style(self, aoi_id: str, period: str) -> Path:
        """The composite's QGIS style (true colour: red, green, blue), applied when QGIS loads the file."""
        return self.composite(aoi_id, period).with_suffix(".qml")

    def composite_false_colour_style(self, aoi_id: str, period: str) -> Path:
        """A second style for the composite (false colour: nir, red, green), to load in QGIS by hand."""
        return self.composite(aoi_id, period).with_name(f"{period}_false_colour.qml")

    def confidence_style(self, aoi_id: str, period: str) -> Path:
        return self.confidence(aoi_id, period).with_suffix(".qml")

    def first_change_style(self, aoi_id: str) -> Path:
        return self.first_change(aoi_id).with_suffix(".qml")

    def style(self, raster: Path) -> Path:
        """The QGIS style beside any raster of the run."""
        return raster.with_suffix(".qml")
    def export(self, name: str) -> Path:
        """A run-level export file, e.g. `export("class_area.csv")`."""
        return self.path("exports", name)

    def summary_chart(self, indicator: str, zone: str, class_name: str) -> Path:
        """The chart of the mean effect by `indicator` for one zone and class (class names come from the
        config: every character but letters, digits, '-' and '_' becomes '_')."""
        slug = re.sub(r"[^A-Za-z0-9_-]", "_", f"{indicator}_{zone}_{class_name}")
        return self.path("summary", f"{slug}.png")

    def stamp(self, aoi_id: str | None, stage: str) -> Path:
        """A stage's stamp (`<aoi_id>/.midr/<stage>.json`; the run-level products': `.midr/products.json`)."""
        return self._aoi_path(aoi_id, ".midr", f"{stage}.json") if aoi_id else self.path(".midr", f"{stage}.json")

    @property
    def effects_by_indicator(self) -> Path:
        """BACI effects by country, company, commodity, lifecycle stage and event type (all AOIs)."""
        return self.path("summary", "effects_by_indicator.csv")

    @property
    def report(self) -> Path:
        """The run's HTML report (`midr report`): index.html, one page per AOI, assets/."""
        return self.path("report")

    @property
    def report_index(self) -> Path:
        """The report's overview page: every AOI, the run's provenance, links to the run summaries."""
        return self.report / "index.html"

    def report_page(self, aoi_id: str) -> Path:
        """One AOI's report page (an AOI named "index" gets "index_aoi.html")."""
        check_id(aoi_id)
        return self.path("report", f"{aoi_id if aoi_id != 'index' else 'index_aoi'}.html")

    def report_assets(self, aoi_id: str | None = None) -> Path:
        """The report's style sheet and, for an AOI, its charts and class-map previews."""
        return self.path("report", "assets") if aoi_id is None else self.path("report", "assets", check_id(aoi_id))

    @property
    def stac_catalog(self) -> Path:
        """The run's outputs as a self-contained static STAC catalog (pipeline.products.catalog, docs/outputs.md)."""
        return self.path("stac", "catalog.json")


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

    def class_map(self, aoi_id: str, *, cleaned: bool = False) -> xr.DataArray:
        """(period, y, x) uint8 class codes, 255 = nodata; lazy (Dask); `period_start`/`period_end` along
        the period dimension. `cleaned`: the gap-filled maps with the minimum mapping unit applied, which
        the run's tables count (classes_cleaned/); else the maps as classified (classes/)."""
        table = self.period_table(aoi_id)
        path = self.layout.cleaned_class_map if cleaned else self.layout.class_map
        maps = [rioxarray.open_rasterio(path(aoi_id, p), chunks={}).squeeze("band", drop=True)
                for p in table["period"]]
        stacked = xr.concat(maps, dim=pd.Index(list(table["period"]), name="period"))
        return stacked.assign_coords(period_start=("period", pd.to_datetime(table["period_start"]).values),
                                     period_end=("period", pd.to_datetime(table["period_end"]).values),
                                     period_label=("period", list(table["period_label"]))).rename("class_map")

    def composite(self, aoi_id: str, period: str) -> xr.Dataset:
        """One period's composite: a float32 variable per band and index, NaN = nodata; lazy."""
        raster = rioxarray.open_rasterio(self.layout.composite(aoi_id, period), chunks={})
        names = raster.attrs["long_name"]
        names = [names] if isinstance(names, str) else list(names)  # one band: a string
        return raster.assign_coords(band=names).to_dataset("band")

    def class_area(self, aoi_id: str) -> pd.DataFrame:
        return read_table(self.layout.class_area(aoi_id))

    def aoi_table(self, aoi_id: str) -> pd.DataFrame:
        return read_table(self.layout.aoi_table(aoi_id))

    def transitions(self, aoi_id: str) -> pd.DataFrame:
        return read_table(self.layout.transitions(aoi_id))

    def event_metrics(self, aoi_id: str) -> pd.DataFrame:
        return read_table(self.layout.event_metrics(aoi_id))

    def baci(self, aoi_id: str) -> pd.DataFrame:
        return read_table(self.layout.baci(aoi_id))

    def impact(self, aoi_id: str) -> pd.DataFrame:
        return read_table(self.layout.impact(aoi_id))

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
