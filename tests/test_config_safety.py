"""Config loading that an unfriendly or unlucky file cannot break (issue 18): a config that names code,
a YAML anchor bomb, a file that is too large or not UTF-8, and values that look right but are not
(an unknown CRS, a reversed date range, a file:// catalog URL). Each ends in one line and exit 2."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import MAX_CONFIG_BYTES, load_config
from pipeline.errors import ConfigError

MINIMAL = """\
run_name: t
aoi: {path: aoi.geojson}
ingest: {scenes: 'scenes/*.tif'}
classify: {training: points.gpkg}
"""
STAC = """\
run_name: t
aoi: {path: aoi.geojson}
ingest:
  sources:
    - {kind: stac, catalog: CATALOG, datetime: DATES}
"""


def _write(tmp_path: Path, text: str | bytes, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _validate(path: Path) -> tuple[int, list[str]]:
    """`midr validate PATH`: its exit code and its `error:` lines (no traceback allowed)."""
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, [line for line in result.output.splitlines() if line.startswith("error:")]


def test_validate_refuses_a_model_that_names_any_function(tmp_path):
    marker = tmp_path / "ran"
    config = MINIMAL.replace("classify: {training: points.gpkg}",
                             f"classify: {{training: points.gpkg, model: 'os:system', "
                             f"model_params: {{command: 'touch {marker}'}}}}")
    code, lines = _validate(_write(tmp_path, config))
    assert code == 2 and len(lines) == 1, lines
    assert "classify.model: Value error, 'os:system' is not a scikit-learn classifier class" in lines[0]
    assert "classify.allow_import" in lines[0] and not marker.exists()


def test_a_scikit_learn_classifier_by_path_or_an_allow_listed_factory_is_accepted(tmp_path):
    path = _write(tmp_path, MINIMAL.replace("{training: points.gpkg}",
                                            "{training: points.gpkg, model: 'sklearn.ensemble:ExtraTreesClassifier'}"))
    assert load_config(path).classify.model == "sklearn.ensemble:ExtraTreesClassifier"
    factory = "{training: points.gpkg, model: 'sklearn.pipeline:make_pipeline', allow_import: ['sklearn.pipeline:make_pipeline']}"
    assert load_config(_write(tmp_path, MINIMAL.replace("{training: points.gpkg}", factory))).classify.allow_import
    with pytest.raises(ConfigError, match="'sklearn.pipeline:make_pipeline' is not a scikit-learn classifier class"):
        load_config(_write(tmp_path, MINIMAL.replace("{training: points.gpkg}",
                                                     "{training: points.gpkg, model: 'sklearn.pipeline:make_pipeline'}")))


def test_an_anchor_bomb_in_model_params_fails_at_once_with_one_line(tmp_path):
    lines = ["    l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"    l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]  # 9**9 = 387 M values
    path = _write(tmp_path, MINIMAL.replace("classify: {training: points.gpkg}",
                                            "classify:\n  training: points.gpkg\n  model_params:\n") + "\n".join(lines)
                  + "\n")
    start = time.monotonic()
    code, errors = _validate(path)
    assert time.monotonic() - start < 60  # a hang guard: expanding it would take hours and gigabytes
    assert code == 2 and len(errors) == 1, errors
    assert "classify.model_params" in errors[0] and "expands to more than 100,000 values" in errors[0]
    assert "aliases" in errors[0]


def test_an_alias_of_itself_fails_with_one_line(tmp_path):
    with pytest.raises(ConfigError, match="video.outro_credits.0.0: nested more than 64 levels deep"):
        load_config(_write(tmp_path, MINIMAL + "video: {outro_credits: &me [*me]}\n"))


def test_a_few_aliases_are_fine(tmp_path):
    text = MINIMAL + "video: {outro_credits: &credits [a, b]}\nx_note: *credits\n"
    with pytest.raises(ConfigError, match="x_note: Extra inputs"):  # the alias expanded; the key is just unknown
        load_config(_write(tmp_path, text))


def test_a_config_that_is_not_utf8_is_one_line_with_exit_2(tmp_path):
    path = _write(tmp_path, (MINIMAL + "video: {title: 'Mina S\xe3o Jo\xe3o'}\n").encode("latin-1"))
    code, lines = _validate(path)
    assert code == 2 and lines == [f"error: {path}: not UTF-8 text (byte 0xe3 at line 5); save the config as UTF-8"]
    bom = _write(tmp_path, "\ufeff".encode() + MINIMAL.encode(), "bom.yaml")
    assert load_config(bom).run_name == "t"  # a byte-order mark (Windows editors) is fine


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path):
    path = _write(tmp_path, MINIMAL + "# padding\n" * (MAX_CONFIG_BYTES // 10 + 1))
    code, lines = _validate(path)
    assert code == 2 and len(lines) == 1 and "larger than 4 MiB, too large for a config" in lines[0]


def test_an_unknown_crs_is_one_line_not_a_traceback(tmp_path):
    path = _write(tmp_path, MINIMAL.replace("ingest: {scenes: 'scenes/*.tif'}",
                                            "ingest: {scenes: 'scenes/*.tif', grid: {crs: 'EPSG:999999'}}"))
    code, lines = _validate(path)
    assert code == 2 and len(lines) == 1
    assert "ingest.grid.crs: Value error, not a CRS: 'EPSG:999999'" in lines[0]
    for good in ("EPSG:32736", "native", "EPSG:3857"):
        ok = _write(tmp_path, MINIMAL.replace("ingest: {scenes: 'scenes/*.tif'}",
                                              f"ingest: {{scenes: 'scenes/*.tif', grid: {{crs: '{good}'}}}}"))
        assert load_config(ok).ingest.grid.crs == good


@pytest.mark.parametrize("dates", ["2020-12-31/2015-01-01", "2021/2020-06", "2020-06-02T00:00:00Z/2020-06-01"])
def test_a_reversed_stac_date_range_says_it_is_reversed(tmp_path, dates):
    path = _write(tmp_path, STAC.replace("CATALOG", "catalog.json").replace("DATES", dates))
    with pytest.raises(ConfigError, match=rf"ingest.sources.0.datetime: Value error, the date range "
                                          rf"'{dates}' is reversed: it ends \({dates.split('/')[1]}\) before it starts"):
        load_config(path)


@pytest.mark.parametrize("dates", ["2015-01-01/2020-12-31", "2020/2020", "2020-06/2020", "../2020-01-01",
                                   "2020-06-01", "2020-06-01/2020-06-01"])
def test_ordered_or_open_date_ranges_pass(tmp_path, dates):
    path = _write(tmp_path, STAC.replace("CATALOG", "catalog.json").replace("DATES", dates))
    assert load_config(path).ingest.sources[0].datetime == dates


def test_a_file_url_catalog_is_not_joined_to_the_config_folder(tmp_path):
    target = tmp_path / "elsewhere" / "my catalog.json"
    path = _write(tmp_path / "", STAC.replace("CATALOG", f"'file://{target.as_posix().replace(' ', '%20')}'")
                  .replace(", datetime: DATES", ""))
    assert load_config(path).ingest.sources[0].catalog == target
    relative = _write(tmp_path, STAC.replace("CATALOG", "stac/catalog.json").replace(", datetime: DATES", ""))
    assert load_config(relative).ingest.sources[0].catalog == tmp_path / "stac" / "catalog.json"
    web = _write(tmp_path, STAC.replace("CATALOG", "'https://example.org/catalog.json'")
                 .replace(", datetime: DATES", ""))
    with pytest.raises(ConfigError, match="catalog is a static catalog.json on disk .* use api"):
        load_config(web)
