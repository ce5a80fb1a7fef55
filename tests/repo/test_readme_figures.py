"""The README's figures that come from reports are written from them (`make readme-figures`): this fails when
the README and the committed reports disagree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import readme_figures  # noqa: E402


def test_readme_figures_match_the_reports():
    res = subprocess.run([sys.executable, str(REPO / "scripts/readme_figures.py"), "--check"], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr


def test_every_figure_has_its_marker_and_a_changed_report_is_caught(tmp_path):
    text = (REPO / "README.md").read_text(encoding="utf-8")
    names = {m["name"] for m in readme_figures.MARKER.finditer(text)}
    assert names == set(readme_figures.FIGURES)
    stale = text.replace("<!--fig:ingest_kept-->Ingest keeps ", "<!--fig:ingest_kept-->Ingest keeps 1", 1)
    assert stale != text
    new, changed = readme_figures.rewrite(stale)
    assert changed == ["ingest_kept"] and new == text
    readme = tmp_path / "README.md"
    readme.write_text(stale, encoding="utf-8")
    res = subprocess.run([sys.executable, str(REPO / "scripts/readme_figures.py"), "--check", "--readme", str(readme)],
                         capture_output=True, text=True)
    assert res.returncode == 1 and "ingest_kept" in res.stderr and "make readme-figures" in res.stderr


def test_parts_are_written_as_ranges():
    assert readme_figures.parts(["dev_part1", "dev_part2", "dev_part3", "dev_part6", "dev_part7", "dev_part8"]) \
        == "parts 1–3, 6–8"
    assert readme_figures.parts(["dev_part10", "dev_part11", "dev_part4", "dev_part5", "dev_part9"]) \
        == "parts 4, 5, 9–11"
