import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from natfeed.data.build_kto import build_kto, downsample, select_rows, split_conversations
from natfeed.params import BuildKtoParams
from tests.support.helpers import feedback_frame

NEG = ["make_aware_with_correction", "make_aware_without_correction"]


def _spec(n_pos: int, n_with: int, n_without: int, n_other: int = 0):
    spec, i = [], 0
    for cat, n in [("positive_feedback", n_pos), (NEG[0], n_with), (NEG[1], n_without),
                   ("repeat_or_rephrase", n_other)]:
        for _ in range(n):
            spec.append((f"c{i // 2}", 1 + i % 2, cat))
            i += 1
    return spec


def test_select_excludes_other_categories_and_flagged():
    fb = feedback_frame(_spec(4, 4, 4, 6), flagged={"c0"})
    rows = select_rows(fb, BuildKtoParams())
    assert "repeat_or_rephrase" not in set(rows["category"])
    assert "c0" not in set(rows["conversation_id"])
    assert len(rows) == 12 - 2


def test_downsample_undesirable_into_ratio_and_keeps_category_shares():
    rows = feedback_frame(_spec(30, 60, 30))
    out = downsample(rows, BuildKtoParams())
    n_d, n_u = (out["label"] == 1).sum(), (out["label"] == -1).sum()
    assert n_d == 30 and n_u == 30
    assert 1.0 <= n_d / n_u <= 4 / 3
    counts = out[out["label"] == -1]["category"].value_counts()
    assert counts[NEG[0]] == 20 and counts[NEG[1]] == 10  # stratified 2:1 kept


def test_downsample_desirable_when_too_many():
    rows = feedback_frame(_spec(100, 10, 10))
    out = downsample(rows, BuildKtoParams(ratio_min=1.0, ratio_max=1.5))
    assert (out["label"] == 1).sum() == 30 and (out["label"] == -1).sum() == 20


def test_weights_enter_the_ratio():
    rows = feedback_frame(_spec(30, 30, 30))
    out = downsample(rows, BuildKtoParams(desirable_weight=2.0))  # 2*30/60 = 1.0 already in range
    assert len(out) == 90


def test_downsampling_is_seeded():
    rows = feedback_frame(_spec(20, 50, 50))
    a = downsample(rows, BuildKtoParams(seed=1))
    b = downsample(rows, BuildKtoParams(seed=1))
    c = downsample(rows, BuildKtoParams(seed=2))
    assert a.index.tolist() == b.index.tolist()
    assert a.index.tolist() != c.index.tolist()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet="abcdef", min_size=1, max_size=3), min_size=2, max_size=60),
       st.floats(min_value=0.05, max_value=0.9), st.integers(0, 10))
def test_split_is_by_conversation_and_never_empty(ids, test_size, seed):
    test = split_conversations(pd.Series(ids), test_size, seed)
    unique = set(ids)
    if len(unique) > 1:
        assert 1 <= len(test) < len(unique)
    assert test <= unique


def test_build_kto_frames_are_trl_shaped_and_disjoint():
    fb = feedback_frame(_spec(40, 30, 30))
    frames, report = build_kto(fb, BuildKtoParams(test_size=0.25, min_confidence={}))
    train, test = frames["kto_train"], frames["kto_test"]
    assert set(train["conversation_id"]).isdisjoint(set(test["conversation_id"]))
    row = train.iloc[0]
    assert row["prompt"][-1]["role"] == "user"
    assert row["completion"][0]["role"] == "assistant"
    assert train["label"].dtype == bool
    assert report["desirable"] == 40 and report["undesirable"] == 40  # 60 negatives downsampled to 1:1
    assert report["weighted_ratio"] == pytest.approx(1.0)
    assert (frames["sft_train"].shape[0] + frames["sft_test"].shape[0]) == 40
    assert report["kto_train_rows"] + report["kto_test_rows"] == 80


def test_stratified_split_keeps_the_label_balance_and_whole_conversations():
    ids = [f"d{i}" for i in range(10)] + [f"u{i}" for i in range(40)] + ["m1", "m1", "m2", "m2"]
    labels = [1] * 10 + [-1] * 40 + [1, -1, 1, -1]
    for seed in range(5):
        test = split_conversations(pd.Series(ids), 0.2, seed, pd.Series(labels))
        assert len(test) == round(52 * 0.2)
        assert sum(t.startswith("d") for t in test) == 2 and sum(t.startswith("u") for t in test) == 8, test
    assert split_conversations(pd.Series(ids), 0.2, 1, pd.Series(labels)) == \
        split_conversations(pd.Series(ids), 0.2, 1, pd.Series(labels))  # seeded
