"""One YAML file -> one typed, checked config (`PipelineConfig`).

Every section is strict: an unknown (e.g. misspelt) key is an error, not silently ignored. Relative
paths resolve against the folder of the config file, so a config can be run from anywhere.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pipeline.errors import ConfigError

__all__ = [
    "PipelineConfig",
    "ClassDef",
    "DEFAULT_CLASSES",
    "load_config",
    "config_schema",
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


class AoiConfig(Strict):
    path: ConfigPath
    id_field: str = "aoi_id"
    buffer_m: float = Field(0.0, ge=0, description="grow each AOI polygon by this many metres before clipping")
    ids: list[str] | None = Field(None, description="run only these AOI ids (default: all features)")


class IngestConfig(Strict):
    scenes: str = Field(
        description="glob of scene GeoTIFFs, relative to the config file (one multi-band file per date)"
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
    chunk_size: int = Field(512, ge=64, le=8192, description="pixels per chunk side")

    @field_validator("date_pattern")
    @classmethod
    def _one_group(cls, value: str) -> str:
        try:
            groups = re.compile(value).groups
        except re.error as err:
            raise ValueError(f"not a regular expression ({err})") from None
        if groups < 1:
            raise ValueError("needs a capture group around the date, e.g. '(\\d{8})'")
        return value


class CloudMaskConfig(Strict):
    mask_band: str | None = Field("mask", description="band description of the cloud/shadow mask band")
    mask_values: list[int] = Field(
        default_factory=lambda: [1, 2], description="mask band values to drop (e.g. cloud, shadow)"
    )


class CompositeConfig(Strict):
    period: Literal["year"] = "year"
    method: Literal["median", "mean"] = "median"
    indices: list[IndexName] = Field(default_factory=lambda: ["ndvi", "ndwi", "ndbi"])
    min_clear_scenes: int = Field(1, ge=1, description="fewer clear scenes than this -> nodata pixel")


class ClassifyConfig(Strict):
    training: ConfigPath = Field(description="labelled points (GPKG/GeoJSON/Shapefile)")
    class_field: str = "class_code"
    period_field: str | None = Field(
        "year", description="year each label holds for; null = the label holds for every period"
    )
    temporal_stats: bool = Field(True, description="add NDVI min/max across the period's scenes")
    n_estimators: int = Field(100, ge=1)
    max_depth: int | None = Field(None, ge=1)
    test_fraction: float = Field(0.3, gt=0, lt=1, description="share of labels held out for accuracy")
    random_state: int = 42


class EventsConfig(Strict):
    path: ConfigPath
    link: Literal["aoi_id", "spatial"] = Field(
        "spatial", description="aoi_id: the table's aoi_id column; spatial: mine point within the AOI"
    )
    link_distance_m: float = Field(0.0, ge=0, description="spatial link: mine point within this distance")
    zone_radius_m: float = Field(750.0, gt=0, description="buffer around origin and resettlement site")
    years_before: int = Field(2, ge=1)
    years_after: int = Field(2, ge=1)


class VideoConfig(Strict):
    width: int = Field(1920, ge=64)
    height: int = Field(1080, ge=64)
    fps: int = Field(25, ge=1, le=120)
    seconds_per_period: float = Field(1.0, gt=0)
    title: str | None = Field(None, description="default: the AOI's name")
    stretch_percentiles: tuple[float, float] = (2.0, 98.0)
    credits: str = ""

    @model_validator(mode="after")
    def _even(self) -> "VideoConfig":
        if self.width % 2 or self.height % 2:
            raise ValueError(f"H.264 needs an even size, got {self.width}x{self.height}")
        return self


class DaskConfig(Strict):
    scheduler: str | None = Field(None, description="address of an existing scheduler, e.g. tcp://host:8786")
    cluster: Literal["local", "threads"] = Field(
        "local", description="local: a local distributed cluster; threads: no cluster, one process"
    )
    n_workers: int = Field(2, ge=1)
    threads_per_worker: int = Field(1, ge=1)
    memory_limit: str = "4GiB"


class PipelineConfig(Strict):
    run_name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    output_dir: ConfigPath = Path("outputs")
    aoi: AoiConfig
    ingest: IngestConfig
    cloud_mask: CloudMaskConfig = CloudMaskConfig()
    composite: CompositeConfig = CompositeConfig()
    classes: list[ClassDef] = Field(default_factory=lambda: list(DEFAULT_CLASSES), min_length=2)
    classify: ClassifyConfig
    events: EventsConfig | None = None
    video: VideoConfig = VideoConfig()
    dask: DaskConfig = DaskConfig()
    config_path: Path | None = Field(None, exclude=True, description="set by load_config")

    @field_validator("classes")
    @classmethod
    def _unique_codes(cls, classes: list[ClassDef]) -> list[ClassDef]:
        codes = [c.code for c in classes]
        if len(set(codes)) != len(codes):
            raise ValueError(f"class codes must be unique, got {codes}")
        return classes

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
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read and check a YAML config.

    Raises ConfigError with one line naming the file and the dotted key at fault.
    `overrides` (nested dict) is merged over the file, e.g. {"dask": {"scheduler": "tcp://..."}}.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config ({err.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {getattr(err, 'problem', err)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (run_name, aoi, ingest, ...)")
    raw = _merge(raw, overrides or {})
    raw["config_path"] = str(path.resolve())
    try:
        return PipelineConfig.model_validate(raw, context={"base_dir": path.resolve().parent})
    except ValidationError as err:
        raise ConfigError(f"{path}: {_format_errors(err)}") from None


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
