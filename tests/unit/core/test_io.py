"""Reports that stay the same on a rerun: timings and run facts go to the git-ignored sidecar."""

import json
import subprocess
from pathlib import Path

from natfeed.core.io import read_report, split_timings, timings_path, write_report

ROOT = Path(__file__).resolve().parents[3]


def test_split_moves_timing_figures_at_any_depth_and_nothing_else():
    report = {"rows": 3, "seconds": 1.5, "conversations_per_second": 2.0,
              "sft": {"steps": 4, "seconds": 0.5, "loss": 1.0}, "seconds_per_request": None,
              "params": {"shard_seconds": "300"}, "timings": {"models": 1.0},
              "seconds_detail": {"log_model": 1.0, "register": 0.1}}
    stable, timings = split_timings(report)
    assert stable == {"rows": 3, "sft": {"steps": 4, "loss": 1.0}, "params": {"shard_seconds": "300"},
                      "timings": {"models": 1.0}}
    assert timings == {"seconds": 1.5, "conversations_per_second": 2.0, "sft": {"seconds": 0.5},
                       "seconds_per_request": None, "seconds_detail": {"log_model": 1.0, "register": 0.1}}


def test_write_report_is_byte_identical_on_a_rerun_and_read_report_merges_back(tmp_path):
    path = tmp_path / "reports" / "train.json"
    write_report(path, {"rows": 3, "seconds": 1.5, "kto": {"seconds": 2.0, "steps": 1}})
    first = path.read_bytes()
    write_report(path, {"rows": 3, "seconds": 9.9, "kto": {"seconds": 7.0, "steps": 1}})
    assert path.read_bytes() == first and b"seconds" not in first
    side = json.loads(timings_path(path).read_text())
    assert timings_path(path).name == "train.timings.json" and side["seconds"] == 9.9
    assert side["written_at"] and "git_commit" in side
    merged = read_report(path)
    assert merged["kto"] == {"steps": 1, "seconds": 7.0} and merged["rows"] == 3 and merged["seconds"] == 9.9


def test_read_report_without_or_with_a_torn_sidecar_is_the_plain_report(tmp_path):
    path = tmp_path / "x.json"
    write_report(path, {"rows": 1, "seconds": 1.0})
    timings_path(path).write_text("{torn")
    assert read_report(path) == {"rows": 1}
    timings_path(path).unlink()
    assert read_report(path) == {"rows": 1}


def test_sidecars_and_registry_state_are_git_ignored():
    paths = ["reports/train.timings.json", "data/processed/feedback.report.timings.json", "reports/register.json",
             "reports/metrics/register.json", "dvc_plots/index.html"]
    ignored = subprocess.run(["git", "check-ignore", *paths], capture_output=True, text=True, cwd=ROOT)
    assert ignored.stdout.split() == paths, ignored.stderr
