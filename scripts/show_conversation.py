"""Print conversations for labelling: every message with its user-turn number, the turns to judge marked.

    .venv/bin/python scripts/show_conversation.py ID [ID ...] [--corpora ../shared/corpora] [--head 1500]

Turn numbers are natfeed's ``user_turn`` (1-based among the user messages); a user turn from the 2nd on
that follows an assistant reply is judged (``>>> JUDGE user_turn N``). Long messages are shown as their
first ``--head`` and last ``--tail`` characters. Label by docs/ANNOTATION_GUIDELINES.md, from the text only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_dev import read_rows as load  # noqa: E402  (the corpus rows by id, shared with eval_dev)


def clip(text: str, head: int, tail: int) -> str:
    if len(text) <= head + tail + 50:
        return text
    return f"{text[:head]}\n[... {len(text) - head - tail} characters cut ...]\n{text[-tail:]}"


def render(row: dict, head: int, tail: int) -> str:
    lines = [f"=== conversation {row['conversation_id']} (model {row.get('model')}, language {row.get('language')}, "
             f"source {row.get('source')})"]
    users, replied = 0, False
    for msg in row["conversation"]:
        if msg["role"] == "user":
            users += 1
            mark = f">>> JUDGE user_turn {users}" if users >= 2 and replied else f"[user_turn {users}]"
            lines.append(f"{mark}\n{clip(msg['content'], head, tail)}")
            replied = False
        else:
            lines.append(f"[{msg['role']}]\n{clip(msg['content'], head, tail)}")
            replied = msg["role"] == "assistant"
    return "\n\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ids", nargs="+")
    ap.add_argument("--corpora", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "corpora")
    ap.add_argument("--head", type=int, default=1500)
    ap.add_argument("--tail", type=int, default=400)
    args = ap.parse_args()
    rows = load(args.corpora, set(args.ids))
    for cid in args.ids:
        print(render(rows[cid], args.head, args.tail) if cid in rows else f"=== {cid}: not in the corpora\n")


if __name__ == "__main__":
    main()
