"""The shared writers against text from users' tables (issue 18): no CSV or SPSS cell a spreadsheet
would run as a formula, no markup in plain-text outputs."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from pipeline import io
from pipeline.products.exports import write_sav

ATTACKS = ["=HYPERLINK(\"http://evil.example\",\"click\")", "=cmd|' /C calc'!A0", "+SUM(1+1)", "-2+3",
           "@SUM(1)", "\t=1+1", "\r=1+1"]


def test_formula_cells_are_neutralised_in_every_csv_and_numbers_are_not(tmp_path):
    table = pd.DataFrame({"source": ATTACKS, "count": np.arange(7) - 3, "effect": np.linspace(-1.5, 1.5, 7),
                          "note": ["-5", "+7", "- a list item", "ok", None, "12", "a=b"]})
    path = tmp_path / "t.csv"
    io.write_csv(table, path)
    with open(path, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [r["source"] for r in rows] == ["'" + a.replace("\r", "\n") for a in ATTACKS]  # a CR would end the row
    assert [r["count"] for r in rows] == ["-3", "-2", "-1", "0", "1", "2", "3"]  # numbers untouched
    assert rows[0]["effect"] == "-1.5000"
    assert [r["note"] for r in rows] == ["-5", "+7", "'- a list item", "ok", "", "12", "a=b"]
    io.write_csv(pd.read_csv(path), tmp_path / "again.csv")  # written twice, prefixed once
    assert (tmp_path / "again.csv").read_text() == path.read_text()


def test_a_formula_in_a_column_name_is_neutralised(tmp_path):
    io.write_csv(pd.DataFrame({"=1+1": [1]}), tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().splitlines()[0] == "'=1+1"


def test_the_spss_export_neutralises_formula_cells_too(tmp_path):
    table = pd.DataFrame({"event_id": ["ev1", "ev2"], "company": ["=HYPERLINK(\"x\")", "Vale"],
                          "effect_ha": [-1.25, 2.0]})
    write_sav(table, tmp_path / "t.sav", column_labels={}, value_labels={})
    read, _ = pyreadstat.read_sav(str(tmp_path / "t.sav"))
    assert list(read["company"]) == ["'=HYPERLINK(\"x\")", "Vale"] and list(read["effect_ha"]) == [-1.25, 2.0]


@pytest.mark.parametrize("text, plain", [
    ("<b>Village</b> <script>alert(1)</script>", "Village alert(1)"),
    ("{\\an8}{\\c&H0000FF&}moved", "moved"),
    ("a\n\n2\n00:00:01,000 --> 00:00:02,000\nfake cue", "a 2 00:00:01,000 \u2192 00:00:02,000 fake cue"),
    ("3 < 4 > 2", "3 \u2039 4 \u203a 2"),
    ("bell\x07 and nul\x00", "bell and nul"),
])
def test_plain_text_carries_no_markup(text, plain):
    assert io.plain_text(text) == plain
