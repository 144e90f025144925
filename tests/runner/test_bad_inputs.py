"""The bad-input matrix (issue 7): each way a user's input can be wrong, run through `midr run` as a user
would, into the folder of an earlier good run.

Every case must end in exit code 2 and ONE line on stderr, starting `error:`, that names what is wrong
and where (the file, the key or the value); or, where a batch should go on (a period clouded in every
scene, an event outside the years of the imagery), in exit code 0 with a warning and a record in the
outputs. In every case the earlier run's files are all still there and unchanged (sha256), except the
run's own records (manifest, stage stamps, run-level exports) where the bad run got far enough to
rewrite them, and no temporary file (`.<name>.part-<pid>-<host>.<ext>`) is left behind.

One tiny good run (4 scenes of 10x10 pixels, 3 years, 3 classes, 1 event; ~10 s) is made once per module
and copied for each test to the same absolute path, so its stage stamps stay valid: a rerun recomputes
only what the bad input touches. The good run and one config error run `midr` as a subprocess, exactly
as a user does; the other cases run the same command in this process (typer's CliRunner), which saves
the package's start-up (over 10 s on a busy machine) per case.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import json
import logging
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from shapely.geometry import Point, box

from conftest import CRS, RES, X0, Y0, midr, write_scene
from pipeline import io

RUN = "tiny"
BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")
# digital numbers (reflectance x 10000) of the three land covers; columns 0-3 water, 4-6 vegetation, 7-9 bare
COVER = {"water": (600, 700, 500, 300, 200, 100), "vegetation": (400, 800, 500, 4000, 1800, 900),
         "bare": (1500, 1800, 2200, 2600, 3200, 2800)}
COLUMNS = ["water"] * 4 + ["vegetation"] * 3 + ["bare"] * 3
DATES = ("20190601", "20200601", "20210301", "20210601")
# what a run that got past the input checks rewrites: its records and the run-level products
RUN_PRODUCTS = ("exports/*", "summary/*", "stac/*", "report/*", "event_records.csv")
RUN_RECORDS = ("manifest.json", ".midr/*", *RUN_PRODUCTS)

GOOD_CONFIG = {
    "run_name": RUN,
    "output_dir": "outputs",
    "aoi": {"path": "aoi.geojson"},
    "ingest": {"scenes": "scenes/scene_*.tif"},
    "classes": [{"code": 1, "name": "water", "colour": "#1f78b4"},
                {"code": 2, "name": "vegetation", "colour": "#33a02c"},
                {"code": 6, "name": "bare ground & mining", "colour": "#8c6d31"}],
    "classify": {"training": "training.gpkg", "period_field": None, "n_estimators": 10, "cv_folds": 0,
                 "sample_min_per_stratum": 2},
    "events": {"path": "events.csv", "zone_radius_m": 45, "control_inner_m": 60, "control_outer_m": 150,
               "block_size_m": 30, "n_bootstrap": 100},
    "change": {"rings_m": [30, 60]},
    "video": {"width": 64, "height": 64, "fps": 1, "intro_seconds": 0, "outro_seconds": 0, "crossfade_seconds": 0},
    "dask": {"cluster": "threads"},
}


# ------------------------------------------------------------------------------------------ the data


def _scene_values(i: int, *, clouded: bool = False) -> np.ndarray:
    """(band, y, x) uint16: the three covers by column, a little texture, mask band 0 (clear) or 1 (cloud)."""
    values = np.zeros((7, 10, 10), "uint16")
    for b in range(6):
        for column, cover in enumerate(COLUMNS):
            values[b, :, column] = COVER[cover][b] + 10 * i + 3 * np.arange(10)
    values[6] = 1 if clouded else 0
    return values


def _lat_lon(column: float, row: float) -> tuple[float, float]:
    point = gpd.GeoSeries([Point(X0 + RES * column, Y0 - RES * row)], crs=CRS).to_crs(4326).iloc[0]
    return point.y, point.x


def _make_project(root: Path) -> None:
    (root / "scenes").mkdir(parents=True)
    for i, date in enumerate(DATES):
        write_scene(root / "scenes" / f"scene_{date}.tif", _scene_values(i))
    mine_a = box(X0 + RES, Y0 - 10 * RES, X0 + 10 * RES, Y0 - RES)  # the grid less its first row and column
    gpd.GeoDataFrame({"aoi_id": ["mine_a"]}, geometry=[mine_a], crs=CRS).to_crs(4326).to_file(root / "aoi.geojson")
    points, codes = [], []
    for row in range(1, 10, 2):
        for column, code in ((2, 1), (3, 1), (5, 2), (6, 2), (8, 6), (9, 6)):
            points.append(Point(X0 + RES * (column + 0.5), Y0 - RES * (row + 0.5)))
            codes.append(code)
    gpd.GeoDataFrame({"class_code": codes}, geometry=points, crs=CRS).to_file(root / "training.gpkg")
    mine, origin, site = _lat_lon(5.5, 5.5), _lat_lon(8, 3), _lat_lon(5, 8)
    pd.DataFrame([{"event_id": "ev1", "mine": "Mine A", "year_start": 2020, "mine_lat": mine[0], "mine_lon": mine[1],
                   "origin_lat": origin[0], "origin_lon": origin[1], "site_lat": site[0], "site_lon": site[1],
                   "displaced_count": 40, "displaced_unit": "households"}]).to_csv(root / "events.csv", index=False)
    (root / "config.yaml").write_text(yaml.safe_dump(GOOD_CONFIG, sort_keys=False))


@dataclass
class Project:
    """A copy of the good run's folder: inputs, config.yaml and outputs/tiny."""

    root: Path

    @property
    def run_dir(self) -> Path:
        return self.root / "outputs" / RUN

    def config(self, changes: dict | None = None, *, text: str | None = None) -> Path:
        """bad.yaml beside config.yaml: the good config with `changes` merged in (None deletes a key)."""
        path = self.root / "bad.yaml"
        path.write_text(text if text is not None else yaml.safe_dump(_merge(GOOD_CONFIG, changes or {}),
                                                                     sort_keys=False))
        return path


def _merge(base: dict, changes: dict) -> dict:
    merged = dict(base)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.fixture(scope="module")
def golden(tmp_path_factory) -> Path:
    """The good run, once per module (kept aside; tests work on copies)."""
    base = tmp_path_factory.mktemp("bad_inputs")
    _make_project(base / "project")
    result = midr("run", str(base / "project" / "config.yaml"))
    assert result.returncode == 0, result.stderr
    (base / "project").rename(base / "golden")
    return base / "golden"


@pytest.fixture
def project(golden) -> Project:
    """A fresh copy of the good run at the path it ran at (its stage stamps hold absolute input paths)."""
    root = golden.parent / "project"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(golden, root)  # copy2: mtimes kept, so the input hashes' cache holds too
    return Project(root)


# ------------------------------------------------------------------------------------------- checks


def _hashes(run_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file()}


def _error_line(result, *names: str) -> str:
    """The one `error:` line on stderr; it names each of `names`; no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def _assert_kept(run_dir: Path, before: dict[str, str], *, rewritten: tuple[str, ...] = (),
                 regenerated: tuple[str, ...] = ()) -> None:
    """Every earlier file is still there, unchanged unless it matches a `rewritten` pattern (a
    `regenerated` one may also be gone: a run-level product describing the new run); no temporary
    file is left."""
    after = _hashes(run_dir)
    lost = [name for name in before if name not in after
            and not any(fnmatch.fnmatch(name, pattern) for pattern in regenerated)]
    changed = [name for name in before if name in after and after[name] != before[name]
               and not any(fnmatch.fnmatch(name, pattern) for pattern in rewritten)]
    assert lost == [] and changed == [], f"lost {lost}, changed {changed}"
    assert sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob(".*.part*")) == []


@dataclass
class Ran:
    returncode: int
    stderr: str
    stdout: str = ""


@pytest.fixture
def in_process():
    """`midr ARGS` in this process (typer's CliRunner, as the console script calls it); the root
    logger, which the command sets up, is restored afterwards."""
    from typer.testing import CliRunner

    from pipeline import cli

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    width = cli.err_console.width

    def invoke(*args) -> Ran:
        cli.err_console.width = 400  # log lines unwrapped (the `error:` line never wraps)
        result = CliRunner().invoke(cli.app, [str(a) for a in args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # a crash, not a handled error: show its traceback
        return Ran(result.exit_code, result.stderr, result.stdout)

    yield invoke
    cli.err_console.width = width
    root.handlers[:], root.level = handlers, level


@pytest.fixture
def run(project, in_process):
    """run(config, *args) -> (sha256 of the run folder's files before, the result of `midr run`)."""
    def run_midr(config: Path, *args: str) -> tuple[dict[str, str], Ran]:
        before = _hashes(project.run_dir)
        return before, in_process("run", config, *args)
    return run_midr


# ------------------------------------------------------------------------------------------- config


def test_invalid_yaml_exits_2_naming_the_file_and_line(project, run):
    text = yaml.safe_dump(GOOD_CONFIG, sort_keys=False).replace("n_estimators: 10", "n_estimators: 10: 20")
    line = next(i for i, t in enumerate(text.splitlines(), start=1) if "n_estimators" in t)
    before, result = run(project.config(text=text))
    _error_line(result, f"{project.root / 'bad.yaml'}: invalid YAML at line {line}, column")
    _assert_kept(project.run_dir, before)


def test_unknown_key_exits_2_naming_the_key(project):
    before = _hashes(project.run_dir)
    result = midr("run", str(project.config({"classify": {"cv_folds": None, "cv_fold": 0}})))  # as a user does
    _error_line(result, "bad.yaml: classify.cv_fold: Extra inputs are not permitted")
    _assert_kept(project.run_dir, before)


def test_wrong_type_exits_2_naming_the_key_and_the_value(project, run):
    before, result = run(project.config({"classify": {"n_estimators": "ten"}}))
    _error_line(result, "bad.yaml: classify.n_estimators: Input should be a valid integer", "(got 'ten')")
    _assert_kept(project.run_dir, before)


# --------------------------------------------------------------------------------------- input files


@pytest.mark.parametrize("pattern", [
    "nothing_*.tif",
    "[xyz]_*.tif",  # needs runner change (8): the CLI prints messages as text, not as rich markup
])
def test_scenes_glob_matching_nothing_exits_2_naming_the_glob(project, run, pattern):
    before, result = run(project.config({"ingest": {"scenes": f"scenes/{pattern}"}}))
    _error_line(result, f"no scene files match '{project.root / 'scenes' / pattern}' (ingest.scenes)")
    _assert_kept(project.run_dir, before)


@pytest.mark.parametrize("key, message", [
    ("aoi.path", "AOI file (aoi.path) not found"),
    ("classify.training", "training data (classify.training) not found"),
    ("events.path", "events file not found (events.path)"),
])
def test_missing_input_file_exits_2_naming_it_and_its_key(project, run, key, message):
    section, name = key.split(".")
    before, result = run(project.config({section: {name: "missing.gpkg"}}))
    _error_line(result, f"{project.root / 'missing.gpkg'}: {message}")
    _assert_kept(project.run_dir, before)


@pytest.mark.parametrize("content, message", [
    ('{"type": "FeatureCollection", "features": []}', "the AOI file has no features"),
    ("", "cannot read the AOI file (aoi.path)"),
], ids=["no-features", "zero-bytes"])
def test_empty_aoi_file_exits_2_naming_it(project, run, content, message):
    (project.root / "aoi.geojson").write_text(content)
    before, result = run(project.config())
    _error_line(result, f"{project.root / 'aoi.geojson'}: {message}")
    _assert_kept(project.run_dir, before)


def test_aoi_outside_all_imagery_fails_that_aoi_with_exit_2_and_the_others_run(project, run):
    # needs runner change (1): an AOI's InputError -> exit 2 and `error: aoi 'x': ...`; the other AOIs run
    aois = gpd.read_file(project.root / "aoi.geojson")
    nowhere = aois.assign(aoi_id="nowhere", geometry=aois.translate(0.5, 0.0))  # ~50 km east of every scene
    pd.concat([aois, nowhere]).to_file(project.root / "aoi.geojson", driver="GeoJSON")
    before, result = run(project.config())
    _error_line(result, "aoi 'nowhere'", "does not overlap any of the 4 scenes")
    _assert_kept(project.run_dir, before, rewritten=RUN_RECORDS)
    manifest = json.loads((project.run_dir / "manifest.json").read_text())
    assert manifest["aois"]["nowhere"]["status"] == "failed"
    assert manifest["aois"]["mine_a"]["status"] == "done"
    exported = pd.read_csv(project.run_dir / "exports" / "class_area.csv")
    assert set(exported["aoi_id"]) == {"mine_a"}  # the good AOI's tables are still exported


def test_corrupt_geotiff_exits_2_naming_the_file(project, run):
    bad = project.root / "scenes" / "scene_20200601.tif"
    bad.write_bytes(b"this is not a GeoTIFF\n" * 50)
    before, result = run(project.config())
    _error_line(result, f"{bad}: cannot open as a raster", "ingest.sources with on_error: skip")
    _assert_kept(project.run_dir, before)


@pytest.mark.parametrize("driver, message", [
    ("GTiff", "cannot open as a raster"),  # GDAL's GTiff writer puts the directory last: it is cut off
    ("COG", "is truncated: its pixel data end at byte"),  # a COG's header comes first: it reads, the pixels do not
])
def test_truncated_geotiff_exits_2_naming_the_file(project, run, driver, message):
    path = project.root / "scenes" / "scene_20200601.tif"
    with rasterio.open(path) as src:
        profile, values, descriptions = src.profile, src.read(), src.descriptions
    for key in ("blockxsize", "blockysize", "tiled", "interleave"):
        profile.pop(key, None)
    with rasterio.open(path, "w", **{**profile, "driver": driver}) as dst:
        dst.write(values)
        dst.descriptions = descriptions
    content = path.read_bytes()
    path.write_bytes(content[:len(content) // 2])
    before, result = run(project.config())
    line = _error_line(result, f"{path}: {message}")
    assert "truncated" in line
    _assert_kept(project.run_dir, before)


def test_raster_without_crs_exits_2_naming_the_file(project, run):
    path = project.root / "scenes" / "scene_20200601.tif"
    with rasterio.open(path) as src:
        profile, values, descriptions = src.profile, src.read(), src.descriptions
    del profile["crs"]
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values)
        dst.descriptions = descriptions
    before, result = run(project.config())
    _error_line(result, f"{path}: has no CRS")
    _assert_kept(project.run_dir, before)


def test_scene_lacking_a_band_exits_2_naming_the_file_and_the_band(project, run):
    path = project.root / "scenes" / "scene_20200601.tif"
    kept = [0, 1, 2, 3, 5, 6]  # no swir1
    write_scene(path, _scene_values(1)[kept], descriptions=[(*BANDS, "mask")[i] for i in kept])
    before, result = run(project.config())
    _error_line(result, f"{path}: scene 'scene_20200601' lacks the band(s) ['swir1']", "ingest.bands")
    _assert_kept(project.run_dir, before)  # found when the scenes are listed: before anything is written


def test_period_clouded_in_every_scene_is_skipped_and_reported(project, run):
    # needs runner change (4): the period is dropped with a warning and listed in the manifest; here every
    # scene of 2021 is clouded: the pass that writes the composites finds them empty (4b) and drops them
    for i, date in enumerate(DATES):
        if date.startswith("2021"):
            write_scene(project.root / "scenes" / f"scene_{date}.tif", _scene_values(i, clouded=True))
    before, result = run(project.config())
    assert result.returncode == 0, result.stderr
    assert "aoi mine_a: period 2021 has no clear pixel in any scene; skipped" in result.stderr
    manifest = json.loads((project.run_dir / "manifest.json").read_text())
    composite = manifest["aois"]["mine_a"]["stages"]["composite"]
    assert composite["skipped_periods"] == ["2021"] and composite["periods"] == ["2019", "2020"]
    for date in ("20210301", "20210601"):
        assert f"scene scene_{date} ({date[:4]}-{date[4:6]}-{date[6:]}T00:00:00) has no clear pixel in the AOI; " \
               "dropped" in result.stderr.replace("\n", " ")
    ingest = manifest["aois"]["mine_a"]["stages"]["ingest"]
    assert ingest["dropped_empty"] == 2 and ingest["scene_ids"] == ["scene_20190601", "scene_20200601"]
    assert manifest["aois"]["mine_a"]["status"] == "done"
    # new inputs, new results; nothing lost but what the run-level products (catalog, report) showed
    # of the period the run no longer has
    _assert_kept(project.run_dir, before, rewritten=("*",), regenerated=RUN_PRODUCTS)


def test_a_window_without_any_acquisition_is_skipped_and_reported(project, run):
    windows = [{"name": "before", "start": "2019-01-01", "end": "2019-12-31"},
               {"name": "gap", "start": "2022-01-01", "end": "2022-06-30"}]   # no scene in 2022
    before, result = run(project.config({"composite": {"period": "windows", "windows": windows}}))
    assert result.returncode == 0, result.stderr
    assert "aoi mine_a: period gap has no clear pixel in any scene; skipped" in result.stderr
    composite = json.loads((project.run_dir / "manifest.json").read_text())["aois"]["mine_a"]["stages"]["composite"]
    assert composite["skipped_periods"] == ["gap"] and composite["periods"] == ["before"]


# ------------------------------------------------------------------- archives as they come (issue 15)

FILES_SOURCE = {"kind": "files", "scenes": "scenes/scene_*.tif", "scale": 0.0001, "nodata": 0,
                "mask": {"band": "mask", "classes": {"cloud": [1]}}}


def _rewrite_in_degrees(project) -> None:
    """Every scene of the project in EPSG:4326 (same pixels, a 0.0003 degree grid)."""
    for path in sorted((project.root / "scenes").glob("scene_*.tif")):
        with rasterio.open(path) as src:
            profile, values, descriptions = src.profile, src.read(), src.descriptions
        profile.update(crs="EPSG:4326", transform=rasterio.transform.from_origin(33.0, -16.0, 0.0003, 0.0003))
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(values)
            dst.descriptions = descriptions


@pytest.mark.parametrize("command", ["run", "validate"])
@pytest.mark.parametrize("case", ["qa-without-band", "crs-in-degrees", "native-in-degrees", "scale-with-sources",
                                  "mask-band-with-sources", "band-in-two-files", "sign-without-package"])
def test_archive_inputs_exit_2_with_one_line_and_write_nothing(project, in_process, monkeypatch, command, case):
    config = {
        "qa-without-band": {"cloud_mask": {"method": "qa", "mask_band": "qa_band"}},
        "crs-in-degrees": {"ingest": {"grid": {"crs": "EPSG:4326"}}},
        "native-in-degrees": {"ingest": {"grid": {"crs": "native"}}},
        "scale-with-sources": {"ingest": {"scenes": None, "sources": [FILES_SOURCE], "scale": 0.0002}},
        "mask-band-with-sources": {"ingest": {"scenes": None, "sources": [FILES_SOURCE]},
                                   "cloud_mask": {"mask_values": [1]}},
        "band-in-two-files": {"ingest": {"scenes": "scenes/**/scene_*.tif"}},
        "sign-without-package": {"ingest": {"scenes": None, "sources": [
            {"kind": "stac", "catalog": str(Path(__file__).parents[1] / "data" / "stac_real" / "catalog" /
                                            "catalog.json"), "sensor": "landsat-c2-l2", "sign": "planetary-computer"}]}},
    }[case]
    scene = project.root / "scenes" / "scene_20190601.tif"
    names = {
        "qa-without-band": [f"{scene}", "has no quality band 'qa_band'", "cloud_mask.method qa needs; set "
                            "cloud_mask.method to spectral, temporal or none"],
        "crs-in-degrees": ["bad.yaml: ingest.grid.crs: Value error, WGS 84 is in degree, not metres",
                           "leave grid.crs out to use each AOI's UTM zone"],
        "native-in-degrees": ["ingest.grid.crs: native is the CRS of", "WGS 84; its unit is the degree, not the metre",
                              "leave ingest.grid.crs out"],
        "scale-with-sources": ["bad.yaml: ingest: Value error, scale would be ignored",
                               "set it per source (ingest.sources[i].scale)"],
        "mask-band-with-sources": ["bad.yaml: Value error, cloud_mask.mask_values would be ignored",
                                   "(ingest.sources[i].mask)"],
        "band-in-two-files": ["scene 'scene_20190601' (2019-06-01T00:00:00) is in 2 files:", f"{scene}",
                              "choose one with a narrower ingest.scenes"],
        "sign-without-package": ["ingest.sources[0].sign: planetary-computer needs the planetary-computer package",
                                 "pip install 'midr-pipeline[planetary-computer]'"],
    }[case]
    if case == "native-in-degrees":
        _rewrite_in_degrees(project)
    if case == "band-in-two-files":
        (project.root / "scenes" / "copy").mkdir()
        shutil.copy(scene, project.root / "scenes" / "copy" / scene.name)
    monkeypatch.setitem(sys.modules, "planetary_computer", None)
    before = _hashes(project.run_dir)
    result = in_process(command, project.config(config))
    _error_line(result, *names)
    _assert_kept(project.run_dir, before)


def test_validate_reports_scenes_cloud_mask_grid_and_periods_per_aoi(project, in_process):
    before = _hashes(project.run_dir)
    result = in_process("validate", project.config({"cloud_mask": {"method": None}}))
    assert result.returncode == 0, result.stderr
    assert "ingest: 4 scene(s); cloud mask: qa (mask) on 4 scene(s)" in result.stdout
    assert ("aoi 'mine_a': 4 scene(s) over it, 2019-06-01 to 2021-06-01 (3 of 3 period(s) with at least 1); "
            "grid 9 x 9 px of 30 m in EPSG:32736; composite.period: year") in result.stdout
    assert result.stdout.rstrip().endswith(f"bad.yaml: ok (run '{RUN}', outputs in {project.run_dir})")
    _assert_kept(project.run_dir, before)


def test_validate_finds_an_aoi_outside_the_scenes_and_periods_without_enough_scenes(project, in_process):
    aois = gpd.read_file(project.root / "aoi.geojson")
    nowhere = aois.assign(aoi_id="nowhere", geometry=aois.translate(0.5, 0.0))
    pd.concat([aois, nowhere]).to_file(project.root / "far.geojson", driver="GeoJSON")
    before = _hashes(project.run_dir)
    result = in_process("validate", project.config({"aoi": {"path": "far.geojson"}}))
    _error_line(result, "aoi 'nowhere' does not overlap any of the 4 scenes", "far.geojson")
    result = in_process("validate", project.config({"composite": {"min_clear_scenes": 3}}))
    _error_line(result, "aoi 'mine_a': no period of composite.period 'year' has composite.min_clear_scenes (3) "
                "scenes over the AOI", "(scenes per period: 2019: 1, 2020: 1, 2021: 2)")
    _assert_kept(project.run_dir, before)


# ----------------------------------------------------------------------------------- training data


def test_training_labels_outside_the_class_schema_exit_2_naming_the_codes(project, run):
    # needs runner change (6): the labels are checked against `classes` when they are read, before any AOI
    path = project.root / "training.gpkg"
    labels = gpd.read_file(path)
    labels.loc[[0, 7], "class_code"] = 9
    labels.to_file(path)
    before, result = run(project.config())
    _error_line(result, f"{path}: 2 label(s) have class codes [9]", "classes [1, 2, 6]", "classify.merge_classes")
    _assert_kept(project.run_dir, before)


def test_training_points_outside_an_aoi_fail_that_aoi_with_exit_2(project, run):
    # needs runner change (1), and (7): a clear message where no label lies inside the AOI
    aois = gpd.read_file(project.root / "aoi.geojson")
    # mine_b: 5 columns west of the scenes and their column 0, where no label lies
    strip = gpd.GeoSeries([box(X0 - 5 * RES, Y0 - 10 * RES, X0 + RES, Y0)], crs=CRS).to_crs(aois.crs)
    mine_b = gpd.GeoDataFrame({"aoi_id": ["mine_b"]}, geometry=strip.values, crs=aois.crs)
    pd.concat([aois, mine_b]).to_file(project.root / "aoi.geojson", driver="GeoJSON")
    before, result = run(project.config())
    _error_line(result, "aoi 'mine_b'", f"{project.root / 'training.gpkg'}: none of the 30 labels",
                "classify.training")
    _assert_kept(project.run_dir, before, rewritten=RUN_RECORDS)
    manifest = json.loads((project.run_dir / "manifest.json").read_text())
    assert manifest["aois"]["mine_a"]["status"] == "done" and manifest["aois"]["mine_b"]["status"] == "failed"


# -------------------------------------------------------------------------------------------- events


def test_events_file_without_required_columns_exits_2_naming_them(project, run):
    path = project.root / "events.csv"
    pd.read_csv(path).drop(columns=["year_start"]).to_csv(path, index=False)
    before, result = run(project.config())
    _error_line(result, f"{path}: the events table lacks the column(s) ['year_start']", "events.path")
    _assert_kept(project.run_dir, before)


def test_event_outside_the_imagery_is_reported_and_the_run_goes_on(project, run):
    """An events table covers many mines and years: an event this AOI's imagery (2019-2021) cannot
    compare before and after is reported and marked, not fatal."""
    path = project.root / "events.csv"
    events = pd.read_csv(path)
    pd.concat([events, events.assign(event_id="ev_old", year_start=1995)]).to_csv(path, index=False)
    before, result = run(project.config())
    assert result.returncode == 0, result.stderr
    status = ("not analysable: no period of the imagery (2019-01-01 to 2021-12-31) in the before window "
              "(1993-01-01 to 1994-12-31) or the after window (1996-01-01 to 1997-12-31)")
    assert f"aoi 'mine_a': event 'ev_old' (1995) {status}" in result.stderr
    metrics = pd.read_csv(project.run_dir / "mine_a" / "events" / "event_metrics.csv")
    assert set(metrics.loc[metrics["event_id"] == "ev_old", "event_start"]) == {"1995-01-01"}
    assert set(metrics.loc[metrics["event_id"] == "ev_old", "status"]) == {status}
    assert set(metrics.loc[metrics["event_id"] == "ev1", "status"]) == {"ok"}
    baci = pd.read_csv(project.run_dir / "mine_a" / "events" / "baci.csv")
    assert set(baci.loc[baci["event_id"] == "ev_old", "status"]) == {status}
    # the events stage and the video (captions) run again; composites, class maps and tables do not
    _assert_kept(project.run_dir, before, rewritten=(*RUN_RECORDS, "mine_a/events/*", "mine_a/video/*",
                                                     "mine_a/.midr/events.json", "mine_a/.midr/video.json"))


# -------------------------------------------------------------------------------------------- output


def test_output_folder_inside_a_regular_file_exits_2_naming_it(project, run):
    # needs runner change (2). Root ignores permissions, so chmod would not stop this test's writes: the
    # output folder lies *inside a regular file*, which fails for root too (NotADirectoryError)
    (project.root / "not_a_folder").write_text("a file where the output folder should be\n")
    before, result = run(project.config({"output_dir": "not_a_folder/outputs"}))
    _error_line(result, f"output folder {project.root / 'not_a_folder' / 'outputs' / RUN} is not writable",
                "output_dir")
    _assert_kept(project.run_dir, before)


def _fill_disk_at(target: Path):
    """A writer that, for the temporary file of `target`, writes half and then fails as a full disk does."""
    tmp = io.part_path(target)

    def full(path, content: bytes) -> None:
        if Path(path) == tmp:
            Path(path).write_bytes(content[:len(content) // 2])
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
    return full


def _csv_fills_disk_at(monkeypatch, target: Path) -> None:
    """From now on, writing the CSV `target` fails half-way as a full disk does (`_fill_disk_at`)."""
    full = _fill_disk_at(target)
    to_csv = pd.DataFrame.to_csv

    def to_csv_on_a_full_disk(self, path=None, *args, **kwargs):
        if path is not None:
            full(path, to_csv(self, None, *args, **kwargs).encode())
        return to_csv(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", to_csv_on_a_full_disk)


def test_disk_full_while_writing_the_manifest_exits_2_and_keeps_the_previous_one(project, in_process,
                                                                                  monkeypatch):
    manifest = project.run_dir / "manifest.json"
    full = _fill_disk_at(manifest)
    write_text = Path.write_text

    def write_text_on_a_full_disk(self, data, *args, **kwargs):
        full(self, data.encode())
        return write_text(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text_on_a_full_disk)
    before = _hashes(project.run_dir)
    result = in_process("run", project.config())
    _error_line(result, f"disk full while writing {manifest}")
    assert _hashes(project.run_dir)["manifest.json"] == before["manifest.json"]
    assert list(project.run_dir.rglob(".*.part*")) == []


def test_disk_full_while_writing_an_aoi_table_exits_2_and_keeps_the_previous_one(project, in_process,
                                                                                 monkeypatch):
    # needs runner change (1) and (5): an OutputError inside an AOI's stage exits 2
    table = project.run_dir / "mine_a" / "metrics" / "class_area.csv"
    _csv_fills_disk_at(monkeypatch, table)
    before = _hashes(project.run_dir)
    result = in_process("run", project.config(), "--force", "change")  # the change stage writes the table
    _error_line(result, "aoi 'mine_a'", f"disk full while writing {table}")
    assert _hashes(project.run_dir)["mine_a/metrics/class_area.csv"] == before["mine_a/metrics/class_area.csv"]
    assert list(project.run_dir.rglob(".*.part*")) == []


# ------------------------------------------------------------------------------------------- cluster


def test_unreachable_scheduler_exits_2_naming_the_address_within_seconds(project, run):
    # needs runner change (3)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    start = time.monotonic()
    before, result = run(project.config(), "--scheduler", address)
    elapsed = time.monotonic() - start
    _error_line(result, f"cannot reach the Dask scheduler at {address}")
    assert elapsed < 20, elapsed  # the client gives up after 10 s; the inputs are read before
    _assert_kept(project.run_dir, before)


# ------------------------------------------------------------------------------------ reader level


def test_a_raster_damaged_after_its_header_was_read_is_named_when_read(tmp_path):
    """A file that passed the listing (header read) but whose pixels cannot be read: the read names it."""
    from pipeline.errors import InputError
    from pipeline.ingest.rasters import open_raster

    path = write_scene(tmp_path / "scene_20200101.tif", _scene_values(0))
    raster = open_raster(path, chunk_size=64)
    content = path.read_bytes()
    path.write_bytes(content[:200])  # cut after listing, e.g. a sync still running
    with pytest.raises(InputError, match=rf"{path}: cannot read bands 1-7, rows 0-9 .*truncated or corrupt"):
        raster.compute()


def test_a_gdal_write_failing_on_a_full_disk_says_so_and_keeps_the_previous_file(tmp_path, monkeypatch):
    """GDAL reports a full disk without an errno: the free space left decides the message."""
    import os

    import rioxarray  # noqa: F401
    import xarray as xr
    from rasterio.errors import RasterioIOError

    from pipeline import io
    from pipeline.errors import OutputError

    raster = xr.DataArray(np.ones((4, 4), "float32"), dims=("y", "x"),
                          coords={"y": Y0 - RES * np.arange(4), "x": X0 + RES * np.arange(4)}).rio.write_crs(CRS)
    path = tmp_path / "composites" / "2020.tif"
    io.write_cog(raster, path, band_names=["red"], nodata=np.nan)
    previous = path.read_bytes()

    def failing_open(target, mode="r", **kwargs):
        Path(target).write_bytes(b"II*\x00 half a tile")
        raise RasterioIOError(f"{target}: Write error")

    monkeypatch.setattr(io.rasterio, "open", failing_open)
    with pytest.raises(RasterioIOError, match="Write error"):  # space left: GDAL's own error
        io.write_cog(raster * 2, path, band_names=["red"], nodata=np.nan)
    statvfs = os.statvfs(tmp_path)
    monkeypatch.setattr(io.os, "statvfs", lambda folder: os.statvfs_result(
        (statvfs.f_bsize, statvfs.f_frsize, statvfs.f_blocks, 0, 0, *statvfs[5:])))
    with pytest.raises(OutputError, match=rf"disk full while writing {path} \(No space left on device\)"):
        io.write_cog(raster * 2, path, band_names=["red"], nodata=np.nan)
    assert path.read_bytes() == previous and list(path.parent.iterdir()) == [path]
