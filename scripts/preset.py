"""Run a params preset (configs/presets/NAME.yaml) as a DVC experiment, in one command.

    python scripts/preset.py paper            # print the `dvc exp run -S ...` command and check the preset
    python scripts/preset.py paper --run      # run it (params.yaml in the workspace is left unchanged)

A preset has the shape of params.yaml and lists only the keys it changes; each leaf becomes a Hydra
``++key=value`` override (DVC's ``--set-param``), which sets the key or adds it. Before printing or
running, the preset merged into params.yaml is validated like params.yaml itself (and train.sft /
train.kto against TRL's SFTConfig / KTOConfig): a typo fails here, not hours into a GPU job.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def preset_path(name: str) -> Path:
    path = Path(name)
    return path if path.suffix in (".yaml", ".yml") else REPO / "configs" / "presets" / f"{name}.yaml"


def leaves(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            out.update(leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _value(value: Any) -> str:
    """A value in Hydra's grammar: JSON (strings quoted, so '/', ':' and '-' are safe), floats with a
    decimal point (Hydra reads ``5e-07`` as a string, ``5.0e-07`` as a float)."""
    if isinstance(value, float):
        text = repr(value)
        mantissa, _, exponent = text.partition("e")
        return f"{mantissa}.0e{exponent}" if exponent and "." not in mantissa else text
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(value)


def overrides(preset: Mapping[str, Any]) -> list[str]:
    """Hydra ``++key=value`` overrides, one per leaf of the preset."""
    return [f"++{key}={_value(value)}" for key, value in leaves(preset).items()]


def merged(params: Mapping[str, Any], preset: Mapping[str, Any]) -> dict[str, Any]:
    """params.yaml with the preset's leaves set (what the overrides produce)."""
    out = json.loads(json.dumps(params))
    for key, value in leaves(preset).items():
        node = out
        *parents, last = key.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):  # a null section (e.g. rm_judge: null) gets filled
                node[part] = {}
            node = node[part]
        node[last] = value
    return out


def check(data: Mapping[str, Any]) -> None:
    """Validate merged params like the stages do (raises natfeed.params.ParamsError)."""
    from natfeed.model.train import trainer_config
    from natfeed.params import parse_params

    params = parse_params(dict(data))
    trainer_config("sft", params.train, "models/sft")
    trainer_config("kto", params.train, "models/policy")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset", help="name in configs/presets/ (paper, paper-mistral-lora) or a YAML path")
    parser.add_argument("--run", action="store_true", help="run `dvc exp run` with the preset")
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    parser.add_argument("--no-check", action="store_true", help="skip validation (no TRL import)")
    args, extra = parser.parse_known_args(argv)
    preset = yaml.safe_load(preset_path(args.preset).read_text(encoding="utf-8")) or {}
    if not args.no_check:
        check(merged(yaml.safe_load(Path(args.params).read_text(encoding="utf-8")), preset))
    cmd = [sys.executable, "-m", "dvc", "exp", "run", *extra]
    for item in overrides(preset):
        cmd += ["-S", item]
    print(shlex.join(["dvc", *cmd[3:]]))
    return subprocess.run(cmd, cwd=REPO).returncode if args.run else 0


if __name__ == "__main__":
    sys.exit(main())
