"""The pipeline against a team stack (`make test-team`): an MLflow tracking server backed by PostgreSQL
with proxied artifacts, and an S3 DVC remote (moto's S3 server; S3's API is the protocol under test).

`make test-team` starts the stack with scripts/team.py (``.team/state.json``), runs these tests and stops
it. They use the tiny model and never skip: a missing stack is an error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [pytest.mark.team, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
STATE = REPO / ".team" / "state.json"
BIN = Path(sys.executable).parent
PROJECTS: list[Path] = []  # every project folder the tests made (the leak check reads their reports)


@pytest.fixture(scope="module")
def team() -> dict:
    if not STATE.exists():
        pytest.fail("no team stack: run `make test-team` (or `make team-up` first)")
    state = json.loads(STATE.read_text())
    state["secrets"] = json.loads((REPO / ".team" / "secrets.json").read_text())
    return state


def _env(team: dict) -> dict[str, str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": team["mlflow_url"], "HF_HUB_OFFLINE": "1",
           "GX_ANALYTICS_ENABLED": "false", "NATFEED_LOG_LEVEL": "WARNING", "NATFEED_USER": "team-test"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(cmd: list[str], cwd: Path, team: dict, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=cwd, env=_env(team), capture_output=True, text=True)
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {res.returncode}\n{res.stdout}\n{res.stderr}")
    return res


def make_project(root: Path, model_name: str, accuracy: float = 0.8) -> Path:
    """A folder the register stage can run in: params, a tiny policy, hand-written reports, KTO files."""
    from tests.support.scratch import tiny_model

    root.mkdir(parents=True)
    (root / "params.yaml").write_text(
        f"register:\n  model_name: {model_name}\n  max_new_tokens: 4\n  gate:\n    thresholds: "
        "{kto_reward_accuracy: 0.3}\ntracking:\n  experiment: natfeed-team-test\n"
        f"# project {root.name}\n")  # its own params: not identical to another project's model
    tiny_model(root / "models" / "policy")
    reports = root / "reports"
    reports.mkdir()
    primary = {"name": "kto_reward_accuracy", "value": accuracy, "ci_low": accuracy - 0.2, "ci_high": accuracy + 0.1,
               "n": 50}
    (reports / "evaluate.json").write_text(json.dumps({"metrics": {"kto_reward_accuracy": accuracy},
                                                       "primary_metric": primary, "test_examples": 50}))
    (reports / "validate.json").write_text(json.dumps({"passed": True}))
    (reports / "extract.json").write_text(json.dumps({"extractor": "heuristic-1.0.0", "rows": 3}))
    kto = root / "data" / "processed" / "kto"
    kto.mkdir(parents=True)
    for split in ("kto_train", "kto_test"):
        pd.DataFrame({"prompt": ["p"], "completion": [split], "label": [True]}).to_parquet(kto / f"{split}.parquet")
    PROJECTS.append(root)
    return root


def register(project: Path, team: dict) -> dict:
    run([sys.executable, str(REPO / "stages" / "register.py")], project, team)
    return json.loads((project / "reports" / "register.json").read_text())


def test_register_promote_rollback_and_load_through_the_server(team, tmp_path):
    import mlflow

    name = f"team-model-{uuid.uuid4().hex[:6]}"  # the server's database outlives one test session
    project = make_project(tmp_path / "p", name)
    first = register(project, team)
    assert register(project, team)["registered"] is False  # identical weights, data, params: no new version
    with (project / "params.yaml").open("a") as f:
        f.write("# retrained\n")  # another training run
    second = register(project, team)
    assert (first["version"], second["version"]) == (1, 2) and second["champion_version"] == 2
    assert "mlflow-artifacts:" in json.dumps(first) or first["model_uri"].startswith("models:/")
    natfeed = str(BIN / "natfeed")
    mlflow.set_tracking_uri(team["mlflow_url"])
    client = mlflow.MlflowClient()
    assert "v1" in run([natfeed, "rollback"], project, team).stdout
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    listed = json.loads(run([natfeed, "models", "--json"], project, team).stdout)
    assert sorted(int(row["version"]) for row in listed) == [1, 2]
    assert {int(r["version"]): r["aliases"] for r in listed} == {1: ["champion"], 2: ["challenger"]}
    events = json.loads(run([natfeed, "models", "--history", "--json"], project, team).stdout)
    assert [(e["action"], e["version"]) for e in events] == [("promote", "1"), ("promote", "2"), ("rollback", "1")]
    run([natfeed, "promote", "--version", "2"], project, team)
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")  # the weights come through the proxy
    reply = model.predict({"messages": [{"role": "user", "content": "hello"}], "max_tokens": 4})
    assert isinstance(reply[0]["choices"][0]["message"]["content"], str)
    assert any((Path(REPO / ".team" / "artifacts")).rglob("*.safetensors"))  # stored server-side, not in the project
    assert not (project / "mlruns" / "artifacts").exists()


def test_two_pipelines_registering_at_once_get_distinct_versions(team, tmp_path):
    import mlflow

    name = f"team-race-{uuid.uuid4().hex[:6]}"
    projects = [make_project(tmp_path / f"p{i}", name) for i in range(2)]
    procs = [subprocess.Popen([sys.executable, str(REPO / "stages" / "register.py")], cwd=p, env=_env(team),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for p in projects]
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out
    reports = [json.loads((p / "reports" / "register.json").read_text()) for p in projects]
    versions = sorted(r["version"] for r in reports)
    assert versions == [1, 2]
    mlflow.set_tracking_uri(team["mlflow_url"])
    client = mlflow.MlflowClient()
    for v in versions:  # every registration kept its decision
        assert json.loads(client.get_model_version(name, str(v)).tags["natfeed.decision"])["passed"]
    champion = client.get_model_version_by_alias(name, "champion").version
    challenger = client.get_model_version_by_alias(name, "challenger").version
    assert champion in {"1", "2"} and challenger in {"1", "2"}
    assert int(champion) == max(r["champion_version"] for r in reports)  # the last promotion is the one that holds


def _copy_repo(dest: Path, team: dict) -> Path:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, files):
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    shutil.copy2(REPO / ".dvc" / "config.local", dest / ".dvc" / "config.local")
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"]):
        run(cmd, dest, team)
    PROJECTS.append(dest)
    return dest


def _dvc(repo: Path, team: dict, *args: str) -> str:
    res = run([sys.executable, "-m", "dvc", *args], repo, team)
    return res.stdout + res.stderr


def test_dvc_push_then_a_new_clone_pulls_identical_data_and_reruns_nothing(team, tmp_path):
    first = _copy_repo(tmp_path / "first", team)
    _dvc(first, team, "pull", "--quiet", "--remote", "sample", "data.dvc")
    _dvc(first, team, "repro", "extract")
    run(["git", "add", "-A"], first, team)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "repro", "--allow-empty"], first, team)
    pushed = _dvc(first, team, "push", "--remote", "team", "--run-cache")
    assert "pushed" in pushed or "Everything is up to date" in pushed, pushed

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(first), str(clone)], tmp_path, team)
    shutil.copy2(first / ".dvc" / "config.local", clone / ".dvc" / "config.local")
    PROJECTS.append(clone)
    _dvc(clone, team, "pull", "--remote", "team", "data.dvc")
    for rel in ("data/raw/conversations.jsonl", "data/raw/gold_labels.csv"):
        assert (clone / rel).read_bytes() == (first / rel).read_bytes(), rel
    assert not (clone / "data/processed/feedback.parquet").exists()
    # every stage writes an uncached report (git-tracked), so DVC restores it by checkout, not from the run
    # cache alone: pull the outputs with the run cache, then nothing reruns
    _dvc(clone, team, "pull", "--remote", "team", "--run-cache", "--with-deps", "extract")
    out = _dvc(clone, team, "repro", "extract")
    assert "Running stage" not in out, out
    assert (clone / "data/processed/feedback.parquet").read_bytes() == (first / "data/processed/feedback.parquet").read_bytes()
    assert "up to date" in _dvc(clone, team, "status", "extract")


def test_no_secret_in_mlflow_logs_or_reports(team):
    import mlflow

    secrets = [team["secrets"]["db_password"], team["secrets"]["s3_secret_access_key"]]
    mlflow.set_tracking_uri(team["mlflow_url"])
    client = mlflow.MlflowClient()
    texts = []
    for exp in client.search_experiments():
        for r in client.search_runs([exp.experiment_id], max_results=1000):
            texts += [json.dumps(r.data.params), json.dumps(r.data.tags)]
    for model in client.search_registered_models():
        for v in client.search_model_versions(f"name = '{model.name}'"):
            texts.append(json.dumps(v.tags))
    texts += [p.read_text(errors="replace") for p in (REPO / ".team").glob("*.log")]
    for project in PROJECTS:
        texts += [p.read_text(errors="replace") for p in project.rglob("*.json") if "mlruns" not in p.parts
                  and p.stat().st_size < 5_000_000]
        if (project / ".dvc" / "config").exists():
            texts.append((project / ".dvc" / "config").read_text())
    assert texts and PROJECTS
    for secret in secrets:
        assert not any(secret in t for t in texts)
