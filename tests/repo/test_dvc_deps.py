"""dvc.yaml's deps cover what each stage really runs, so `dvc repro` reruns exactly the stages a change touches.

Each stage's natfeed deps must cover the import closure of its script (every import, also inside functions);
outputs come from params.yaml (``${paths.*}``), and no stage depends on the whole package.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.repo.imports import REPO, closure, module_file

DVC = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
STUDY = yaml.safe_load((REPO / "study/dvc.yaml").read_text(encoding="utf-8"))["stages"]
ALL = {**DVC, **{f"study/{name}": stage for name, stage in STUDY.items()}}
"""The pipeline's stages and the study's (study/dvc.yaml, run from the repository root: ``wdir: ..``)."""


def _deps(stage: dict) -> list[str]:
    return [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])]


def _script(stage: dict) -> Path:
    cmd = stage["cmd"].split()
    assert cmd[0] == "python" and cmd[1].startswith(("stages/", "study/stages/")), stage["cmd"]
    return REPO / cmd[1]


def _covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(REPO).as_posix()
    return any(rel == d.rstrip("/") or rel.startswith(d.rstrip("/") + "/") for d in deps)


def uncovered(stage: dict) -> list[str]:
    """The natfeed modules the stage's script reaches that none of its deps covers."""
    deps = _deps(stage)
    files = {module_file(m) for m in closure(_script(stage))}
    return sorted(f.relative_to(REPO).as_posix() for f in files if f is not None and not _covered(f, deps))


@pytest.mark.parametrize("name", sorted(ALL))
def test_deps_cover_the_import_closure(name):
    stage = ALL[name]
    assert _script(stage).relative_to(REPO).as_posix() in _deps(stage), "a stage's own script is one of its deps"
    assert uncovered(stage) == [], f"stage {name}: add these (or their subpackage) to its deps in dvc.yaml"


@pytest.mark.parametrize("name", sorted(ALL))
def test_no_stale_or_whole_package_code_deps(name):
    deps = _deps(ALL[name])
    code = [d for d in deps if d.startswith("src")]
    assert not {"src", "src/natfeed", "src/natfeed/"} & set(code), "never the whole package: any edit reruns all"
    reached = {module_file(m) for m in closure(_script(ALL[name]))}
    for dep in code:
        assert any(f is not None and _covered(f, [dep]) for f in reached), f"{name}: {dep} is not imported"


def test_deleting_a_dep_line_is_caught():
    stage = {**DVC["train"], "deps": [d for d in DVC["train"]["deps"] if d != "src/natfeed/model"]}
    assert "src/natfeed/model/train.py" in uncovered(stage)
    stage = {**DVC["extract"], "deps": [d for d in DVC["extract"]["deps"] if d != "src/natfeed/core"]}
    assert "src/natfeed/core/language.py" in uncovered(stage)


@pytest.mark.parametrize("name", sorted(ALL))
def test_outputs_come_from_params(name):
    stage = ALL[name]
    for kind in ("outs", "metrics", "plots"):
        for out in stage.get(kind, []):
            path = out if isinstance(out, str) else next(iter(out))
            assert path.startswith("${paths."), f"{name}: {kind} {path!r} is hard-coded; use ${{paths.*}}"


def test_a_module_used_only_by_train_is_a_dep_of_train_alone():
    holders = [name for name, stage in DVC.items() if _covered(REPO / "src/natfeed/model/train.py", _deps(stage))]
    assert holders == ["train"]
