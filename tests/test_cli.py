"""The `midr` command as a user meets it: its version, its help texts, its progress display."""

from __future__ import annotations

import re

import pytest

from pipeline import __version__

from conftest import midr

COMMANDS = ("run", "provenance", "validate", "export", "report", "schema", "demo-data")


def test_version():
    result = midr("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"midr-pipeline {__version__}"


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_shows_names_not_type_placeholders(command):
    result = midr(*([command] if command else []), "--help")
    assert result.returncode == 0
    text = result.stdout
    assert "--help" in text and "Show this message and exit." in text
    placeholders = re.findall(r"<(?:bool|str|path|int|list\[[^]]*\])>|\{[a-z_]+\}", text)
    assert not placeholders, f"midr {command or ''} --help shows {placeholders}:\n{text}"


def test_run_help_names_its_argument_and_option_values():
    text = midr("run", "--help").stdout
    assert "Usage: midr run [OPTIONS] CONFIG" in text
    assert re.search(r"--scheduler\s+ADDRESS", text) and re.search(r"--force\s+STAGE", text)
    assert "--version" in midr("--help").stdout


def test_run_shows_progress_inside_the_video_stage(demo_run):
    """The video's row counts its frames (rich prints the last state of every row when not on a terminal)."""
    from pipeline.results import open_run

    shown = (demo_run / "run_stderr.txt").read_text()
    frames = open_run(demo_run / "outputs" / "demo_small").manifest["aois"]["demo_mine"]["stages"]["video"]["frames"]
    assert re.search(rf"^\s+video\b.*\b{frames}/{frames} frames", shown, re.M), shown[-2000:]
