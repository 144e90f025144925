"""What the notebooks call: a finished run's inputs and outputs gathered into tables, ready to show.

The notebooks in `notebooks/` hold no logic of their own; everything beyond calling a function and
displaying its result lives here (tables) or in `pipeline.plots` (figures). Functions whose result is a
table compute (they say so); functions returning xarray objects stay lazy.

    one AOI        run_config, aoi_geometry, aoi_scene_stack, scene_inventory, composite_series,
                   band_stretch, event_zones, zone_areas, zonal_mean, aoi_events
    classifier     TrainingSet, training_set, per_class_table, confusion_table
    validation     SampleDesign, sample_design, write_sample, label_sample, AreaEstimate, area_estimates
    across AOIs    effects_summary, baci_effects, events_overview, events_by, events_crosstab,
                   analyses_available
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from pipeline import classify, events, io
from pipeline.classify import sampling
from pipeline.classify.labelling import labelling_style
from pipeline.ingest import aoi_mask, aoi_outline, aoi_stack, list_sources, pixel_area_ha
from pipeline.products import exports
from pipeline.config import ClassDef, PipelineConfig
from pipeline.errors import InputError
from pipeline.events.records import ANALYSES
from pipeline.results import RunOutputs, read_table

__all__ = [
    "run_config",
    "aoi_geometry",
    "aoi_scene_stack",
    "scene_inventory",
    "composite_series",
    "band_stretch",
    "jpeg_preview",
    "event_zones",
    "zone_areas",
    "zonal_mean",
    "aoi_events",
    "TrainingSet",
    "training_set",
    "per_class_table",
    "confusion_table",
    "SampleDesign",
    "sample_design",
    "write_sample",
    "label_sample",
    "AreaEstimate",
    "area_estimates",
    "effects_summary",
    "baci_effects",
    "events_overview",
    "events_by",
    "events_crosstab",
    "analyses_available",
]

NOT_GIVEN = "(not given)"  # the group of records that leave an indicator empty


# ------------------------------------------------------------------------------------------ one AOI


def run_config(run: RunOutputs) -> PipelineConfig:
    """The run's config as it ran (from its manifest; paths as the run resolved them)."""
    manifest = run.manifest
    return PipelineConfig.model_validate({**manifest["config"], "config_path": manifest.get("config_file")})


def aoi_geometry(config: PipelineConfig, aoi_id: str) -> gpd.GeoSeries:
    """The AOI's polygon as the run clipped to it (with `aoi.buffer_m`), a one-row GeoSeries."""
    aois = events.configured_aois(config)
    if aoi_id not in set(aois["aoi_id"]):
        raise InputError(f"{config.aoi.path or config.events.path}: no AOI {aoi_id!r}; ids are "
                         f"{sorted(aois['aoi_id'])}")
    return aoi_outline(aois.loc[aois["aoi_id"] == aoi_id].geometry.iloc[0], aois.crs, buffer_m=config.aoi.buffer_m)


def aoi_scene_stack(config: PipelineConfig, aoi_id: str) -> xr.Dataset:
    """Every listed scene of the AOI on the run's grid, cloud classes masked: (time, y, x) per band, lazy.

    As the run's ingest stage builds it, but keeping the scenes without a clear pixel (the run drops them).
    """
    listed = list_sources(config.ingest, config.cloud_mask,
                                  scenes_glob=config.scenes_glob if config.ingest.scenes else None)
    stack, _ = aoi_stack(listed, aoi_geometry(config, aoi_id), ingest_config=config.ingest,
                                 drop=config.cloud_mask.drop, aoi_id=aoi_id)
    return stack


def scene_inventory(stack: xr.Dataset, aoi: gpd.GeoSeries) -> pd.DataFrame:
    """One row per acquisition date: date, scene_id, n_scenes (merged on that date), clear_fraction
    (share of the AOI's pixels valid in every band: not cloud, shadow or nodata). Computes."""
    inside = aoi_mask(stack, aoi)
    valid = xr.concat([v.notnull() for v in stack.data_vars.values()], "variable").all("variable")
    clear = (valid & inside).sum(("y", "x"))
    (clear_pixels,) = dask.compute(clear)
    ids = [str(s) for s in stack["scene_id"].values] if "scene_id" in stack.coords else [""] * stack.sizes["time"]
    return pd.DataFrame({
        "date": pd.DatetimeIndex(stack["time"].values), "scene_id": ids,
        "n_scenes": [len(s.split("+")) if s else 1 for s in ids],
        "clear_fraction": np.asarray(clear_pixels, dtype=float) / max(int(inside.sum()), 1),
    })


def composite_series(run: RunOutputs, aoi_id: str) -> xr.Dataset:
    """The AOI's composites, (period, y, x) float32 per band and index, NaN = nodata; lazy."""
    table = run.period_table(aoi_id)
    periods = list(table["period"])
    series = xr.concat([run.composite(aoi_id, p) for p in periods], dim=pd.Index(periods, name="period"))
    series = series.assign_coords(period_start=("period", pd.to_datetime(table["period_start"]).values),
                                  period_end=("period", pd.to_datetime(table["period_end"]).values),
                                  period_label=("period", list(table["period_label"])))
    return series.rio.write_crs(run.composite(aoi_id, periods[0]).rio.crs)


def band_stretch(composites: xr.Dataset, bands: Sequence[str], *, percentiles: tuple[float, float] = (2, 98),
                 common: bool = False) -> dict[str, tuple[float, float]]:
    """Display range (low, high) of each band: its percentiles over all periods and pixels; with
    `common`, one range for all the bands (keeps a true-colour image's balance). Computes."""
    missing = [b for b in bands if b not in composites]
    if missing:
        raise KeyError(f"no composite variable(s) {missing}; have {list(composites.data_vars)}")
    values = {b: np.asarray(composites[b].values, dtype=float) for b in bands}
    if common:
        low, high = np.nanpercentile(np.concatenate([v.ravel() for v in values.values()]), percentiles)
        return {b: (float(low), float(high)) for b in bands}
    return {b: tuple(float(q) for q in np.nanpercentile(v, percentiles)) for b, v in values.items()}


def jpeg_preview(path: Path, *, width: int = 640, quality: int = 85) -> bytes:
    """An image file (e.g. the video's poster) as a JPEG `width` pixels wide: small enough to keep in a
    saved notebook (`IPython.display.Image(data=..., format="jpeg")`)."""
    import io as _bytes_io

    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
    buffer = _bytes_io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def event_zones(run: RunOutputs, aoi_id: str) -> gpd.GeoDataFrame:
    """The AOI's event zones (origin community, resettlement site, control ring) as the run drew them
    (generalised where the run is public); empty where the AOI has no event."""
    path = run.layout.event_zones(aoi_id)
    if not path.exists():
        return gpd.GeoDataFrame({"aoi_id": [], "event_id": [], "zone": []}, geometry=[], crs=None)
    return gpd.read_file(path)


def zone_areas(zones: gpd.GeoDataFrame) -> dict[str, gpd.GeoSeries]:
    """Label -> one-polygon GeoSeries for each event zone ("origin community (event_id)", ...)."""
    return {f"{zone.replace('_', ' ')} ({event_id})": gpd.GeoSeries([geometry], crs=zones.crs)
            for event_id, zone, geometry in zip(zones["event_id"], zones["zone"], zones.geometry)}


def zonal_mean(values: xr.DataArray, areas: Mapping[str, gpd.GeoSeries]) -> pd.DataFrame:
    """Mean of a (step, y, x) raster (NDVI of scenes over `time`, of composites over `period`) in each
    area, NaN ignored. Long table: <step>, area, mean, valid_fraction (share of the area's pixels with a
    value). Computes, all areas in one pass."""
    step = values.dims[0]
    lazy, sizes = {}, {}
    for name, area in areas.items():
        inside = xr.DataArray(events.zone_mask(values, area), dims=("y", "x"))
        sizes[name] = max(int(inside.sum()), 1)
        masked = values.where(inside)
        lazy[name] = (masked.mean(("y", "x")), masked.notnull().sum(("y", "x")))
    (computed,) = dask.compute(lazy)
    dates = ({f"period_{edge}": pd.to_datetime(values[f"period_{edge}"].values).strftime("%Y-%m-%d")
              for edge in ("start", "end")} if step == "period" and "period_start" in values.coords else {})
    frames = [pd.DataFrame({step: values[step].values, **dates, "area": name, "mean": np.asarray(mean, dtype=float),
                            "valid_fraction": np.asarray(count, dtype=float) / sizes[name]})
              for name, (mean, count) in computed.items()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=[step, "area", "mean", "valid_fraction"])


def aoi_events(run: RunOutputs, aoi_id: str) -> pd.DataFrame:
    """The event records linked to the AOI, as the run wrote them (event_records.csv)."""
    path = run.layout.event_records
    if not path.exists():
        return pd.DataFrame(columns=["event_id", "aoi_id", "year_start", "year_end"])
    records = read_table(path)
    linked = records["aoi_id"].fillna("").str.split(";").map(lambda ids: aoi_id in ids)
    return records[linked].reset_index(drop=True)


# ------------------------------------------------------------------------------------- classifier


@dataclass(frozen=True)
class TrainingSet:
    """Labelled samples with their features: X (sample, feature) float32, y class codes, and the
    sample's map coordinates (CRS of the composites) for spatial blocking."""

    X: np.ndarray
    y: np.ndarray
    easting: np.ndarray
    northing: np.ndarray
    features: list[str]
    dropped: dict[str, int]

    def spatial_blocks(self, block_size_m: float) -> np.ndarray:
        """Block id of each sample (squares of `block_size_m`), for spatial cross-validation."""
        return classify.spatial_blocks(self.easting, self.northing, block_size=block_size_m)

    def class_counts(self, classes: Sequence[ClassDef]) -> pd.Series:
        """Samples per class name, in the schema's order."""
        counts = pd.Series(self.y).value_counts()
        return pd.Series({c.name: int(counts.get(c.code, 0)) for c in classes}, name="samples")


def training_set(composites: xr.Dataset, points: gpd.GeoDataFrame, *, features: Sequence[str] | None = None,
                 config: PipelineConfig | None = None, groups: Mapping[str, Sequence[str]] | None = None,
                 max_pixels_per_polygon: int = 100, seed: int = 42) -> TrainingSet:
    """The features of the composites at labelled points (or at the pixels of labelled polygons, at
    most `max_pixels_per_polygon` each), as the run trains on them: samples outside the grid, of another
    period or missing a feature the model needs are dropped (counted in `dropped`). With the run's
    `config` and its composite stage's layer `groups` (`feature_groups` in the manifest), the features
    are the run's own (`classify.features`): sub-period gaps filled as the run fills them, the gaps left
    given to the model as NaN. Computes."""
    if config is not None and groups is not None and features is None:
        from pipeline.classify.predict import valid_samples
        from pipeline.classify.stage import run_features

        chosen = run_features(config, {kind: list(names) for kind, names in groups.items()})
        names, required = chosen.names, chosen.required
        stack = classify.classification_features(composites, chosen)
    else:
        names = list(features) if features is not None else [v for v in composites.data_vars if v != "clear_count"]
        required = np.ones(len(names), dtype=bool)
        stack = classify.feature_stack(composites, names)
        valid_samples = None
    if len(points) and points.geom_type.isin(["Polygon", "MultiPolygon"]).all():
        points = classify.polygon_pixels(points, stack, max_per_polygon=max_pixels_per_polygon, seed=seed)
    samples, table = classify.training_samples(stack, points)
    X = np.asarray(samples.values, dtype=np.float32)
    usable = valid_samples(X, required) if valid_samples is not None else np.isfinite(X).all(axis=1)
    return TrainingSet(X=X[usable], y=table["class_code"].to_numpy()[usable],
                       easting=table["x"].to_numpy()[usable], northing=table["y"].to_numpy()[usable],
                       features=names,
                       dropped={"outside the grid": int(table.attrs["dropped_outside"]),
                                "period not composited": int(table.attrs["dropped_period"]),
                                "feature missing (cloud, nodata)": int((~usable).sum())})


def per_class_table(report: dict) -> pd.DataFrame:
    """User's and producer's accuracy, F1 and reference count per class of an accuracy report
    (`classify.accuracy_assessment`, `spatial_cross_validation`, or the run's accuracy.json)."""
    table = pd.DataFrame(report["classes"]).set_index("name")
    return table[["code", "n_reference", "users_accuracy", "producers_accuracy", "f1"]]


def confusion_table(report: dict, classes: Sequence[ClassDef]) -> pd.DataFrame:
    """The report's confusion matrix with class names: rows reference, columns map (sample counts)."""
    matrix = report["confusion_matrix"]
    names = {c.code: c.name for c in classes}
    labels = [names.get(code, str(code)) for code in matrix["labels"]]
    counts = np.asarray(matrix["counts"])
    if matrix.get("rows") == "map":
        counts = counts.T
    return pd.DataFrame(counts, index=pd.Index(labels, name="reference"), columns=pd.Index(labels, name="map"))


# ------------------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class SampleDesign:
    """A stratified random sample of a class map for a validation round (Olofsson et al. 2014).

    `table`: per stratum (map class) its mapped pixels, weight W_i, expected user's accuracy U_i,
    S_i = sqrt(U_i (1 - U_i)) and the samples allocated; `n_planned` the total from the sample-size
    formula n = (sum_i W_i S_i / SE(O))^2; `points` the sampled pixel centres to label in QGIS.
    """

    table: pd.DataFrame
    n_planned: int
    target_se: float
    points: gpd.GeoDataFrame


def sample_design(strata: xr.DataArray, classes: Sequence[ClassDef], *,
                  expected_users_accuracy: float | Mapping[int, float] = 0.85, target_se: float = 0.01,
                  min_per_stratum: int = 50, seed: int = 42) -> SampleDesign:
    """The validation sample of a (y, x) class map, as the run draws it (`classify.sample_*` settings
    give the same sample as the run's validation/sample_design.gpkg). Computes `strata`."""
    flat = np.asarray(strata.values)
    codes = [c.code for c in classes]
    pixels = np.array([int((flat == code).sum()) for code in codes])
    weights = pixels / max(pixels.sum(), 1)
    expected = [expected_users_accuracy.get(code, 0.85) if isinstance(expected_users_accuracy, Mapping)
                else expected_users_accuracy for code in codes]
    n_planned = sampling.sample_size(weights, expected, target_se_overall=target_se)
    allocation = sampling.allocate_sample(n_planned, pixels, min_per_stratum=min_per_stratum)
    indices = sampling.stratified_random_sample(flat, dict(zip(codes, allocation.tolist())), seed=seed)
    points = sampling.sample_points(strata.copy(data=flat), indices, names={c.code: c.name for c in classes})
    if "period" in strata.coords and strata["period"].ndim == 0:
        points["period"] = int(strata["period"])
    expected = np.asarray(expected, dtype=float)
    table = pd.DataFrame({"class_code": codes, "class_name": [c.name for c in classes], "mapped_pixels": pixels,
                          "weight": weights, "expected_users_accuracy": expected,
                          "s_i": np.sqrt(expected * (1 - expected)), "n_samples": allocation})
    return SampleDesign(table=table, n_planned=n_planned, target_se=target_se, points=points)


def write_sample(points: gpd.GeoDataFrame, path: Path, *, layer: str,
                 classes: Sequence[ClassDef] | None = None) -> Path:
    """The sample as a GeoPackage to open (and label) in QGIS; `layer` is the name QGIS lists it under
    (e.g. "<aoi_id> validation sample <period>"); with `classes`, QGIS shows a drop-down of their names
    on `reference_code` (`classify.labelling`). Returns `path`."""
    style = labelling_style({c.code: c.name for c in classes}) if classes is not None else None
    io.write_gpkg(points, Path(path), layer=layer, qgis_style=style)
    return Path(path)


def label_sample(points: gpd.GeoDataFrame, reference: xr.DataArray, *, nodata: int = classify.UNCLASSIFIED,
                 reference_field: str = "reference_code") -> gpd.GeoDataFrame:
    """The sample with `reference_field` read from a (y, x) reference map at each point (an interpreter
    that never errs: e.g. the demo's truth). Points on the reference's nodata stay unlabelled."""
    at = points.to_crs(reference.rio.crs)
    values = reference.sel(x=xr.DataArray(at.geometry.x.to_numpy(), dims="sample"),
                           y=xr.DataArray(at.geometry.y.to_numpy(), dims="sample"), method="nearest").values
    labelled = points.copy()
    labelled[reference_field] = pd.array(np.where(values == nodata, pd.NA, values), dtype="Int64")
    return labelled


@dataclass(frozen=True)
class AreaEstimate:
    """Error-adjusted areas from a labelled sample: `table` (one row per class, hectares, 95 % CIs;
    the run's metrics/area_estimates.csv), overall accuracy with its standard error, and the error
    matrix of sample counts (rows map class, columns reference class)."""

    table: pd.DataFrame
    overall_accuracy: float
    se_overall_accuracy: float
    error_matrix: pd.DataFrame


def area_estimates(sample: gpd.GeoDataFrame, strata: xr.DataArray, classes: Sequence[ClassDef], *,
                   reference: xr.DataArray | None = None) -> AreaEstimate:
    """Olofsson et al. (2014) estimates from a labelled sample (`sampling.read_validation_sample`) of the
    (y, x) map `strata` it was drawn from. With a `reference` map (the demo's truth), the table adds its
    areas (`reference_area_ha`) and whether each CI covers them. Computes."""
    flat = np.asarray(strata.values)
    at = sample.to_crs(strata.rio.crs)
    here = strata.copy(data=flat).sel(x=xr.DataArray(at.geometry.x.to_numpy(), dims="s"),
                                      y=xr.DataArray(at.geometry.y.to_numpy(), dims="s"), method="nearest").values
    differ = int((here != sample["map_code"].to_numpy()).sum())
    if differ:
        raise InputError(f"the sample's map_code differ from this map at {differ} points; label a sample "
                         "drawn from this map (same period, same run)")
    codes, names = [c.code for c in classes], [c.name for c in classes]
    counts = sampling.error_matrix(sample["map_code"].to_numpy(), sample["reference_code"].to_numpy(), codes)
    pixels = np.array([int((flat == code).sum()) for code in codes])
    pixel_ha = pixel_area_ha(strata)
    table = sampling.area_estimate_table(counts, pixels, codes=codes, names=names, pixel_area_ha=pixel_ha)
    estimate = sampling.stratified_area_estimate(counts, pixels, stratum_pixels=pixels)
    if reference is not None:
        truth = np.asarray(reference.values)[flat != classify.UNCLASSIFIED]
        table["reference_area_ha"] = [float((truth == code).sum()) * pixel_ha for code in codes]
        slack = 1e-9 * table["reference_area_ha"].abs().clip(lower=1)  # a zero-width CI equal to it covers it
        table["ci_covers_reference"] = ((table["ci95_low_ha"] - slack <= table["reference_area_ha"])
                                        & (table["reference_area_ha"] <= table["ci95_high_ha"] + slack))
    matrix = pd.DataFrame(counts, index=pd.Index(names, name="map"), columns=pd.Index(names, name="reference"))
    return AreaEstimate(table=table, overall_accuracy=float(estimate["overall_accuracy"]),
                        se_overall_accuracy=float(estimate["se_overall"]), error_matrix=matrix)


# ------------------------------------------------------------------------------------ across AOIs


_SUMMARY_COLUMNS = ["indicator", "value", "zone", "class_name", "n_events", "mean_effect_ha", "min_effect_ha",
                    "max_effect_ha"]


def effects_summary(run: RunOutputs) -> pd.DataFrame:
    """The run's BACI effects by indicator (summary/effects_by_indicator.csv); empty if the run has no
    event with effects."""
    path = run.layout.effects_by_indicator
    return read_table(path) if path.exists() else pd.DataFrame(columns=_SUMMARY_COLUMNS)


def baci_effects(run: RunOutputs, *, class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Every AOI's BACI effects with status ok (one row per event x zone x class, effect and 95 % CI in
    ha), with the event's indicators (country, company, commodity, lifecycle stage, event type)."""
    parts = [run.baci(a) for a in run.aoi_ids if run.layout.baci(a).exists()]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=["aoi_id", "event_id", "zone", "class_name", "effect_ha", "ci95_low_ha",
                                     "ci95_high_ha", *exports.INDICATORS])
    baci = pd.concat(parts, ignore_index=True)
    baci = baci[baci["status"] == "ok"]
    if class_names is not None:
        baci = baci[baci["class_name"].isin(class_names)]
    records = (read_table(run.layout.event_records) if run.layout.event_records.exists()
               else pd.DataFrame(columns=["event_id"]))
    indicators = [c for c in exports.INDICATORS if c in records.columns]
    return baci.merge(records[["event_id", *indicators]], on="event_id", how="left").reset_index(drop=True)


def events_overview(events: pd.DataFrame) -> pd.Series:
    """How much the records cover: events, countries, companies, commodities, years, and how many give
    a displaced count (records from `records.normalise_events`)."""
    years = events["year_start"].dropna()
    return pd.Series({
        "events": len(events),
        "countries": events["country"].nunique(),
        "companies": events["company"].nunique(),
        "commodities": events["commodity"].nunique(),
        "first year": int(years.min()) if len(years) else None,
        "last year": int(years.max()) if len(years) else None,
        "with a displaced count": int(events["allows_displacement_count"].sum()),
        "with mine coordinates": int(events["allows_link_spatial"].sum()),
    }, name="records", dtype=object)


def events_by(events: pd.DataFrame, by: str) -> pd.DataFrame:
    """Records per value of one indicator (country, commodity, lifecycle_stage, ...): events, those with a
    displaced count, and the counts summed per unit (households, families, people are not comparable,
    so they are not added up; NaN where no record of the group gives that unit), first and last year."""
    table = events.fillna({by: NOT_GIVEN})
    grouped = table.groupby(by, sort=True)
    summary = pd.DataFrame({"events": grouped.size(),
                            "with_count": grouped["allows_displacement_count"].sum().astype(int)})
    for unit in ("households", "families", "people"):
        counted = table[table["displaced_unit_kind"] == unit]
        summary[unit] = counted.groupby(by)["displaced_count"].sum().reindex(summary.index)
    summary["first_year"] = grouped["year_start"].min()
    summary["last_year"] = grouped["year_start"].max()
    summary.index.name = by
    return summary.sort_values(["events", "with_count"], ascending=False, kind="stable")


def events_crosstab(events: pd.DataFrame, rows: str, columns: str) -> pd.DataFrame:
    """Events per pair of indicator values (e.g. country x lifecycle_stage), with totals."""
    table = events.fillna({rows: NOT_GIVEN, columns: NOT_GIVEN})
    return pd.crosstab(table[rows], table[columns], margins=True, margins_name="total")


def analyses_available(events: pd.DataFrame) -> pd.DataFrame:
    """For each analysis of the pipeline, what a record needs for it and how many records allow it."""
    return pd.DataFrame({
        "needs": list(ANALYSES.values()),
        "records": [int(events[f"allows_{a}"].sum()) for a in ANALYSES],
        "share": [float(events[f"allows_{a}"].mean()) if len(events) else np.nan for a in ANALYSES],
    }, index=pd.Index(list(ANALYSES), name="analysis"))
