from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from natfeed.params import ParamsError, load_params, parse_params

REPO = Path(__file__).resolve().parents[3]


def test_repo_params_load():
    p = load_params(REPO / "params.yaml")
    assert p.extract.backend == "heuristic"
    assert p.paths.conversations.endswith(".parquet")
    assert p.build_kto.ratio_min <= p.build_kto.ratio_max


def test_unknown_key_fails(tmp_path):
    data = yaml.safe_load((REPO / "params.yaml").read_text())
    data["ingest"]["min_user_turn"] = 3  # typo of min_user_turns
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsError, match=r"ingest\.min_user_turn"):
        load_params(f)


def test_unknown_section_fails():
    with pytest.raises(ParamsError, match="extrct"):
        parse_params({"extrct": {}})


def test_invalid_values_fail():
    with pytest.raises(ParamsError, match="backend"):
        parse_params({"extract": {"backend": "gpt5"}})
    with pytest.raises(ParamsError, match="undesirable_categories"):
        parse_params({"build_kto": {"undesirable_categories": ["positive_feedback"]}})
    with pytest.raises(ParamsError, match="ratio_min"):
        parse_params({"build_kto": {"ratio_min": 2.0, "ratio_max": 1.0}})


def test_params_are_frozen():
    p = parse_params({})
    with pytest.raises(ValidationError):
        p.ingest.min_user_turns = 5  # type: ignore[misc]


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")


@pytest.mark.parametrize(("section", "typo", "hint"), [
    ({"tracking": {"experimnt": "x"}}, "tracking.experimnt", "experiment"),
    ({"build_kto": {"test_sise": 0.1}}, "build_kto.test_sise", "test_size"),
    ({"extract": {"heuristic": {"min_confidnce": 0.4}}}, "extract.heuristic.min_confidnce", "min_confidence"),
    ({"validate": {"expectations": {"max_nul_rate": 0.1}}}, "validate.expectations.max_nul_rate", "max_null_rate"),
    ({"register": {"gate": {"tolerence": 0.1}}}, "register.gate.tolerence", "tolerance"),
    ({"trackin": {}}, "trackin", "tracking"),
])
def test_a_typo_anywhere_names_the_key_and_the_closest_one(section, typo, hint):
    with pytest.raises(ParamsError) as err:
        parse_params(section, source="other.yaml")
    message = str(err.value)
    assert message.startswith("invalid other.yaml") and f"{typo}: unknown key (did you mean {hint!r}?)" in message


def test_the_error_names_the_file_read(tmp_path):
    f = tmp_path / "other.yaml"
    f.write_text("ingest: {min_user_turn: 3}\n")
    with pytest.raises(ParamsError, match=f"invalid {f}"):
        load_params(f)


def test_extract_backend_choices_are_the_registered_backends():
    from typing import get_args

    from natfeed.extract.backends import available_backends
    from natfeed.params.extract import Backend

    assert set(get_args(Backend)) == available_backends()


def test_sibling_paths_must_sit_beside_their_table():
    with pytest.raises(ParamsError, match="paths.conversations_rejected must be"):
        parse_params({"paths": {"conversations": "data/x/conv.parquet"}})
    p = parse_params({"paths": {"conversations": "d/c.parquet", "conversations_rejected": "d/c.rejected.parquet",
                                "conversations_filtered": "d/c.filtered.parquet"}})
    assert p.paths.conversations_filtered == "d/c.filtered.parquet"


def test_both_openai_endpoints_share_one_set_of_names(caplog):
    from natfeed.core.openai_client import ClientConfig
    from natfeed.params import LlmJudgeParams, OpenAIParams
    from natfeed.params.endpoint import EndpointParams

    shared = set(EndpointParams.model_fields)
    assert shared <= set(LlmJudgeParams.model_fields) and shared <= set(OpenAIParams.model_fields)
    judge = LlmJudgeParams(base_url="http://judge/v1", model="m")
    assert (judge.concurrency, judge.timeout_s) == (8, 60.0)  # each keeps its own defaults
    assert ClientConfig.of(judge, "LLM judge", require_key=True).concurrency == 8
    with caplog.at_level("WARNING"):
        old = LlmJudgeParams(base_url="http://judge/v1", model="m", max_concurrency=3)  # the judge's old name
    assert old.concurrency == 3 and "max_concurrency is deprecated" in caplog.text
    with pytest.raises(ValueError, match="keep only concurrency"):
        LlmJudgeParams(base_url="http://judge/v1", model="m", max_concurrency=3, concurrency=4)


def test_the_vllm_engine_choice_reads_the_old_executor_key(caplog):
    from natfeed.params import parse_params

    with caplog.at_level("WARNING"):
        old = parse_params({"extract": {"vllm": {"executor": "ray", "replicas": 4}}}).extract.vllm
    assert old.engine == "ray_data" and old.engine_kind == "ray_data" and old.executor == "ray"
    assert "extract.vllm.executor: ray is deprecated, read as extract.vllm.engine: ray_data" in caplog.text
    assert parse_params({"extract": {"vllm": {"replicas": 2}}}).extract.vllm.engine_kind == "replicas"
    assert parse_params({"extract": {"vllm": {"executor": "local"}}}).extract.vllm.engine_kind == "local"
    with pytest.raises(ParamsError, match="keep only engine"):
        parse_params({"extract": {"vllm": {"executor": "ray", "engine": "local"}}})
