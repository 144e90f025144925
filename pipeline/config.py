"""One YAML file -> one typed, checked config (`PipelineConfig`).

Every section is strict: an unknown (e.g. misspelt) key is an error, not silently ignored. Relative
paths resolve against the folder of the config file, so a config can be run from anywhere.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlparse

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pipeline.errors import ConfigError

__all__ = [
    "PipelineConfig",
    "SAFE_NAME",
    "ClassDef",
    "DEFAULT_CLASSES",
    "BUILTIN_MODELS",
    "load_config",
    "config_schema",
    "resolve_model",
]

BandName = Literal["blue", "green", "red", "nir", "swir1", "swir2"]
IndexName = Literal["ndvi", "ndwi", "ndbi", "bsi"]


def _resolve(value: Path, info: ValidationInfo) -> Path:
    """Resolve a relative path against the config file's folder (given in the validation context)."""
    base = (info.context or {}).get("base_dir")
    if base is None or value.is_absolute():
        return value
    return (Path(base) / value).resolve()


# A path in the config: relative paths resolve against the config file's folder.
ConfigPath = Annotated[Path, AfterValidator(_resolve)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def _changed(self, *names: str) -> list[str]:
        """Of `names`, the fields given a value other than their default (a default given again, as in a
        dumped config validated back, is no change)."""
        fields = type(self).model_fields
        return [n for n in names if n in self.model_fields_set
                and getattr(self, n) != fields[n].get_default(call_default_factory=True)]


class ClassDef(Strict):
    """One land-cover class: its code in class maps, its name and its colour in maps and videos."""

    code: int = Field(ge=0, le=254)
    name: str = Field(min_length=1)
    colour: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")


DEFAULT_CLASSES: tuple[ClassDef, ...] = (
    ClassDef(code=1, name="water", colour="#1f78b4"),
    ClassDef(code=2, name="tree cover", colour="#33a02c"),
    ClassDef(code=3, name="grass/shrub", colour="#b2df8a"),
    ClassDef(code=4, name="cropland", colour="#ffd92f"),
    ClassDef(code=5, name="built-up", colour="#e31a1c"),
    ClassDef(code=6, name="bare ground & mining", colour="#8c6d31"),
)


class AoisFromEventsConfig(Strict):
    """One AOI per mine of the events table (`midr aois CONFIG` writes them as a GeoPackage to edit)."""

    radius_m: float = Field(10000.0, gt=0, description="disc around the mine point")
    margin_m: float = Field(2000.0, ge=0, description="the AOI grows to hold each event's origin and site points "
                            "(and outlines) with this margin; at least events.zone_radius_m")


class AoiConfig(Strict):
    path: ConfigPath | None = Field(None, description="vector file of mine areas, one polygon per mine")
    from_events: AoisFromEventsConfig | None = Field(
        None, description="instead of path: one AOI per mine of the events table (events.path)")
    id_field: str = "aoi_id"
    buffer_m: float = Field(0.0, ge=0, description="grow each AOI polygon by this many metres before clipping")
    ids: list[str] | None = Field(None, description="run only these AOI ids (default: all features)")

    @model_validator(mode="after")
    def _one_source(self) -> "AoiConfig":
        if (self.path is None) == (self.from_events is None):
            raise ValueError("give either path (a vector file of mine areas) or from_events (e.g. "
                             "from_events: {radius_m: 10000}: one AOI per mine of the events table)")
        return self


IngestBand = Literal["blue", "green", "red", "nir", "swir1", "swir2", "ndvi", "evi"]
SensorName = Literal["landsat-c2-l2", "sentinel-2-l2a", "generic"]
MaskClass = Literal["cloud", "shadow", "snow", "cirrus", "dilated_cloud", "saturated"]


def _resolve_glob(value: str, info: ValidationInfo) -> str:
    """A glob relative to the config file's folder, made absolute (the glob itself is kept)."""
    base = (info.context or {}).get("base_dir")
    if base is None or Path(value).is_absolute():
        return value
    return str(Path(base) / value)


def _check_pattern(value: str | None) -> str | None:
    if value is None:
        return value
    try:
        groups = re.compile(value).groups
    except re.error as err:
        raise ValueError(f"not a regular expression ({err})") from None
    if groups < 1:
        raise ValueError("needs a capture group, e.g. '(\\d{8})'")
    return value


Pattern = Annotated[str | None, AfterValidator(_check_pattern)]


class MaskRuleConfig(Strict):
    """A generic sensor's quality band: which of its values (or bits) mean cloud, shadow, ... or no data."""

    band: str = Field(description="native name of the quality band (description, file-name token or asset)")
    kind: Literal["values", "bits"] = "values"
    classes: dict[Literal[MaskClass, "nodata"], list[int]] = Field(
        description="common class -> the band's values (kind: values) or bit numbers (kind: bits)")


class _SourceBase(Strict):
    sensor: SensorName = "generic"
    bands: dict[IngestBand, str] | None = Field(
        None, description="common band name -> native name (default: the sensor profile's)")
    scale: float | None = Field(None, description="default: the sensor profile's")
    offset: float | None = Field(None, description="default: the sensor profile's")
    nodata: float | None = Field(None, description="raw nodata value (default: the profile's, else the file's)")
    mask: MaskRuleConfig | None = Field(None, description="quality band rule (generic sensors)")
    no_mask: bool = Field(False, description="ignore the profile's quality band")

    @model_validator(mode="after")
    def _mask_or_no_mask(self):
        if self.no_mask and self.mask is not None:
            raise ValueError("give mask (a quality band rule) or no_mask: true, not both")
        return self


class FilesSourceConfig(_SourceBase):
    """Local raster files (GeoTIFF, JPEG2000, anything GDAL reads)."""

    kind: Literal["files"] = "files"
    scenes: Annotated[str, AfterValidator(_resolve_glob)] = Field(description="glob of the files")
    layout: Literal["multiband", "band-per-file", "date-per-band"] = Field(
        "multiband", description="multiband: one file per date, bands by description; band-per-file: "
        "one file per band per date (band from band_pattern); date-per-band: one file per variable, "
        "one band per date (date from band description or DATETIME tag)")
    date_from: Literal["name", "tags"] = Field("name", description="date from the file name or the tags")
    date_pattern: Pattern = Field(None, description="regex, group 1 = date in the file name")
    date_format: str | None = None
    band_pattern: Pattern = Field(None, description="regex, group 1 = band in the file name")
    on_error: Literal["raise", "skip"] = Field("raise", description="unreadable file: stop, or warn and skip")

    @model_validator(mode="after")
    def _no_ignored_keys(self) -> "FilesSourceConfig":
        given = self._changed("band_pattern", "date_from", "date_pattern", "date_format")
        ignored = []
        if self.layout == "multiband" and "band_pattern" in given:
            ignored.append(("band_pattern", "layout multiband names bands by their descriptions",
                            "set layout: band-per-file"))
        if self.layout == "date-per-band":
            ignored += [(k, "layout date-per-band takes each band's date from its description or DATETIME tag",
                         f"remove {k}") for k in ("date_from", "date_pattern", "date_format") if k in given]
        elif self.date_from == "tags":
            ignored += [(k, "date_from: tags reads the date from the files' tags", f"remove {k}")
                        for k in ("date_pattern", "date_format") if k in given]
        if ignored:
            name, why, fix = ignored[0]
            raise ValueError(f"{name} would be ignored: {why}; {fix}")
        return self


def _catalog_location(value: object) -> object:
    """A static catalog given as a file:// URL becomes its absolute path (never joined to the config's
    folder); other URLs are refused: a catalog on the web is searched as a STAC API (`api`)."""
    if not isinstance(value, str) or "://" not in value and not value.startswith("file:"):
        return value
    url = urlparse(value)
    if url.scheme != "file":
        raise ValueError(f"{value!r}: catalog is a static catalog.json on disk (a path or a file:// URL); for "
                         "a STAC API on the web use api")
    if url.netloc not in ("", "localhost"):
        raise ValueError(f"{value!r}: a file:// URL of another host ({url.netloc}); mount it and give the path")
    return Path(unquote(url.path))


def _check_date_range(value: str | None) -> str | None:
    """A STAC datetime (one date, or start/end with '..' for an open end) whose end is not before its start."""
    if value is None:
        return value
    parts = value.split("/")
    if len(parts) > 2:
        raise ValueError(f"not a date range: {value!r} (e.g. 2015-01-01/2020-12-31)")
    bounds = [None if p in ("", "..") else _instant(p, end=i == 1 and len(parts) == 2) for i, p in enumerate(parts)]
    if len(bounds) == 2 and None not in bounds and bounds[1] < bounds[0]:
        raise ValueError(f"the date range {value!r} is reversed: it ends ({parts[1]}) before it starts ({parts[0]}); "
                         f"give start/end, e.g. {parts[1]}/{parts[0]}")
    return value


def _iso_text(value: object) -> object:
    """A date YAML read as a date (datetime: 2020-06-01, unquoted) back to its ISO text."""
    import datetime as _dt

    return value.isoformat() if isinstance(value, _dt.date) else value


def _instant(text: str, *, end: bool):
    """A date or date-time of a STAC datetime as a comparable naive UTC timestamp; a date ('2020',
    '2020-06', '2020-06-01') is its first moment, or its last as the `end` of a range."""
    import pandas as pd

    try:
        moment = pd.Timestamp(text.strip())
    except ValueError:
        raise ValueError(f"not a date or date-time: {text!r} (e.g. 2015-01-01 or 2015-01-01T00:00:00Z)") from None
    if end and re.fullmatch(r"\d{4}(-\d{2}){0,2}", text.strip()):
        moment = pd.Period(text.strip()).end_time
    return moment.tz_convert("UTC").tz_localize(None) if moment.tzinfo is not None else moment


class StacSourceConfig(_SourceBase):
    """A STAC API search (pystac-client) or a static catalog on disk, loaded lazily with odc-stac."""

    kind: Literal["stac"]
    api: str | None = Field(None, description="STAC API URL")
    catalog: Annotated[ConfigPath | None, BeforeValidator(_catalog_location)] = Field(
        None, description="static catalog.json on disk (a path, relative to the config file, or a file:// URL)")
    collection: str | None = None
    datetime: Annotated[str | None, BeforeValidator(_iso_text), AfterValidator(_check_date_range)] = Field(
        None, description="date range, e.g. 2015-01-01/2020-12-31")
    max_cloud_cover: float | None = Field(None, ge=0, le=100, description="eo:cloud_cover at most (%)")
    sign: Literal["planetary-computer"] | None = Field(
        None, description="sign asset URLs when they are read: planetary-computer (needs the optional package: "
                          "pip install 'midr-pipeline[planetary-computer]')")
    requester_pays: bool = Field(False, description="assets in a requester-pays bucket (e.g. s3://usgs-landsat): "
                                                    "AWS_REQUEST_PAYER=requester; needs AWS credentials")
    gdal: dict[str, str] = Field(default_factory=dict, description="GDAL settings for reading this source's "
                                 "assets, e.g. {AWS_NO_SIGN_REQUEST: 'YES'} or {AWS_S3_ENDPOINT: ...}")
    group_by: Literal["solar_day", "item"] = Field(
        "solar_day", description="solar_day: the items of one overpass (tiles of one local day) are one scene; "
                                 "item: every item is a scene of its own")

    @model_validator(mode="after")
    def _one_place(self) -> "StacSourceConfig":
        if (self.api is None) == (self.catalog is None):
            raise ValueError("give exactly one of api (a STAC API URL) or catalog (a static catalog.json)")
        return self


SourceConfig = Annotated[FilesSourceConfig | StacSourceConfig, Field(discriminator="kind")]


def _check_crs(value: str | None) -> str | None:
    """A CRS pyproj knows and a grid can be laid out in (projected or geographic), or None / 'native'."""
    if value is None or value == "native":
        return value
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        crs = CRS.from_user_input(value)
    except CRSError:
        raise ValueError(f"not a CRS: {value!r}; give an EPSG code such as EPSG:32736, a WKT or PROJ string, "
                         "'native' (the first scene's CRS) or leave it out (the AOI's UTM zone)") from None
    if not (crs.is_projected or crs.is_geographic):
        raise ValueError(f"{value!r} ({crs.name}) is not a horizontal CRS a pixel grid can be laid out in")
    return value


class GridConfig(Strict):
    crs: Annotated[str | None, AfterValidator(_check_crs)] = Field(
        None, description="target CRS, projected in metres; default: the UTM zone of the AOI's centroid; "
                          "'native': the first scene's CRS")
    resolution: float | None = Field(None, gt=0, description="pixel size in metres; default: the first scene's")
    anchor: Literal["scene", "resolution"] = Field(
        "scene", description="pixel edges on the first scene's grid (kept exactly where the projection is the "
                             "same), or on multiples of the resolution")

    @field_validator("crs")
    @classmethod
    def _metres(cls, value: str | None) -> str | None:
        if value is None or value == "native":
            return value
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        try:
            crs = CRS.from_user_input(value)
        except CRSError:
            raise ValueError("not a CRS pyproj knows (e.g. EPSG:32736, or 'native')") from None
        units = {axis.unit_name for axis in crs.axis_info}
        if not crs.is_projected or not units <= {"metre", "meter"}:
            raise ValueError(f"{crs.name} is in {'/'.join(sorted(units))}, not metres, and areas, buffers and "
                             "rings are in metres: leave grid.crs out to use each AOI's UTM zone, or give a "
                             "projected CRS in metres (e.g. a UTM zone, EPSG:326xx / 327xx)")
        return value


class IngestConfig(Strict):
    sources: list[SourceConfig] | None = Field(
        None, min_length=1, description="where the scenes come from; merged into one series per AOI")
    # shorthand for one generic multiband files source (the original form)
    scenes: str | None = Field(
        None, description="glob of scene GeoTIFFs, relative to the config file (one multi-band file per date)"
    )
    date_pattern: str = Field(
        r"(\d{8})", description="regex whose first group is the acquisition date in the file name"
    )
    date_format: str = "%Y%m%d"
    bands: dict[BandName, str] = Field(
        default_factory=lambda: {b: b for b in ("blue", "green", "red", "nir", "swir1", "swir2")},
        description="common band name -> band description in the files",
    )
    scale: float = 1e-4
    offset: float = 0.0
    nodata: float | None = Field(0, description="reflectance nodata value (default: the file's)")
    grid: GridConfig = GridConfig()
    harmonise: bool = Field(False, description="bring TM/ETM+ and MSI reflectance to Landsat 8 OLI")
    chunk_size: int = Field(512, ge=64, le=8192, description="pixels per chunk side")

    @field_validator("date_pattern")
    @classmethod
    def _one_group(cls, value: str) -> str:
        return _check_pattern(value)

    @model_validator(mode="after")
    def _sources_or_scenes(self) -> "IngestConfig":
        if (self.sources is None) == (self.scenes is None):
            raise ValueError("give either sources (a list) or scenes (one glob of multi-band files)")
        shorthand = self._changed("date_pattern", "date_format", "bands", "scale", "offset", "nodata")
        if self.sources is not None and shorthand:
            raise ValueError(f"{shorthand[0]} would be ignored: it belongs to the ingest.scenes shorthand, and "
                             f"this config gives ingest.sources; set it per source (ingest.sources[i].{shorthand[0]})")
        return self


CloudMethod = Literal["qa", "spectral", "temporal", "none"]


class CloudMaskConfig(Strict):
    method: CloudMethod | None = Field(
        None, description="qa: the quality band (QA_PIXEL, SCL, a source's mask); spectral: Fmask-like rules on "
        "each scene's reflectance (needs blue and red); temporal: a pixel far brighter in blue, or darker in "
        "NIR/SWIR1, or lower in NDVI than its clear dates (3 or more dates); none: no cloud mask. Default: qa "
        "where a scene has its quality band, else spectral (else temporal), with a warning")
    shadow_search_m: float = Field(1000.0, ge=0, description="spectral: a shadow lies within this distance of "
                                   "a cloud (0: any dark pixel)")
    smooth_m: float = Field(40.0, ge=0, description="temporal: majority filter radius on the cloud flags "
                            "(s2cloudless: 4 px of 10 m; 0: none)")
    drop: list[MaskClass] = Field(
        default_factory=lambda: ["cloud", "shadow", "cirrus", "dilated_cloud", "saturated"],
        description="mask classes set to nodata at ingest (add snow to drop snow)")
    mask_band: str | None = Field("mask", description="ingest.scenes shorthand: the mask band's description")
    mask_values: list[int] = Field(
        default_factory=lambda: [1, 2], description="ingest.scenes shorthand: mask band values to drop"
    )

    @model_validator(mode="after")
    def _no_ignored_keys(self) -> "CloudMaskConfig":
        given = self._changed("shadow_search_m", "smooth_m", "drop")
        for name, methods in (("shadow_search_m", (None, "spectral")), ("smooth_m", (None, "temporal"))):
            if name in given and self.method not in methods:
                raise ValueError(f"{name} would be ignored: it applies to method {methods[1]}, and method is "
                                 f"{self.method}")
        if self.method == "none" and "drop" in given:
            raise ValueError("drop would be ignored: method none masks nothing")
        return self


SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")  # ids used in file names: no "/", no leading "." or "-"


def _month_day(value: str) -> str:
    try:
        dt.date(2000, *(int(part) for part in value.split("-")))  # 2000: a leap year, so 02-29 is a day
    except (TypeError, ValueError):
        raise ValueError(f"not a day of the year in the form MM-DD: {value!r}") from None
    return value


MonthDay = Annotated[str, Field(pattern=r"^\d{2}-\d{2}$"), AfterValidator(_month_day)]


class SeasonConfig(Strict):
    """Days of each year composited together; a season may cross the new year (it then belongs to the
    year in which it starts)."""

    start: MonthDay = Field(description="first day, MM-DD, e.g. 05-01")
    end: MonthDay = Field(description="last day, MM-DD, e.g. 09-30 (or 03-31 for a season across the new year)")


class WindowConfig(Strict):
    """A named date range composited on its own, e.g. the weeks before and after an event."""

    name: str = Field(pattern=SAFE_NAME.pattern, description="id in file names and tables, e.g. before")
    start: dt.date = Field(description="first day, YYYY-MM-DD")
    end: dt.date = Field(description="last day, YYYY-MM-DD (inclusive)")

    @model_validator(mode="after")
    def _ordered(self) -> "WindowConfig":
        if self.end < self.start:
            raise ValueError(f"window {self.name!r} ends ({self.end}) before it starts ({self.start})")
        return self


class CompositeConfig(Strict):
    period: Literal["year", "season", "quarter", "month", "scene", "windows"] = Field(
        "year", description="what each composite covers: a calendar year, a season of each year (season), "
        "a quarter, a month, one acquisition day (scene: no compositing), or named date ranges (windows); "
        "docs/periods.md")
    season: SeasonConfig | None = Field(None, description="period: season: the days of each year")
    windows: list[WindowConfig] | None = Field(None, min_length=1, description="period: windows: the ranges")
    method: Literal["median", "mean"] = "median"
    indices: list[IndexName] = Field(default_factory=lambda: ["ndvi", "ndwi", "ndbi"])
    min_clear_scenes: int = Field(1, ge=1, description="fewer clear scenes than this -> nodata pixel")

    @model_validator(mode="after")
    def _period_settings(self) -> "CompositeConfig":
        if (self.period == "season") != (self.season is not None):
            raise ValueError("composite.season is needed with period: season, and only then "
                             "(e.g. season: {start: '05-01', end: '09-30'})")
        if (self.period == "windows") != (self.windows is not None):
            raise ValueError("composite.windows is needed with period: windows, and only then "
                             "(e.g. windows: [{name: before, start: 2019-01-01, end: 2019-01-24}])")
        names = [w.name for w in self.windows or ()]
        if len(set(names)) != len(names):
            raise ValueError(f"composite.windows: names must be unique, got {names}")
        if self.period == "scene" and self.min_clear_scenes > 1:
            raise ValueError(f"min_clear_scenes {self.min_clear_scenes} cannot be met with period: scene (one "
                             "acquisition per period); use 1")
        return self


SubPeriodKind = Literal["none", "season", "quarter", "bimonth", "month"]


class FeaturesConfig(Strict):
    """What each pixel-period is classified from (docs/classification.md, Features). The composite stage
    computes every layer from the period's clear scenes in its one pass and writes it into the period's
    composite COG; the classifier takes the layers named here."""

    composite: bool = Field(True, description="the bands and indices of the period's composite")
    ndvi_range: bool = Field(True, description="NDVI minimum and maximum across the period's clear scenes")
    percentiles: list[float] = Field(
        default_factory=list,
        description="percentiles (0-100) of each `of` variable across the period's clear scenes, e.g. "
                    "[10, 25, 50, 75, 90] -> ndvi_p10 ... ndvi_p90")
    spread: list[Literal["std", "amplitude"]] = Field(
        default_factory=list, description="std (population) and/or amplitude (max - min) of each `of` variable")
    clear_count: bool = Field(False, description="the number of clear scenes of the pixel in the period")
    of: list[str] | None = Field(
        None, description="variables of the percentiles and spread: scene bands or indices; default "
                          "composite.indices, or the scenes' bands where there are none (an index product)")
    sub_periods: SubPeriodKind | None = Field(
        None, description="composites of parts of each period stacked as features: month (ndvi_m01 = the "
                          "period's January scenes ... _m12), bimonth (_b1 Jan-Feb ... _b6), quarter (_q1 ... _q4), "
                          "season (_season, _offseason: features.season and the rest of the year), none; default: "
                          "month for periods of a year, a season or windows, none for shorter periods")
    sub_period_of: list[str] | None = Field(
        None, description="variables of the sub-period composites; default ndvi (from the bands or an ndvi band), "
                          "else the first `of` variable")
    season: SeasonConfig | None = Field(None, description="sub_periods: season: the days of the season")
    gap_fill: list[Literal["neighbours", "interpolate"]] = Field(
        default_factory=lambda: ["neighbours", "interpolate"],
        description="how a sub-period without a clear scene (a gap) is filled, steps in order: neighbours (the "
                    "same sub-period of the previous period, else of the next), interpolate (linearly between "
                    "the nearest sub-periods of the period that have a value); what is left (or all, with []) "
                    "stays missing for the model (random forest, LightGBM and histogram boosting take missing "
                    "values)")

    @model_validator(mode="after")
    def _consistent(self) -> "FeaturesConfig":
        if any(not 0 <= q <= 100 for q in self.percentiles) or len(set(self.percentiles)) != len(self.percentiles):
            raise ValueError(f"percentiles must be distinct values in 0..100, got {self.percentiles}")
        if (self.sub_periods == "season") != (self.season is not None):
            raise ValueError("season is needed with sub_periods: season, and only then "
                             "(e.g. season: {start: '04-01', end: '09-30'})")
        if self.sub_period_of == []:
            raise ValueError("sub_period_of names no variable for the sub-period composites (leave it out for ndvi)")
        if not self.composite and not (self.ndvi_range or self.percentiles or self.spread or self.clear_count
                                       or self.sub_periods not in ("none", None)):
            raise ValueError("no feature is left: composite is false and no other feature is chosen")
        return self

    @property
    def from_scenes(self) -> bool:
        """Layers beyond the composite and NDVI range, computed from the period's scenes."""
        return bool(self.percentiles or self.spread or self.sub_periods not in ("none", None))
class ReferenceMapConfig(Strict):
    """Training labels sampled from an existing categorical land-cover map (`classify.training: {map: ...}`)."""

    map: ConfigPath = Field(description="categorical GeoTIFF (WorldCover, Dynamic World label, MapBiomas, a "
                                        "national map), any CRS; put on the composites' grid (mode if finer)")
    year: str | int = Field(description="the map's year (or period id): the period whose composite is sampled; "
                                        "the model then predicts every period")
    classes: dict[int, int | None] = Field(
        min_length=1, description="map code -> class code of `classes` (null drops the code); map codes not "
                                  "listed are dropped and reported")
    per_class: int = Field(500, ge=1, description="pixels sampled per class (all if fewer remain)")
    edge_px: int | dict[int, int] = Field(
        1, description="erosion radius: a pixel is sampled only if all pixels within edge_px carry its class; "
                       "0 = none; per class {class code: px} (classes not listed get 1). Use 0 on 10 m grids "
                       "with small parcels")
    outlier_z: float | None = Field(
        3.5, gt=0, description="drop pixels whose modified z-score (median/MAD) exceeds this in any feature, "
                               "per class; null = off")
    nodata: list[int] = Field(default_factory=list, description="map codes meaning no data (beside the file's own)")
    resampling: Literal["auto", "nearest", "mode"] = Field(
        "auto", description="onto the grid: mode where the map is finer than the grid (auto), or nearest")

    @field_validator("edge_px")
    @classmethod
    def _non_negative(cls, value: int | dict[int, int]) -> int | dict[int, int]:
        values = value.values() if isinstance(value, dict) else [value]
        if any(v < 0 for v in values):
            raise ValueError(f"must be >= 0, got {value}")
        return value


def _training_kind(value: object) -> str:
    return "reference_map" if isinstance(value, (dict, ReferenceMapConfig)) else "labels"


# classify.training: a mapping is a reference map, anything else the path of labelled points/polygons (one
# branch is checked, so an error names only its keys; the tags are left out of error locations)
TrainingSource = Annotated[Annotated[ReferenceMapConfig, Tag("reference_map")] | Annotated[ConfigPath, Tag("labels")],
                           Discriminator(_training_kind)]


class ClassifyConfig(Strict):
    training: TrainingSource = Field(
        description="labelled points or polygons (GPKG/GeoJSON/Shapefile), or a reference land-cover map "
                    "{map, year, classes, per_class, ...}")
    class_field: str = "class_code"
    period_field: str | None = Field(
        "year", description="year each label holds for; null = the label holds for every period"
    )
    features: FeaturesConfig = Field(FeaturesConfig(), description="what each pixel-period is classified from")
    n_estimators: int = Field(
        50, ge=1, description="random_forest: trees (50 and max_depth 16: the accuracy of 100 full-depth trees at "
                              "twice the prediction speed, benchmarks/model_choice.py)")
    max_depth: int | None = Field(16, ge=1, description="random_forest: deepest split of a tree; null = no limit")
    test_fraction: float = Field(0.3, gt=0, lt=1, description="share of labels held out for accuracy")
    random_state: int = 42
    allow_import: list[Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]] = Field(
        default_factory=list,
        description="import paths 'package.module:Name' that classify.model may name although they are not "
                    "scikit-learn classifier classes (e.g. a function building a Pipeline); the code they name "
                    "runs with model_params as its arguments")
    model: str = Field(
        "random_forest",
        description="random_forest, lightgbm, kmeans, or an import path 'package.module:Class' of a "
                    "scikit-learn classifier class; any other callable (e.g. a function returning a Pipeline) "
                    "only if listed in allow_import. A config can name code: run only configs you trust")
    model_params: dict[str, Any] = Field(
        default_factory=dict,
        description="keyword arguments of the model (random_forest: default n_estimators/max_depth above)")
    model_path: ConfigPath | None = Field(
        None, description="reuse a model saved by another run (models/<aoi_id>.skops); no training")
    trusted_types: list[str] = Field(
        default_factory=list, description="extra types to trust when loading model_path (skops)")
    save_model: bool = Field(True, description="write models/<aoi_id>.skops and its metadata JSON")
    max_pixels_per_polygon: int = Field(100, ge=1, description="training polygons: pixels sampled per polygon")
    cv_folds: int = Field(5, ge=0, description="spatially blocked k-fold cross-validation; 0 = off")
    cv_block_size_m: float = Field(1000.0, gt=0, description="side of the square CV blocks, metres")
    confidence: bool = Field(True, description="write classes/<period>_confidence.tif (max class probability)")
    temporal_filter: Literal["none", "flicker"] = Field(
        "none", description="flicker: undo A->B->A flips across periods unless B is confident")
    flicker_min_confidence: float = Field(
        1.0, ge=0, le=1, description="a flip whose confidence is at least this is kept (1.0: only unanimous ones)")
    flicker_max_gap: Literal[1, 2] = Field(2, description="1: A,B,A; 2: also A,B,B,A")
    flicker_end_confidence: float = Field(
        0.6, ge=0, le=1, description="first/last period: a change from the neighbour below this confidence "
                                     "is undone (0 = leave the ends alone)")
    gap_fill: Literal["none", "agree", "nearest"] = Field(
        "agree", description="fill a pixel without data in a period from its nearest observed periods: agree = "
                             "where the observations before and after agree (at the series' ends: the one "
                             "there is); nearest = the nearest in time (ties: the earlier); none (e.g. for a "
                             "before/after pair). classes_cleaned/ holds the result, classes/ the maps as "
                             "classified")
    mmu_ha: float = Field(
        0.5, ge=0, description="minimum mapping unit (ha): patches smaller than this are merged into their "
                               "surroundings in every period's cleaned map and in every change map; 0 = none")
    mmu_connectivity: Literal[4, 8] = Field(
        8, description="pixels of a patch touch by their sides and corners (8) or by their sides only (4)")
    sample_period: str | int | None = Field(
        None, description="period (id, e.g. 2021 or 2021-q2) whose class map is the strata of the validation "
                          "sample (default: the last)")
    sample_target_se: float = Field(0.01, gt=0, lt=1, description="target SE of overall accuracy (Olofsson eq. 13)")
    sample_expected_users_accuracy: float = Field(0.85, gt=0, lt=1)
    sample_min_per_stratum: int = Field(50, ge=2)
    validation_sample: ConfigPath | None = Field(
        None, description="a labelled validation/sample_design.gpkg -> metrics/area_estimates.csv")
    reference_field: str = Field("reference_code", description="field of the labelled reference class")
    change_transitions: list[tuple[int, int]] = Field(
        default_factory=list, description="transitions of interest, first to last period, e.g. [[4, 6]]: a "
                                          "change map (stable / each transition / other change) and its sample")
    change_validation_sample: ConfigPath | None = Field(
        None, description="a labelled validation/change_sample_design.gpkg -> metrics/change_area_estimates.csv")
    merge_classes: dict[int, int] = Field(
        default_factory=dict, description="label code -> class code, to merge classes of the training data "
                                          "(and of a labelled validation sample) into the schema's")
    ignore_classes: list[int] = Field(
        default_factory=list, description="label codes to leave out of training (e.g. 0 = unlabelled)")
    importance_repeats: int = Field(
        5, ge=0, description="permutation importance of each feature on the spatial-CV folds: shuffles per "
                             "feature and fold (0 = off)")

    @model_validator(mode="before")
    @classmethod
    def _temporal_stats(cls, data: Any) -> Any:
        """The former `temporal_stats: bool` is features.ndvi_range."""
        if isinstance(data, dict) and "temporal_stats" in data:
            data = dict(data)
            value = data.pop("temporal_stats")
            features = dict(data.get("features") or {})
            if "ndvi_range" in features and features["ndvi_range"] != value:
                raise ValueError("temporal_stats and features.ndvi_range disagree; keep features.ndvi_range only")
            data["features"] = {**features, "ndvi_range": value}
        return data

    @field_validator("model")
    @classmethod
    def _known_model(cls, model: str, info: ValidationInfo) -> str:
        resolve_model(model, info.data.get("allow_import", []))
        return model

    @property
    def reference_map(self) -> ReferenceMapConfig | None:
        """The reference map the labels are sampled from, or None (labelled points or polygons)."""
        return self.training if isinstance(self.training, ReferenceMapConfig) else None

    @property
    def training_file(self) -> Path:
        """The file the training labels come from: the points/polygons, or the reference map."""
        return self.training.map if isinstance(self.training, ReferenceMapConfig) else self.training


BUILTIN_MODELS = ("random_forest", "lightgbm", "kmeans")


def resolve_model(name: str, allow_import: list[str] | tuple[str, ...] = ()):
    """What `classify.model` names: None for a built-in model (`BUILTIN_MODELS`), else the imported
    class or callable. An import path ('package.module:Name' or 'package.module.Name') must be listed in
    `allow_import`, or name a class that is a scikit-learn classifier (a `BaseEstimator` subclass whose
    default instance `sklearn.base.is_classifier` accepts); nothing is called with the config's
    parameters before that check. Raises ValueError saying why not."""
    if name in BUILTIN_MODELS:
        return None
    module_name, sep, attribute = name.partition(":")
    if not sep:
        module_name, _, attribute = name.rpartition(".")
    if not module_name or not attribute or not re.fullmatch(r"[A-Za-z_][\w.]*", module_name) \
            or not attribute.isidentifier():
        raise ValueError(f"{name!r} is neither {', '.join(BUILTIN_MODELS)} nor an import path like "
                         "'sklearn.ensemble:ExtraTreesClassifier'")
    import importlib
    import inspect

    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot import {name!r} ({err})") from None
    if f"{module_name}:{attribute}" in allow_import:
        return target
    from sklearn.base import BaseEstimator, is_classifier

    if not (inspect.isclass(target) and issubclass(target, BaseEstimator)):
        raise ValueError(f"{name!r} is not a scikit-learn classifier class; if you trust the code it names, "
                         f"list it in classify.allow_import: ['{module_name}:{attribute}']")
    try:
        classifier = is_classifier(target())
    except Exception as err:  # a default instance that cannot be made is no estimator to train
        raise ValueError(f"{name!r}: cannot make a default instance to check it is a classifier ({err})") from None
    if not classifier:
        raise ValueError(f"{name!r} is a scikit-learn estimator but not a classifier (sklearn.base.is_classifier)")
    return target


class EventsConfig(Strict):
    path: ConfigPath
    link: Literal["aoi_id", "spatial"] = Field(
        "spatial", description="aoi_id: the table's aoi_id column; spatial: mine point within the AOI"
    )
    link_distance_m: float = Field(0.0, ge=0, description="spatial link: mine point within this distance")
    zone_radius_m: float = Field(750.0, gt=0, description="buffer around origin and resettlement site")
    years_before: int | None = Field(None, ge=1, description="before window: the periods that end within N "
                                     "years before the event (default 2; or periods_before / days_before)")
    years_after: int | None = Field(None, ge=1, description="after window: the periods that start within N years "
                                    "after the event (default 2; or periods_after / days_after)")
    periods_before: int | None = Field(None, ge=1, description="before window: the N periods before the event")
    periods_after: int | None = Field(None, ge=1, description="after window: the N periods after the event")
    days_before: int | None = Field(None, ge=1, description="before window: the periods that end within N days "
                                    "before the event (rapid events with periods of scenes or months)")
    days_after: int | None = Field(None, ge=1, description="after window: the periods that start within N days "
                                   "after the event")
    impact_radius_m: float = Field(2000.0, gt=0, description="disaster displacement (and other types): the impact "
                                   "zone, a disc of this radius around the mine point (or the record's impact_wkt)")
    impact_classes: list[int] = Field(
        default_factory=lambda: [1, 6], description="class codes an area turns into when a disaster strikes "
                                                    "(bare ground, mud, water; default: water, bare ground & mining)")
    impact_min_area_ha: float = Field(0.5, ge=0, description="impact footprint: patches smaller than this are "
                                      "classification speckle and left out")
    control_inner_m: float = Field(3000.0, ge=0, description="control ring around the mine point: inner radius")
    control_outer_m: float = Field(6000.0, gt=0, description="control ring: outer radius")
    block_size_m: float = Field(150.0, gt=0, description="side of the spatial blocks of the bootstrap")
    n_bootstrap: int = Field(1000, ge=100, description="bootstrap replicates for the 95 % intervals")
    random_state: int = 0

    @model_validator(mode="after")
    def _ring(self) -> "EventsConfig":
        for side in ("before", "after"):
            given = [f"{unit}_{side}" for unit in ("years", "periods", "days") if getattr(self, f"{unit}_{side}")]
            if len(given) > 1:
                raise ValueError(f"give one of {' or '.join(given)}: each says how long the {side} window is")
        if self.control_outer_m <= self.control_inner_m:
            raise ValueError(f"control_outer_m ({self.control_outer_m}) must exceed control_inner_m "
                             f"({self.control_inner_m})")
        return self

    def window(self, side: Literal["before", "after"]) -> tuple[Literal["years", "periods", "days"], int]:
        """(unit, N) of the before or the after window; 2 years where none is given."""
        for unit in ("years", "periods", "days"):
            value = getattr(self, f"{unit}_{side}")
            if value:
                return unit, value
        return "years", 2


class SegmentationConfig(Strict):
    """Change without labels: per-pixel temporal segmentation of an index series (after LandTrendr)."""

    index: Literal["ndvi", "nbr", "ndwi", "ndbi", "bsi"] = Field(
        "ndvi", description="index of the composites to segment (nbr needs nir and swir2)")
    min_magnitude: float = Field(0.1, gt=0, description="smallest fitted loss (index units) reported as a "
                                                        "disturbance; 0.15 for mines")
    direction: Literal["decrease", "increase"] = Field(
        "decrease", description="which way a disturbance moves the index (decrease: NDVI/NBR)")
    max_segments: int = Field(4, ge=1, le=20, description="most segments per pixel's model")
    spike_threshold: float = Field(0.9, gt=0, le=1, description="despiking strength (1 = off)")
    recovery_threshold: float = Field(0.25, gt=0, description="fastest allowed recovery, share of the range per year")
    p_threshold: float = Field(0.05, gt=0, lt=1, description="significance of a model (search-adjusted F-test)")
    best_model_proportion: float = Field(0.75, gt=0, le=1)
    min_observations: int = Field(6, ge=3, description="fewest valid periods for a model")
    search_adjusted: bool = Field(True, description="Bonferroni over the vertex placements (false: LandTrendr's plain test)")


class ChangeConfig(Strict):
    segmentation: SegmentationConfig | None = Field(
        None, description="per-pixel segmentation of an index series: disturbance period, magnitude, duration "
                          "and recovery maps without any labels; none = off")
    mining_classes: list[int] = Field(
        default_factory=lambda: [6], description="class codes that make up the mining footprint")
    rings_m: list[float] = Field(
        default_factory=lambda: [500, 1000, 2000, 5000],
        description="outer edges (m) of the distance rings around the mining footprint")
    consecutive_maps: bool = Field(
        False, description="also write a change map per pair of consecutive periods (change/consecutive/)")

    @field_validator("rings_m")
    @classmethod
    def _increasing(cls, rings: list[float]) -> list[float]:
        if any(b <= a for a, b in zip(rings, rings[1:])) or any(r <= 0 for r in rings):
            raise ValueError(f"must be positive and increasing, got {rings}")
        return rings


class PublicConfig(Strict):
    enabled: bool = Field(False, description="generalise sensitive locations and drop names in public outputs")
    grid_m: float = Field(5000.0, gt=0, description="community and site points snap to a grid of this size")


VIDEO_PRESETS: dict[str, tuple[int, int]] = {
    "720p": (1280, 720), "1080p": (1920, 1080), "1440p": (2560, 1440), "4k": (3840, 2160),
    "vertical": (1080, 1920),
}


class VideoConfig(Strict):
    """The time-lapse video and its publishing aids (poster, subtitles, youtube.txt); docs/video.md."""

    preset: Literal["720p", "1080p", "1440p", "4k", "vertical"] = Field(
        "1080p", description="frame size: 720p 1280x720, 1080p 1920x1080, 1440p 2560x1440, "
        "4k 3840x2160, vertical 1080x1920 (Shorts)")
    width: int | None = Field(None, ge=64, description="custom frame width; overrides the preset's")
    height: int | None = Field(None, ge=64, description="custom frame height; overrides the preset's")
    fps: int = Field(25, ge=1, le=120)
    seconds_per_period: float = Field(1.0, gt=0, description="hold time of each period")
    crossfade_seconds: float = Field(0.5, ge=0, description="cross-fade between two periods (added)")
    intro_seconds: float = Field(3.0, ge=0, description="intro card (title, mine, company, country, "
                                 "commodity, years); 0 = none")
    last_period_seconds: float = Field(3.0, ge=0, description="the last period (the state the video ends on) "
                                       "is held at least this long, before the outro card")
    outro_seconds: float = Field(4.0, ge=0, description="outro card with the data credits; 0 = none (YouTube's "
                                 "end screen, 5-20 s, can overlay the last period)")
    caption_seconds: float = Field(4.0, gt=0, description="how long an event caption shows before fading")
    title: str | None = Field(None, description="default: the AOI's name")
    subtitle: str | None = Field(None, description="default: mine, company, country, commodity of the "
                                 "AOI's events")
    rgb_bands: tuple[str, str, str] = Field(
        ("red", "green", "blue"),
        description="composite variables shown as red, green, blue (bands or indices, e.g. ndvi thrice for grey)")
    stretch_percentiles: tuple[float, float] = Field(
        (2.0, 98.0), description="one stretch over the whole series (no flicker between frames)")
    credits: str = Field("", description="footer on every frame; {years} becomes e.g. 2008-2022")
    outro_credits: list[str] = Field(
        default_factory=list, description="more lines for the outro card (the footer is always on it)")
    markers: bool = Field(True, description="draw the mine, origin community and resettlement site")
    chart: Literal["change", "area"] = Field(
        "change", description="area chart: change of each class's area since the first period, or the areas")
    x264_preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = "veryfast"
    crf: int = Field(20, ge=0, le=51, description="H.264 quality, lower is better")

    @model_validator(mode="after")
    def _even(self) -> "VideoConfig":
        width, height = self.size
        if width % 2 or height % 2:
            raise ValueError(f"H.264 needs an even size, got {width}x{height}")
        low, high = self.stretch_percentiles
        if not 0 <= low < high <= 100:
            raise ValueError(f"stretch_percentiles must be 0 <= low < high <= 100, got {low}, {high}")
        return self

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames: `width`/`height` where given, else the preset's."""
        preset_width, preset_height = VIDEO_PRESETS[self.preset]
        return self.width or preset_width, self.height or preset_height


class JobqueueConfig(Strict):
    """An HPC batch cluster (dask-jobqueue): each job runs `processes` Dask workers on one node."""

    jobs: int = Field(2, ge=1, description="batch jobs to submit (nodes or node slices)")
    cores: int = Field(8, ge=1, description="cores per job")
    memory: str = Field("32GiB", description="memory per job")
    processes: int = Field(1, ge=1, description="Dask worker processes per job (the job's cores and memory are "
                                              "shared between them)")
    queue: str | None = Field(None, description="partition (SLURM) or queue (PBS)")
    account: str | None = Field(None, description="account / project to charge")
    walltime: str = Field("02:00:00", pattern=r"^\d+:\d{2}:\d{2}$", description="HH:MM:SS per job")
    job_extra_directives: list[str] = Field(default_factory=list,
                                            description="extra #SBATCH / #PBS lines, e.g. ['--qos=normal']")
    job_script_prologue: list[str] = Field(default_factory=list,
                                           description="shell lines before the worker starts, e.g. "
                                                       "['source /path/to/midr/.venv/bin/activate']")
    local_directory: str | None = Field(None, description="node-local scratch for spilling, e.g. $TMPDIR")
    interface: str | None = Field(None, description="network interface of the nodes, e.g. ib0")


class DaskConfig(Strict):
    scheduler: str | None = Field(None, description="address of an existing scheduler, e.g. tcp://host:8786")
    cluster: Literal["auto", "threads", "local", "slurm", "pbs"] = Field(
        "auto", description="auto: threads on this machine, unless n_workers or memory_limit ask for worker "
                            "processes; threads: one process, a thread per core; local: a local distributed "
                            "cluster of worker processes; slurm/pbs: workers as batch jobs (dask-jobqueue, see "
                            "`jobqueue`)"
    )
    n_workers: int | None = Field(None, ge=1, description="worker processes of a local cluster (default 2); set "
                                                          "with cluster: auto, it asks for one")
    threads_per_worker: int = Field(1, ge=1, description="local cluster: threads per worker")
    memory_limit: str | None = Field(None, description="memory per worker of a local cluster (default 4GiB); set "
                                                       "with cluster: auto, it asks for one. The run's memory plan "
                                                       "is checked against it before anything starts")
    parallel_aois: int | None = Field(None, ge=1, description="AOIs processed at the same time; default: one "
                                                              "per worker, at most 4")
    dashboard: bool = Field(True, description="local cluster: serve the Dask dashboard (link printed at start)")
    jobqueue: JobqueueConfig = JobqueueConfig()

    @field_validator("memory_limit", mode="after")
    @classmethod
    def _bytes(cls, value: str | None) -> str | None:
        from dask.utils import parse_bytes

        if value is None:
            return None
        try:
            parse_bytes(value)
        except ValueError:
            raise ValueError(f"not a memory size: {value!r} (e.g. 4GiB, 2000MB)") from None
        return value


class PipelineConfig(Strict):
    run_name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    output_dir: ConfigPath = Path("outputs")
    aoi: AoiConfig
    ingest: IngestConfig
    cloud_mask: CloudMaskConfig = CloudMaskConfig()
    composite: CompositeConfig = CompositeConfig()
    classes: list[ClassDef] = Field(default_factory=lambda: list(DEFAULT_CLASSES), min_length=2)
    classify: ClassifyConfig | None = Field(None, description="land-cover classification; none: composites only")
    events: EventsConfig | None = None
    change: ChangeConfig = ChangeConfig()
    public: PublicConfig = PublicConfig()
    video: VideoConfig = VideoConfig()
    dask: DaskConfig = DaskConfig()
    config_path: Path | None = Field(None, exclude=True, description="set by load_config")

    @model_validator(mode="after")
    def _shorthand_mask(self) -> "PipelineConfig":
        given = self.cloud_mask._changed("mask_band", "mask_values")
        if self.ingest.sources is not None and given:
            raise ValueError(f"cloud_mask.{given[0]} would be ignored: it belongs to the ingest.scenes shorthand, "
                             "and this config gives ingest.sources; describe the quality band per source "
                             "(ingest.sources[i].mask)")
        return self

    @model_validator(mode="after")
    def _reference_classes(self) -> "PipelineConfig":
        reference = self.classify.reference_map if self.classify else None
        if reference is not None:
            codes = {c.code for c in self.classes}
            unknown = sorted({v for v in reference.classes.values() if v is not None} - codes)
            if unknown:
                raise ValueError(f"classify.training.classes: class codes {unknown} are not in the config's "
                                 f"classes {sorted(codes)}; translate the map's codes to these (or to null)")
        return self

    @field_validator("classes")
    @classmethod
    def _unique_codes(cls, classes: list[ClassDef]) -> list[ClassDef]:
        codes = [c.code for c in classes]
        if len(set(codes)) != len(codes):
            raise ValueError(f"class codes must be unique, got {codes}")
        return classes

    @model_validator(mode="after")
    def _events_settings(self) -> "PipelineConfig":
        if self.aoi.from_events is not None:
            if self.events is None:
                raise ValueError("aoi.from_events makes the AOIs from the events table: add an events section "
                                 "(events.path)")
            if self.aoi.from_events.margin_m < self.events.zone_radius_m:
                raise ValueError(f"aoi.from_events.margin_m ({self.aoi.from_events.margin_m:g}) is less than "
                                 f"events.zone_radius_m ({self.events.zone_radius_m:g}): the AOI's edge would cut "
                                 "the zones around the origin and site points")
        if self.events is not None:
            missing = sorted(set(self.events.impact_classes) - {c.code for c in self.classes})
            if missing:
                raise ValueError(f"events.impact_classes: {missing} not in the class schema (codes "
                                 f"{[c.code for c in self.classes]}); list the classes a disaster leaves "
                                 "(bare ground, mud, water)")
        return self

    @model_validator(mode="after")
    def _sub_periods_fit_the_periods(self) -> "PipelineConfig":
        sub = self.classify.features.sub_periods if self.classify else "none"
        if sub is None:
            return self    # the default: month where it fits (composite.stage.sub_period_kind)
        longer = {"year": (), "windows": (), "season": ("season",), "quarter": ("season", "quarter", "bimonth", "month"),
                  "month": ("season", "quarter", "bimonth", "month"), "scene": ("season", "quarter", "bimonth", "month")}
        if sub in longer[self.composite.period]:
            raise ValueError(f"classify.features.sub_periods: {sub} composites do not fit within periods of a "
                             f"{self.composite.period} (composite.period); use a shorter sub-period, or percentiles")
        return self

    @property
    def run_dir(self) -> Path:
        return self.output_dir / self.run_name

    @property
    def scenes_glob(self) -> str:
        """The scenes glob, absolute (resolved against the config file's folder)."""
        pattern = Path(self.ingest.scenes)
        if pattern.is_absolute() or self.config_path is None:
            return str(pattern)
        return str(self.config_path.parent / pattern)


def _format_errors(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"] if p not in ("files", "stac", "reference_map", "labels"))  # the source kind tags
        parts.append(f"{where}: {e['msg']}{_given(e)}" if where else f"{e['msg']}{_given(e)}")
    return "; ".join(parts)


def _given(error: dict) -> str:
    """' (got 'ten')': the value at fault, where it is a scalar the message does not already show."""
    value = error.get("input")
    if error["type"] in ("missing", "extra_forbidden") or not isinstance(value, (str, int, float, bool)):
        return ""
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return "" if shown in error["msg"] else f" (got {shown})"


MAX_CONFIG_BYTES = 4 * 2**20  # a config is a few kB; a larger file is not a config
MAX_CONFIG_VALUES = 100_000   # values once YAML aliases are expanded (an "anchor bomb" has billions)
_MAX_DEPTH = 64


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read and check a YAML config.

    Raises ConfigError with one line naming the file and the dotted key at fault: also for a file over
    `MAX_CONFIG_BYTES`, one that is not UTF-8, and one whose anchors and aliases expand to more than
    `MAX_CONFIG_VALUES` values (checked before anything reads the values).
    `overrides` (nested dict) is merged over the file, e.g. {"dask": {"scheduler": "tcp://..."}}.
    """
    path = Path(path)
    text = _read_text(path)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {getattr(err, 'problem', err)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: the YAML is nested too deeply to be a config") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (run_name, aoi, ingest, ...)")
    _check_expansion(raw, path)
    raw = _merge(raw, overrides or {})
    raw["config_path"] = str(path.resolve())
    try:
        return PipelineConfig.model_validate(raw, context={"base_dir": path.resolve().parent})
    except ValidationError as err:
        raise ConfigError(f"{path}: {_format_errors(err)}") from None


def _read_text(path: Path) -> str:
    """The config file's text: at most MAX_CONFIG_BYTES, UTF-8 (a byte-order mark is allowed)."""
    try:
        with open(path, "rb") as stream:
            content = stream.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config ({err.strerror})") from None
    if len(content) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES // 2**20} MiB, too large for a config "
                          "(is it the right file?)")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = content[:err.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{content[err.start]:02x} at line {line}); save the "
                          "config as UTF-8") from None


def _check_expansion(raw: Any, path: Path) -> None:
    """Refuse a document whose values, counted as YAML aliases expand them (each use of an alias counts
    its whole value again), exceed MAX_CONFIG_VALUES; the walk stops at the limit, so a 'billion laughs'
    file (or an alias of itself) fails at once."""
    count, pending = 0, [(raw, ())]
    while pending:
        value, where = pending.pop()
        count += 1
        if count > MAX_CONFIG_VALUES:
            key = ".".join(map(str, where[:4])) or "(top level)"
            raise ConfigError(f"{path}: {key}: the config expands to more than {MAX_CONFIG_VALUES:,} values; "
                              "YAML aliases (*name) repeat their anchor's value (&name) wherever they are used: "
                              "remove the aliases or what they repeat")
        if len(where) > _MAX_DEPTH:
            raise ConfigError(f"{path}: {'.'.join(map(str, where[:4]))}: nested more than {_MAX_DEPTH} levels "
                              "deep, too deep for a config (an alias of itself?)")
        if isinstance(value, dict):
            pending.extend((item, (*where, key)) for key, item in value.items())
        elif isinstance(value, list):
            pending.extend((item, (*where, index)) for index, item in enumerate(value))


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def config_schema() -> str:
    """The JSON Schema of the config file, as indented JSON."""
    schema = PipelineConfig.model_json_schema()
    schema["properties"].pop("config_path", None)
    return json.dumps(schema, indent=2)
