"""Token counts of the vLLM extract requests for an input: what a run would prefill and generate.

The requests are the vllm backend's own (``VLLMExtractor.requests`` and ``prompt_ids``: the params file's
``extract.llm`` — context_turns, max_model_len truncation, answer lengths — and the tokenizer's chat
template), so the counts are what the engine would be sent. Per mode (turn, paper): requests, prompt
tokens per request, the prefix every request shares (the guideline text; prefix caching computes it
once), the prompt tokens left to prefill with that cache (in whole KV blocks, also reusing an earlier
request of the same conversation), output tokens per request, and the totals per conversation.

    .venv/bin/python scripts/token_stats.py                                 # the sample, Mixtral's tokenizer
    .venv/bin/python scripts/token_stats.py --tokenizer models/base --json out.json

``--tokenizer mixtral`` is Mixtral-8x7B-Instruct-v0.1's: the v1 SentencePiece model that mistral_common
ships (offline) with the checkpoint's chat template; any other value is a Hugging Face tokenizer folder.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from natfeed.core.conversation import judged_turns
from natfeed.extract.inputs import ConversationReader
from natfeed.extract.llm.prompts import guideline_text
from natfeed.extract.llm.vllm import DEFAULT_MODEL, VLLMExtractor
from natfeed.params import ExtractParams, load_params

MIXTRAL_TEMPLATE = (  # mistralai/Mixtral-8x7B-Instruct-v0.1 tokenizer_config.json
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}"
    "{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}")


def mixtral_tokenizer(folder: Path) -> Path:
    import mistral_common

    shutil.copy(Path(mistral_common.__file__).parent / "data" / "tokenizer.model.v1", folder / "tokenizer.model")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "add_bos_token": True, "add_eos_token": False, "legacy": True, "chat_template": MIXTRAL_TEMPLATE}))
    return folder


def dist(values: list[float], qs: tuple[int, ...] = (50, 90, 99)) -> dict[str, float]:
    a = np.asarray(values or [0], dtype=float)
    return {"mean": round(float(a.mean()), 1), **{f"p{q}": round(float(np.percentile(a, q)), 1) for q in qs},
            "max": float(a.max())}


def lcp(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


def mode_stats(convs: list, extract: ExtractParams, mode: str, block: int) -> dict:
    ext = VLLMExtractor(extract.model_copy(update={"mode": mode}))
    reqs = ext.requests(convs)
    ids = [ext.prompt_ids(r) for r in reqs]
    tok = ext.tokenizer
    alone = tok(tok.apply_chat_template([{"role": "user", "content": guideline_text(mode)}], tokenize=False),
                add_special_tokens=False)["input_ids"]
    limit = [extract.llm.max_model_len - ext.answer_tokens(r) for r in reqs]
    cut = [len(x) >= lim for x, lim in zip(ids, limit, strict=True)]  # at the limit: cut from the left (prompt_ids)
    prefix = min((lcp(alone, x) for x, c in zip(ids, cut, strict=True) if not c), default=0)  # shared by all
    seen: dict[str, list[list[int]]] = {}
    prefill = []
    for r, x, c in zip(reqs, ids, cut, strict=True):
        hit = max([0 if c else prefix, *(lcp(x, y) for y in seen.get(r.conversation_id, []))])
        prefill.append(len(x) - min(hit // block * block, len(x) - 1))  # vLLM computes at least one token
        seen.setdefault(r.conversation_id, []).append(x)
    cap = max((ext.answer_tokens(r) for r in reqs), default=0)
    if mode == "turn":  # the choice grammar: the label's tokens, then EOS
        labels = {c: len(tok(c, add_special_tokens=False)["input_ids"]) + 1 for c in reqs[0].choices} if reqs else {}
        out = {"output_tokens_by_label": labels, "output_tokens_max": max(labels.values(), default=0)}
    else:  # a JSON list of any length: only the cap is known
        out = {"output_tokens_max": cap, "output_is_cap": True}
    n = max(len(convs), 1)
    return {"requests": len(reqs), "requests_truncated": sum(r.truncated for r in reqs), "requests_cut_left": sum(cut),
            "prompt_tokens": dist([len(x) for x in ids]), "shared_prefix_tokens": prefix,
            "prefill_tokens_with_cache": dist(prefill), "answer_token_cap": cap, **out,
            "per_conversation": {"requests": round(len(reqs) / n, 3),
                                 "prompt_tokens": round(sum(map(len, ids)) / n, 1),
                                 "prefill_tokens_with_cache": round(sum(prefill) / n, 1),
                                 "output_tokens_max": round(len(reqs) * out["output_tokens_max"] / n, 1)}}


def table(res: dict) -> str:
    m, rows = res["modes"], [(k.replace("_", " "), lambda s, k=k: s[k]) for k in ("requests", "requests_truncated",
                                                                                   "requests_cut_left")]
    for key in ("prompt_tokens", "prefill_tokens_with_cache"):
        rows += [(f"{key} per request, {q}", lambda s, k=key, q=q: s[k][q]) for q in ("mean", "p50", "p90", "p99")]
    rows += [("shared prefix tokens", lambda s: s["shared_prefix_tokens"]),
             ("output tokens per request, max", lambda s: s["output_tokens_max"] if s["requests"] else 0)]
    rows += [(f"per conversation: {k}", lambda s, k=k: s["per_conversation"][k]) for k in m[next(iter(m))]["per_conversation"]]
    j = res["judged_turns_per_conversation"]
    head = (f"{res['conversations']} conversations ({res['input']}), tokenizer {res['tokenizer']}; judged turns per "
            f"conversation: mean {j['mean']}, p50 {j['p50']}, p90 {j['p90']}\n\n")
    lines = ["| | " + " | ".join(m) + " |", "|---|" + "---|" * len(m)]
    lines += [f"| {name} | " + " | ".join(str(f(s)) for s in m.values()) + " |" for name, f in rows]
    return head + "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", default="data/interim/conversations.parquet", help="ingested parquet or raw logs")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--tokenizer", default="mixtral", help="mixtral, or a Hugging Face tokenizer folder")
    ap.add_argument("--modes", nargs="+", default=["turn", "paper"], choices=["turn", "paper"])
    ap.add_argument("--block-size", type=int, default=16, help="KV cache block (prefix-cache hits are whole blocks)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    convs = [c for batch in ConversationReader(args.input, 1000).batches() for c in batch]
    with tempfile.TemporaryDirectory() as tmp:
        tok = str(mixtral_tokenizer(Path(tmp))) if args.tokenizer == "mixtral" else args.tokenizer
        ex = load_params(args.params).extract
        ex = ex.model_copy(update={"backend": "vllm", "llm": ex.llm.model_copy(update={"model": ex.llm.model or DEFAULT_MODEL}),
                                   "vllm": ex.vllm.model_copy(update={"tokenizer": tok})})
        res = {"input": args.input, "tokenizer": args.tokenizer, "conversations": len(convs),
               "judged_turns_per_conversation": dist([sum(1 for _ in judged_turns(c)) for c in convs], (50, 90)),
               "llm": ex.llm.model_dump(include={"max_model_len", "max_new_tokens", "paper_max_new_tokens", "context_turns"}),
               "modes": {m: mode_stats(convs, ex, m, args.block_size) for m in args.modes}}
    print(table(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
