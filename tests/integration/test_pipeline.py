"""Integration: a temporary copy of the repository -> dvc pull (in-repo sample remote) -> dvc repro.

Real DVC, real MLflow (SQLite store in the copy), real pandera and great-expectations.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("pipeline")]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update({"HF_HUB_OFFLINE": "1", "GX_ANALYTICS_ENABLED": "false", "NATFEED_LOG_LEVEL": "WARNING"})
    return env


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {res.returncode}\n{res.stdout}\n{res.stderr}")
    return res


def dvc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], cwd, check)


def copy_repo(dest: Path) -> Path:
    """The repository as a fresh clone would have it (tracked + new unignored files), as a git repo."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"]):
        run(cmd, dest)
    return dest


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    dest = copy_repo(tmp_path_factory.mktemp("repo"))
    (dest / "dvc.lock").unlink(missing_ok=True)  # run every stage, not only what changed since the commit
    dvc("pull", "--quiet", "--remote", "sample", "data.dvc", cwd=dest)
    first = dvc("repro", cwd=dest)
    (dest / "first_repro.log").write_text(first.stdout + first.stderr)
    return dest


def _json(repo: Path, rel: str) -> dict:
    return json.loads((repo / rel).read_text())


def test_every_output_exists_and_counts_reconcile(repo):
    ing = _json(repo, "reports/ingest.json")
    assert ing["rows_read"] == ing["rows_kept"] + ing["rows_rejected"] + ing["rows_filtered"]
    assert ing["redaction"] == "presidio" and sum(ing["redacted"].values()) > 0  # the sample holds e-mails
    assert ing["rows_rejected"] >= 8 and ing["rows_kept"] >= 400 and ing["rows_duplicate"] == 1
    rejected = pd.read_parquet(repo / "data/interim/conversations.rejected.parquet")
    assert len(rejected) == ing["rows_rejected"] and rejected["reason"].str.len().gt(0).all()
    fb = pd.read_parquet(repo / "data/processed/feedback.parquet")
    assert set(fb["category"]) == {"repeat_or_rephrase", "make_aware_with_correction",
                                   "make_aware_without_correction", "ask_for_clarification", "positive_feedback"}
    paper = pd.read_csv(repo / "data/processed/natural_feedback.csv")
    assert list(paper.columns) == ["conversation_id", "feedback_turn", "category", "label"]
    assert len(paper) == len(fb) and set(paper["category"]) <= {"UR1", "UR2", "UR3", "UR4", "UR5"}
    assert set(paper["label"]) <= {-1, 1}
    assert _json(repo, "reports/validate.json")["passed"] is True
    assert (repo / "reports/data_docs/index.html").exists()
    for name in ("kto_train", "kto_test", "sft_train", "sft_test"):
        assert (repo / f"data/processed/kto/{name}.parquet").exists()
    for model in ("models/base", "models/sft", "models/policy"):
        assert (repo / model / "config.json").exists()
    ev = _json(repo, "reports/evaluate.json")
    assert 0.0 <= ev["primary_metric"]["value"] <= 1.0 and ev["primary_metric"]["name"] == "kto_reward_accuracy"
    assert (repo / "reports/side_by_side.html").exists()
    reg = _json(repo, "reports/register.json")
    assert reg["version"] == 1 and "champion" in reg["aliases"]


FRANCE = "What is the capital of France? Answer in one word."


def test_champion_loads_and_answers_a_chat(repo, monkeypatch):
    import mlflow

    monkeypatch.chdir(repo)  # the store keeps artifact locations relative to the project root
    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlruns' / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/natfeed-policy@champion")
    out = model.predict({"messages": [{"role": "user", "content": FRANCE}], "max_tokens": 16})
    answer = out[0] if isinstance(out, list) else out
    assert answer["choices"][0]["message"]["role"] == "assistant"
    assert "Paris" in answer["choices"][0]["message"]["content"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_models_serve_answers_an_openai_style_chat_request(repo):
    import time
    import urllib.request

    port = _free_port()
    env = {**_env(), "MLFLOW_TRACKING_URI": "sqlite:///mlruns/mlflow.db"}
    server = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m",
                               "models:/natfeed-policy@champion", "--env-manager", "local", "-h", "127.0.0.1",
                               "-p", str(port)], cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                time.sleep(1)
        body = json.dumps({"messages": [{"role": "user", "content": FRANCE}], "max_tokens": 16}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        reply = json.loads(urllib.request.urlopen(request, timeout=120).read())
    finally:
        server.terminate()
        server.wait(timeout=60)
    choices = reply[0]["choices"] if isinstance(reply, list) else reply["choices"]
    assert "Paris" in choices[0]["message"]["content"], reply


def test_the_real_model_extracts_feedback_and_counts_parse_failures(repo, tmp_path):
    convs = pd.read_parquet(repo / "data/interim/conversations.parquet")
    convs[convs["turn"] >= 2].head(5).to_parquet(tmp_path / "five.parquet")
    out = tmp_path / "fb.parquet"
    res = run([sys.executable, "-m", "natfeed.cli", "extract", "-i", str(tmp_path / "five.parquet"), "-o", str(out),
               "--backend", "transformers", "--model", str(repo / "models/base"), "--mode", "turn"], repo)
    report = json.loads((tmp_path / "fb.report.json").read_text())
    assert report["conversations"] == 5 and report["requests"] == report["judged_turns"] > 0, res.stdout
    assert report["parse_failures"] == 0  # turn mode scores the allowed labels: every answer is one of them
    rows = pd.read_parquet(out)
    assert len(rows) == report["rows"] and rows["extractor"].str.startswith("transformers-turn:base").all()
    from natfeed.data.validate import require_columns

    require_columns(rows, "feedback")


def test_extract_quality_report(repo):
    q = _json(repo, "reports/extract_quality.json")
    assert q["n_turns"] >= 500  # every judged turn of the real conversations that ingest kept
    assert q["never_tuned"]["n_turns"] + q["tuned"]["n_turns"] == q["n_turns"] and q["never_tuned"]["n_turns"] > 300
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert q["tuned_parts"] == params["extract_quality"]["tuned_parts"] and "dev_part4" not in q["tuned_parts"]
    # real conversations: these floors catch a broken extractor, not a tuned one
    assert q["detection"]["f1"] > 0.45 and q["micro"]["f1"] > 0.35
    confusion = _json(repo, "reports/extract_confusion.json")
    never = q["never_tuned"]  # the plot: the validation parts, less the turns both call none
    assert len(confusion) == never["n_turns"] - never["confusion"]["none"]["none"]
    assert set(confusion[0]) == {"actual", "predicted"}
    details = _json(repo, "reports/extract_quality_details.json")
    assert set(details["per_language"]) == {"English", "other"} and "dev_part4" in details["per_part"]


def test_kto_data_loads_with_datasets(repo):
    from datasets import load_dataset

    ds = load_dataset("parquet", data_files={"train": str(repo / "data/processed/kto/kto_train.parquet")})
    row = ds["train"][0]
    assert set(row) >= {"prompt", "completion", "label"}
    assert row["completion"][0]["role"] == "assistant" and isinstance(row["label"], bool)
    rep = _json(repo, "reports/build_kto.json")
    assert 1.0 <= rep["weighted_ratio"] <= 4 / 3 + 1e-6


def test_mlflow_runs_grouped_under_pipeline_run(repo):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlruns' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["natfeed"], output_format="list")
    stages = {r.data.tags.get("natfeed.stage") for r in runs if r.data.tags.get("natfeed.kind") == "stage"}
    assert {"ingest", "extract", "extract_quality", "validate", "build_kto", "dataset_card", "base_model", "train",
            "evaluate", "register"} <= stages
    parents = [r for r in runs if r.data.tags.get("natfeed.kind") == "pipeline"]
    assert len(parents) == 1  # one per `dvc repro`
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert {r.info.run_name for r in children} == stages  # every stage that ran, named by stage
    parent = parents[0].info
    sha = run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    assert parent.run_name.startswith(f"pipeline {sha[:7]}")  # short commit and start time
    assert parent.start_time <= min(r.info.start_time for r in children)
    assert parent.end_time >= max(r.info.end_time for r in children)  # the duration spans the stages
    with_datasets = {r.info.run_name for r in children if r.inputs.dataset_inputs}
    assert {"ingest", "extract", "extract_quality", "validate", "build_kto", "train", "evaluate"} <= with_datasets
    ingest = next(r for r in children if r.data.tags["natfeed.stage"] == "ingest")
    assert ingest.data.metrics["rows_read"] > 0
    assert ingest.data.metrics["redacted.EMAIL_ADDRESS"] > 0  # counts as metrics, never the values
    assert ingest.data.tags["git_commit"] != "unknown"


def test_metrics_show_is_readable_and_the_summary_short(repo):
    shown = dvc("metrics", "show", cwd=repo).stdout
    lines = shown.splitlines()
    assert lines and max(map(len, lines)) <= 300, shown
    assert "reports/metrics/extract_quality.json" in shown and "{" not in shown
    summary = run([str(Path(sys.executable).parent / "natfeed"), "summary"], repo).stdout.splitlines()
    assert len(summary) <= 25 and max(map(len, summary)) <= 160
    text = "\n".join(summary)
    assert "validation gold" in text and "not run" not in text and "champion v" in text


def test_dataset_card_lists_files_that_load(repo):
    from datasets import load_dataset

    card = (repo / "data/processed/README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    for config in meta["configs"]:
        files = {f["split"]: str(repo / "data/processed" / f["path"]) for f in config["data_files"]}
        ds = load_dataset("parquet", data_files=files, cache_dir=str(repo / ".hf_cache"))
        assert all(len(ds[split]) > 0 for split in files), config
    assert all((repo / "data/processed/figures" / f"{n}.png").is_file() for n in
               ("feedback_share", "categories", "rate_by_language", "rate_by_model", "feedback_position"))


def test_second_repro_runs_nothing_and_status_is_clean(repo):
    out = dvc("repro", cwd=repo).stdout
    assert "Running stage" not in out
    status = dvc("status", "dvc.yaml", cwd=repo).stdout
    assert "up to date" in status.lower(), status


def _ran(out: str) -> set[str]:
    return {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}


def test_a_params_typo_anywhere_stops_repro_before_any_stage(repo):
    original = (repo / "params.yaml").read_text()
    params = yaml.safe_load(original)
    params["tracking"]["experimnt"] = "x"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        res = dvc("repro", cwd=repo, check=False)
        out = res.stdout + res.stderr
        assert res.returncode != 0 and "tracking.experimnt: unknown key (did you mean 'experiment'?)" in out, out
        assert _ran(out) == {"check_params"}, out
        assert "Traceback" not in out
    finally:
        (repo / "params.yaml").write_text(original)
    assert "up to date" in dvc("status", "dvc.yaml", cwd=repo).stdout.lower()


def test_editing_a_module_only_train_uses_reruns_train_and_what_follows(repo):
    module = repo / "src/natfeed/model/train.py"
    original = module.read_text()
    module.write_text(original + "\n# an edit that changes no behaviour\n")
    try:
        out = dvc("repro", "--dry", cwd=repo).stdout
        assert "train" in _ran(out) and _ran(out) <= {"train", "evaluate", "register"}, out
    finally:
        module.write_text(original)
    assert "up to date" in dvc("status", "dvc.yaml", cwd=repo).stdout.lower()


def test_build_kto_param_change_reruns_only_build_kto(repo):
    original = (repo / "params.yaml").read_text()
    params = yaml.safe_load(original)
    params["build_kto"]["seed"] = 7
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        out = dvc("repro", "--dry", cwd=repo).stdout
    finally:
        (repo / "params.yaml").write_text(original)
    ran = _ran(out)
    upstream = {"ingest", "extract", "extract_quality", "validate", "base_model"}
    assert "build_kto" in ran and not ran & upstream, out
    assert ran <= {"check_params", "build_kto", "train", "evaluate", "register"}, out


def test_corrupted_feedback_fails_validate(repo, tmp_path):
    fb = pd.read_parquet(repo / "data/processed/feedback.parquet")
    fb.loc[fb.index[0], "category"] = "praise"
    fb.loc[fb.index[1], "label"] = 5
    bad = tmp_path / "bad.parquet"
    fb.to_parquet(bad)
    res = run([sys.executable, "-m", "natfeed.cli", "validate", "--input", str(bad), "--conversations",
               str(repo / "data/interim/conversations.parquet"), "--docs-dir", str(tmp_path / "docs")],
              repo, check=False)
    assert res.returncode == 1
    msg = res.stdout + res.stderr
    assert "category" in msg and "praise" in msg and "label" in msg


def test_real_corpora_ingest_and_extract(corpora, tmp_path):
    from natfeed.data.ingest import run_ingest
    from natfeed.extract.run import extract_file
    from natfeed.params import ExtractParams, IngestParams

    rep = run_ingest(corpora, tmp_path / "c.parquet", IngestParams())
    assert rep["rows_read"] == 649
    assert rep["rows_read"] == rep["rows_kept"] + rep["rows_rejected"] + rep["rows_filtered"]
    assert rep["rows_kept"] > 600
    langs = pd.read_parquet(tmp_path / "c.parquet")["language"]
    assert (langs == "unknown").mean() < 0.05 and {"English", "Chinese", "Russian"} <= set(langs)
    ext = extract_file(tmp_path / "c.parquet", tmp_path / "f.parquet", ExtractParams(workers=1))
    assert ext["conversations"] == rep["rows_kept"] and ext["rows"] > 50


MODEL_STAGES = ("train", "evaluate", "register")
"""Their outputs follow from the trained weights: bit-identical on the same CPU kind, maybe not on another."""
MODEL_OUTPUTS = ("reports/train.json", "reports/metrics/train.json", "reports/evaluate.json", "reports/evaluate_",
                 "reports/metrics/evaluate.json", "reports/side_by_side.")


def _lock(text: str) -> dict:
    return yaml.safe_load(text)["stages"]


def test_a_fresh_run_reproduces_every_git_tracked_output_and_dvc_lock(repo):
    """The fixture ran every stage from scratch (no dvc.lock, a fresh MLflow store), as `make run` on a fresh
    clone does: the committed reports and lock entries come out byte for byte (timings, timestamps and
    registry state live in git-ignored files). Training is deterministic on one CPU kind; where this CPU's
    kernels round differently, only the model stages' outputs may differ, and the test says so."""
    committed = _lock(run(["git", "show", "HEAD:dvc.lock"], repo).stdout)
    now = _lock((repo / "dvc.lock").read_text())
    assert set(now) == set(committed)
    changed = [line[3:] for line in run(["git", "status", "--porcelain", "--untracked-files=no"], repo).stdout
               .splitlines() if line[3:] != "dvc.lock"]  # untracked: what other tests here wrote
    same_weights = now["train"]["outs"] == committed["train"]["outs"]
    if same_weights:
        assert now == committed and not changed, changed
        return
    assert {s for s in now if now[s] != committed[s]} <= set(MODEL_STAGES)
    assert all(path.startswith(MODEL_OUTPUTS) for path in changed), changed
    pytest.xfail("the data stages reproduce exactly; training on this CPU is not bit-identical to the commit's")


def test_the_readmes_restore_procedure_after_a_failed_stage(repo):
    """README, "When a stage fails": undo the cause, restore the git-tracked files from HEAD, `dvc checkout dvc.yaml`."""
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "after the run", "--allow-empty"], repo)
    module = repo / "stages/train.py"  # the stage script (natfeed itself is imported from the installed package)
    text = module.read_text()
    assert text.count("\n    run_stage(main)") == 1
    module.write_text(text.replace("\n    run_stage(main)", "\n    raise RuntimeError('broken on purpose')"))
    res = dvc("repro", cwd=repo, check=False)
    assert res.returncode != 0 and "broken on purpose" in res.stdout + res.stderr
    assert not (repo / "models/policy").exists() and not (repo / "reports/train.json").exists()  # DVC removed them
    run(["git", "checkout", "HEAD", "--", "stages/train.py"], repo)  # 1. undo what broke it
    run(["git", "restore", "--source=HEAD", "--staged", "--worktree", "dvc.lock", "reports", "data/processed"], repo)
    dvc("checkout", "dvc.yaml", cwd=repo)  # 3. the cached outputs dvc.lock names, from .dvc/cache
    assert (repo / "models/policy/model.safetensors").exists() and (repo / "reports/train.json").exists()
    assert "up to date" in dvc("status", "dvc.yaml", cwd=repo).stdout.lower()
    assert run(["git", "status", "--porcelain", "--untracked-files=no"], repo).stdout == ""
