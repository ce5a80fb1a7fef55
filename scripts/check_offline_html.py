"""Open every HTML page natfeed writes in headless Chromium with the network off and check it renders.

Pages: `dvc plots show` (with the project template, ``configs/dvc/plots.html``) and
``reports/side_by_side.html``; as a control, `dvc plots show` with DVC's default CDN page, which must come
out blank offline (so the check can fail). For each page: no ``<script src>``/``<link href>`` to the
internet, then a screenshot (``--out``, default ``reports/screens/``) whose share of coloured pixels shows
whether charts were drawn. The great-expectations Data Docs load bootstrap and jQuery from CDNs: they
need internet to be styled (the README says so) and are not checked here.

Needs Debian's ``chromium`` (``apt-get install chromium``). Exit 0 when every page renders, 1 otherwise.

    make check-html      # or: .venv/bin/python scripts/check_offline_html.py [--out DIR]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REMOTE = re.compile(r"<(?:script|link|img)[^>]+(?:src|href)=[\"']?(?:https?:)?//", re.IGNORECASE)
MIN_CHART_SHARE = 0.002  # coloured pixels a page with charts shows at least (bars, axes labels are grey)
MIN_INK_SHARE = 0.01  # non-white pixels a page of tables shows at least


def chromium() -> str | None:
    """The Chromium binary, or None."""
    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)


def remote_refs(html: str) -> list[str]:
    """Tags that would fetch something from the network."""
    return [m.group(0)[:80] for m in REMOTE.finditer(html)]


def screenshot(browser: str, page: Path, png: Path) -> None:
    """Render ``page`` offline (every host unresolvable, a dead proxy) and save a screenshot."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}",
             "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9", "--no-first-run",
             "--virtual-time-budget=8000", "--window-size=1280,1600", f"--screenshot={png}", page.resolve().as_uri()],
            capture_output=True, timeout=120, check=False)
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot of {page}")


def shares(png: Path) -> tuple[float, float]:
    """(share of coloured pixels, share of non-white pixels) of a screenshot."""
    import numpy as np
    from PIL import Image

    img = Image.open(png).convert("RGB")
    img.thumbnail((640, 800))
    pixels = np.asarray(img, dtype=np.int16).reshape(-1, 3)
    coloured = (pixels.max(axis=1) - pixels.min(axis=1) > 40).mean()
    ink = (pixels.min(axis=1) < 200).mean()
    return float(coloured), float(ink)


def plots_page(out: Path, template: str | None) -> Path:
    """`dvc plots show` into ``out`` (with ``template``, or DVC's default page when None)."""
    cmd = [sys.executable, "-m", "dvc", "plots", "show", "--out", str(out)]
    if template is None:
        cmd += ["--html-template", str(REPO / "scripts" / "_dvc_default_page.html")]
    subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True)
    return out / "index.html"


def dvc_default_page(path: Path) -> None:
    """DVC's own page (dvc-render's default, which loads vega from a CDN), as a template file."""
    from dvc_render.html import PAGE_HTML

    path.write_text(PAGE_HTML, encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "screens", help="screenshots folder")
    args = ap.parse_args()
    browser = chromium()
    if browser is None:
        print("chromium not found: apt-get install chromium", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    default_template = REPO / "scripts" / "_dvc_default_page.html"
    dvc_default_page(default_template)
    ok = True
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pages = {  # name -> (page, kind, expected to render)
                "dvc_plots": (plots_page(Path(tmp) / "plots", "project"), "charts", True),
                "dvc_plots_cdn_control": (plots_page(Path(tmp) / "control", None), "charts", False),
                "side_by_side": (REPO / "reports" / "side_by_side.html", "tables", True),
            }
            print(f"{'page':24s} {'remote refs':>11s} {'coloured':>9s} {'ink':>7s}  verdict")
            for name, (page, kind, expected) in pages.items():
                refs = remote_refs(page.read_text(encoding="utf-8"))
                png = args.out / f"{name}.png"
                screenshot(browser, page, png)
                coloured, ink = shares(png)
                renders = coloured >= MIN_CHART_SHARE if kind == "charts" else ink >= MIN_INK_SHARE
                good = renders == expected and (not refs if expected else True)
                ok &= good
                verdict = ("renders offline" if renders else "blank offline") + ("" if good else "  <-- UNEXPECTED")
                print(f"{name:24s} {len(refs):11d} {coloured:9.4f} {ink:7.4f}  {verdict}")
    finally:
        default_template.unlink(missing_ok=True)
    print(f"screenshots in {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
