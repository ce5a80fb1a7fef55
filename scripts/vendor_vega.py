"""Build the offline HTML template of `dvc plots show` (``.dvc/config``: ``plots.html_template``).

DVC's default page loads vega, vega-lite and vega-embed from a CDN, so offline it is blank. This script
fetches the pinned npm packages (``npm pack``, the npm registry only), checks their sha512 integrity,
inlines their minified builds into ``configs/dvc/plots.html`` and writes ``configs/dvc/VENDORED.md`` with
the versions, hashes and the packages' licences. The versions are the ones dvc-render's own page uses,
so the specs DVC writes render the same.

    make vendor-vega          # or: .venv/bin/python scripts/vendor_vega.py
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "configs" / "dvc"
PACKAGES = {  # name -> (version, minified build in the package)
    "vega": ("5.20.2", "build/vega.min.js"),
    "vega-lite": ("5.2.0", "build/vega-lite.min.js"),
    "vega-embed": ("6.18.2", "build/vega-embed.min.js"),
}
PAGE = """<!DOCTYPE html>
<html>
<head>
  {{refresh_tag}}
  <meta charset="utf-8">
  <title>natfeed - DVC plots</title>
  <!-- {credits}: inlined from npm (BSD-3-Clause, see configs/dvc/VENDORED.md), so this page works offline.
       Rebuild with `make vendor-vega`. The page has no placeholder for DVC's CDN script tags. -->
{scripts}
  <style>
    body {{ font-family: system-ui, sans-serif; margin: 1.5em; }}
    table {{ border-spacing: 15px; }}
  </style>
</head>
<body>
  <h1>natfeed pipeline plots</h1>
  {{plot_divs}}
</body>
</html>
"""


def fetch(name: str, version: str, tmp: Path) -> tuple[bytes, dict[str, str], str]:
    """(the package's tarball, {file: text} of its build and licence, sha512 integrity) via ``npm pack``."""
    res = subprocess.run(["npm", "pack", f"{name}@{version}", "--json", "--pack-destination", str(tmp)],
                         capture_output=True, text=True, check=True)
    info = json.loads(res.stdout)[0]
    tarball = (tmp / info["filename"]).read_bytes()
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    if integrity != info["integrity"]:
        raise SystemExit(f"{name}@{version}: integrity mismatch ({integrity} != {info['integrity']})")
    files = {}
    with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
        for member in tar.getmembers():
            rel = member.name.removeprefix("package/")
            if rel in (PACKAGES[name][1], "LICENSE"):
                files[rel] = tar.extractfile(member).read().decode("utf-8")  # type: ignore[union-attr]
    return tarball, files, integrity


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    scripts, notes = [], ["# Vendored JavaScript", "",
                          "Inlined into `configs/dvc/plots.html` by `scripts/vendor_vega.py` (`make vendor-vega`)",
                          "so that `dvc plots show` renders offline. Each package's licence follows.", ""]
    with tempfile.TemporaryDirectory() as tmp:
        for name, (version, build) in PACKAGES.items():
            _, files, integrity = fetch(name, version, Path(tmp))
            js = files[build].replace("</script", "<\\/script")
            scripts.append(f"  <script>/* {name}@{version} {build} */\n{js}\n  </script>")
            sha = hashlib.sha256(files[build].encode()).hexdigest()
            notes += [f"## {name} {version}", "", f"- file: `{build}`, sha256 `{sha}`",
                      f"- npm tarball integrity: `{integrity}`", "", "```", files["LICENSE"].strip(), "```", ""]
    credits = ", ".join(f"{n} {v}" for n, (v, _) in PACKAGES.items())
    (OUT / "plots.html").write_text(PAGE.format(credits=credits, scripts="\n".join(scripts)), encoding="utf-8")
    (OUT / "VENDORED.md").write_text("\n".join(notes), encoding="utf-8")
    print(f"wrote {OUT / 'plots.html'} ({(OUT / 'plots.html').stat().st_size:,} bytes) and {OUT / 'VENDORED.md'}")


if __name__ == "__main__":
    main()
