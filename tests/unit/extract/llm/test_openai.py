"""The openai backend against a local fake OpenAI-compatible server (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import logging
import math

import pytest

from natfeed.core.conversation import Conversation
from natfeed.extract.llm.openai import BackendError, OpenAIExtractor
from natfeed.params import ExtractParams
from tests.support.fake_openai import FakeOpenAI

KEY = "sk-test-SECRET-4242"


def _conv(cid: str, *user: str) -> Conversation:
    msgs = []
    for i, text in enumerate(user):
        msgs += [{"role": "user", "content": text}, {"role": "assistant", "content": f"reply {i} of {cid}"}]
    return Conversation(cid, msgs[:-1])


CONVS = [_conv(f"c{i}", "write a poem", "thanks, great" if i % 3 == 0 else "that is wrong",
               "are you sure?" if i % 2 else "now a haiku") for i in range(12)]


def _params(url: str, **openai: object) -> ExtractParams:
    base = {"base_url": url, "backoff_s": 0.01, "max_backoff_s": 0.05, "timeout_s": 5.0,
            "api_key_env": "NATFEED_TEST_KEY", "concurrency": 3}
    return ExtractParams(backend="openai", llm={"model": "fake-model"}, openai={**base, **openai})


def test_turn_mode_labels_confidence_and_key(monkeypatch, caplog):
    monkeypatch.setenv("NATFEED_TEST_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    with FakeOpenAI(delay=0.02) as srv:
        ext = OpenAIExtractor(_params(srv.url))
        dets = ext.extract(CONVS)
        stats, failures = ext.take_stats()
    got = {(d.turn.conversation.conversation_id, d.turn.user_turn): d.category for d in dets}
    assert got[("c0", 2)] == "positive_feedback" and got[("c1", 2)] == "make_aware_without_correction"
    assert got[("c1", 3)] == "ask_for_clarification" and ("c0", 3) not in got  # "now a haiku": none
    assert len(got) == 12 + 6
    assert stats["requests"] == 24 == len(srv.requests) and stats["parse_failures"] == 0 and not failures
    assert stats["generated_tokens"] == 48 and stats["prompt_tokens"] > 0
    assert all(math.isclose(d.confidence, math.exp(-0.3)) for d in dets)  # sum of the label's token log-probs
    body = srv.requests[0]
    assert body["structured_outputs"] == {"choice": list(ext.requests(CONVS)[0].choices)}
    assert body["logprobs"] is True and body["temperature"] == 0.0 and body["model"] == "fake-model"
    assert all(h.get("Authorization") == f"Bearer {KEY}" for h in srv.headers)
    assert KEY not in caplog.text and KEY not in repr(ext.params.model_dump())


def test_concurrency_bound_is_respected(monkeypatch):
    monkeypatch.delenv("NATFEED_TEST_KEY", raising=False)
    with FakeOpenAI(delay=0.1) as srv:
        ext = OpenAIExtractor(_params(srv.url, concurrency=3))
        ext.extract(CONVS)
    assert srv.max_in_flight == 3 and ext.max_in_flight == 3  # 24 requests, never more than 3 at once
    assert all("Authorization" not in h for h in srv.headers)  # no key set: no header


def test_retries_on_429_and_500(caplog):
    with FakeOpenAI(fail_first=[429, 500, 503]) as srv:
        ext = OpenAIExtractor(_params(srv.url, concurrency=1, max_retries=3))
        dets = ext.extract(CONVS[:2])
    assert srv.statuses[:3] == [429, 500, 503] and srv.statuses[3:] == [200] * 4
    assert len(dets) == 3 and caplog.text.count("retry 1/3") == 3  # c0: thanks, none; c1: wrong, sure?


def test_gives_up_after_max_retries():
    with FakeOpenAI(fail_first=[500] * 10) as srv:
        ext = OpenAIExtractor(_params(srv.url, concurrency=1, max_retries=2))
        with pytest.raises(BackendError, match="http_500 after 3 attempts"):
            ext.extract(CONVS[:1])


def test_timeout_is_retried():
    with FakeOpenAI(hang_first=1) as srv:  # the first request hangs 3 s, past the 0.5 s timeout
        ext = OpenAIExtractor(_params(srv.url, concurrency=1, timeout_s=0.5, max_retries=2))
        dets = ext.extract(CONVS[:1])
    assert len(srv.requests) == 3  # 2 turns; the first one's first try timed out and was retried
    assert [(d.turn.user_turn, d.category) for d in dets] == [(2, "positive_feedback")]


def test_client_error_is_kept_as_failure_not_a_crash():
    with FakeOpenAI(fail_first=[400]) as srv:
        ext = OpenAIExtractor(_params(srv.url, concurrency=1))
        dets = ext.extract(CONVS[:1])
        stats, failures = ext.take_stats()
    assert dets == [] and stats["parse_failures"] == 1 and stats["requests"] == 2  # turn 3 is "none"
    assert (failures[0].reason, failures[0].conversation_id, failures[0].user_turn) == ("http_400", "c0", 2)


def test_unparseable_answer_is_counted_and_kept_raw():
    with FakeOpenAI(answer="I refuse to label this.") as srv:
        ext = OpenAIExtractor(_params(srv.url))
        assert ext.extract(CONVS[:2]) == []
        stats, failures = ext.take_stats()
    assert stats["parse_failures"] == 4 and {f.raw for f in failures} == {"I refuse to label this."}
    assert {(f.conversation_id, f.user_turn) for f in failures} == {("c0", 2), ("c0", 3), ("c1", 2), ("c1", 3)}


def test_paper_mode_spans_and_json_schema():
    with FakeOpenAI() as srv:
        params = _params(srv.url).model_copy(update={"mode": "paper"})
        ext = OpenAIExtractor(params)
        dets = ext.extract(CONVS[:4])
    got = sorted((d.turn.conversation.conversation_id, d.turn.user_turn, d.category) for d in dets)
    assert got == [("c0", 2, "positive_feedback"), ("c1", 2, "make_aware_without_correction"),
                   ("c1", 3, "ask_for_clarification"), ("c2", 2, "make_aware_without_correction"),
                   ("c3", 2, "positive_feedback"), ("c3", 3, "ask_for_clarification")]
    assert len(srv.requests) == 4 and "json" in srv.requests[0]["structured_outputs"]
    assert "logprobs" not in srv.requests[0]


def test_openai_json_schema_mode_body():
    ext = OpenAIExtractor(_params("http://127.0.0.1:9/v1", structured="json_schema"))
    body = ext.body(ext.requests(CONVS[:1])[0])
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["label"]["enum"][-1] == "none" and "structured_outputs" not in body


@pytest.mark.parametrize("extract", [{"openai": {"concurency": 3}}, {"llm": {"modle": "x"}}, {"mode": "chat"},
                                     {"openai": {"structured": "guided"}}, {"transformers": {"dtype": "fp8"}}])
def test_llm_params_typos_fail(extract):
    from natfeed.params import ParamsError, parse_params

    with pytest.raises(ParamsError):
        parse_params({"extract": extract})


def test_model_is_required():
    with pytest.raises(ValueError, match="needs a model"):
        OpenAIExtractor(ExtractParams(backend="openai"))
