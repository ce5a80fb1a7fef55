"""build_kto.min_confidence: thresholds chosen on the validation gold, applied before select/downsample."""

from __future__ import annotations

import csv
import logging

import pytest

from natfeed.core.errors import EXIT_USAGE, exit_code
from natfeed.data.build_kto import build_kto, resolve_min_confidence
from natfeed.data.thresholds import ThresholdError, apply_thresholds, choose_thresholds
from natfeed.params import BuildKtoParams, ParamsError, parse_params
from tests.support.helpers import feedback_frame

POS, WITH, WITHOUT = "positive_feedback", "make_aware_with_correction", "make_aware_without_correction"
KTO = [POS, WITH, WITHOUT]

# (conversation_id, feedback_turn, predicted category, confidence, gold category of user turn feedback_turn + 1)
# positive_feedback on the validation part: precision by threshold 0.5: 4/6, 0.6: 4/5, 0.7: 3/4 (not monotone),
# 0.8: 3/3, 0.9: 2/2; 6 gold positive turns (d/2 has no row, g/2 was predicted make_aware).
# make_aware_with_correction: 0.4: 2/5, 0.5: 2/4, 0.6: 1/3, 0.7: 1/2, 0.8: 0/1 -- never 0.8; best 0.5 twice.
ROWS = [
    ("a", 1, POS, 0.5, "none"), ("a", 2, POS, 0.6, POS), ("b", 1, POS, 0.7, WITH), ("b", 2, POS, 0.8, POS),
    ("c", 1, POS, 0.9, POS), ("c", 2, POS, 0.9, POS),
    ("e", 1, WITH, 0.4, "none"), ("e", 2, WITH, 0.5, WITH), ("f", 1, WITH, 0.6, "repeat_or_rephrase"),
    ("f", 2, WITH, 0.7, WITH), ("g", 1, WITH, 0.8, POS),
    ("t", 1, POS, 0.3, POS),  # a tuned-on part: must not count (it would add t = 0.3 and a 7th row)
]
GOLD = {(cid, ft + 1): g for cid, ft, _, _, g in ROWS} | {("d", 2): POS}
PARTS = {k: ("dev_part1" if k[0] == "t" else "dev_part4") for k in GOLD}


def _feedback(rows=ROWS, flagged=None):
    fb = feedback_frame([(cid, ft, cat) for cid, ft, cat, _, _ in rows], flagged=flagged)
    fb["confidence"] = [conf for *_, conf, _ in rows]
    return fb


def _choose(target=0.8, rows=ROWS):
    return choose_thresholds(_feedback(rows), GOLD, PARTS, ["dev_part4"], KTO, target)


def test_the_lowest_confidence_reaching_the_target_is_chosen():
    pos = _choose(0.8)[POS]
    assert pos["threshold"] == 0.6 and pos["reached"] is True and pos["target"] == 0.8
    assert pos["at_threshold"] == {"precision": 0.8, "recall": 0.6667, "n_pred": 5, "tp": 4, "n_gold": 6}
    assert pos["unthresholded"] == {"precision": 0.6667, "recall": 0.6667, "n_pred": 6, "tp": 4, "n_gold": 6}
    strict = _choose(0.9)[POS]  # 0.7 dips to 0.75: the next one reaching 0.9 is 0.8
    assert strict["threshold"] == 0.8 and strict["at_threshold"]["recall"] == 0.5


def test_an_unreached_target_takes_the_best_precision_lowest_on_ties_and_warns(caplog):
    caplog.set_level(logging.WARNING)
    table = _choose(0.8)
    mawc = table[WITH]
    assert mawc["threshold"] == 0.5 and mawc["reached"] is False  # 0.5 and 0.7 both give 1/2
    assert mawc["at_threshold"]["precision"] == 0.5 and mawc["at_threshold"]["n_pred"] == 4
    assert WITH in caplog.text and "0.500" in caplog.text and POS not in caplog.text  # reached: no warning
    none = table[WITHOUT]  # no row of the category on the validation turns
    assert none["threshold"] == 0.0 and none["reached"] is False and none["at_threshold"]["n_pred"] == 0


def test_apply_drops_rows_below_their_categorys_threshold_only():
    fb = _feedback()
    kept, dropped = apply_thresholds(fb, {POS: 0.6})
    assert dropped == {POS: 2}  # 0.5 and the tuned-part 0.3
    assert len(kept) == len(fb) - 2 and kept["confidence"][kept["category"] == WITH].min() == 0.4
    assert apply_thresholds(fb, {})[1] == {} and len(apply_thresholds(fb, {})[0]) == len(fb)


def test_off_and_hand_thresholds_need_no_gold():
    fb = _feedback()
    for off in ({}, None):
        thresholds, chosen = resolve_min_confidence(BuildKtoParams(min_confidence=off), fb)
        assert (thresholds, chosen) == ({}, None)
        _, report = build_kto(fb, BuildKtoParams(min_confidence=off, ratio_min=0.1, ratio_max=10))
        assert report["confidence_dropped"] == 0 and report["min_confidence"] == {}
        assert report["selected_rows"] == len(fb)
    hand = BuildKtoParams(min_confidence={WITH: 0.65}, ratio_min=0.1, ratio_max=10)
    assert resolve_min_confidence(hand, fb) == ({WITH: 0.65}, None)
    _, report = build_kto(fb, hand)
    assert report["min_confidence"] == {WITH: 0.65} and report["per_category"][WITH]["confidence_dropped"] == 3


def test_auto_from_a_gold_csv_matches_the_table(tmp_path):
    path = tmp_path / "gold.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["conversation_id", "user_turn", "category", "part", "note"])
        w.writerows([cid, turn, cat, PARTS[(cid, turn)], ""] for (cid, turn), cat in GOLD.items())
    p = BuildKtoParams(undesirable_categories=[WITH])
    thresholds, chosen = resolve_min_confidence(p, _feedback(), path, tuned_parts=["dev_part1"])
    assert thresholds == {POS: 0.6, WITH: 0.5} and chosen["validation_parts"] == ["dev_part4"]
    assert chosen["per_category"][POS]["unthresholded"]["n_pred"] == 6
    with pytest.raises(ThresholdError, match="has no validation turns.*by hand"):  # every part tuned on
        resolve_min_confidence(p, _feedback(), path, tuned_parts=["dev_part1", "dev_part4"])
    other = _feedback([("x", 1, POS, 0.9, POS)])
    with pytest.raises(ThresholdError, match="no validation turn with a feedback row"):
        resolve_min_confidence(p, other, path, tuned_parts=["dev_part1"])


def test_auto_without_gold_fails_with_exit_2_and_says_what_to_set(tmp_path):
    with pytest.raises(ThresholdError, match=r"set build_kto.min_confidence by hand .* or to \{\}") as err:
        resolve_min_confidence(BuildKtoParams(), _feedback(), tmp_path / "missing.csv")
    assert exit_code(err.value) == EXIT_USAGE
    with pytest.raises(ThresholdError, match="resolve it first"):
        build_kto(_feedback(), BuildKtoParams())


def test_rows_in_are_kept_plus_each_drop_reason():
    spec = [(f"c{i}", 1, POS, 0.9 if i % 3 else 0.5, "x") for i in range(12)]
    spec += [(f"c{i}", 2, WITH, 0.9 if i % 2 else 0.5, "x") for i in range(20)]
    spec += [(f"c{i}", 3, WITHOUT, 0.9, "x") for i in range(15)]
    spec += [(f"c{i}", 4, "repeat_or_rephrase", 0.1, "x") for i in range(5)]
    fb = _feedback(spec, flagged={"c1"})
    p = BuildKtoParams(min_confidence={POS: 0.8, WITH: 0.8})
    _, report = build_kto(fb, p)
    flow = report["per_category"]
    # positive: 4 of 12 below 0.8 (i % 3 == 0), c1 flagged; the 7 left are the smaller side, all kept
    assert flow[POS] == {"role": "desirable", "feedback_rows": 12, "confidence_dropped": 4, "flagged_dropped": 1,
                         "ratio_dropped": 0, "kept": 7}
    assert flow[WITH]["confidence_dropped"] == 10 and flow[WITH]["flagged_dropped"] == 1
    for cat in KTO:
        f = flow[cat]
        assert f["feedback_rows"] == f["confidence_dropped"] + f["flagged_dropped"] + f["ratio_dropped"] + f["kept"]
    assert flow["repeat_or_rephrase"]["confidence_dropped"] == 0  # no threshold: an unused category is untouched
    assert report["confidence_dropped"] == 14 and report["desirable"] == 7 and report["undesirable"] == 7


@pytest.mark.parametrize(("value", "expected"), [
    ({"positiv_feedback": 0.8}, "build_kto.min_confidence: unknown category 'positiv_feedback' "
                                "(did you mean 'positive_feedback'?)"),
    ({"repeat_or_rephrase": 0.5}, "'repeat_or_rephrase' is not used by KTO"),
    ({POS: 1.5}, "positive_feedback: 1.5 is not in [0, 1]"),
    ("Auto", "'Auto' is neither auto"),
])
def test_a_bad_min_confidence_fails_naming_the_key(value, expected):
    with pytest.raises(ParamsError) as err:
        parse_params({"build_kto": {"min_confidence": value}})
    assert expected in str(err.value)


def test_target_precision_and_valid_values():
    with pytest.raises(ParamsError, match="build_kto.target_precision"):
        parse_params({"build_kto": {"target_precision": 0}})
    p = parse_params({"build_kto": {"min_confidence": {"repeat_or_rephrase": 0.5},
                                    "undesirable_categories": ["repeat_or_rephrase"]}}).build_kto
    assert p.min_confidence == {"repeat_or_rephrase": 0.5} and p.kto_categories() == [POS, "repeat_or_rephrase"]
    assert BuildKtoParams().min_confidence == "auto" and BuildKtoParams().target_precision == 0.8
