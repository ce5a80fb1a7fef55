"""The study's pure parts: prevalence, the KTO data split by chat, the verdict, the label-noise figure, params."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from natfeed.core.errors import NatfeedError
from natfeed.params import ParamsError
from natfeed.params.study import CorpusParams, KtoStudyParams, load_study_params
from natfeed.study.__main__ import missing_keys
from natfeed.study.corpus import StudyInputError, locate
from natfeed.study.kto_data import build, chat_of, check_sizes, random_replies, shuffle_labels
from natfeed.study.prevalence import prevalence, share
from natfeed.study.report import label_tpr_minus_fpr
from natfeed.study.verdict import compare, correct, mcnemar_exact, verdict


def _conv(cid, *texts, first="user"):
    roles = ["user", "assistant"] if first == "user" else ["assistant", "user"]
    return {"conversation_id": cid, "source": "x",
            "conversation": [{"role": roles[i % 2], "content": t} for i, t in enumerate(texts)]}


def test_share_and_prevalence_count_conversations_and_judged_turns():
    convs = pd.DataFrame([_conv("a", "q", "r", "wrong", "ok"), _conv("b", "q", "r"),
                          _conv("c", "r0", "q", "r", "thanks", "np", first="assistant")])
    fb = pd.DataFrame({"conversation_id": ["a", "c", "zzz"], "category": ["make_aware_without_correction",
                                                                          "positive_feedback", "positive_feedback"]})
    p = prevalence(convs, fb)
    assert p["conversations"] == 3 and p["judged_turns"] == 2  # a: turn 2; c: turn 2 (turn 1 follows the context)
    assert p["with_feedback"]["k"] == 2 and p["with_feedback"]["n"] == 3  # the row of an unknown id is ignored
    assert p["with_feedback_judged"]["n"] == 2 and p["with_feedback_judged"]["share"] == 1.0
    assert p["per_category"]["positive_feedback"]["k"] == 1
    s = share(30, 100)
    assert s["share"] == 0.3 and s["ci"][0] < 0.3 < s["ci"][1]
    assert share(0, 0)["share"] is None


def _feedback(n_chats=40):
    rows = []
    for i in range(n_chats):
        for chunk in range(2):  # two chunks of one chat: <chat>_<n>
            cid = f"chat{i}_{chunk}"
            cat = "positive_feedback" if (i + chunk) % 2 else "make_aware_with_correction"
            rows.append({"conversation_id": cid, "feedback_turn": 1, "category": cat, "label": 1 if cat ==
                         "positive_feedback" else -1, "confidence": 0.9 if i % 4 else 0.5,
                         "prompt": [{"role": "user", "content": f"q{i}"}], "response": f"r{i}", "flagged": False})
    return pd.DataFrame(rows)


def test_kto_data_applies_thresholds_and_never_splits_a_chat():
    p = KtoStudyParams(build={"min_confidence": {}, "test_size": 0.25, "seed": 1})
    frames, report = build(_feedback(), {"positive_feedback": 0.8, "make_aware_with_correction": 0.8}, p)
    assert report["kept_by_threshold"] == 60  # the 10 chats with i % 4 == 0 (20 rows) fall below 0.8
    assert report["per_category"]["positive_feedback"]["confidence_dropped"] == 10
    train = {chat_of(c) for c in frames["kto_train"]["conversation_id"]}
    test = {chat_of(c) for c in frames["kto_test"]["conversation_id"]}
    assert train and test and not train & test
    assert report["train"] + report["test"] == len(frames["kto_train"]) + len(frames["kto_test"])
    with pytest.raises(NatfeedError, match="lower kto.build.target_precision"):
        check_sizes(report, KtoStudyParams(min_train=10_000))
    assert chat_of("abc_12") == "abc" and chat_of("abc_12", group_chunks=False) == "abc_12"


def test_random_replies_come_from_train_chats_with_their_prompt():
    convs = pd.DataFrame([_conv("a_0", "q", "r1", "q2", "r2"), _conv("b_0", "q", "rb"),
                          _conv("c_1", "ctx", "q", "rc", first="assistant")])
    out = random_replies(convs, exclude_chats={"b"}, n=10, seed=0)
    assert sorted(c[0]["content"] for c in out["completion"]) == ["r1", "r2", "rc"]  # not b's, not the context
    assert all(p[-1]["role"] == "user" for p in out["prompt"])
    assert len(random_replies(convs, set(), n=2, seed=0)) == 2


def test_shuffled_labels_keep_the_counts_and_move():
    kto = pd.DataFrame({"label": [True] * 10 + [False] * 10, "x": range(20)})
    shuffled = shuffle_labels(kto, seed=3)
    assert shuffled["label"].sum() == 10 and (shuffled["label"] != kto["label"]).any()


def test_mcnemar_and_the_verdict():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(10, 0) == pytest.approx(2 / 2 ** 10)
    assert mcnemar_exact(5, 5) == 1.0
    a = np.array([1.0] * 30 + [0.0] * 10)
    b = np.array([0.0] * 20 + [1.0] * 10 + [0.0] * 10)
    r = compare(a, b)
    assert (r["only_first_right"], r["only_second_right"], r["outcome"]) == (20, 0, "better")
    assert compare(b, a)["outcome"] == "worse" and compare(a, a)["outcome"] == "no_difference"
    v = verdict({"kto": a, "kto_shuffled": b, "sft_feedback": a})
    assert list(v) == ["kto_vs_kto_shuffled"]  # a comparison needs both arms


def test_correct_counts_a_zero_log_ratio_half():
    got = correct(np.array([1.0, 0.0, 2.0, 5.0]), np.array([0.0, 1.0, 2.0, 4.0]), np.array([True, True, False, False]))
    assert got.tolist() == [1.0, 0.0, 0.5, 0.0]


def test_label_noise_figure():
    assert label_tpr_minus_fpr(1.0, 1.0) == pytest.approx(1.0)
    assert label_tpr_minus_fpr(0.5, 0.5) == pytest.approx(0.0)
    assert 0 < label_tpr_minus_fpr(0.75, 0.64) < 1
    assert label_tpr_minus_fpr(None, 0.5) is None


def test_missing_keys_names_each_promise():
    study = {"corpora": {"sharegpt": {"conversations": 1}}, "kto": {"train": 1}, "arms": {}, "verdict": {}}
    missing = missing_keys(study)
    assert "corpora.wildchat" in missing and "corpora.sharegpt.judged_turns" in missing
    assert "kto.test" in missing and "arms.kto" in missing and "extractable" in missing


def test_locate_checks_the_package_and_the_pinned_hash(tmp_path, monkeypatch):
    with pytest.raises(StudyInputError, match="run `make install-study`"):
        locate(CorpusParams(package="no_such_package_xyz", sha256="0" * 64))
    pkg = tmp_path / "fake_corpus"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "c.json").write_text("[]")
    monkeypatch.syspath_prepend(str(tmp_path))
    good = hashlib.sha256(b"[]").hexdigest()
    assert locate(CorpusParams(package="fake_corpus", file="data/c.json", sha256=good)).name == "c.json"
    with pytest.raises(StudyInputError, match="not the pinned"):
        locate(CorpusParams(package="fake_corpus", file="data/c.json", sha256="1" * 64))


def test_study_params_smoke_overrides_and_typos(tmp_path):
    full, smoke = load_study_params(), load_study_params(smoke=True)
    assert full.corpus.max_conversations is None and smoke.corpus.max_conversations == 300
    assert smoke.train.sft["max_steps"] < full.train.sft["max_steps"]
    assert smoke.paths.reports_dir != full.paths.reports_dir  # the smoke never overwrites the committed study
    data = yaml.safe_load(Path("study/params.yaml").read_text())
    data["kto"]["min_trian"] = 5
    bad = tmp_path / "p.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsError, match="did you mean 'min_train'"):
        load_study_params(bad)


def test_the_study_without_its_corpus_exits_2_with_the_install_command(tmp_path):
    data = yaml.safe_load(Path("study/params.yaml").read_text())
    data["corpus"]["package"] = "no_such_package_xyz"
    data["paths"] = {k: str(tmp_path / k) for k in ("work_dir", "models_dir", "reports_dir")}
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump(data))
    res = subprocess.run([sys.executable, "-m", "natfeed.study", "--params", str(params)], capture_output=True,
                         text=True)
    assert res.returncode == 2, res.stderr
    assert "make install-study" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "reports_dir").exists()  # nothing written


def test_card_shows_the_study_prevalence_when_it_has_run():
    from natfeed.report.card import study_lines

    assert study_lines(None) == []
    study = json.loads(json.dumps({"extractor": "h", "corpora": {"sharegpt": {
        "conversations": 17000, "judged_turns": 40000, "with_feedback": {"share": 0.25, "ci": [0.24, 0.26]}}}}))
    text = "\n".join(study_lines(study))
    assert "| sharegpt | 17,000 | 40,000 | 25.0% | 24.0–26.0% |" in text


def test_kept_by_trl_drops_the_examples_whose_prompt_fills_max_length():
    """The count natfeed reports beside TRL's own drop (TRL 1.16: a prompt alone >= max_length tokens)."""
    from natfeed.study.trained import kept_by_trl
    from tests.support.tiny_lm import word_tokenizer

    tok = word_tokenizer()
    short = [{"role": "user", "content": "hello"}]  # <s> <|user|> hello <|end|> <|assistant|> = 5 tokens
    long = [{"role": "user", "content": " ".join(["cat"] * 20)}]
    frame = pd.DataFrame({"prompt": [short, long, short]})
    assert kept_by_trl(frame, tok, None, max_length=6) == 2
    assert kept_by_trl(frame, tok, None, max_length=5) == 0
    assert kept_by_trl(frame, tok, None, max_length=100) == 3
