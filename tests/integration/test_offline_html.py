"""The HTML pages natfeed writes render offline in headless Chromium (skipped where Chromium is absent).

Runs `scripts/check_offline_html.py` (`make check-html`): `dvc plots show` with the project template and
reports/side_by_side.html must show their charts and tables with every host unresolvable, and DVC's
default CDN page must come out blank (the control that shows the check can fail).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from check_offline_html import chromium, remote_refs  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_project_template_and_reports_load_nothing_from_the_internet():
    assert remote_refs((REPO / "configs/dvc/plots.html").read_text(encoding="utf-8")) == []
    assert remote_refs((REPO / "reports/side_by_side.html").read_text(encoding="utf-8")) == []
    assert remote_refs('<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>')  # the check can fail


@pytest.mark.skipif(chromium() is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_pages_render_offline_in_headless_chromium(tmp_path):
    res = subprocess.run([sys.executable, str(REPO / "scripts/check_offline_html.py"), "--out", str(tmp_path)],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "dvc_plots " in res.stdout and "renders offline" in res.stdout and "blank offline" in res.stdout
