"""The vendored vega bundle: pinned versions, licences shipped, nothing fetched from a CDN."""

from __future__ import annotations

import configparser

from tests.repo.imports import REPO


def test_dvc_uses_the_offline_template():
    config = configparser.ConfigParser()
    config.read(REPO / ".dvc" / "config")
    template = (REPO / ".dvc" / config["plots"]["html_template"]).resolve()
    assert template == (REPO / "configs" / "dvc" / "plots.html").resolve() and template.is_file()


def test_template_inlines_pinned_vega_with_licences():
    page = (REPO / "configs/dvc/plots.html").read_text(encoding="utf-8")
    notes = (REPO / "configs/dvc/VENDORED.md").read_text(encoding="utf-8")
    for name, version in (("vega", "5.20.2"), ("vega-lite", "5.2.0"), ("vega-embed", "6.18.2")):
        assert f"/* {name}@{version} " in page and f"## {name} {version}" in notes
    assert notes.count("Copyright") >= 3 and "{plot_divs}" in page and "{scripts}" not in page
    assert "<script src=" not in page
