"""The Label Studio review loop without a server: tasks out, an export back in as merged gold."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from natfeed.core.categories import CATEGORIES, NONE
from natfeed.data.review import (
    ReviewError,
    conversation_turns,
    export_tasks,
    import_annotations,
    labelling_config,
    select_turns,
)

CONV = [{"role": "user", "content": "capital of Australia?"}, {"role": "assistant", "content": "Sydney."},
        {"role": "user", "content": "No, it is Canberra."}, {"role": "assistant", "content": "Right, Canberra."},
        {"role": "user", "content": "thanks!"}]


def _feedback() -> pd.DataFrame:
    return pd.DataFrame({
        "conversation_id": ["c1", "c1"], "feedback_turn": [1, 2],
        "category": ["make_aware_with_correction", "positive_feedback"],
        "prompt": [CONV[:1], CONV[:3]], "response": ["Sydney.", "Right, Canberra."],
        "feedback_text": ["No, it is Canberra.", "thanks!"], "confidence": [0.6, 0.9],
        "extractor": ["heuristic-1.0.0"] * 2})


def test_judged_turns_of_a_conversation() -> None:
    turns = conversation_turns("c1", CONV)
    assert [(t.user_turn, t.previous_reply, t.user_text) for t in turns] == [
        (2, "Sydney.", "No, it is Canberra."), (3, "Right, Canberra.", "thanks!")]
    assert turns[1].context.startswith("user: capital of Australia?")


def test_select_with_conversations_covers_every_judged_turn_and_filters_by_confidence() -> None:
    convs = pd.DataFrame({"conversation_id": ["c1", "c2"],
                          "conversation": [CONV, [CONV[0], CONV[1], {"role": "user", "content": "and Peru?"}]]})
    turns = select_turns(_feedback(), convs)
    assert [(t.conversation_id, t.user_turn, t.predicted) for t in turns] == [
        ("c1", 2, "make_aware_with_correction"), ("c1", 3, "positive_feedback"), ("c2", 2, NONE)]
    unsure = select_turns(_feedback(), convs, max_confidence=0.7)
    assert [(t.conversation_id, t.user_turn) for t in unsure] == [("c1", 2), ("c2", 2)]
    assert len(select_turns(_feedback(), convs, sample=2, seed=1)) == 2
    assert [t.user_turn for t in select_turns(_feedback())] == [2, 3]  # feedback rows only


def test_export_writes_tasks_with_predictions_and_a_valid_config(tmp_path: Path) -> None:
    result = export_tasks(select_turns(_feedback()), tmp_path / "tasks.json", "# Guidelines\n<b>x</b>")
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    assert result["tasks"] == 2 and tasks[0]["data"]["user_turn"] == 2
    pred = tasks[0]["predictions"][0]
    assert pred["result"][0]["value"]["choices"] == ["make_aware_with_correction"] and pred["score"] == 0.6
    root = ET.fromstring(labelling_config())
    choices = root.find("Choices")
    assert choices is not None and [c.get("value") for c in choices] == [*CATEGORIES, NONE]
    assert "&lt;b&gt;" in (tmp_path / "tasks.instructions.html").read_text()


def _export(*items: tuple[str, int, str | None, bool]) -> list[dict]:
    out = []
    for i, (cid, turn, choice, cancelled) in enumerate(items):
        result = [] if choice is None else [{"from_name": "category", "to_name": "user_text", "type": "choices",
                                             "value": {"choices": [choice]}}]
        out.append({"id": i, "data": {"conversation_id": cid, "user_turn": turn},
                    "annotations": [{"id": 10 + i, "result": result, "was_cancelled": cancelled,
                                     "completed_by": {"email": "a@b.c"}, "updated_at": "2026-12-02T00:00:00Z"}]})
    return out


def test_import_merges_lists_conflicts_and_skips(tmp_path: Path) -> None:
    gold = tmp_path / "gold.csv"
    gold.write_text("conversation_id,user_turn,category,part,note\nc1,2,make_aware_with_correction,dev_part1,x\n"
                    "c1,3,none,dev_part1,y\n")
    export = tmp_path / "export.json"
    export.write_text(json.dumps(_export(("c1", 2, "make_aware_with_correction", False),
                                         ("c1", 3, "positive_feedback", False),
                                         ("c2", 2, "none", False), ("c3", 2, None, False),
                                         ("c4", 2, "positive_feedback", True))))
    result = import_annotations(export, gold)
    assert (result.added, result.unchanged, len(result.conflicts), len(result.skipped)) == (1, 1, 1, 2)
    assert result.conflicts[0] == {"conversation_id": "c1", "user_turn": "3", "existing": "none",
                                   "new": "positive_feedback", "kept": "none"}
    rows = list(csv.DictReader(gold.open()))
    assert [(r["conversation_id"], r["user_turn"], r["category"], r["part"]) for r in rows] == [
        ("c1", "2", "make_aware_with_correction", "dev_part1"), ("c1", "3", "none", "dev_part1"),
        ("c2", "2", "none", "review")]
    import_annotations(export, gold, prefer_new=True)
    assert [r["category"] for r in csv.DictReader(gold.open())][1] == "positive_feedback"


def test_import_rejects_what_is_not_an_export(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"not": "a list"}')
    with pytest.raises(ReviewError, match="list of tasks"):
        import_annotations(bad, tmp_path / "gold.csv")
    assert not (tmp_path / "gold.csv").exists()
