"""The transformers and paper_loop backends end to end on a tiny random Llama (CPU, seconds)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from natfeed.cli import app
from natfeed.core.io import read_report
from natfeed.core.tables import FEEDBACK_SCHEMA
from natfeed.extract.llm.base import STAT_KEYS
from natfeed.extract.llm.prompts import PAPER_GUIDELINES, TURN_CHOICES, TURN_GUIDELINES
from natfeed.params import ExtractParams
from tests.unit.extract.test_checkpoint import write_conversations

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """Hidden 128, head_dim 64, 2 layers, random weights; its BPE also learns the guideline text so that
    prompts stay a few hundred tokens long."""
    from natfeed.params.model import ScratchParams
    from tests.support.scratch import DEMO_CONVERSATIONS, build_base_model

    out = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    params = ScratchParams(vocab_size=1024, min_frequency=1, hidden_size=128, head_dim=64, num_layers=2,
                             intermediate_size=256, max_position_embeddings=8192, pretrain_steps=0, seed=0)
    texts = [[{"role": "user", "content": t}] for t in (TURN_GUIDELINES, PAPER_GUIDELINES)]
    build_base_model(DEMO_CONVERSATIONS + texts, params, out)
    return out


def _params_file(tmp_path: Path, **extract) -> Path:
    import yaml

    base = {"batch_size": 3, "detect_language": False, "shard_dir": str(tmp_path / "shards"),
            "transformers": {"batch_size": 4, "device": "cpu"}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"extract": {**base, **extract}}))
    return path


def _run(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)


def test_cli_turn_mode_writes_valid_rows(tiny, tmp_path):
    conv = write_conversations(tmp_path / "conv.parquet", 5)  # 1+2+3+1+2 = 9 judged turns
    out = tmp_path / "out" / "feedback.parquet"
    _run(["extract", "--input", str(conv), "--output", str(out), "--backend", "transformers", "--model",
          str(tiny), "--mode", "turn", "--params", str(_params_file(tmp_path))])
    report = read_report(tmp_path / "out" / "feedback.report.json")
    table = pq.read_table(out)
    assert table.schema.equals(FEEDBACK_SCHEMA)
    assert report["conversations"] == 5 and report["judged_turns"] == 9 == report["requests"] < report["user_turns"]
    assert report["rows"] == table.num_rows <= 9 and report["parse_failures"] == 0
    assert report["generated_tokens"] >= 9 and report["prompt_tokens"] > 9 * 100
    assert report["extractor"] == "transformers-turn:tiny-llama" and report["shards"] == 2
    for key in ("conversations_per_second", "seconds", "rows_per_category", "rows_rejected", *STAT_KEYS):
        assert key in report
    rows = table.to_pylist()
    assert all(r["category"] in TURN_CHOICES[:-1] and 0 < r["confidence"] <= 1 for r in rows)
    assert all(r["feedback_text"] and r["extractor"] == report["extractor"] for r in rows)


def test_a_second_run_on_the_same_input_is_answered_by_the_judgement_cache(tiny, tmp_path):
    conv = write_conversations(tmp_path / "conv.parquet", 5)
    args = ["extract", "--input", str(conv), "--backend", "transformers", "--model", str(tiny), "--params",
            str(_params_file(tmp_path, llm={"temperature": 1.0, "seed": 5}))]  # sampled: equal only from the cache
    _run([*args, "--output", str(tmp_path / "a" / "feedback.parquet")])
    _run([*args, "--output", str(tmp_path / "b" / "feedback.parquet"), "--shard-dir", str(tmp_path / "new"),
          "--cache-dir", str(tmp_path / "shards" / "cache")])
    first, second = (read_report(tmp_path / d / "feedback.report.json") for d in "ab")
    assert first["requests"] == 9 and first["cache_hits"] == 0
    assert second["requests"] == 0 and second["cache_hits"] == 9 and second["prompt_tokens"] == 0
    assert pq.read_table(tmp_path / "a" / "feedback.parquet").equals(pq.read_table(tmp_path / "b" / "feedback.parquet"))


def test_label_scoring_on_the_cache_equals_full_forward_passes(tiny):
    from natfeed.extract.llm.transformers import TransformersExtractor, label_logprobs
    from tests.unit.extract.llm.test_prompts import CONVS

    ext = TransformersExtractor(ExtractParams(backend="transformers", llm={"model": str(tiny)},
                                              transformers={"device": "cpu"}))
    seqs = [ext.prompt_ids(r) for r in ext.requests(CONVS)]
    assert len({len(s) for s in seqs}) > 1  # different lengths: left padding is exercised
    fast = label_logprobs(ext.model, ext.tokenizer, seqs, list(TURN_CHOICES), ext._pad)
    labels = [ext.tokenizer(label, add_special_tokens=False)["input_ids"] for label in TURN_CHOICES]
    width = max(map(len, labels))
    for i, seq in enumerate(seqs):  # one unpadded prompt + each label (right-padded), no cache
        batch = torch.tensor([seq + lab + [0] * (width - len(lab)) for lab in labels])
        with torch.inference_mode():
            lp = torch.log_softmax(ext.model(batch).logits.float(), dim=-1)
        for j, lab in enumerate(labels):
            slow = sum(float(lp[j, len(seq) - 1 + t, tok]) for t, tok in enumerate(lab))
            assert abs(slow - float(fast[i, j])) < 1e-3, (i, TURN_CHOICES[j])
    assert len({round(float(x), 4) for x in fast.flatten()}) > 6  # real, distinct scores


def test_paper_mode_and_paper_loop_fixed_length(tiny, tmp_path):
    conv = write_conversations(tmp_path / "conv.parquet", 4)
    llm = {"paper_max_new_tokens": 6, "ignore_eos": True}
    for backend in ("transformers", "paper_loop"):
        out = tmp_path / backend / "feedback.parquet"
        _run(["extract", "--input", str(conv), "--output", str(out), "--backend", backend, "--model", str(tiny),
              "--mode", "paper", "--params", str(_params_file(tmp_path, llm=llm))])
        report = read_report(tmp_path / backend / "feedback.report.json")
        assert report["requests"] == 4 and report["generated_tokens"] == 24  # EOS ignored: 6 tokens each
        assert report["extractor"] == f"{backend}-paper:tiny-llama"
        assert pq.read_table(out).schema.equals(FEEDBACK_SCHEMA)
        # random weights write no JSON: every answer is a counted failure, kept raw beside the shards
        failures = Path(report["parse_failures_file"]).read_text().splitlines()
        assert len(failures) == report["parse_failures"] <= 4


def test_content_free_calibration_divides_by_the_label_prior(tiny):
    from natfeed.extract.llm.prompts import content_free
    from natfeed.extract.llm.transformers import TransformersExtractor, label_logprobs
    from tests.unit.extract.llm.test_prompts import CONVS

    params = ExtractParams(backend="transformers", llm={"model": str(tiny), "calibration": "content_free"},
                           transformers={"device": "cpu"})
    ext = TransformersExtractor(params)
    assert ext.identity.endswith("+content_free")
    reqs = ext.requests(CONVS)
    free = content_free(reqs[0].messages)
    assert "N/A" in free[-1]["content"] and reqs[0].messages[-1]["content"] != free[-1]["content"]
    assert content_free(reqs[-1].messages) == free  # one prior for every turn of the run
    seqs = [ext.prompt_ids(r) for r in reqs]
    raw = torch.log_softmax(label_logprobs(ext.model, ext.tokenizer, seqs, list(TURN_CHOICES), ext._pad), dim=-1)
    prior = ext._prior(reqs[0], list(TURN_CHOICES))
    answers = ext._labels(reqs, seqs)
    for row, ans in zip(raw, answers, strict=True):
        k = int(torch.argmax(row - torch.tensor(prior)))
        assert ans.text == TURN_CHOICES[k] and abs(ans.raw_logprob - float(row[k])) < 1e-5
    assert len(ext._priors) == 1
    detections = ext.extract(CONVS)
    assert all(" raw p=" in d.cue for d in detections)


def test_calibration_is_refused_where_labels_are_not_all_scored():
    from natfeed.extract.backends import make_extractor

    with pytest.raises(ValueError, match="calibration: content_free needs every label's probability.*openai"):
        make_extractor(ExtractParams(backend="openai", llm={"model": "m", "calibration": "content_free"}))
    paper = make_extractor(ExtractParams(backend="openai", mode="paper",
                                         llm={"model": "m", "calibration": "content_free"}))
    assert paper.identity == "openai-paper:m"  # paper mode has no labels to calibrate


def test_estimate_counts_with_the_local_tokenizer_and_loads_no_model(tiny, tmp_path, monkeypatch):
    from natfeed.extract.estimate import estimate_run
    from natfeed.extract.llm import transformers as backend

    conv = write_conversations(tmp_path / "conv.parquet", 5)
    p = ExtractParams(backend="transformers", llm={"model": str(tiny)}, shard_dir=str(tmp_path / "shards"),
                      detect_language=False, transformers={"device": "cpu"},
                      cost={"gpu_hour": 3.6, "tokens_per_second": 1000.0})
    monkeypatch.setattr(backend.TransformersExtractor, "model", property(lambda self: pytest.fail("model loaded")))
    est = estimate_run(conv, tmp_path / "f.parquet", p)
    assert est.requests == est.to_send == 9 and est.cached == 0
    assert est.prompt_tokens_counted_by == "the model's tokenizer" and est.prompt_tokens > 9 * 100
    assert est.seconds == pytest.approx((est.prompt_tokens + est.max_generated_tokens) / 1000, abs=1e-3)
    assert est.cost == pytest.approx(est.seconds / 3600 * 3.6, abs=1e-6)
