"""The embedded demo dataset (scripts/make_sample.py) meets the requirements the pipeline's demo relies on."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_sample.py"
CATEGORIES = (
    "repeat_or_rephrase",
    "make_aware_with_correction",
    "make_aware_without_correction",
    "ask_for_clarification",
    "positive_feedback",
)
OTHER_LANGUAGES = ("Chinese", "Russian", "Spanish", "French", "German", "Portuguese")
HEX32 = re.compile(r"[0-9a-f]{32}")


def run_generator(out: Path, seed: int | None = None) -> str:
    cmd = [sys.executable, str(SCRIPT), "--out", str(out)] + ([] if seed is None else ["--seed", str(seed)])
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60).stdout


def is_valid(obj: object) -> bool:
    """A row ingest must accept: LMSYS shape, user/assistant alternating (an optional system message first)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("conversation_id"), str):
        return False
    conv = obj.get("conversation")
    if not HEX32.fullmatch(obj["conversation_id"]) or not isinstance(conv, list) or not conv:
        return False
    if not all(
        isinstance(m, dict) and isinstance(m.get("content"), str) and m["content"].strip() for m in conv
    ):
        return False
    roles = [m.get("role") for m in conv]
    roles = roles[1:] if roles[0] == "system" else roles
    expected = ["user", "assistant"] * (len(roles) // 2)
    return (
        bool(roles)
        and roles == expected
        and obj.get("turn") == roles.count("user")
        and isinstance(obj.get("openai_moderation"), list)
        and len(obj["openai_moderation"]) == len(conv)
        and isinstance(obj.get("redacted"), bool)
        and isinstance(obj.get("language"), str)
    )


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("raw")
    printed = run_generator(out)
    raw = (out / "conversations.jsonl").read_bytes()
    lines = raw.decode("utf-8").splitlines()  # strict: the file must be valid UTF-8
    valid, malformed, duplicates = {}, [], []
    for line in lines:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            malformed.append(line)
            continue
        if not is_valid(obj):
            malformed.append(line)
        elif obj["conversation_id"] in valid:
            duplicates.append(obj)
        else:
            valid[obj["conversation_id"]] = obj
    with (out / "gold_labels.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        gold = [(cid, int(turn), cat) for cid, turn, cat in reader]
    return dict(
        out=out,
        printed=printed,
        lines=lines,
        valid=valid,
        malformed=malformed,
        duplicates=duplicates,
        header=header,
        gold=gold,
        labels={(cid, t): cat for cid, t, cat in gold},
    )


def user_texts(row: dict) -> list[str]:
    return [m["content"] for m in row["conversation"] if m["role"] == "user"]


def test_at_least_320_valid_conversations(sample: dict) -> None:
    assert len(sample["valid"]) >= 320


def test_rows_have_lmsys_fields(sample: dict) -> None:
    for row in sample["valid"].values():
        assert set(row) == {
            "conversation_id",
            "model",
            "conversation",
            "turn",
            "language",
            "openai_moderation",
            "redacted",
        }
        for mod in row["openai_moderation"]:
            assert set(mod) == {"categories", "category_scores", "flagged"}
            assert set(mod["categories"]) == set(mod["category_scores"])


def test_malformed_share_and_one_duplicate(sample: dict) -> None:
    share = len(sample["malformed"]) / len(sample["lines"])
    assert 0.03 <= share <= 0.08, share
    assert len(sample["malformed"]) >= 16
    assert len(set(sample["malformed"])) == len(sample["malformed"]), "each malformed row should differ"
    assert len(sample["duplicates"]) == 1


def test_gold_covers_exactly_user_turns_from_two(sample: dict) -> None:
    assert sample["header"] == ["conversation_id", "user_turn", "category"]
    expected = {(cid, t) for cid, row in sample["valid"].items() for t in range(2, row["turn"] + 1)}
    keys = [(cid, t) for cid, t, _ in sample["gold"]]
    assert len(keys) == len(set(keys)), "duplicate gold rows"
    assert set(keys) == expected
    assert {cat for _, _, cat in sample["gold"]} <= {*CATEGORIES, "none"}


def test_every_category_is_well_represented(sample: dict) -> None:
    counts = Counter(cat for _, _, cat in sample["gold"])
    for cat in CATEGORIES:
        assert counts[cat] >= 25, (cat, counts[cat])


def test_feedback_turns_are_all_different(sample: dict) -> None:
    texts = [user_texts(sample["valid"][cid])[t - 1] for cid, t, cat in sample["gold"] if cat != "none"]
    repeated = [t for t, n in Counter(texts).items() if n > 1]
    assert not repeated, repeated[:5]


def test_identical_resends_are_repeat_or_rephrase(sample: dict) -> None:
    resends = [
        (cid, t)
        for cid, row in sample["valid"].items()
        for t, text in enumerate(user_texts(row), 1)
        if text in user_texts(row)[: t - 1]
    ]
    assert len(resends) >= 3
    assert all(sample["labels"][key] == "repeat_or_rephrase" for key in resends)


def test_a_quarter_of_conversations_have_no_feedback(sample: dict) -> None:
    with_feedback = {cid for cid, _, cat in sample["gold"] if cat != "none"}
    multi_turn_without = [
        cid for cid, row in sample["valid"].items() if row["turn"] > 1 and cid not in with_feedback
    ]
    assert (len(sample["valid"]) - len(with_feedback)) / len(sample["valid"]) >= 0.25
    assert len(multi_turn_without) >= 50, "hard negatives need several user turns"
    assert any(row["turn"] == 1 for row in sample["valid"].values())


def test_languages(sample: dict) -> None:
    rows = sample["valid"].values()
    langs = Counter(row["language"] for row in rows)
    assert 1 - langs["English"] / len(rows) >= 0.15
    feedback_langs = Counter(
        sample["valid"][cid]["language"] for cid, _, cat in sample["gold"] if cat != "none"
    )
    for lang in OTHER_LANGUAGES:
        assert langs[lang] >= 8, (lang, langs[lang])
        assert feedback_langs[lang] >= 3, (lang, "needs feedback in this language")


def test_redactions(sample: dict) -> None:
    rows = list(sample["valid"].values())
    named = [r for r in rows if any("NAME_" in m["content"] for m in r["conversation"])]
    assert len(named) >= 20
    assert all(r["redacted"] == (r in named) for r in rows)


def test_long_pasted_code(sample: dict) -> None:
    fence = re.compile(r"```[a-z]*\n(.*?)```", re.S)
    long_code = [
        r
        for r in sample["valid"].values()
        if any(b.count("\n") > 60 for text in user_texts(r) for b in fence.findall(text))
    ]
    assert len(long_code) >= 10


def test_some_assistant_replies_have_code(sample: dict) -> None:
    replies = [
        m["content"] for r in sample["valid"].values() for m in r["conversation"] if m["role"] == "assistant"
    ]
    assert sum("```" in text for text in replies) >= 50


def test_few_flagged_conversations(sample: dict) -> None:
    rows = list(sample["valid"].values())
    flagged = [r for r in rows if any(m["flagged"] for m in r["openai_moderation"])]
    assert 3 <= len(flagged) <= 0.06 * len(rows)
    for r in flagged:
        for m in r["openai_moderation"]:
            assert m["flagged"] == any(m["categories"].values())


def test_turn_counts_mostly_two_to_six(sample: dict) -> None:
    turns = Counter(row["turn"] for row in sample["valid"].values())
    assert sum(n for t, n in turns.items() if 2 <= t <= 6) / sum(turns.values()) >= 0.8


def test_summary_is_printed(sample: dict) -> None:
    assert f"{len(sample['valid'])} valid" in sample["printed"]
    for cat in CATEGORIES:
        assert cat in sample["printed"]


def test_deterministic_and_seeded(sample: dict, tmp_path: Path) -> None:
    run_generator(tmp_path / "again")
    run_generator(tmp_path / "other", seed=14)
    for name in ("conversations.jsonl", "gold_labels.csv"):
        first = (sample["out"] / name).read_bytes()
        assert (tmp_path / "again" / name).read_bytes() == first
        assert (tmp_path / "other" / name).read_bytes() != first
