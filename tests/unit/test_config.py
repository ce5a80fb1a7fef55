from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from natfeed.config import ParamsError, load_params, parse_params

REPO = Path(__file__).resolve().parents[2]


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
