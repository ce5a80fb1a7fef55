"""``natfeed extract --estimate``: what a run would send and cost, before spending anything.

It reads and plans like the run (the same requests, built by the backend), looks each one up in the judgement
cache, loads no model and sends nothing: a local backend only loads its tokenizer (so prompt tokens are
counted exactly, chat template aside); the openai backend counts them with natfeed's character estimate, and
says so. Generated tokens are an upper bound (``max_new_tokens`` per request). Time and cost come from
``extract.cost`` (per-token prices and/or a GPU-hour price with a tokens/s rate); unknown rates stay null.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from natfeed.core.conversation import judged_turns
from natfeed.extract.inputs import ConversationReader
from natfeed.extract.llm.base import LLMExtractor, LocalTokenizerExtractor
from natfeed.params import ExtractParams
from natfeed.params.extract import CostParams


@dataclass
class Estimate:
    extractor: str
    conversations: int
    judged_turns: int
    requests: int
    """Requests the run needs (turn mode: one per judged turn; paper mode: one per conversation with one)."""
    cached: int
    """... of which the judgement cache already answers."""
    to_send: int
    prompt_tokens: int
    """Prompt tokens of the requests to send."""
    prompt_tokens_counted_by: str
    max_generated_tokens: int
    seconds: float | None
    cost: float | None
    currency: str
    cache_dir: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def price(prompt_tokens: int, generated_tokens: int, cost: CostParams) -> tuple[float | None, float | None]:
    """(seconds, cost) of this many tokens at ``cost``'s rates; None where a rate is missing."""
    seconds = (prompt_tokens + generated_tokens) / cost.tokens_per_second if cost.tokens_per_second else None
    parts: list[float] = []
    if cost.input_per_million is not None:
        parts.append(prompt_tokens / 1e6 * cost.input_per_million)
    if cost.output_per_million is not None:
        parts.append(generated_tokens / 1e6 * cost.output_per_million)
    if cost.gpu_hour is not None and seconds is not None:
        parts.append(seconds / 3600 * cost.gpu_hour)
    return (round(seconds, 3) if seconds is not None else None), (round(sum(parts), 6) if parts else None)


def estimate(input_path: str | Path, params: ExtractParams, extractor: LLMExtractor) -> Estimate:
    """Plan the run of ``extractor`` over ``input_path`` (its cache attached, or none) and price it."""
    reader = ConversationReader(input_path, params.batch_size)
    n_conv = n_turns = n_req = n_cached = tokens = generated = 0
    for batch in reader.batches():
        n_conv += len(batch)
        n_turns += sum(1 for c in batch for _ in judged_turns(c))
        requests = extractor.requests(batch)
        keys = [extractor.cache_key(r) for r in requests] if extractor.cache is not None else [""] * len(requests)
        hit = extractor.cache.contains(keys) if extractor.cache is not None else set()
        for req, key in zip(requests, keys, strict=True):
            n_req += 1
            if key in hit:
                n_cached += 1
                continue
            tokens += req.prompt_tokens
            generated += params.llm.max_new_tokens if req.mode == "turn" else params.llm.paper_max_new_tokens
    seconds, cost = price(tokens, generated, params.cost)
    counted = ("the model's tokenizer" if isinstance(extractor, LocalTokenizerExtractor)
               else "an estimate (~3.5 characters per token; the server's tokenizer is not known here)")
    return Estimate(extractor.identity, n_conv, n_turns, n_req, n_cached, n_req - n_cached, tokens, counted,
                    generated, seconds, cost, params.cost.currency,
                    str(extractor.cache.dir) if extractor.cache is not None else None)


def format_estimate(est: Estimate) -> str:
    """The short table ``natfeed extract --estimate`` prints."""
    def num(x: float | None, unit: str = "") -> str:
        return "unknown (set extract.cost)" if x is None else f"{x:,.2f}{unit}" if isinstance(x, float) else f"{x:,}"

    rows = [("extractor", est.extractor), ("conversations", f"{est.conversations:,}"),
            ("judged turns", f"{est.judged_turns:,}"), ("requests", f"{est.requests:,}"),
            ("already cached", f"{est.cached:,}" + ("" if est.cache_dir else " (cache off)")),
            ("to send", f"{est.to_send:,}"),
            ("prompt tokens", f"{est.prompt_tokens:,} (counted by {est.prompt_tokens_counted_by})"),
            ("generated tokens", f"at most {est.max_generated_tokens:,}"),
            ("time", num(est.seconds, " s") if est.seconds is None else _duration(est.seconds)),
            ("cost", num(est.cost) if est.cost is None else f"{est.cost:,.4f} {est.currency} (at most)")]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_run(input_path: str | Path, output: str | Path, params: ExtractParams) -> Estimate:
    """What ``natfeed extract`` with these params would send, for the whole of ``input_path``: the backend built
    as the run builds it (a model backend loads only its tokenizer), with the run's judgement cache."""
    from natfeed.extract.backends import make_extractor
    from natfeed.extract.checkpoint import with_cache_dir
    from natfeed.extract.llm.cache import JudgementCache

    params = with_cache_dir(params, output)
    extractor = make_extractor(params)
    if not isinstance(extractor, LLMExtractor):  # the heuristic: no model, no requests
        reader = ConversationReader(input_path, params.batch_size)
        n_conv = n_turns = 0
        for batch in reader.batches():
            n_conv += len(batch)
            n_turns += sum(1 for c in batch for _ in judged_turns(c))
        return Estimate(extractor.identity, n_conv, n_turns, 0, 0, 0, 0, "no model (rules)", 0, None, 0.0,
                        params.cost.currency, None)
    cache = JudgementCache(params.cache_dir) if params.cache and params.cache_dir else None
    extractor.use_cache(cache)
    try:
        return estimate(input_path, params, extractor)
    finally:
        if cache is not None:
            cache.close()
