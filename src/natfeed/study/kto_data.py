"""The arms' data: precise KTO/SFT examples from the study corpus, split by chat.

The per-category confidence thresholds are chosen on the validation parts of the embedded gold
(:mod:`natfeed.data.thresholds`, build_kto's own rule) and applied to the study corpus's feedback rows;
then build_kto's selection and ratio rule, and a split by chat: ShareGPT ids ``<chat>_<n>`` are chunks of
one chat, which never straddle the split.
"""

from __future__ import annotations

import random
import re
import time
from typing import Any

import pandas as pd

from natfeed.core.io import atomic_path, write_json
from natfeed.data.build_kto import category_flow, downsample, select_rows, split_conversations, to_kto, to_sft
from natfeed.data.thresholds import apply_thresholds, choose_thresholds, validation_gold
from natfeed.params.study import KtoStudyParams, StudyParams
from natfeed.study.common import report_path, work_dir

_CHUNK = re.compile(r"_\d+$")


def chat_of(conversation_id: str, group_chunks: bool = True) -> str:
    """The chat a conversation id belongs to (``abc_3`` -> ``abc``)."""
    return _CHUNK.sub("", conversation_id) if group_chunks else conversation_id


def thresholds_on_validation(embedded_feedback: pd.DataFrame, gold_path: str, tuned_parts: list[str],
                             p: KtoStudyParams) -> dict[str, dict[str, Any]]:
    """Per KTO category: the confidence threshold for ``build.target_precision`` on the validation gold."""
    gold, parts, validation = validation_gold(gold_path, tuned_parts, embedded_feedback)
    categories = ["positive_feedback", *p.build.undesirable_categories]
    return choose_thresholds(embedded_feedback, gold, parts, validation, categories, p.build.target_precision)


def build(feedback: pd.DataFrame, thresholds: dict[str, float], p: KtoStudyParams
          ) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """KTO and SFT train/test frames from the corpus's feedback rows, and a report of what was kept."""
    precise, dropped = apply_thresholds(feedback, thresholds)
    selected = select_rows(precise, p.build)
    balanced = downsample(selected, p.build)
    chats = balanced["conversation_id"].map(lambda c: chat_of(c, p.group_chunks))
    test_chats = split_conversations(chats, p.build.test_size, p.build.seed)
    is_test = chats.isin(test_chats)
    frames = {"kto_train": to_kto(balanced[~is_test]), "kto_test": to_kto(balanced[is_test]),
              "sft_train": to_sft(balanced[~is_test]), "sft_test": to_sft(balanced[is_test])}
    flow = category_flow(feedback, selected, balanced, p.build)
    for cat, entry in flow.items():
        entry["confidence_dropped"] = dropped.get(cat, 0)
    report = {"feedback_rows": len(feedback), "kept_by_threshold": len(precise), "selected_rows": len(selected),
              "train": len(frames["kto_train"]), "test": len(frames["kto_test"]),
              "train_desirable": int(frames["kto_train"]["label"].sum()),
              "test_desirable": int(frames["kto_test"]["label"].sum()),
              "test_chats": len(test_chats), "per_category": flow}
    return frames, report


def check_sizes(report: dict[str, Any], p: KtoStudyParams) -> None:
    """The study needs ``min_train`` / ``min_test`` examples: fewer is an error naming the fix."""
    from natfeed.core.errors import NatfeedError

    if report["train"] < p.min_train or report["test"] < p.min_test:
        raise NatfeedError(f"the precise KTO data has {report['train']} train / {report['test']} test examples, "
                           f"the study needs {p.min_train} / {p.min_test}: lower kto.build.target_precision "
                           "(and say so in the study) or add conversations")


def random_replies(conversations: pd.DataFrame, exclude_chats: set[str], n: int, seed: int,
                   group_chunks: bool = True) -> pd.DataFrame:
    """``n`` assistant replies drawn at random (seeded) from the corpus's conversations outside the test chats,
    each with the messages before it as prompt (a reply with no user message before it is not drawn)."""
    candidates: list[tuple[int, int]] = []
    rows = conversations[["conversation_id", "conversation"]].to_dict("records")
    for r, row in enumerate(rows):
        if chat_of(row["conversation_id"], group_chunks) in exclude_chats:
            continue
        roles = [m["role"] for m in row["conversation"]]
        candidates += [(r, i) for i, role in enumerate(roles) if role == "assistant" and "user" in roles[:i]]
    picks = random.Random(seed).sample(candidates, min(n, len(candidates)))
    out = []
    for r, i in sorted(picks):
        msgs = [{"role": str(m["role"]), "content": str(m["content"])} for m in rows[r]["conversation"]]
        out.append({"prompt": msgs[:i], "completion": [msgs[i]], "conversation_id": rows[r]["conversation_id"]})
    return pd.DataFrame(out, columns=["prompt", "completion", "conversation_id"])


def shuffle_labels(kto_train: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The same examples with their labels permuted (seeded): as many desirable, on random replies."""
    labels = kto_train["label"].tolist()
    random.Random(seed).shuffle(labels)
    return kto_train.assign(label=labels)


def kto_step(p: StudyParams) -> dict[str, Any]:
    """Thresholds chosen on the validation gold; the KTO/SFT frames and the random replies under ``work_dir/kto``."""
    start = time.perf_counter()
    chosen = thresholds_on_validation(pd.read_parquet(p.paths.feedback), p.paths.gold_labels,
                                               list(p.kto.tuned_parts), p.kto)
    thresholds = {cat: entry["threshold"] for cat, entry in chosen.items()}
    frames, report = build(pd.read_parquet(work_dir(p) / "sharegpt" / "feedback.parquet"), thresholds, p.kto)
    check_sizes(report, p.kto)
    test_chats = {chat_of(c, p.kto.group_chunks) for c in frames["kto_test"]["conversation_id"]}
    n_praised = int(frames["kto_train"]["label"].sum())
    frames["random"] = random_replies(pd.read_parquet(work_dir(p) / "sharegpt" / "conversations.parquet"),
                                               test_chats, n_praised, p.arms.seed, p.kto.group_chunks)
    frames["kto_shuffled"] = shuffle_labels(frames["kto_train"], p.arms.seed)
    out = work_dir(p) / "kto"
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        with atomic_path(out / f"{name}.parquet") as tmp:
            frame.to_parquet(tmp, index=False)
    report.update({"thresholds": chosen, "target_precision": p.kto.build.target_precision,
                   "random_replies": len(frames["random"]), "seconds": round(time.perf_counter() - start, 2)})
    write_json(report_path(p, "kto"), report)
    return report
