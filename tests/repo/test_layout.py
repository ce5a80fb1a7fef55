"""The package layout: domain subpackages, no import cycle (lazy imports included), params free of stage code."""

from __future__ import annotations

from tests.repo.imports import SRC, closure, find_cycle, import_graph

PACKAGE = SRC / "natfeed"


def test_no_import_cycle_even_through_lazy_imports():
    assert find_cycle(import_graph()) is None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_params_import_no_stage_code():
    reached = closure(PACKAGE / "params" / "__init__.py")
    allowed = {"natfeed", "natfeed.params", "natfeed.core", "natfeed.core.categories", "natfeed.core.errors"}
    assert {m for m in reached if not m.startswith("natfeed.params.")} <= allowed


def test_few_loose_modules_and_a_package_init():
    assert (PACKAGE / "__init__.py").is_file()
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(loose) <= 8, loose
    assert all((d / "__init__.py").is_file() for d in PACKAGE.rglob("*") if d.is_dir() and d.name != "__pycache__")


def test_tests_mirror_the_source_tree():
    tests = SRC.parent / "tests" / "unit"
    packages = sorted(d.relative_to(PACKAGE).as_posix() for d in PACKAGE.iterdir() if (d / "__init__.py").exists())
    assert all((tests / p).is_dir() for p in packages), [p for p in packages if not (tests / p).is_dir()]
