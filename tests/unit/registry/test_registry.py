"""The register stage and model promotion on a real MLflow SQLite registry in a temporary folder.

One tiny Llama is built per module; each test registers its versions under its own model name so
that the tests do not depend on each other's order.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from natfeed.core.io import file_md5
from natfeed.core.tracking import stage_run
from natfeed.params import GateParams, ParamsError, RegisterParams, TrackingParams, parse_params
from natfeed.registry.promote import (
    CHAMPION,
    PrimaryMetric,
    RegistryError,
    VersionInfo,
    champion_history,
    check_gate,
    history,
    promote,
    rollback,
)
from natfeed.registry.register import choose_log_weights, pip_requirements, register_policy

mlflow = pytest.importorskip("mlflow")

GATE = GateParams(thresholds={"kto_reward_accuracy": 0.3})
TRACKING = TrackingParams(experiment="registry-test")


def _tiny_model(out: Path) -> Path:
    """The base_model stage's tiny Llama when available, else an equivalent one built here."""
    try:
        from tests.support.scratch import tiny_model
    except ImportError:
        tiny_model = None
    if tiny_model is not None:
        return tiny_model(out)
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    tok.train_from_iterator(["hello how are you", "fine thanks", "what is the capital of France"] * 5,
                            trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>")
    fast.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
                          "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                 num_attention_heads=1, num_key_value_heads=1, head_dim=64,
                                 max_position_embeddings=128, eos_token_id=fast.eos_token_id,
                                 pad_token_id=fast.pad_token_id)).save_pretrained(out)
    fast.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary working folder (cwd) with an MLflow SQLite store, a tiny policy and KTO parquet files."""
    root = tmp_path_factory.mktemp("registry")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("NATFEED_USER", "tester")
        _tiny_model(root / "models" / "policy")
        kto = root / "data" / "kto"
        kto.mkdir(parents=True)
        for split in ("kto_train", "kto_test"):
            pd.DataFrame({"prompt": ["p"], "completion": [split], "label": [True]}).to_parquet(kto / f"{split}.parquet")
        (root / "params.yaml").write_text("register:\n  model_name: cli-model\n  gate:\n    thresholds: "
                                          "{kto_reward_accuracy: 0.3}\ntracking:\n  experiment: registry-test\n")
        yield root


def write_reports(folder: Path, value: float, ci: tuple[float, float] | None = None, passed: bool = True,
                  n: int = 50) -> Path:
    """Hand-written evaluate / validate / extract reports (``n`` test examples) and the run's params file."""
    folder.mkdir(parents=True, exist_ok=True)
    primary = {"name": "kto_reward_accuracy", "value": value, "ci_low": ci[0] if ci else None,
               "ci_high": ci[1] if ci else None, "n": n}
    evaluate = {"metrics": {"kto_reward_accuracy": value, "kto_reward_margin": value - 0.5,
                            "policy": {"desirable_logp": -3.2}}, "primary_metric": primary, "test_examples": n}
    (folder / "evaluate.json").write_text(json.dumps(evaluate))
    (folder / "validate.json").write_text(json.dumps({"passed": passed}))
    (folder / "extract.json").write_text(json.dumps({"extractor": "heuristic-1.0.0", "rows": 3}))
    (folder / "params.yaml").write_text(f"# the training run {folder.name}\n")  # each run its own params
    return folder


def run_stage(store: Path, name: str, value: float, ci: tuple[float, float] | None = None, passed: bool = True,
              n: int = 50, kto: str = "kto", **params: object) -> dict:
    """What stages/register.py does, on temporary reports: a training run per (value, ci, passed, n, kto), so
    the same arguments again are an identical rerun."""
    reports = write_reports(store / "reports" / f"{name}-{value}-{ci}-{passed}-{n}-{kto}", value, ci, passed, n)
    reg = RegisterParams(model_name=name, max_new_tokens=4, gate=GATE, **params)
    with stage_run("register", TRACKING, reg.model_dump()):
        return register_policy(store / "models" / "policy", reports, store / "data" / kto, reg,
                               params_file=reports / "params.yaml")


def client():
    return mlflow.MlflowClient()


def decision_tag(name: str, version: int) -> dict:
    """The version's decision at registration (never overwritten)."""
    return json.loads(client().get_model_version(name, str(version)).tags["natfeed.decision"])


def last_decision(name: str) -> dict:
    return history(client(), name)[-1]


# --- the gate, pure -------------------------------------------------------------------------------------

def info(value: float | None, ci: tuple[float, float] | None = None, passed: bool | None = True,
         version: str = "2", n: int | None = 50, test_md5: str | None = "test-md5") -> VersionInfo:
    pm = None if value is None else PrimaryMetric("acc", value, *(ci or (None, None)), n=n)
    return VersionInfo(version, passed, {} if value is None else {"acc": value, "group.margin": 0.1}, pm, test_md5)


@pytest.mark.parametrize(("n", "test_md5", "why"), [
    (5, "test-md5", "not enough evidence (n=5 < 30)"),
    (None, "test-md5", "not enough evidence (n=unknown < 30)"),
    (50, "other-md5", "not comparable: measured on another test set than champion v1 (kto_test md5 other-md5 vs test-md5)"),
    (50, None, "not comparable"),
])
def test_gate_needs_evidence_to_replace_a_champion(n: int | None, test_md5: str | None, why: str) -> None:
    result = check_gate(info(0.9, n=n, test_md5=test_md5), info(0.6, version="1"), GateParams())
    assert not result.passed and result.evidence_only and result.failures[0].startswith(why)
    assert check_gate(info(0.9, n=n, test_md5=test_md5), None, GateParams()).passed  # no champion: thresholds only
    assert check_gate(info(0.9, n=30), info(0.6, version="1"), GateParams()).passed
    bad = check_gate(info(0.9, n=n, test_md5=test_md5, passed=False), info(0.6, version="1"), GateParams())
    assert not bad.evidence_only  # a real failure too: reject, not keep


@pytest.mark.parametrize(("value", "ci", "passes"), [
    (0.70, None, True),          # better
    (0.60, None, True),          # equal: not worse
    (0.59, None, False),         # worse, no CI, no tolerance
    (0.55, (0.45, 0.65), True),  # below, but its CI reaches the champion's value: not distinguishably worse
    (0.55, (0.50, 0.59), False),  # its whole CI is below the champion's value
])
def test_gate_compares_with_champion_beyond_the_ci(value: float, ci: tuple | None, passes: bool) -> None:
    result = check_gate(info(value, ci), info(0.60, version="1"), GateParams())
    assert result.passed is passes
    assert result.compared["primary_metric"]["champion"] == 0.60
    assert bool(result.failures) is not passes
    if not passes:
        assert "worse than champion v1" in result.failures[0]


def test_gate_tolerance_thresholds_and_validation() -> None:
    champ = info(0.60, version="1")
    assert check_gate(info(0.58), champ, GateParams(tolerance=0.05)).passed
    assert not check_gate(info(0.58), champ, GateParams(tolerance=0.01)).passed
    assert not check_gate(info(0.58), champ, GateParams(compare_champion=True)).passed
    assert check_gate(info(0.58), champ, GateParams(compare_champion=False)).passed
    failed = check_gate(info(0.9, passed=False), None, GateParams(thresholds={"acc": 0.95, "margin": 0.05,
                                                                              "missing": 0.0}))
    assert not failed.passed
    text = " | ".join(failed.failures)
    assert "validation did not pass" in text
    assert "acc = 0.9 is below its threshold 0.95" in text
    assert "'missing' missing" in text
    assert "margin =" not in text and len(failed.failures) == 3  # margin: unique suffix of group.margin
    assert "no validation result" in check_gate(info(0.9, passed=None), None, GateParams()).failures[0]
    assert not check_gate(info(math.nan), None, GateParams(thresholds={"acc": 0.0})).passed
    assert check_gate(info(0.1, passed=False), None, GateParams(require_validation=False)).passed


def test_version_info_round_trips_through_tags() -> None:
    evaluate = {"metrics": {"a": 0.5, "nested": {"b": 2}, "flag": True, "text": "x"},
                "primary_metric": {"name": "a", "value": 0.5, "ci_low": 0.4, "ci_high": 0.6}}
    original = VersionInfo.from_reports(evaluate, {"passed": True})
    assert original.metrics == {"a": 0.5, "nested.b": 2.0}
    back = VersionInfo.from_tags("7", original.to_tags())
    assert (back.version, back.validation_passed, back.metrics, back.primary) == \
        ("7", True, original.metrics, PrimaryMetric("a", 0.5, 0.4, 0.6))
    assert VersionInfo.from_reports(evaluate, None).validation_passed is None
    # evaluate.py's layout: no `metrics` section, the figures at the top level
    flat = {"kto_reward_accuracy": 0.55, "kto_reward": {"policy_vs_sft": {"accuracy": 0.55, "margin": None}},
            "rm_win_rate": None, "seconds": {"total": 3.0}, "primary_metric": evaluate["primary_metric"]}
    assert VersionInfo.from_reports(flat, None).metrics == {"kto_reward_accuracy": 0.55,
                                                            "kto_reward.policy_vs_sft.accuracy": 0.55}


def test_params_section_is_validated() -> None:
    assert parse_params({}).register_.model_name == "natfeed-policy"
    with pytest.raises(ParamsError, match="log_weights"):
        parse_params({"register": {"log_weights": "everything"}})
    with pytest.raises(ParamsError, match="treshold"):
        parse_params({"register": {"gate": {"tresholds": {}}}})


def test_log_weights_auto(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 2048)
    assert choose_log_weights(tmp_path, RegisterParams()) == "full"
    assert choose_log_weights(tmp_path, RegisterParams(max_full_gb=1e-6)) == "reference"
    with pytest.raises(RegistryError, match="no LoRA adapter"):
        choose_log_weights(tmp_path, RegisterParams(log_weights="adapter"))
    (tmp_path / "adapter_config.json").write_text("{}")
    assert choose_log_weights(tmp_path, RegisterParams()) == "adapter"
    reqs = pip_requirements(adapter=True)
    assert any(r.startswith("torch==") and "+" not in r for r in reqs) and any(r.startswith("peft") for r in reqs)
    assert not any(r.startswith("torchvision") for r in reqs)


# --- the stage and the registry ----------------------------------------------------------------------------

@pytest.mark.slow
def test_first_version_becomes_champion_with_lineage(store: Path) -> None:
    report = run_stage(store, "m-first", 0.6, (0.5, 0.7))
    assert report["version"] == 1 and report["promoted"] is True and report["champion_version"] == 1
    assert report["aliases"] == ["challenger", "champion"] and report["log_weights"] == "full"
    assert report["decision"]["action"] == "promote" and report["decision"]["champion_before"] is None
    tags = client().get_model_version("m-first", "1").tags
    assert tags["natfeed.data.kto_train.md5"] == file_md5(store / "data" / "kto" / "kto_train.parquet")
    assert tags["natfeed.data.kto_test.md5"] == file_md5(store / "data" / "kto" / "kto_test.parquet")
    assert (tags["natfeed.extractor"], tags["natfeed.extractor_backend"]) == ("heuristic-1.0.0", "heuristic")
    assert tags["natfeed.params_md5"] == file_md5(next((store / "reports").glob("m-first-*")) / "params.yaml")
    assert len(tags["natfeed.git_commit"]) in (40, 7)  # a sha ("unknown" outside git)
    assert float(tags["natfeed.metric.kto_reward_accuracy"]) == 0.6
    assert json.loads(tags["natfeed.metrics"])["policy.desirable_logp"] == -3.2
    assert "natfeed.metric.policy.desirable_logp" not in tags  # nested: only in natfeed.metrics
    assert json.loads(tags["natfeed.primary_metric"])["ci_high"] == 0.7
    assert tags["natfeed.validation_passed"] == "true" and tags["natfeed.log_weights"] == "full"
    assert decision_tag("m-first", 1)["by"] == "tester"
    assert [h["version"] for h in champion_history(client(), "m-first")] == ["1"]
    requirements = [p.read_text() for p in store.rglob("requirements.txt")]
    assert requirements and all("transformers==" in r and "torchvision" not in r for r in requirements)


@pytest.mark.slow
def test_better_version_is_promoted_and_worse_is_not(store: Path) -> None:
    run_stage(store, "m-seq", 0.6)
    better = run_stage(store, "m-seq", 0.7)
    assert better["promoted"] and better["champion_version"] == 2
    worse = run_stage(store, "m-seq", 0.5, (0.45, 0.55))
    assert worse["promoted"] is False and worse["aliases"] == ["challenger"]
    assert worse["champion_version"] == 2
    assert str(client().get_model_version_by_alias("m-seq", CHAMPION).version) == "2"
    tag = decision_tag("m-seq", 3)
    assert tag["action"] == "reject" and tag["source"] == "stage"
    assert "worse than champion v2" in tag["failures"][0]
    assert tag["compared"]["primary_metric"]["champion"] == 0.7


@pytest.mark.slow
def test_an_experiment_never_moves_champion_even_when_the_gate_passes(store: Path, monkeypatch) -> None:
    run_stage(store, "m-exp", 0.6)
    monkeypatch.setenv("DVC_EXP_NAME", "seed 3")  # what `dvc exp run` sets in the stage environment
    trial = run_stage(store, "m-exp", 0.9)
    assert trial["experiment"] == "seed 3" and trial["promoted"] is False
    assert trial["aliases"] == ["exp-seed-3"] and trial["champion_version"] == 1
    tag = decision_tag("m-exp", 2)
    assert tag["action"] == "experiment" and tag["passed"] is True
    assert "experiment 'seed 3': champion stays v1 (would pass the gate)" in tag["reason"]
    assert tag["reason"].endswith("`natfeed promote --version 2`")  # the gate passes: a plain promote works
    monkeypatch.setenv("DVC_EXP_NAME", "worse")
    run_stage(store, "m-exp", 0.9, passed=False)  # validation failed: only a forced promote would take it
    assert "`natfeed promote --version 3 --force --reason \"...\"`" in decision_tag("m-exp", 3)["reason"]
    assert client().get_model_version("m-exp", "2").tags["natfeed.experiment"] == "seed 3"
    assert str(client().get_model_version_by_alias("m-exp", CHAMPION).version) == "1"
    assert str(client().get_model_version_by_alias("m-exp", "challenger").version) == "1"


def test_experiment_name_from_dvc_or_the_branch(monkeypatch) -> None:
    from natfeed.registry import register

    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    for branch, expected in (("main", None), ("master", None), ("feature/x", "branch-feature/x"),
                             ("HEAD", "detached"), (None, None)):
        monkeypatch.setattr(register, "git_branch", lambda b=branch: b)
        assert register.experiment_name(["main", "master"]) == expected
    monkeypatch.setenv("DVC_EXP_NAME", "bushy-tree")
    assert register.experiment_name(["main"]) == "bushy-tree"
    assert register.experiment_alias("branch-feature/x") == "exp-branch-feature-x"


@pytest.mark.slow
@pytest.mark.parametrize(("value", "passed", "why"), [(0.9, False, "validation did not pass"),
                                                      (0.2, True, "below its threshold 0.3")])
def test_failing_gate_leaves_champion_unchanged(store: Path, value: float, passed: bool, why: str) -> None:
    name = f"m-gate-{passed}"
    run_stage(store, name, 0.5)
    report = run_stage(store, name, value, passed=passed)
    assert report["promoted"] is False and report["champion_version"] == 1
    assert str(client().get_model_version_by_alias(name, CHAMPION).version) == "1"
    assert any(why in f for f in decision_tag(name, 2)["failures"])


@pytest.mark.slow
def test_rollback_restores_previous_champion(store: Path) -> None:
    for value in (0.5, 0.6, 0.7):
        run_stage(store, "m-roll", value)
    decision = rollback("m-roll", GATE, reason="v3 misbehaves in production")
    assert (decision.action, decision.champion_before, decision.champion_after) == ("rollback", "3", "2")
    assert str(client().get_model_version_by_alias("m-roll", CHAMPION).version) == "2"
    assert last_decision("m-roll")["action"] == "rollback" and last_decision("m-roll")["reason"]
    assert decision_tag("m-roll", 3)["action"] == "promote"  # the decision at registration stays
    assert rollback("m-roll", GATE).champion_after == "1"  # a stack: further back
    with pytest.raises(RegistryError, match="no earlier champion"):
        rollback("m-roll", GATE)
    assert promote("m-roll", 3, GATE).action == "promote"  # promoting again works as usual
    assert [h["version"] for h in champion_history(client(), "m-roll")] == ["1", "3"]


@pytest.mark.slow
def test_cli_promote_rollback_force_and_reason(store: Path) -> None:
    from natfeed.cli import app

    run_stage(store, "cli-model", 0.6)
    run_stage(store, "cli-model", 0.4, passed=False)
    runner = CliRunner()
    refused = runner.invoke(app, ["promote", "--version", "2"])
    assert refused.exit_code == 1 and "validation did not pass" in refused.output, refused.output
    assert decision_tag("cli-model", 2)["action"] == "reject" and last_decision("cli-model")["source"] == "cli"
    no_reason = runner.invoke(app, ["promote", "--version", "2", "--force"])
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output
    assert str(client().get_model_version_by_alias("cli-model", CHAMPION).version) == "1"
    forced = runner.invoke(app, ["promote", "--version", "2", "--force", "--reason", "hotfix for a demo"])
    assert forced.exit_code == 0, forced.output
    tag = last_decision("cli-model")
    assert decision_tag("cli-model", 2)["source"] == "stage"  # the gate's decision at registration stays
    assert (tag["action"], tag["reason"], tag["by"], tag["passed"]) == ("forced-promote", "hotfix for a demo",
                                                                        "tester", False)
    back = runner.invoke(app, ["rollback"])
    assert back.exit_code == 0 and str(client().get_model_version_by_alias("cli-model", CHAMPION).version) == "1"
    missing = runner.invoke(app, ["promote", "--version", "99"])
    assert missing.exit_code == 2 and "no version 99" in missing.output


def _answer(uri: str, name: str | None = None) -> str:
    model = mlflow.pyfunc.load_model(uri)
    out = model.predict({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
    response = out[0] if isinstance(out, list) else out
    assert response["object"] == "chat.completion"
    message = response["choices"][0]["message"]
    assert name is None or response["model"] == name, response.get("model")  # its name, not a local path
    assert message["role"] == "assistant"
    assert isinstance(message["content"], str) and message["content"]
    return message["content"]


@pytest.mark.slow
def test_champion_alias_loads_and_answers_chat(store: Path) -> None:
    run_stage(store, "m-load", 0.6)
    _answer("models:/m-load@champion", "m-load")


@pytest.mark.slow
def test_reference_and_adapter_modes_load_and_answer(store: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    policy = store / "models" / "policy"
    ref = run_stage(store, "m-ref", 0.6, log_weights="reference", reference=str(policy))
    assert ref["log_weights"] == "reference"
    _answer("models:/m-ref@champion", "m-ref")
    adapter_dir = store / "models" / "adapter"
    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(policy),
                          LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    lora.save_pretrained(adapter_dir)
    AutoTokenizer.from_pretrained(policy).save_pretrained(adapter_dir)
    reg = RegisterParams(model_name="m-adapter", max_new_tokens=4, gate=GATE)
    reports = write_reports(store / "reports" / "adapter", 0.6)
    with stage_run("register", TRACKING, {}):
        report = register_policy(adapter_dir, reports, store / "data" / "kto", reg)
    assert report["log_weights"] == "adapter"
    assert report["tags"]["natfeed.base_model"] == str(policy.resolve())
    local = Path(mlflow.artifacts.download_artifacts("models:/m-adapter@champion"))
    assert list(local.rglob("adapter_model.safetensors")) and not list(local.rglob("model.safetensors"))
    _answer("models:/m-adapter@champion")
    merged = RegisterParams(model_name="m-merged", max_new_tokens=4, gate=GATE, log_weights="full")
    with stage_run("register", TRACKING, {}):
        assert register_policy(adapter_dir, reports, store / "data" / "kto", merged)["log_weights"] == "full"
    local = Path(mlflow.artifacts.download_artifacts("models:/m-merged@champion"))
    assert list(local.rglob("model.safetensors")) and not list(local.rglob("adapter_model.safetensors"))
    _answer("models:/m-merged@champion")


def test_models_listing_shows_the_aliases_the_registry_holds(store: Path) -> None:
    """MLflow 3's version search returns versions without aliases: the listing must read them from the model."""
    from natfeed.registry.versions import list_versions, table

    for value in (0.5, 0.6):
        run_stage(store, "m-list", value)
    rows = {r["version"]: r["aliases"] for r in list_versions("m-list")}
    assert rows == {2: ["challenger", "champion"], 1: []}
    rollback("m-list", GATE, reason="v2 misbehaves")
    rows = {r["version"]: r["aliases"] for r in list_versions("m-list")}
    assert rows == {2: ["challenger"], 1: ["champion"]}
    assert [line.split()[1] for line in table(list_versions("m-list")).splitlines()[1:]] == ["challenger", "champion"]


@pytest.mark.slow
def test_gate_keeps_the_champion_without_evidence(store: Path) -> None:
    """Replacing a champion needs >= min_examples test examples measured on the champion's test set."""
    first = run_stage(store, "m-evid", 0.6, n=5)  # no champion yet: the thresholds alone decide
    assert first["decision"]["action"] == "promote" and first["champion_version"] == 1
    few = run_stage(store, "m-evid", 0.9, n=5)
    assert (few["decision"]["action"], few["champion_version"]) == ("keep", 1)
    assert few["decision"]["failures"][0].startswith("not enough evidence (n=5 < 30)")
    other = store / "data" / "kto-other"
    other.mkdir(exist_ok=True)
    for split in ("kto_train", "kto_test"):
        pd.DataFrame({"prompt": ["q"], "completion": [split], "label": [False]}).to_parquet(other / f"{split}.parquet")
    elsewhere = run_stage(store, "m-evid", 0.9, kto="kto-other")
    assert (elsewhere["decision"]["action"], elsewhere["champion_version"]) == ("keep", 1)
    assert any(f.startswith("not comparable: measured on another test set than champion v1")
               for f in elsewhere["decision"]["failures"])
    enough = run_stage(store, "m-evid", 0.9)
    assert (enough["decision"]["action"], enough["champion_version"]) == ("promote", 4)


@pytest.mark.slow
def test_an_identical_rerun_registers_no_new_version(store: Path) -> None:
    """Same weights, data and params (make run again after dvc checkout): the existing version is reported."""
    first = run_stage(store, "m-same", 0.6)
    again = run_stage(store, "m-same", 0.6)
    assert (again["registered"], again["identical_to"], again["version"]) == (False, 1, 1)
    assert again["decision"]["action"] == "identical" and again["aliases"] == first["aliases"]
    assert [str(mv.version) for mv in client().search_model_versions("name = 'm-same'")] == ["1"]
    assert len(history(client(), "m-same")) == 1


@pytest.mark.slow
def test_decisions_are_append_only_and_listed_in_order(store: Path, tmp_path: Path) -> None:
    from natfeed.cli import app

    for value in (0.5, 0.6):
        run_stage(store, "m-hist", value)
    assert promote("m-hist", 2, GATE).action == "unchanged"
    rollback("m-hist", GATE, reason="v2 misbehaves")
    assert decision_tag("m-hist", 2)["action"] == "promote"  # neither the no-op promote nor the rollback overwrote it
    assert [(e["action"], e["version"]) for e in history(client(), "m-hist")] == [
        ("promote", "1"), ("promote", "2"), ("unchanged", "2"), ("rollback", "1")]
    params = tmp_path / "params.yaml"
    params.write_text((store / "params.yaml").read_text().replace("cli-model", "m-hist"))
    out = CliRunner().invoke(app, ["models", "--history", "--params", str(params)])
    assert out.exit_code == 0, out.output
    lines = [line for line in out.output.splitlines() if line.startswith("20")]
    assert [line.split()[3] for line in lines] == ["promote", "promote", "unchanged", "rollback"]
    assert "tester" in lines[-1] and "champion v2 -> v1" in lines[-1] and "    v2 misbehaves" in out.output
    listing = CliRunner().invoke(app, ["models", "--params", str(params)])
    assert "promote > rollback" in listing.output  # v1: promoted at registration, champion again by rollback
    as_json = json.loads(CliRunner().invoke(app, ["models", "--history", "--json", "--params", str(params)]).output)
    assert as_json[1]["metric"]["challenger"] == 0.6 and as_json[1]["metric"]["champion_version"] == "1"


@pytest.mark.slow
def test_two_promotes_at_once_are_both_recorded(store: Path, monkeypatch) -> None:
    """Each decision is a tag nobody else writes: concurrent promotes lose no entry."""
    import threading

    run_stage(store, "m-conc", 0.5)
    monkeypatch.setenv("DVC_EXP_NAME", "trial")
    for value in (0.6, 0.7):
        run_stage(store, "m-conc", value)  # experiments: gated, champion untouched
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def go(version: int) -> None:
        try:
            start.wait()
            promote("m-conc", version, GATE, client=mlflow.MlflowClient())
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=go, args=(v,)) for v in (2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    events = history(client(), "m-conc")
    assert sorted(e["version"] for e in events if e["source"] == "cli") == ["2", "3"]
    assert [decision_tag("m-conc", v)["action"] for v in (1, 2, 3)] == ["promote", "experiment", "experiment"]
    assert str(client().get_model_version_by_alias("m-conc", CHAMPION).version) in ("2", "3")
