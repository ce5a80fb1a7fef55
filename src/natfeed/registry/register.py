"""Stage ``register``: log the trained policy to MLflow, register a version with its lineage, gate it.

How the weights are logged (``register.log_weights``):

* ``full`` — MLflow's transformers flavor from the saved folder, task ``llm/v1/chat``: MLflow's own
  chat-completions signature and ``predict``; the folder is copied without being loaded. A LoRA
  adapter folder is merged into its base model first.
* ``adapter`` — the LoRA adapter folder is the artifact; the base model is a reference (Hub id or
  absolute path) loaded by ``natfeed/registry/chat_model.py``, logged "from code". The transformers flavor
  cannot log an adapter without loading the whole base model into memory.
* ``reference`` — nothing copied: ``chat_model.py`` loads ``register.reference`` (or the policy
  folder's absolute path) at load time. The transformers flavor can only reference Hub ids.
* ``auto`` — ``adapter`` for an adapter folder, else ``full`` up to ``max_full_gb``, else ``reference``.

All three answer MLflow's chat convention: ``{"messages": [...]}`` in, a list of chat-completions
responses out. Pip requirements are explicit, pinned to the installed versions (no inference, so
logging imports nothing heavy and needs neither torchvision nor the network).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
import warnings
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from natfeed.core.gitinfo import git_branch, git_commit
from natfeed.core.io import file_md5
from natfeed.params import RegisterParams
from natfeed.registry.promote import (
    CHALLENGER,
    RegistryError,
    VersionInfo,
    champion_version,
    gate_only,
    promote,
    retry_conflicts,
)

log = logging.getLogger(__name__)

CHAT_MODEL_FILE = Path(__file__).with_name("chat_model.py")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


def read_json(path: str | Path) -> dict[str, Any] | None:
    """A JSON report, or None when the file does not exist."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def is_adapter(policy_dir: str | Path) -> bool:
    return (Path(policy_dir) / "adapter_config.json").exists()


def adapter_base(policy_dir: str | Path) -> str:
    """The adapter's base model: a Hub id, or a local path made absolute (relative to the CWD)."""
    base = json.loads((Path(policy_dir) / "adapter_config.json").read_text())["base_model_name_or_path"]
    return str(Path(base).resolve()) if Path(base).exists() else base


def weights_gb(policy_dir: str | Path) -> float:
    return sum(f.stat().st_size for f in Path(policy_dir).rglob("*") if f.suffix in WEIGHT_SUFFIXES) / 2**30


def choose_log_weights(policy_dir: str | Path, params: RegisterParams) -> str:
    """Resolve ``auto``; check that ``adapter`` has an adapter to log."""
    mode = params.log_weights
    if mode == "auto":
        if is_adapter(policy_dir):
            return "adapter"
        return "full" if weights_gb(policy_dir) <= params.max_full_gb else "reference"
    if mode == "adapter" and not is_adapter(policy_dir):
        raise RegistryError(f"register.log_weights is adapter but {policy_dir} holds no LoRA adapter "
                            "(adapter_config.json): train with train.lora.enabled and merge: false, or use full")
    return mode


def pip_requirements(adapter: bool) -> list[str]:
    """The logged model's requirements, pinned to the installed versions (local tags like +cpu dropped)."""
    names = ["mlflow", "transformers", "torch", "accelerate", *(["peft"] if adapter else [])]
    out = []
    for name in names:
        try:
            out.append(f"{name}=={metadata.version(name).split('+')[0]}")
        except metadata.PackageNotFoundError:
            out.append(name)
    return out


def dvc_out_md5(path: str | Path, lock: str | Path = "dvc.lock") -> str | None:
    """The md5 that dvc.lock records for an output path (a folder's is its .dir md5), if any."""
    if not Path(lock).exists():
        return None
    stages = (yaml.safe_load(Path(lock).read_text(encoding="utf-8")) or {}).get("stages", {})
    for stage in stages.values():
        for out in stage.get("outs", []):
            if Path(out.get("path", "")) == Path(path):
                return out.get("md5")
    return None


def policy_digest(policy_dir: str | Path) -> str:
    """md5 over the policy folder's files (relative names and contents): the same weights give the same digest."""
    digest = hashlib.md5()
    for f in sorted(p for p in Path(policy_dir).rglob("*") if p.is_file()):
        digest.update(f.relative_to(policy_dir).as_posix().encode() + b"\0" + file_md5(f).encode() + b"\n")
    return digest.hexdigest()


def version_identity(tags: Mapping[str, str]) -> str:
    """What makes two versions the same model: the weights' digest, the data's md5s and the params' md5."""
    keys = sorted(k for k in tags if k.startswith("natfeed.data.") or k in ("natfeed.policy_digest",
                                                                          "natfeed.params_md5"))
    return hashlib.md5(json.dumps({k: tags[k] for k in keys}, sort_keys=True).encode()).hexdigest()


def identical_version(client: Any, name: str, identity: str) -> Any:
    """The registered version of ``name`` with this identity (the oldest), or None."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    same = [mv for mv in versions if (mv.tags or {}).get("natfeed.identity") == identity]
    return min(same, key=lambda mv: int(mv.version)) if same else None


def lineage_tags(policy_dir: str | Path, kto_dir: str | Path, extract_report: Mapping[str, Any] | None,
                 params_file: str | Path = "params.yaml") -> dict[str, str]:
    """Where the model came from: code, data (DVC md5 of the parquet files), params, extractor."""
    sha, dirty = git_commit()
    tags = {"natfeed.git_commit": sha, "natfeed.git_dirty": str(dirty).lower(),
            "natfeed.params_md5": file_md5(params_file) if Path(params_file).exists() else "none",
            "natfeed.policy_dir": str(policy_dir), "natfeed.policy_digest": policy_digest(policy_dir)}
    for parquet in sorted(Path(kto_dir).glob("*.parquet")):
        tags[f"natfeed.data.{parquet.stem}.md5"] = file_md5(parquet)
    if policy_md5 := dvc_out_md5(policy_dir):
        tags["natfeed.policy_md5"] = policy_md5
    identity = str((extract_report or {}).get("extractor") or "")
    if identity:  # "heuristic-1.0.0", or "<backend>-<mode>:<model>" for the LLM backends
        tags["natfeed.extractor"] = identity
        tags["natfeed.extractor_backend"] = identity.split("-")[0]
        if ":" in identity:
            tags["natfeed.extractor_model"] = identity.split(":", 1)[1]
    return tags


def _chat_signature() -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types.llm import CHAT_MODEL_INPUT_SCHEMA, CHAT_MODEL_OUTPUT_SCHEMA

    return ModelSignature(CHAT_MODEL_INPUT_SCHEMA, CHAT_MODEL_OUTPUT_SCHEMA)


def _merged_copy(adapter_dir: Path, out: Path) -> Path:
    """A LoRA adapter merged into its base model, saved as a full model folder."""
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    AutoPeftModelForCausalLM.from_pretrained(adapter_dir).merge_and_unload().save_pretrained(out)
    AutoTokenizer.from_pretrained(adapter_dir).save_pretrained(out)
    return out


def _named(source: Path, name: str) -> dict[str, Any]:
    """The model and tokenizer in memory, the model named ``name``: MLflow's chat responses give that name as
    their ``"model"`` (from a folder they would give its local path)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(source))
    model.name_or_path = name  # what MLflow records as the source model's name
    return {"model": model, "tokenizer": AutoTokenizer.from_pretrained(str(source))}


def log_policy(policy_dir: str | Path, mode: str, params: RegisterParams) -> Any:
    """Log the policy into the active MLflow run; return MLflow's ModelInfo."""
    policy = Path(policy_dir).resolve()  # absolute: a relative path would look like a Hub id
    adapter = is_adapter(policy)
    config = {"model_name": params.model_name, "max_tokens": params.max_new_tokens}
    quiet = logging.getLogger("mlflow.transformers")  # "no model card on the Hub": a path has none
    level = quiet.level
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore", UserWarning)  # "no input example": running predict costs a model load
        quiet.setLevel(logging.ERROR)
        try:
            return _log(policy, adapter, mode, params, config, Path(tmp))
        finally:
            quiet.setLevel(level)


def _log(policy: Path, adapter: bool, mode: str, params: RegisterParams, config: dict[str, Any], tmp: Path) -> Any:
    import mlflow

    if mode == "full":
        source = _merged_copy(policy, tmp) if adapter else policy
        return mlflow.transformers.log_model(_named(source, params.model_name), name="model", task="llm/v1/chat",
                                             pip_requirements=pip_requirements(False),
                                             model_config={"max_new_tokens": params.max_new_tokens})
    if mode == "adapter":
        artifacts, config = {"adapter": str(policy)}, {**config, "base_model": adapter_base(policy)}
    else:
        ref = params.reference or str(policy)
        artifacts = {}
        config |= {"adapter_ref": ref, "base_model": adapter_base(policy)} if adapter else {"model_ref": ref}
        log.warning("log_weights reference: the registered model loads %s at load time; keep it there", ref)
    return mlflow.pyfunc.log_model(name="model", python_model=str(CHAT_MODEL_FILE), artifacts=artifacts,
                                   model_config=config, signature=_chat_signature(),
                                   pip_requirements=pip_requirements(adapter))


def experiment_name(champion_branches: list[str]) -> str | None:
    """The experiment this run belongs to, or None for a run that may move ``champion``: DVC sets
    ``DVC_EXP_NAME`` in ``dvc exp run``; a run on a branch outside ``champion_branches`` (or on a detached
    HEAD) is an experiment named after it. Outside git there is no branch to go by: not an experiment."""
    name = os.environ.get("DVC_EXP_NAME")
    if name:
        return name
    branch = git_branch()
    if branch is None or branch in champion_branches:
        return None
    return "detached" if branch == "HEAD" else f"branch-{branch}"


def register_record(report: Mapping[str, Any]) -> dict[str, Any]:
    """What ``paths.register_record`` holds: the model's name and identity (weights, data and params), no
    version or time, so that registering the same model again writes the same bytes."""
    tags = report.get("tags") or {}
    return {"model_name": report["model_name"], "identity": tags.get("natfeed.identity"),
            "policy_digest": tags.get("natfeed.policy_digest")}


def experiment_alias(name: str) -> str:
    """``exp-<name>`` as a valid MLflow alias (letters, digits, ``_`` and ``-``)."""
    return "exp-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "unnamed")[:200]


def register_policy(policy_dir: str | Path, reports_dir: str | Path, kto_dir: str | Path,
                    params: RegisterParams, params_file: str | Path = "params.yaml") -> dict[str, Any]:
    """Log, register (alias challenger) and gate the policy inside the active MLflow run; return the
    report for ``reports/register.json``."""
    import mlflow

    reports_dir = Path(reports_dir)
    evaluate = read_json(reports_dir / "evaluate.json")
    if evaluate is None:
        raise RegistryError(f"{reports_dir / 'evaluate.json'} not found: run the evaluate stage first")
    info = VersionInfo.from_reports(evaluate, read_json(reports_dir / "validate.json"))
    tags = {**lineage_tags(policy_dir, kto_dir, read_json(reports_dir / "extract.json"), params_file),
            **info.to_tags()}
    tags["natfeed.identity"] = version_identity(tags)
    client = mlflow.MlflowClient()
    experiment = experiment_name(params.champion_branches)
    same = identical_version(client, params.model_name, tags["natfeed.identity"])
    if same is not None:
        return _already_registered(client, params.model_name, same, experiment)
    mode = choose_log_weights(policy_dir, params)
    tags["natfeed.log_weights"] = mode
    if mode != "full" and is_adapter(policy_dir):
        tags["natfeed.base_model"] = adapter_base(policy_dir)
    start = time.perf_counter()
    logged = log_policy(policy_dir, mode, params)
    logged_s = time.perf_counter() - start
    if experiment is not None:
        tags["natfeed.experiment"] = experiment
    mv = retry_conflicts(mlflow.register_model, logged.model_uri, params.model_name, tags=tags)
    alias = CHALLENGER if experiment is None else experiment_alias(experiment)
    retry_conflicts(client.set_registered_model_alias, params.model_name, alias, mv.version)
    registered_s = time.perf_counter() - start - logged_s
    if experiment is None:
        decision = promote(params.model_name, mv.version, params.gate, source="stage", client=client)
    else:
        decision = gate_only(params.model_name, mv.version, params.gate, f"experiment {experiment!r}",
                             client=client)
    champion = champion_version(client, params.model_name)
    aliases = sorted(client.get_model_version(params.model_name, mv.version).aliases)
    log.info("registered %s v%s (%s, %.1fs + %.1fs): %s", params.model_name, mv.version, mode, logged_s,
             registered_s, decision.action)
    return {"model_name": params.model_name, "version": int(mv.version), "model_uri": f"models:/{params.model_name}/"
            f"{mv.version}", "logged_model_uri": logged.model_uri, "log_weights": mode, "aliases": aliases,
            "champion_version": int(champion) if champion else None, "promoted": decision.action == "promote",
            "experiment": experiment, "registered": True, "identical_to": None,
            "decision": json.loads(decision.to_json()), "tags": tags,
            "seconds": {"log_model": round(logged_s, 2), "register": round(registered_s, 2)}}


def _already_registered(client: Any, name: str, mv: Any, experiment: str | None) -> dict[str, Any]:
    """The report when the policy is identical to version ``mv`` (same weights, data and params): nothing is
    logged, registered or decided."""
    champion = champion_version(client, name)
    aliases = sorted(client.get_model_version(name, mv.version).aliases
                     or [a for a, v in (client.get_registered_model(name).aliases or {}).items()
                         if str(v) == str(mv.version)])
    log.warning("%s v%s holds the same weights, data and params: not registered again", name, mv.version)
    return {"model_name": name, "version": int(mv.version), "model_uri": f"models:/{name}/{mv.version}",
            "logged_model_uri": mv.source, "log_weights": mv.tags.get("natfeed.log_weights"), "aliases": aliases,
            "champion_version": int(champion) if champion else None, "promoted": False, "experiment": experiment,
            "registered": False, "identical_to": int(mv.version),
            "decision": {"action": "identical", "passed": None, "failures": [],
                         "reason": f"identical to v{mv.version} (weights, data, params): not registered again"},
            "tags": dict(mv.tags or {}), "seconds": {"log_model": 0.0, "register": 0.0}}
