"""The train stage's library: TRL config parsing, prompt trimming, 3 steps of SFT and KTO on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from natfeed.model.train import ADAPTER_CONFIG, _prompt_tokens, summarize, train, trainer_config, trim_prompt
from natfeed.params import ParamsError, TrainParams, parse_params

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("trl")

QUESTIONS = ["How do I reverse a list in Python?", "What is the capital of France?", "Explain recursion.",
             "How to undo the last git commit?", "What is a prime number?", "Translate 'hello' to French.",
             "Why is the sky blue?", "How do I sort a dict by value?"]
GOOD = ["Use `items[::-1]` or `items.reverse()`.", "Paris.", "A function that calls itself on a smaller input.",
        "`git reset --soft HEAD~1` keeps the changes staged.", "A number with exactly two divisors.",
        "Bonjour.", "Rayleigh scattering of sunlight.", "`sorted(d.items(), key=lambda kv: kv[1])`."]


pytestmark = pytest.mark.usefixtures("one_thread")  # `tiny` and `one_thread`: conftest.py


@pytest.fixture(scope="module")
def kto_dir(tmp_path_factory) -> Path:
    """sft_train / kto_train parquet files shaped like build_kto's."""
    out = tmp_path_factory.mktemp("kto")
    prompts = [[{"role": "user", "content": q}] for q in QUESTIONS]
    good = [[{"role": "assistant", "content": a}] for a in GOOD]
    bad = [[{"role": "assistant", "content": "I don't know, sorry."}] for _ in GOOD]
    pd.DataFrame({"prompt": prompts, "completion": good, "conversation_id": [str(i) for i in range(8)]}) \
        .to_parquet(out / "sft_train.parquet")
    rows = [(p, c, label) for p, g, b in zip(prompts, good, bad, strict=True) for c, label in ((g, True), (b, False))]
    pd.DataFrame(rows, columns=["prompt", "completion", "label"]).to_parquet(out / "kto_train.parquet")
    return out


def _params(tiny: Path, **extra) -> TrainParams:
    """A few steps of each trainer, on CPU."""
    base = {"max_steps": 3, "per_device_train_batch_size": 4, "learning_rate": 1e-2, "logging_steps": 1}
    return TrainParams(base_model=str(tiny), sft=base, kto={**base, "max_length": 128},
                       **extra)


def _state(path: Path) -> dict:
    from natfeed.model.train import load_model

    model = load_model(path)
    if (Path(path) / ADAPTER_CONFIG).exists():
        model = model.merge_and_unload()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _changed(a: dict, b: dict) -> list[str]:
    return [k for k in a if not torch.equal(a[k], b[k])]


# --- params -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "typo", "hint"), [("sft", "learning_rat", "learning_rate"),
                                                    ("kto", "bta", "beta")])
def test_a_typo_in_sft_or_kto_fails_naming_the_key(kind, typo, hint, tmp_path):
    params = TrainParams(**{kind: {typo: 1}})
    with pytest.raises(ParamsError, match=rf"train\.{kind}: unknown .*'{typo}' \(did you mean '{hint}'\?\)"):
        trainer_config(kind, params, tmp_path)


def test_a_value_of_the_wrong_type_fails_in_check_params_naming_the_key():
    """train.kto.learning_rate: 1e-4x used to pass check_params, run SFT to the end and die in KTO with a
    TypeError naming no key (issue 20 item 5)."""
    from natfeed.params.model import check_train_params

    params = TrainParams(kto={"learning_rate": "1e-4x", "beta": 0.1}, sft={"max_steps": 2.5, "learning_rate": "5e-07"})
    with pytest.raises(ParamsError) as err:
        check_train_params(params)
    assert "train.kto.learning_rate: expected float, got '1e-4x'" in str(err.value)
    assert "train.sft.max_steps: expected int, got 2.5" in str(err.value)
    assert "learning_rate: expected float, got '5e-07'" not in str(err.value)  # dvc exp run -S writes numbers so
    check_train_params(TrainParams(kto={"lr_scheduler_type": "cosine", "max_steps": "8", "report_to": "none"}))


def test_a_typo_fails_before_any_model_is_loaded(tmp_path):
    params = TrainParams(base_model=str(tmp_path / "missing"), kto={"max_lenght": 10})
    with pytest.raises(ParamsError, match="max_lenght"):
        train(params, tmp_path, tmp_path / "sft", tmp_path / "policy")


def test_user_values_win_and_runtime_defaults_fill_the_rest(tmp_path):
    cfg = trainer_config("kto", TrainParams(seed=7, kto={"beta": 0.3, "learning_rate": 1e-3}), tmp_path / "p")
    assert (cfg.beta, cfg.learning_rate, cfg.seed, cfg.output_dir) == (0.3, 1e-3, 7, str(tmp_path / "p"))
    assert cfg.report_to == [] or cfg.report_to == "none" or cfg.report_to == ["none"]
    assert cfg.save_strategy == "no" and cfg.gradient_checkpointing is False
    assert cfg.bf16 is (torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    own_seed = trainer_config("sft", TrainParams(seed=7, sft={"seed": 3}), tmp_path)
    assert own_seed.seed == 3


def test_numbers_written_as_strings_become_numbers(tmp_path):
    # DVC's `-S train.kto.learning_rate=5e-7` writes 5e-07, which PyYAML reads as a string
    cfg = trainer_config("kto", TrainParams(kto={"learning_rate": "5e-07", "max_length": "64",
                                                 "pad_to_multiple_of": "8"}), tmp_path)
    assert cfg.learning_rate == 5e-07 and cfg.max_length == 64
    assert cfg.pad_to_multiple_of == 8  # int | str field: TRL's own parsing


def test_under_accelerate_launch_models_load_without_a_device_map(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "8")
    cfg = trainer_config("sft", TrainParams(sft={"model_init_kwargs": {"dtype": "bfloat16"}}), tmp_path)
    assert cfg.model_init_kwargs == {"device_map": None, "dtype": "bfloat16"}


def test_kto_needs_a_device_batch_above_one(tmp_path):
    with pytest.raises(ParamsError, match="per_device_train_batch_size must be > 1"):
        trainer_config("kto", TrainParams(kto={"per_device_train_batch_size": 1}), tmp_path)


def test_report_to_mlflow_is_refused_with_the_reason(tmp_path):
    with pytest.raises(ParamsError, match="logs the trainer's metrics"):
        trainer_config("sft", TrainParams(sft={"report_to": ["mlflow"]}), tmp_path)


def test_an_invalid_value_is_a_params_error(tmp_path):
    with pytest.raises(ParamsError, match=r"train\.kto"):
        trainer_config("kto", TrainParams(kto={"lr_scheduler_type": "nope"}), tmp_path)


def test_params_yaml_sections_parse_and_build(tmp_path):
    params = parse_params({"train": {"sft": {"num_train_epochs": 2}, "lora": {"enabled": True, "r": 4}}})
    assert trainer_config("sft", params.train, tmp_path).num_train_epochs == 2
    with pytest.raises(ParamsError, match="train.lora.rank"):
        parse_params({"train": {"lora": {"rank": 4}}})


# --- data -------------------------------------------------------------------------------------------


def test_trim_prompt_drops_the_oldest_exchanges_first(tiny):
    tok = transformers.AutoTokenizer.from_pretrained(tiny)
    long = "word " * 60
    msgs = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": long}, {"role": "assistant", "content": long},
            {"role": "user", "content": "short one"}, {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "last question"}]
    kept = [msgs[0], *msgs[3:]]
    fits = _prompt_tokens(kept, tok)
    assert fits < _prompt_tokens(msgs, tok)
    assert trim_prompt(msgs, tok, fits) == kept
    assert trim_prompt(msgs, tok, fits - 1) == [msgs[0], msgs[-1]]
    assert trim_prompt(msgs, tok, 10_000) == msgs
    assert trim_prompt(msgs, tok, 1) == [msgs[0], msgs[-1]]  # the question itself always stays
    assert trim_prompt(msgs[1:], tok, 1) == [msgs[-1]]  # without a system message


def test_summarize_reads_the_log_history():
    history = [{"loss": 2.0, "step": 1, "rewards/margins": 0.1}, {"loss": 1.0, "step": 2, "rewards/margins": 0.3},
               {"train_loss": 1.5, "step": 2}]
    out = summarize(history, 1.234, 10)
    assert out["steps"] == 2 and out["loss_first"] == 2.0 and out["loss_last"] == 1.0
    assert out["rewards_margins"] == 0.3 and out["rewards_margins_mean"] == pytest.approx(0.2)
    assert out["train_loss"] == 1.5 and out["seconds"] == 1.23


# --- training ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_three_steps_of_sft_then_kto_change_the_weights(tiny, kto_dir, tmp_path):
    logged: list[tuple[dict, int]] = []
    report = train(_params(tiny), kto_dir, tmp_path / "sft", tmp_path / "policy",
                   on_log=lambda values, step: logged.append((values, step)))
    base, sft, policy = _state(tiny), _state(tmp_path / "sft"), _state(tmp_path / "policy")
    assert _changed(base, sft) and _changed(sft, policy)
    assert "model.layers.0.self_attn.q_proj.weight" in _changed(sft, policy)
    assert report["sft"]["steps"] == 3 and report["kto"]["steps"] == 3
    assert report["sft"]["examples"] == 8 and report["kto"]["examples"] == 16
    assert {"rewards_chosen", "rewards_rejected", "rewards_margins", "kl"} <= set(report["kto"])
    assert report["kto"]["rewards_margins"] == pytest.approx(
        report["kto"]["rewards_chosen"] - report["kto"]["rewards_rejected"])
    names = {k for values, _ in logged for k in values}
    assert {"sft/loss", "kto/loss", "kto/rewards/margins"} <= names
    tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "policy")
    assert tok.chat_template and tok.pad_token == "<|pad|>"


@pytest.mark.slow
def test_lora_trains_only_the_adapter(tiny, kto_dir, tmp_path):
    from peft import PeftModel

    params = _params(tiny, lora={"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0,
                                 "target_modules": ["q_proj", "v_proj"]})
    train(params, kto_dir, tmp_path / "sft", tmp_path / "policy")
    for out in ("sft", "policy"):
        assert (tmp_path / out / ADAPTER_CONFIG).exists()
        assert not (tmp_path / out / "model.safetensors").exists()  # the adapter only, not full weights
    from natfeed.model.train import load_model

    sft = load_model(tmp_path / "sft", trainable=True)
    assert isinstance(sft, PeftModel)
    trainable = [n for n, p in sft.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    base = _state(tiny)
    unmerged = load_model(tmp_path / "sft").get_base_model().state_dict()
    frozen = {k.replace(".base_layer", ""): v for k, v in unmerged.items() if "lora_" not in k}
    assert "model.layers.0.self_attn.q_proj.weight" in frozen
    assert all(torch.equal(base[k], frozen[k]) for k in base if k in frozen)  # base weights untouched
    lora_b = [v for k, v in sft.state_dict().items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # lora_B starts at zero: it trained
    assert _changed(_state(tmp_path / "sft"), _state(tmp_path / "policy"))  # KTO trained the adapter further


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_sft_and_kto_on_cuda_in_bf16(tiny, kto_dir, tmp_path):
    report = train(_params(tiny), kto_dir, tmp_path / "sft", tmp_path / "policy")
    assert trainer_config("kto", _params(tiny), tmp_path).bf16 is torch.cuda.is_bf16_supported()
    assert report["kto"]["steps"] == 3
    assert _changed(_state(tmp_path / "sft"), _state(tmp_path / "policy"))


# --- paper-scale presets ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["paper", "paper-mistral-lora"])
def test_a_preset_applied_by_dvc_overrides_gives_valid_params(name, tmp_path):
    import shutil

    import yaml
    from dvc.utils.hydra import apply_overrides

    from natfeed.params import load_params
    from scripts import preset

    repo = Path(__file__).resolve().parents[3]
    params_file = shutil.copy(repo / "params.yaml", tmp_path / "params.yaml")
    data = yaml.safe_load(preset.preset_path(name).read_text())
    apply_overrides(params_file, preset.overrides(data))  # what `dvc exp run -S ...` does
    params, before = load_params(params_file), load_params(repo / "params.yaml")
    assert params.train.base_model == data["train"]["base_model"]
    assert trainer_config("kto", params.train, tmp_path).learning_rate == data["train"]["kto"]["learning_rate"]
    assert params.train.lora.enabled is data["train"]["lora"]["enabled"]
    assert params.train.sft["logging_steps"] == data["train"]["sft"]["logging_steps"]
    assert params.build_kto == before.build_kto and params.paths == before.paths  # only the preset's keys
    from ruamel.yaml import YAML  # YAML 1.2 like DVC's writer: 5e-07 is a float there, a string in PyYAML

    applied = json.loads(json.dumps(YAML(typ="safe").load(Path(params_file).read_text())))
    assert preset.merged(yaml.safe_load((repo / "params.yaml").read_text()), data) == applied
    preset.check(yaml.safe_load(Path(params_file).read_text()))
    kto = trainer_config("kto", params.train, tmp_path)
    assert kto.gradient_checkpointing is True and kto.beta == 0.1
    assert kto.bf16 is (torch.cuda.is_available() and torch.cuda.is_bf16_supported())  # bf16 wherever it runs


def test_a_preset_with_a_typo_fails_its_check():
    import yaml

    from scripts import preset

    repo = Path(__file__).resolve().parents[3]
    params = yaml.safe_load((repo / "params.yaml").read_text())
    with pytest.raises(ParamsError, match="gradient_accumulation"):
        preset.check(preset.merged(params, {"train": {"kto": {"gradient_accumulation": 4}}}))


def test_advised_desirable_weight_lands_in_trls_range_only_when_outside_it():
    from natfeed.model.train import advised_desirable_weight

    assert advised_desirable_weight(10, 10, 1.0, 1.0) == 1.0
    assert advised_desirable_weight(10, 12, 1.3, 1.0) == 1.3  # 1.2 <= 1.3 <= 1.6: kept
    w = advised_desirable_weight(4, 15, 1.0, 1.0)  # TRL's advice: [3.75, 4.99]
    assert 3.75 <= w <= 4.99 and w == round((3.75 + 4.99) / 2, 2)
    assert advised_desirable_weight(0, 5, 1.0, 1.0) == 1.0


def test_kto_reports_what_it_trained_on_and_weighs_unbalanced_labels_as_trl_advises(tiny, tmp_path):
    kto = tmp_path / "kto"
    kto.mkdir()
    prompts = [[{"role": "user", "content": q}] for q in QUESTIONS]
    pd.DataFrame({"prompt": prompts, "completion": [[{"role": "assistant", "content": a}] for a in GOOD],
                  "conversation_id": [str(i) for i in range(8)]}).to_parquet(kto / "sft_train.parquet")
    long = [{"role": "user", "content": "word " * 400}]  # alone longer than kto.max_length: TRL would drop it
    rows = [(p, [{"role": "assistant", "content": GOOD[i]}], i < 3) for i, p in enumerate(prompts)]
    rows += [(p, [{"role": "assistant", "content": "I don't know."}], False) for p in prompts[:4]] + \
        [(long, [{"role": "assistant", "content": "No."}], False)]
    pd.DataFrame(rows, columns=["prompt", "completion", "label"]).to_parquet(kto / "kto_train.parquet")
    params = _params(tiny).model_copy(update={"max_prompt_tokens": None})
    report = train(params, kto, tmp_path / "sft", tmp_path / "policy")["kto"]
    assert report["examples_given"] == 13 and report["examples"] == 12 and report["dropped_truncated"] == 1
    assert (report["desirable"], report["undesirable"]) == (3, 9)
    assert 3.0 <= report["desirable_weight"] <= 3.99 and report["undesirable_weight"] == 1.0
