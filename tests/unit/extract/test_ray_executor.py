"""The Ray executor's plain parts, without Ray: actor sizing, the shard plan, one batch, the params rule.
The real Ray cluster: tests/integration/test_ray_executor.py."""

from __future__ import annotations

import pickle

import pytest

from natfeed.core.conversation import Conversation
from natfeed.extract.backends import make_extractor
from natfeed.extract.ray_executor import BatchResult, actor_resources, run_batch
from natfeed.extract.run import plan_shards, requests_of
from natfeed.params import ExtractParams, ParamsError, parse_params


def _conv(i: int, turns: int) -> Conversation:
    msgs = []
    for t in range(turns):
        msgs += [{"role": "user", "content": f"question {i}.{t} that is wrong"}, {"role": "assistant", "content": "ok"}]
    return Conversation(f"c{i:03d}", msgs, language="English")


@pytest.mark.parametrize(("backend", "actors", "gpus", "tp", "cluster", "want"), [
    ("heuristic", 0, None, 1, {"CPU": 6.0}, (6, 0.0)),
    ("heuristic", 3, None, 1, {"CPU": 6.0, "GPU": 8.0}, (3, 0.0)),
    ("vllm", 0, None, 2, {"CPU": 32.0, "GPU": 8.0}, (4, 2.0)),  # 4 engines of tensor parallel 2
    ("vllm", 0, None, 1, {"CPU": 2.0}, (1, 0.0)),  # CPU: one engine
    ("transformers", 0, None, 1, {"CPU": 8.0, "GPU": 2.0}, (2, 1.0)),
    ("transformers", 0, 0.5, 1, {"CPU": 8.0, "GPU": 2.0}, (4, 0.5)),
    ("openai", 0, None, 1, {"CPU": 2.0}, (4, 0.0)),
])
def test_actor_resources(backend, actors, gpus, tp, cluster, want):
    assert actor_resources(backend, actors, gpus, tp, cluster) == want


def test_shard_plan_covers_the_input_in_order_within_the_limits():
    convs = [_conv(i, 1 + i % 4) for i in range(40)]
    params = ExtractParams(backend="openai", batch_size=7, llm={"model": "m", "shard_requests": 10},
                           openai={"concurrency": 1})  # micro-batches of 4 requests
    plan = list(plan_shards(iter(convs), 3, params, 10))
    assert [c for _, batch, _ in plan for c in batch] == convs  # nothing dropped, nothing twice
    assert plan[0][0] == 3 and [i for i, _, _ in plan] == sorted(i for i, _, _ in plan)
    shards: dict[int, list[Conversation]] = {}
    for index, batch, cost in plan:
        assert cost == sum(requests_of(c, "turn") for c in batch) and len(batch) >= 1
        shards.setdefault(index, []).extend(batch)
    for batch in shards.values():  # a shard closes once over a limit, by at most its last conversation
        assert len(batch) <= 7 and sum(requests_of(c, "turn") for c in batch[:-1]) < 10


def test_run_batch_returns_plain_data_that_crosses_processes():
    ext = make_extractor(ExtractParams())
    res = run_batch(ext, [_conv(1, 3), _conv(2, 1)])
    assert isinstance(res, BatchResult) and res.conversations == 2 and res.user_turns == 2
    assert pickle.loads(pickle.dumps(res)) == res
    assert all(r["conversation_id"] == "c001" for r in res.rows) and res.rows


def test_ray_executor_with_vllm_replicas_is_refused():
    with pytest.raises(ParamsError, match="one vLLM engine per Ray actor"):
        parse_params({"extract": {"backend": "vllm", "executor": "ray", "vllm": {"replicas": 2}}})
    assert parse_params({"extract": {"executor": "ray", "ray_address": "auto"}}).extract.ray_address == "auto"
