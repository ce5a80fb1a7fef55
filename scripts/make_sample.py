#!/usr/bin/env python3
"""Build natfeed's embedded sample from real conversations: the development rows of ../shared/corpora.

Writes ``<out>/conversations.jsonl``: every conversation listed in the corpora's ``dev_ids.txt`` (and only
those: the other rows are reserved for outside evaluation), copied in the LMSYS-Chat-1M row shape with the
corpus ``conversation_id`` unchanged, followed by a small synthetic part, marked ``source: synthetic``, for
the cases ingest must handle that the real rows lack (malformed rows, a duplicate, moderation-flagged and
redacted conversations, a one-turn chat). ``<out>/gold_labels.csv`` holds the gold labels of every judged
turn of the real conversations (``data/labels/dev_part*.csv``, with the part each came from), and
``<out>/NOTICE.md`` the sources' licences. Stdlib only and deterministic:

    python3 scripts/make_sample.py --out data/raw [--corpora ../shared/corpora] [--labels data/labels]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPORA = {"wildchat_sample.jsonl": "wildchat-1m", "oasst_sample.jsonl": "oasst1"}

NOTICE = """# Sources of the embedded sample

`conversations.jsonl` holds real conversations, copied unchanged (LMSYS-Chat-1M row shape; ids kept) from:

- **WildChat-1M** (Zhao et al., 2024), rows with `source: wildchat-1m`; licence ODC-BY 1.0
  (https://opendatacommons.org/licenses/by/1-0/). Cite: Wenting Zhao, Xiang Ren, Jack Hessel, Claire Cardie,
  Yejin Choi, Yuntian Deng. *WildChat: 1M ChatGPT Interaction Logs in the Wild.* ICLR 2024. arXiv:2405.01470.
- **OpenAssistant Conversations (oasst1)** (Köpf et al., 2023), rows with `source: oasst1`; licence
  Apache-2.0. Cite: Andreas Köpf et al. *OpenAssistant Conversations — Democratizing Large Language Model
  Alignment.* NeurIPS 2023 Datasets and Benchmarks. arXiv:2304.07327.

Only the development rows of the corpora (`dev_ids.txt`) are included; the conversations may contain
offensive or personal content written by their users. Rows with `source: synthetic` were written for natfeed
(malformed rows, a duplicate, moderation-flagged and redacted conversations) and carry no third-party text.
`gold_labels.csv` (natfeed's own annotation of the real rows, by `docs/ANNOTATION_GUIDELINES.md`) is
released under the project's licence, Apache-2.0.
"""


def read_dev_ids(corpora: Path) -> set[str]:
    lines = (corpora / "dev_ids.txt").read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def lmsys_row(row: dict, source: str) -> dict:
    """A corpus row in the LMSYS-Chat-1M shape (moderation and redaction unknown: none recorded)."""
    messages = [{"role": m["role"], "content": m["content"]} for m in row["conversation"]]
    return {"conversation_id": row["conversation_id"], "model": row.get("model") or "unknown",
            "conversation": messages, "turn": sum(m["role"] == "user" for m in messages),
            "language": row.get("language"), "openai_moderation": [], "redacted": False, "source": source}


def real_rows(corpora: Path) -> list[dict]:
    dev = read_dev_ids(corpora)
    rows = []
    for name, source in CORPORA.items():
        with open(corpora / name, encoding="utf-8") as fh:
            rows += [lmsys_row(r, source) for r in map(json.loads, fh) if r["conversation_id"] in dev]
    return rows


def _chat(cid: str, *texts: str, **extra: object) -> dict:
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)]
    row = {"conversation_id": cid, "model": "synthetic", "conversation": messages,
           "turn": sum(m["role"] == "user" for m in messages), "language": "English",
           "openai_moderation": [{"flagged": False}] * len(messages), "redacted": False, "source": "synthetic"}
    row.update(extra)
    return row


def synthetic_lines(first_real: dict) -> list[str]:
    """The cases real rows lack, one JSON line each (some deliberately not valid rows)."""
    dump = lambda obj: json.dumps(obj, ensure_ascii=False)  # noqa: E731
    flagged = [{"flagged": False}, {"flagged": False}, {"flagged": True, "categories": {"harassment": True}},
               {"flagged": False}]
    rows = [
        _chat("synthetic-flagged-1", "Write a short poem about the sea.", "Waves fold in silver light...",
              "That is terrible, you useless machine.", "I am sorry it missed. Here is another try...",
              openai_moderation=flagged),
        _chat("synthetic-redacted-1", "Hi, I am NAME_1 and I live in NAME_2. Draft an email to my landlord.",
              "Dear landlord, ...", "Thanks, perfect!", "You are welcome.", redacted=True),
        _chat("synthetic-redacted-2", "Summarise the contract NAME_1 sent me.", "The contract says ...",
              "No, you missed the termination clause: it allows 30 days' notice.", "You are right: ...",
              redacted=True),
        _chat("synthetic-one-turn", "What is the boiling point of water?", "100 degrees Celsius at sea level."),
    ]
    lines = [dump(r) for r in rows]
    lines.append(dump({**first_real, "source": "synthetic"}))  # a duplicate id (a copy, marked): ingest keeps the first
    lines += [
        '{"conversation_id": "synthetic-bad-json", "conversation": [',  # truncated JSON
        dump({"conversation_id": "synthetic-no-messages", "model": "m"}),
        dump({"conversation_id": "synthetic-not-a-list", "conversation": "hello"}),
        dump({**_chat("synthetic-roles", "q", "a"),
              "conversation": [{"role": "user", "content": "q"}, {"role": "user", "content": "q again"}]}),
        dump({**_chat("synthetic-empty", "q", "a", "b", "c"),
              "conversation": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "  "}]}),
        dump({**_chat("synthetic-unknown-role", "q", "a"),
              "conversation": [{"role": "user", "content": "q"}, {"role": "robot", "content": "a"}]}),
        dump({"model": "m", "conversation": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}),
        dump(["not", "an", "object"]),
    ]
    return lines


def gold_rows(labels: Path, ids: set[str]) -> list[dict]:
    """Every gold label of the conversations in ``ids``, with the part file it came from."""
    out = []
    for path in sorted(labels.glob("dev_part*.csv"), key=lambda p: int(p.stem.removeprefix("dev_part"))):
        with open(path, newline="", encoding="utf-8") as fh:
            out += [{"conversation_id": r["conversation_id"], "user_turn": int(r["user_turn"]),
                     "category": r["category"], "part": path.stem, "note": r.get("note", "")}
                    for r in csv.DictReader(fh) if r["conversation_id"] in ids]
    return out


def write(out: Path, corpora: Path, labels: Path) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    real = real_rows(corpora)
    lines = [json.dumps(r, ensure_ascii=False) for r in real] + synthetic_lines(real[0])
    (out / "conversations.jsonl").write_bytes(("\n".join(lines) + "\n").encode("utf-8") + b'{"bad utf8": "\xff"}\n')
    gold = gold_rows(labels, {r["conversation_id"] for r in real})
    with open(out / "gold_labels.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["conversation_id", "user_turn", "category", "part", "note"])
        writer.writeheader()
        writer.writerows(gold)
    (out / "NOTICE.md").write_text(NOTICE, encoding="utf-8")
    return {"real": len(real), "synthetic_lines": len(lines) - len(real) + 1, "gold_turns": len(gold)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "data" / "raw")
    ap.add_argument("--corpora", type=Path, default=REPO.parent / "shared" / "corpora")
    ap.add_argument("--labels", type=Path, default=REPO / "data" / "labels")
    args = ap.parse_args()
    if not (args.corpora / "dev_ids.txt").exists():
        raise SystemExit(f"{args.corpora} has no dev_ids.txt: the sample is built from ../shared/corpora; without "
                         "it, `dvc pull --remote sample data.dvc` fetches the stored one")
    counts = write(args.out, args.corpora, args.labels)
    print(f"{args.out}: {counts['real']} real conversations, {counts['synthetic_lines']} synthetic lines, "
          f"{counts['gold_turns']} gold turns")


if __name__ == "__main__":
    main()
