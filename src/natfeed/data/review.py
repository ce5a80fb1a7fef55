"""A review loop with Label Studio: extractor output out as tasks, human labels back as gold.

:func:`export_tasks` writes one Label Studio task per judged user turn (the reply before it and the user
turn, with the conversation so far as context) with the extractor's answer as a *prediction*, plus the
labelling config (the five categories and ``none``, each with its definition from the guidelines) and
the guideline text as the project's instructions. :func:`import_annotations` turns Label Studio's JSON
export back into rows of the ``gold_labels.csv`` format (``conversation_id,user_turn,category,part,note``)
and merges them into an existing gold file, listing the turns where the new label disagrees.

Only natfeed's own install is needed; Label Studio itself runs wherever the reviewers use it.
"""

from __future__ import annotations

import csv
import html
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from natfeed.core.categories import CATEGORIES, NONE
from natfeed.core.errors import NatfeedError
from natfeed.core.io import atomic_path, atomic_write

FROM_NAME, TO_NAME = "category", "user_text"
GOLD_COLUMNS = ("conversation_id", "user_turn", "category", "part", "note")
HINTS = {
    "repeat_or_rephrase": "Repeats or rephrases the earlier request because the reply did not give what they wanted.",
    "make_aware_with_correction": "Says the reply is wrong or missing something AND says what is wrong or how to "
                                  "fix it.",
    "make_aware_without_correction": "Says the reply is wrong, bad or unhelpful without saying how to fix it.",
    "ask_for_clarification": "Questions the reply or asks to explain or justify something in it.",
    "positive_feedback": "Confirms the reply was good: thanks, praise, 'that works' (also when a new question "
                         "follows).",
    NONE: "Not feedback: a new request or topic, a continuation, a follow-up that does not judge the reply, the "
          "user fixing their own question, role-play lines.",
}
CONTEXT_CHARS = 2000  # of each earlier message shown as context


class ReviewError(NatfeedError):
    """A task file or an export that cannot be read (exit 2)."""


def labelling_config() -> str:
    """Label Studio's labelling interface: the reply, the user turn, one choice among the categories + none."""
    choices = "\n".join(f'    <Choice value="{c}" hint="{html.escape(HINTS[c])}"/>' for c in (*CATEGORIES, NONE))
    return f"""<View>
  <Header value="Conversation so far"/>
  <Text name="context" value="$context" granularity="paragraph"/>
  <Header value="The assistant's reply"/>
  <Text name="previous_reply" value="$previous_reply"/>
  <Header value="The user's next turn: is it feedback on that reply?"/>
  <Text name="{TO_NAME}" value="${TO_NAME}"/>
  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" required="true" showInline="false">
{choices}
  </Choices>
  <TextArea name="note" toName="{TO_NAME}" placeholder="why (optional)" maxSubmissions="1"/>
</View>
"""


@dataclass(frozen=True)
class Turn:
    """One judged user turn (user_turn counts user messages from 1; turn 1 is never judged)."""

    conversation_id: str
    user_turn: int
    context: str
    previous_reply: str
    user_text: str
    predicted: str = NONE
    confidence: float | None = None
    extractor: str = ""


def _render(messages: Sequence[Mapping[str, str]]) -> str:
    return "\n\n".join(f"{m['role']}: {m['content'][:CONTEXT_CHARS]}" for m in messages)


def conversation_turns(conversation_id: str, messages: Sequence[Mapping[str, str]]) -> list[Turn]:
    """Every judged user turn of a conversation (a user message after an assistant reply)."""
    out, users = [], 0
    for i, msg in enumerate(messages):
        if msg["role"] != "user":
            continue
        users += 1
        if users >= 2 and i > 0 and messages[i - 1]["role"] == "assistant":
            out.append(Turn(conversation_id, users, _render(messages[: i - 1]), messages[i - 1]["content"],
                            msg["content"]))
    return out


def _feedback_turns(feedback: pd.DataFrame) -> dict[tuple[str, int], Turn]:
    """The feedback rows as turns (user_turn = feedback_turn + 1), with their predictions."""
    out = {}
    for row in feedback.itertuples(index=False):
        prompt = list(row.prompt)
        user_turn = int(row.feedback_turn) + 1
        out[(row.conversation_id, user_turn)] = Turn(
            row.conversation_id, user_turn, _render(prompt), str(row.response), str(row.feedback_text),
            str(row.category), float(row.confidence) if pd.notna(row.confidence) else None, str(row.extractor))
    return out


def select_turns(feedback: pd.DataFrame, conversations: pd.DataFrame | None = None,
                 max_confidence: float | None = None, sample: int | None = None, seed: int = 0) -> list[Turn]:
    """The turns to review: every judged turn of ``conversations`` (none where no feedback row names it), or
    only the feedback rows; ``max_confidence`` keeps the extractor's less sure answers (turns it called
    none have no confidence and stay); ``sample`` draws that many at random (``seed``)."""
    predicted = _feedback_turns(feedback)
    if conversations is not None:
        turns = []
        for cid, messages in zip(conversations["conversation_id"], conversations["conversation"], strict=True):
            for turn in conversation_turns(cid, list(messages)):
                found = predicted.get((cid, turn.user_turn))
                turns.append(turn if found is None else Turn(
                    cid, turn.user_turn, turn.context, turn.previous_reply, turn.user_text, found.predicted,
                    found.confidence, found.extractor))
    else:
        turns = sorted(predicted.values(), key=lambda t: (t.conversation_id, t.user_turn))
    if max_confidence is not None:
        turns = [t for t in turns if t.confidence is None or t.confidence <= max_confidence]
    if sample is not None and sample < len(turns):
        picked = set(random.Random(seed).sample(range(len(turns)), sample))
        turns = [t for i, t in enumerate(turns) if i in picked]
    return turns


def task(turn: Turn) -> dict[str, Any]:
    """A Label Studio task with the extractor's answer as a prediction."""
    prediction: dict[str, Any] = {
        "model_version": turn.extractor or "natfeed",
        "result": [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices",
                    "value": {"choices": [turn.predicted]}}],
    }
    if turn.confidence is not None:
        prediction["score"] = turn.confidence
    return {"data": {"conversation_id": turn.conversation_id, "user_turn": turn.user_turn, "context": turn.context,
                     "previous_reply": turn.previous_reply, TO_NAME: turn.user_text},
            "predictions": [prediction]}


def export_tasks(turns: Iterable[Turn], output: str | Path, guidelines: str | None = None) -> dict[str, Any]:
    """Write ``output`` (tasks JSON), ``<stem>.config.xml`` and ``<stem>.instructions.html`` beside it."""
    tasks = [task(t) for t in turns]
    out = Path(output)
    atomic_write(out, json.dumps(tasks, ensure_ascii=False, indent=1).encode("utf-8"))
    config = out.with_name(f"{out.stem}.config.xml")
    atomic_write(config, labelling_config().encode("utf-8"))
    instructions = out.with_name(f"{out.stem}.instructions.html")
    body = (f"<pre style='white-space:pre-wrap'>{html.escape(guidelines)}</pre>" if guidelines
            else "<br>".join(f"<b>{c}</b>: {html.escape(h)}" for c, h in HINTS.items()))
    atomic_write(instructions, body.encode("utf-8"))
    predicted = {c: sum(1 for t in tasks if t["predictions"][0]["result"][0]["value"]["choices"][0] == c)
                 for c in (*CATEGORIES, NONE)}
    return {"tasks": len(tasks), "predicted": predicted, "output": str(out), "config": str(config),
            "instructions": str(instructions)}


@dataclass
class Imported:
    """Gold rows from a Label Studio export, and what the merge found."""

    rows: list[dict[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # tasks without a usable annotation, and why
    conflicts: list[dict[str, str]] = field(default_factory=list)  # existing label != new label
    added: int = 0
    unchanged: int = 0


def _choice(annotation: Mapping[str, Any]) -> tuple[str | None, str]:
    """(category, note) of one annotation."""
    category, note = None, ""
    for item in annotation.get("result", []):
        value = item.get("value", {})
        if item.get("from_name") == FROM_NAME and value.get("choices"):
            category = value["choices"][0]
        elif item.get("from_name") == "note" and value.get("text"):
            note = " ".join(value["text"])
    return category, note


def parse_export(export: Sequence[Mapping[str, Any]], part: str) -> Imported:
    """Gold rows from Label Studio's JSON export: per task, the latest annotation that was not cancelled."""
    result = Imported()
    for n, item in enumerate(export):
        data = item.get("data", {})
        cid, turn = data.get("conversation_id"), data.get("user_turn")
        if not cid or turn is None:
            result.skipped.append(f"task {item.get('id', n)}: no conversation_id/user_turn in its data")
            continue
        annotations = [a for a in item.get("annotations", []) if not a.get("was_cancelled")]
        if not annotations:
            result.skipped.append(f"task {item.get('id', n)} ({cid} turn {turn}): not annotated")
            continue
        latest = max(annotations, key=lambda a: (a.get("updated_at") or a.get("created_at") or "", a.get("id", 0)))
        category, note = _choice(latest)
        if category not in (*CATEGORIES, NONE):
            result.skipped.append(f"task {item.get('id', n)} ({cid} turn {turn}): no category chosen ({category!r})")
            continue
        who = latest.get("completed_by")
        who = who.get("email") if isinstance(who, Mapping) else who
        result.rows.append({"conversation_id": str(cid), "user_turn": str(int(turn)), "category": category,
                            "part": part, "note": note or (f"reviewed by {who}" if who else "reviewed")})
    return result


def read_gold_rows(path: str | Path) -> list[dict[str, str]]:
    """The rows of a gold CSV (empty when it does not exist)."""
    if not Path(path).exists():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: (row.get(k) or "") for k in GOLD_COLUMNS} for row in csv.DictReader(fh)]


def merge(existing: list[dict[str, str]], imported: Imported, prefer_new: bool = False) -> list[dict[str, str]]:
    """Existing gold + imported rows; a disagreement is listed in ``imported.conflicts`` and keeps the existing
    label unless ``prefer_new``."""
    rows = {(r["conversation_id"], int(r["user_turn"])): dict(r) for r in existing}
    for new in imported.rows:
        key = (new["conversation_id"], int(new["user_turn"]))
        old = rows.get(key)
        if old is None:
            rows[key] = new
            imported.added += 1
        elif old["category"] == new["category"]:
            imported.unchanged += 1
        else:
            imported.conflicts.append({"conversation_id": key[0], "user_turn": str(key[1]), "existing": old["category"],
                                       "new": new["category"], "kept": new["category"] if prefer_new else
                                       old["category"]})
            if prefer_new:
                rows[key] = new
    return [rows[k] for k in sorted(rows)]


def import_annotations(export_path: str | Path, output: str | Path, part: str = "review",
                       prefer_new: bool = False) -> Imported:
    """Read a Label Studio JSON export, merge its labels into the gold CSV ``output`` (created if missing)."""
    try:
        export = json.loads(Path(export_path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ReviewError(f"cannot read {export_path}: {err.strerror}") from None
    except ValueError as err:
        raise ReviewError(f"{export_path} is not JSON ({err}); export the project from Label Studio as JSON") from None
    if not isinstance(export, list):
        raise ReviewError(f"{export_path}: a Label Studio JSON export is a list of tasks, got {type(export).__name__}")
    imported = parse_export(export, part)
    rows = merge(read_gold_rows(output), imported, prefer_new)
    with atomic_path(output) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(GOLD_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return imported
