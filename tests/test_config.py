from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.errors import ConfigError

DEMO = Path(__file__).parents[1] / "configs" / "demo.yaml"
MINIMAL = """\
run_name: t
aoi: {path: aoi.geojson}
ingest: {scenes: 'scenes/*.tif'}
classify: {training: points.gpkg}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_demo_config_loads_and_resolves_paths_against_its_folder():
    config = load_config(DEMO)
    assert config.aoi.path == (DEMO.parent.parent / "aoi" / "demo_mine.geojson").resolve()
    assert config.run_dir == (DEMO.parent.parent / "outputs" / "demo").resolve()
    assert config.scenes_glob.endswith("configs/../data/demo/scenes/demo_*.tif")
    assert [c.name for c in config.classes][-1] == "bare ground & mining"


def test_defaults_fill_a_minimal_config(tmp_path):
    config = load_config(_write(tmp_path, MINIMAL))
    assert config.video.size == (1920, 1080) and config.video.preset == "1080p"
    assert config.dask.cluster == "auto" and config.dask.n_workers is None and config.classify.random_state == 42
    assert config.classify.training == tmp_path / "points.gpkg"


def test_misspelt_key_names_the_file_and_dotted_key(tmp_path):
    path = _write(tmp_path, MINIMAL + "composite: {peroid: year}\n")
    with pytest.raises(ConfigError, match=r"config\.yaml: composite\.peroid: Extra inputs are not permitted"):
        load_config(path)


def test_wrong_value_names_the_key_and_what_was_expected(tmp_path):
    path = _write(tmp_path, MINIMAL + "video: {width: 1919}\n")
    with pytest.raises(ConfigError, match="video: Value error, H.264 needs an even size, got 1919x1080"):
        load_config(path)
    path = _write(tmp_path, MINIMAL + "classify: {training: p.gpkg, test_fraction: 2}\n")
    with pytest.raises(ConfigError, match="classify.test_fraction: Input should be less than 1"):
        load_config(path)


def test_invalid_yaml_says_where(tmp_path):
    path = _write(tmp_path, MINIMAL + "video: [1920,\n")
    with pytest.raises(ConfigError, match=r"config\.yaml: invalid YAML at line \d+"):
        load_config(path)


def test_duplicate_class_codes_are_refused(tmp_path):
    classes = "classes:\n  - {code: 1, name: a, colour: '#000000'}\n  - {code: 1, name: b, colour: '#ffffff'}\n"
    with pytest.raises(ConfigError, match=r"classes: Value error, class codes must be unique, got \[1, 1\]"):
        load_config(_write(tmp_path, MINIMAL + classes))


def test_cli_validate_exits_2_and_names_the_key(tmp_path):
    path = _write(tmp_path, MINIMAL + "dask: {n_wrokers: 4}\n")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "dask.n_wrokers: Extra inputs are not permitted" in result.output


def test_cli_validate_accepts_the_demo_config(demo_run):
    """The demo's config and its generated inputs (the small demo: the same config at test size)."""
    result = CliRunner().invoke(app, ["validate", str(demo_run / "config.yaml")])
    assert result.exit_code == 0, result.output
    assert "ok (run 'demo_small'" in result.output
    assert "ingest: 18 scene(s); cloud mask: qa (mask) on 18 scene(s)" in result.output
    assert load_config(DEMO).cloud_mask.method is None and load_config(DEMO).cloud_mask.mask_band == "mask"


def test_cli_schema_prints_json_schema():
    result = subprocess.run([sys.executable, "-m", "pipeline.cli", "schema"], capture_output=True, text=True,
                            check=True)
    schema = json.loads(result.stdout)
    assert {"aoi", "ingest", "classify", "video", "dask"} <= set(schema["properties"])
    assert "config_path" not in schema["properties"]
