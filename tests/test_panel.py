"""bench/panel.py builds the several-word panel data sets from real sources on this machine, and
refuses in one line a source that is missing here."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import REPO

PANEL = REPO / "bench" / "panel.py"


def build(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run([sys.executable, str(PANEL), *args], capture_output=True, text=True, env=env,
                          cwd=REPO / "bench", timeout=300)


def test_a_missing_manual_page_index_is_one_line(tmp_path):
    result = build("--only", "manpages", "--output", str(tmp_path), path=str(tmp_path / "no-bin"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "manpages: `apropos` (man-db) is not installed" in result.stderr
    assert not list(tmp_path.glob("*.csv"))


def test_missing_translations_are_one_line(tmp_path):
    result = build("--only", "ui-messages", "--output", str(tmp_path), "--locale-dir", str(tmp_path / "none"))
    assert result.returncode == 2
    expected = f"panel.py: ui-messages: no gettext catalogues under {tmp_path / 'none'}; install translations"
    assert result.stderr.strip() == expected


@pytest.mark.skipif(shutil.which("apropos") is None, reason="man-db is not installed here")
def test_the_manual_pages_become_a_labelled_csv_with_its_source(tmp_path):
    result = build("--only", "manpages", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "manpages.csv").open(encoding="utf-8")))
    info = json.loads((tmp_path / "manpages.source.json").read_text(encoding="utf-8"))
    assert info["rows"] == len(rows) > 100 and "apropos" in info["source"] and info["licence"]
    assert {row["label"] for row in rows} <= set("12345678")
    assert not any(row["text"] in ("(unknown subject)", "") or row["text"].endswith("...") for row in rows)
    assert len({(row["text"], row["label"]) for row in rows}) == len(rows)  # no repeated lines
