"""The README's study figures are the committed reports/study.json's (written by readme_block)."""

import json

import pytest

from natfeed.study.writeup import README_BEGIN, README_END, readme_block
from tests.repo.imports import REPO

STUDY = REPO / "reports" / "study.json"


@pytest.mark.skipif(not STUDY.exists(), reason="no committed study yet")
def test_readme_study_block_is_written_from_the_report():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start, end = readme.index(README_BEGIN), readme.index(README_END) + len(README_END)
    assert readme[start:end] == readme_block(json.loads(STUDY.read_text(encoding="utf-8"))), \
        "README's study block drifted: rewrite it with natfeed.study.writeup.readme_block(reports/study.json)"


def test_the_committed_study_keeps_its_promises():
    """Issue 19's done-when, on the committed full run."""
    if not STUDY.exists():
        pytest.skip("no committed study yet")
    from natfeed.study.__main__ import missing_keys

    study = json.loads(STUDY.read_text(encoding="utf-8"))
    assert missing_keys(study) == []
    assert study["corpora"]["sharegpt"]["conversations"] >= 17_000
    assert study["kto"]["train"] >= 1_000 and study["kto"]["test"] >= 300
    assert all(arm["n"] >= 300 for arm in study["arms"].values()) and len(study["arms"]) == 4
