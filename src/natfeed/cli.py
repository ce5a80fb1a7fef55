"""The ``natfeed`` command line: the pipeline's steps on your own files, without DVC.

Each command reads its defaults from ``params.yaml`` when one is present (``--params``) and calls the
same library function as the DVC stage. ``ingest``, ``extract``, ``validate``, ``build-kto`` and
``quality`` run anywhere (built-in defaults without a params file); ``promote``, ``rollback`` and
``models`` work on a project's MLflow store and need its params.yaml.

Exit codes: 0 ok, 1 the data failed a check (validate's gate, a refused promotion), 2 a usage or input
error. Errors are a few lines saying what to do; ``-v`` adds the traceback. Outputs are written to a
temporary file and renamed on success: a failed command leaves earlier outputs untouched.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import typer
from typer.core import TyperGroup

from natfeed.core.errors import (
    EXIT_CHECK_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    INPUT_ERRORS,
    exit_code,
    message,
    unexpected,
)
from natfeed.core.logs import setup_logging
from natfeed.params import Params, ParamsError, load_params, parse_params

log = logging.getLogger("natfeed")
_VERBOSE = {"on": False}


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that Python's flush at exit does not fail again on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout is not a file descriptor
        pass


class _Group(TyperGroup):
    """Every command under the error convention (:mod:`natfeed.core.errors`)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except BrokenPipeError:  # `natfeed summary | head`: the reader has gone, which is not an error
            _quiet_stdout()
            raise typer.Exit(EXIT_OK) from None
        except INPUT_ERRORS as err:
            if _VERBOSE["on"]:
                raise
            typer.echo(message(err), err=True)
            raise typer.Exit(exit_code(err)) from None
        except Exception as err:
            if _VERBOSE["on"]:
                raise
            typer.echo(unexpected(err, "run with -v"), err=True)
            raise typer.Exit(EXIT_USAGE) from None


app = typer.Typer(
    cls=_Group,
    help="natfeed: extract naturally occurring feedback from chat logs and build SFT/KTO data.\n\n"
         "Exit codes: 0 ok, 1 the data failed a check, 2 a usage or input error (-v shows the traceback).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULT_PARAMS = Path("params.yaml")
ParamsOpt = typer.Option(DEFAULT_PARAMS, "--params", help="params.yaml to read defaults from (built-in "
                         "defaults when ./params.yaml does not exist).")
ProjectParamsOpt = typer.Option(DEFAULT_PARAMS, "--params", help="The project's params.yaml (its tracking and "
                                "register sections name the MLflow store and the model).")


def _params(path: Path) -> Params:
    """The params file, or the built-in defaults when the default ./params.yaml is absent."""
    if path.exists():
        return load_params(path)
    if path != DEFAULT_PARAMS:
        raise ParamsError(f"{path} not found (--params)")
    return parse_params({})


def _project(path: Path) -> Params:
    """A project's params: commands that act on the MLflow store never make one in a random folder."""
    if not path.exists():
        where = "in " + str(Path.cwd()) if path == DEFAULT_PARAMS else str(path)
        raise ParamsError(f"no natfeed project here: {path} not found ({where}); run from the project root or "
                          "pass --params PATH")
    return load_params(path)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging and tracebacks.")) -> None:
    _VERBOSE["on"] = verbose
    setup_logging("DEBUG" if verbose else None)


@app.command()
def ingest(
    input: str = typer.Option(..., "--input", "-i", help="JSONL, JSONL.gz, JSON (an array of rows, read "
                              "streaming; a cut tail becomes one truncated_json rejected row) or parquet: a file, a "
                              "folder of shards or a glob (extensions in any case). LMSYS, WildChat, OpenAI "
                              "`messages` and ShareGPT rows (assistant-first chunks kept). Other files in a folder are skipped and listed in the report."),
    output: Path = typer.Option(..., "--output", "-o", help="Normalised conversations parquet. Malformed rows go "
                                "to <stem>.rejected.parquet, filtered rows to <stem>.filtered.parquet."),
    report: Path = typer.Option(None, "--report", help="Where to write the counts JSON "
                                "(default: <stem>.ingest.json beside the output)."),
    min_user_turns: int = typer.Option(None, help="Override ingest.min_user_turns."),
    language: list[str] = typer.Option(None, "--language", help="Keep only this language (repeatable)."),
    params: Path = ParamsOpt,
) -> None:
    """Normalise, quarantine malformed rows, filter and de-duplicate conversations."""
    from natfeed.core.io import sibling, write_report
    from natfeed.data.ingest import run_ingest

    p = _params(params).ingest
    overrides = {k: v for k, v in {"min_user_turns": min_user_turns, "languages": language}.items() if v}
    result = run_ingest(input, output, p.model_copy(update=overrides))
    write_report(report or sibling(output, "ingest.json"), result)
    typer.echo(f"read {result['rows_read']}: kept {result['rows_kept']}, rejected {result['rows_rejected']} "
               f"{result['rejected_by_reason']}, filtered {result['rows_filtered']} {result['filtered_by_filter']}")
    _skipped(result)


def _skipped(result: dict[str, Any]) -> None:
    for s in result.get("skipped_files", [])[:5]:
        typer.echo(f"skipped {s['file']}: {s['reason']}", err=True)
    if len(result.get("skipped_files", [])) > 5:
        typer.echo(f"... {len(result['skipped_files']) - 5} more skipped files (see the report)", err=True)
    if result.get("empty_input"):
        typer.echo(f"warning: {result['input']} holds no rows: the outputs are empty", err=True)


def _extract_params(p: Any, overrides: dict[str, Any]) -> Any:
    """``p`` with CLI overrides (nested sections merged), validated like params.yaml."""
    from pydantic import ValidationError

    from natfeed.params import ExtractParams
    from natfeed.params.base import format_errors

    data = p.model_dump()
    for key, value in overrides.items():
        if isinstance(value, dict):
            data[key] = {**data[key], **value}
        elif value is not None:
            data[key] = value
    try:
        return ExtractParams.model_validate(data)
    except ValidationError as err:
        raise ParamsError(format_errors(ExtractParams, err, "option (extract params)")) from None


@app.command()
def extract(
    input: str = typer.Option(..., "--input", "-i", help="Conversations: an ingested parquet, or raw logs in "
                              "any format `ingest` reads (normalised on the fly; malformed rows quarantined; a "
                              "conversation id seen before is dropped and counted)."),
    output: Path = typer.Option(..., "--output", "-o", help="feedback.parquet (one row per feedback turn); "
                                "<stem>.report.json is written beside it."),
    backend: str = typer.Option(None, "--backend", help="Extractor backend: heuristic (default), openai, "
                                "transformers, paper_loop or vllm; extract.backend."),
    paper_csv: Path = typer.Option(None, "--paper-csv", help="Also write the paper's CSV format "
                                   "(conversation_id, feedback_turn, category UR1-UR5, label)."),
    model: str = typer.Option(None, "--model", help="LLM backends: hub id or local path (transformers, "
                              "paper_loop, vllm) or the served model name (openai); extract.llm.model."),
    mode: str = typer.Option(None, "--mode", help="LLM backends: turn (one constrained label per user turn) "
                             "or paper (the paper's prompt per conversation); extract.mode."),
    base_url: str = typer.Option(None, "--base-url", help="openai backend: API root, e.g. "
                                 "http://localhost:8000/v1; extract.openai.base_url."),
    shard_dir: Path = typer.Option(None, "--shard-dir", help="LLM backends: folder of resumable shards "
                                   "(a rerun continues there); default <output folder>/.<stem>.shards."),
    shard_index: int = typer.Option(None, "--partition-index", "--shard-index", help="Scale-out, one machine's "
                                    "partition of the input: only the conversations with hash(conversation_id) "
                                    "% --num-partitions == this (0-based); merge the parts with `natfeed "
                                    "extract-merge`. Orthogonal to --executor. (--shard-index: the old name.) "
                                    "docs/SCALING.md."),
    num_shards: int = typer.Option(None, "--num-partitions", "--num-shards", help="Scale-out: how many machines' "
                                   "partitions share the input (--num-shards: the old name)."),
    executor: str = typer.Option(None, "--executor", help="local (default) or ray: the batches run on Ray Data "
                                 "actors (one extractor, one model load, per actor), on this machine or the "
                                 "cluster of --ray-address; extract.executor. docs/SCALING.md."),
    ray_address: str = typer.Option(None, "--ray-address", help="With --executor ray: auto, or ray://head:10001 "
                                    "(`ray start --head` prints it); default: a local Ray; extract.ray_address."),
    cache: bool = typer.Option(None, "--cache/--no-cache", help="LLM backends: answer from the judgement cache "
                               "where it holds the answer, and store new ones (default on; extract.cache)."),
    cache_dir: Path = typer.Option(None, "--cache-dir", help="The judgement cache's folder; default "
                                   "<shard dir>/cache; extract.cache_dir. See `natfeed cache stats`."),
    estimate: bool = typer.Option(False, "--estimate", help="Read and plan only: print the conversations, judged "
                                  "turns, requests, how many are cached, prompt tokens, and the time and cost at "
                                  "extract.cost's rates. Loads no model, sends nothing, writes nothing."),
    max_requests: int = typer.Option(None, "--max-requests", min=0, help="Budget: send at most N new requests "
                                     "(cache hits are free), keep what is done, write no feedback table and exit "
                                     "3; a rerun sends the rest. extract.llm.max_requests."),
    as_json: bool = typer.Option(False, "--json", help="With --estimate: the estimate as JSON."),
    params: Path = ParamsOpt,
) -> None:
    """Find feedback turns (the five categories of the paper) in conversations.

    Exit 0: done; 2: a usage or input error; 3: stopped by --max-requests (rerun to continue)."""
    from natfeed.extract.run import extract_file, extract_partition, write_paper_csv

    llm = {k: v for k, v in {"model": model, "max_requests": max_requests}.items() if v is not None}
    overrides = {"backend": backend, "mode": mode, "shard_dir": str(shard_dir) if shard_dir else None,
                 "executor": executor, "ray_address": ray_address, "cache": cache,
                 "cache_dir": str(cache_dir) if cache_dir else None,
                 "llm": llm or None, "openai": {"base_url": base_url} if base_url else None}
    project = _params(params)
    p = _extract_params(project.extract, overrides)
    if (shard_index is None) != (num_shards is None):
        raise ParamsError("give --partition-index and --num-partitions together")
    if estimate:
        from natfeed.extract.estimate import estimate_run, format_estimate

        est = estimate_run(input, output, p)
        typer.echo(json.dumps(est.to_dict(), indent=1) if as_json else format_estimate(est))
        return
    if num_shards is not None:
        result = extract_partition(input, output, p, shard_index, num_shards, project.ingest.redact)
    else:
        result = extract_file(input, output, p, redact=project.ingest.redact)
    if paper_csv:
        write_paper_csv(output, paper_csv)
    typer.echo(f"{result['conversations']} conversations, {result['judged_turns']} judged turns -> "
               f"{result['rows']} feedback rows {result['rows_per_category']} in {result['seconds']}s")
    if result.get("rows_rejected") or result.get("rows_duplicate"):
        typer.echo(f"{result['rows_rejected']} rows rejected, {result['rows_duplicate']} duplicate conversations "
                   "dropped", err=True)
    if result.get("requests") or result.get("cache_hits"):
        cost = result.get("estimated_cost")
        typer.echo(f"{result['requests']} requests sent, {result.get('cache_hits', 0)} answered from the cache, "
                   f"{result['prompt_tokens']} prompt + {result['generated_tokens']} generated tokens"
                   + (f" (~{cost:.4f} {result.get('cost_currency', '')})" if cost is not None else "")
                   + f", {result['parse_failures']} parse failures, {result['unmatched_spans']} unmatched spans; "
                   f"{result.get('shards_resumed', 0)} of {result.get('shards', 0)} shards resumed")
    _skipped(result)


@app.command("extract-merge")
def extract_merge(
    parts: list[Path] = typer.Argument(..., help="The outputs of `natfeed extract --shard-index i "
                                       "--num-shards n`, every i once (each with its <stem>.report.json)."),
    output: Path = typer.Option(..., "--output", "-o", help="Merged feedback.parquet (+ <stem>.report.json)."),
    paper_csv: Path = typer.Option(None, "--paper-csv", help="Also write the paper's CSV format."),
) -> None:
    """Merge the parts of a sharded extraction (disjoint by conversation) into one feedback file."""
    from natfeed.extract.partition import merge_outputs
    from natfeed.extract.run import write_paper_csv

    try:
        result = merge_outputs(parts, output)
    except ValueError as err:
        raise ParamsError(str(err)) from None
    if paper_csv:
        write_paper_csv(output, paper_csv)
    typer.echo(f"{result['num_shards']} parts: {result['conversations']} conversations -> {result['rows']} "
               f"feedback rows {result['rows_per_category']}")


def _read_table(path: Path, what: str) -> Any:
    """A parquet table, or an input error that names the file."""
    import pandas as pd

    from natfeed.core.readers import InputError

    if not path.is_file():
        raise InputError(f"{path}: no such file ({what})")
    try:
        return pd.read_parquet(path)
    except Exception as err:  # pyarrow's ArrowInvalid and friends for a file that is not parquet
        raise InputError(f"{path}: not a readable parquet file ({what}): {str(err)[:200]}") from None


@app.command()
def validate(
    input: Path = typer.Option(..., "--input", "-i", help="feedback.parquet to check."),
    conversations: Path = typer.Option(None, "--conversations", help="The ingested conversations; enables the "
                                       "turn-range check and the distribution expectations (Data Docs)."),
    report: Path = typer.Option(None, "--report", help="Write the full report JSON here."),
    docs_dir: Path = typer.Option(None, "--docs-dir", help="Data Docs output folder [default: data_docs/ beside "
                                  "--report, else <input stem>.data_docs/ beside --input]."),
    accept_baseline: bool = typer.Option(False, "--accept-baseline", help="On success, save this dataset's "
                                         "profile as the accepted baseline for drift checks."),
    params: Path = ParamsOpt,
) -> None:
    """Check schema, balance and distribution; exit 1 naming every failed check (2: not a feedback table)."""
    from natfeed.core.io import write_json
    from natfeed.data.expectations import load_baseline, profile, save_baseline
    from natfeed.data.validate import require_columns, summary, validate_tables

    cfg = _params(params)
    feedback = _read_table(input, "--input")
    require_columns(feedback, "feedback", str(input))
    conv = _read_table(conversations, "--conversations") if conversations else None
    if conv is not None:
        require_columns(conv, "conversations", str(conversations))
    baseline_path = Path(cfg.paths.expectations_baseline)
    if docs_dir is None:  # beside what this command writes, never ./reports of wherever it runs
        docs_dir = report.parent / "data_docs" if report else input.parent / f"{input.stem}.data_docs"
    result = validate_tables(conv, feedback, cfg.validate_, load_baseline(baseline_path), docs_dir)
    if report:
        write_json(report, result)
    typer.echo(summary(result), err=not result["passed"])
    if not result["passed"]:
        raise typer.Exit(EXIT_CHECK_FAILED)
    if accept_baseline and conv is not None:
        save_baseline(profile(conv, feedback), baseline_path)
        typer.echo(f"accepted as baseline: {baseline_path}")


def _min_confidence(values: list[str]) -> dict[str, float]:
    """``CAT=X`` options as {category: threshold} (validated with the params)."""
    out = {}
    for value in values:
        cat, _, number = value.partition("=")
        try:
            out[cat.strip()] = float(number)
        except ValueError:
            raise ParamsError(f"--min-confidence {value!r}: expected CATEGORY=THRESHOLD, e.g. "
                              "positive_feedback=0.8") from None
    return out


def _kto_params(p: Any, min_confidence: dict[str, float] | str | None) -> Any:
    """``p`` with ``min_confidence`` replaced, validated like params.yaml (a misspelt category: did you mean)."""
    from pydantic import ValidationError

    from natfeed.params import BuildKtoParams
    from natfeed.params.base import format_errors

    try:
        return BuildKtoParams.model_validate({**p.model_dump(), "min_confidence": min_confidence})
    except ValidationError as err:
        raise ParamsError(format_errors(BuildKtoParams, err, "option (build_kto params)")) from None


@app.command("build-kto")
def build_kto(
    input: Path = typer.Option(..., "--input", "-i", help="feedback.parquet (validated)."),
    output_dir: Path = typer.Option(..., "--output-dir", "-o", help="Folder for kto_train/kto_test/sft_train/"
                                    "sft_test parquet files."),
    gold: Path = typer.Option(None, "--gold", help="Gold CSV with a `part` column (as data/raw/gold_labels.csv): "
                              "choose each KTO category's confidence threshold on its parts not in "
                              "extract_quality.tuned_parts, for build_kto.target_precision."),
    min_confidence: list[str] = typer.Option(None, "--min-confidence", help="CATEGORY=THRESHOLD (repeatable): "
                                             "drop that category's rows below this confidence instead."),
    params: Path = ParamsOpt,
) -> None:
    """Build KTO (prompt, completion, label) and SFT data, balanced and split by conversation.

    Confidence thresholds: --gold chooses them (as the DVC stage does), --min-confidence sets them by hand;
    with neither, build_kto.min_confidence applies when params.yaml sets it by hand, and otherwise (auto, or
    no params.yaml) there are no thresholds.
    """
    from natfeed.core.io import write_json
    from natfeed.data.build_kto import build_kto as build
    from natfeed.data.build_kto import resolve_min_confidence, write_frames
    from natfeed.data.validate import require_columns

    if gold and min_confidence:
        raise ParamsError("give --gold (thresholds chosen on it) or --min-confidence (by hand), not both")
    cfg = _params(params)
    p = cfg.build_kto
    if min_confidence or gold:
        p = _kto_params(p, _min_confidence(min_confidence) if min_confidence else "auto")
    elif p.min_confidence == "auto":
        p = _kto_params(p, {})
    feedback = _read_table(input, "--input")
    require_columns(feedback, "feedback", str(input))
    thresholds, chosen = resolve_min_confidence(p, feedback, gold, cfg.extract_quality.tuned_parts)
    frames, result = build(feedback, p, thresholds)
    write_frames(frames, output_dir)
    write_json(output_dir / "build_kto.json", {**result, "thresholds": chosen})
    typer.echo(f"desirable {result['desirable']}, undesirable {result['undesirable']} "
               f"(weighted ratio {result['weighted_ratio']}); train {result['kto_train_rows']}, "
               f"test {result['kto_test_rows']} -> {output_dir}")
    if thresholds:
        typer.echo(f"min confidence {thresholds}: {result['confidence_dropped']} rows dropped")


@app.command()
def quality(
    feedback: Path = typer.Option(..., "--feedback", help="feedback.parquet from `natfeed extract`."),
    gold: list[Path] = typer.Option(..., "--gold", help="Gold CSV(s): conversation_id,user_turn,category."),
    report: Path = typer.Option(None, "--report", help="Write the metrics JSON here."),
) -> None:
    """Score extracted feedback against gold labels (turn-level detection and category F1)."""
    from natfeed.core.io import write_json
    from natfeed.data.extract_quality import compare, load_gold

    q = compare(_read_table(feedback, "--feedback"), load_gold(gold))
    if report:
        write_json(report, q)
    if not q["measured"]:
        from natfeed.core.errors import NatfeedError

        raise NatfeedError("none of the gold turns is in --feedback's conversations: quality is unknown "
                           "(check that the gold labels the same conversation_ids)")
    d, m = q["detection"], q["micro"]
    typer.echo(f"turns {q['n_turns']}  detection P/R/F1 {d['precision']:.3f}/{d['recall']:.3f}/{d['f1']:.3f}  "
               f"category P/R/F1 {m['precision']:.3f}/{m['recall']:.3f}/{m['f1']:.3f}")


def _registry(params: Path) -> Any:  # -> natfeed.params.RegisterParams
    """The project's register section, with MLflow pointed at its existing store (MLFLOW_TRACKING_URI wins)."""
    from natfeed.core.tracking import configure

    cfg = _project(params)
    configure(cfg.tracking, create=False)
    return cfg.register_


def _v(version: str | None) -> str:
    return f"v{version}" if version else "unset"


def _report_decision(name: str, decide: Callable[[], Any]) -> None:
    """Run a promotion or rollback; print it; exit 1 when it is refused."""
    decision = decide()
    for failure in decision.failures:
        typer.echo(f"  gate: {failure}", err=True)
    if not decision.applied:
        typer.echo(f"refused ({decision.action}) v{decision.version}: {name}@champion stays "
                   f"{_v(decision.champion_before)}; --force --reason TEXT overrides", err=True)
        raise typer.Exit(EXIT_CHECK_FAILED)
    typer.echo(f"{decision.action}: {name}@champion {_v(decision.champion_before)} -> "
               f"v{decision.champion_after} (by {decision.by}; `natfeed models --history` lists every decision)")


ForceOpt = typer.Option(False, "--force", help="Apply even when the gate fails (needs --reason).")
ReasonOpt = typer.Option(None, "--reason", help="Why; required with --force, recorded with the decision.")


@app.command()
def promote(
    version: int = typer.Option(..., "--version", help="Registered model version to make champion "
                                "(`natfeed models` lists them)."),
    force: bool = ForceOpt,
    reason: str = ReasonOpt,
    params: Path = ProjectParamsOpt,
) -> None:
    """Point the champion alias of register.model_name at a version if register.gate passes."""
    from natfeed.registry import promote as registry

    reg = _registry(params)
    _report_decision(reg.model_name, lambda: registry.promote(reg.model_name, version, reg.gate, force=force,
                                                              reason=reason))


@app.command()
def rollback(force: bool = ForceOpt, reason: str = ReasonOpt, params: Path = ProjectParamsOpt) -> None:
    """Give the champion alias back to the version that held it before the current one."""
    from natfeed.registry import promote as registry

    reg = _registry(params)
    _report_decision(reg.model_name, lambda: registry.rollback(reg.model_name, reg.gate, force=force,
                                                               reason=reason))


@app.command()
def models(
    as_json: bool = typer.Option(False, "--json", help="JSON (one object per version, or per decision with "
                                 "--history) for scripts."),
    show_history: bool = typer.Option(False, "--history", help="Every decision in order, oldest first: when, who, "
                                      "action, version, champion before -> after, the metric with its CI, reasons."),
    params: Path = ProjectParamsOpt,
) -> None:
    """List register.model_name's versions: aliases, gate decision, primary metric with CI, lineage.

    Decisions are append-only: the gate's decision at registration stays; promote, rollback and force add
    entries, which --history lists.
    """
    from natfeed.registry.versions import history_rows, history_table, list_versions, table

    reg = _registry(params)
    if show_history:
        events = history_rows(reg.model_name)
        typer.echo(json.dumps(events, indent=2) if as_json else
                   f"{reg.model_name}: {len(events)} decision(s), oldest first\n{history_table(events)}")
        return
    rows = list_versions(reg.model_name)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{reg.model_name}: {len(rows)} version(s), newest first (* = built from uncommitted changes)")
    typer.echo(table(rows))


cache_app = typer.Typer(cls=_Group, no_args_is_help=True, help="The judgement cache of the LLM backends: what "
                        "it holds (stats) and dropping old entries (prune). docs/SCALING.md, \"The judgement cache\".")
app.add_typer(cache_app, name="cache")
CacheDirOpt = typer.Option(None, "--cache-dir", help="The cache's folder; default extract.cache_dir, else the "
                           "pipeline's (<folder of paths.feedback>/.feedback.shards/cache).")


def _cache(cache_dir: Path | None, params: Path) -> Any:
    from natfeed.extract.checkpoint import shard_root, with_cache_dir
    from natfeed.extract.llm.cache import FILENAME, JudgementCache

    if cache_dir is None:
        p = _params(params)
        folder = with_cache_dir(p.extract.model_copy(update={"cache": True}), p.paths.feedback).cache_dir
        cache_dir = Path(folder or shard_root(p.extract, p.paths.feedback) / "cache")
    if not (cache_dir / FILENAME).is_file():
        raise ParamsError(f"{cache_dir} holds no judgement cache ({FILENAME}): an LLM extraction makes it, or "
                          "name one with --cache-dir")
    return JudgementCache(cache_dir)


@cache_app.command("stats")
def cache_stats(
    cache_dir: Path = CacheDirOpt,
    as_json: bool = typer.Option(False, "--json", help="JSON for scripts."),
    params: Path = ParamsOpt,
) -> None:
    """Entries, size on disk and, per model, entries, hits and the oldest and newest entry."""
    cache = _cache(cache_dir, params)
    stats = cache.stats()
    cache.close()
    if as_json:
        typer.echo(json.dumps(stats.to_dict(), indent=1))
        return
    typer.echo(f"{stats.path}: {stats.entries} entries, {stats.bytes / 2**20:.2f} MiB")
    rows = [("model", "entries", "hits", "oldest", "newest")] + [
        (m["model"], str(m["entries"]), str(m["hits"]), m["oldest"] or "-", m["newest"] or "-") for m in stats.by_model]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@cache_app.command("prune")
def cache_prune(
    older_than: str = typer.Option(..., "--older-than", help="Drop the entries written longer ago than this: "
                                   "30d, 12h, 90m, or seconds."),
    cache_dir: Path = CacheDirOpt,
    params: Path = ParamsOpt,
) -> None:
    """Delete old entries (their requests are sent again the next time they are needed)."""
    from natfeed.extract.llm.cache import parse_duration

    try:
        seconds = parse_duration(older_than)
    except ValueError as err:
        raise ParamsError(f"--older-than: {err}") from None
    cache = _cache(cache_dir, params)
    removed = cache.prune(seconds)
    left = cache.stats().entries
    cache.close()
    typer.echo(f"removed {removed} entries older than {older_than}; {left} left in {cache.path}")


review_app = typer.Typer(cls=_Group, no_args_is_help=True, help="Review extractor output in Label Studio and turn "
                         "the reviewers' labels into gold (export tasks, import the export).")
app.add_typer(review_app, name="review")


@review_app.command("export")
def review_export(
    input: Path = typer.Option(..., "--input", help="feedback.parquet written by `natfeed extract`."),
    output: Path = typer.Option(..., "--output", help="Label Studio tasks JSON to write; the labelling config "
                                "(<stem>.config.xml) and instructions (<stem>.instructions.html) go beside it."),
    conversations: Path = typer.Option(None, "--conversations", help="The conversations parquet it was extracted "
                                       "from: then every judged turn becomes a task (none where no row names it), "
                                       "not only the feedback rows."),
    max_confidence: float = typer.Option(None, "--max-confidence", help="Only the extractor's answers at or below "
                                         "this confidence (turns it called none stay)."),
    sample: int = typer.Option(None, "--sample", min=1, help="Draw this many tasks at random."),
    seed: int = typer.Option(0, "--seed", help="Seed of --sample."),
    guidelines: Path = typer.Option(Path("docs/ANNOTATION_GUIDELINES.md"), "--guidelines",
                                    help="Text shown to reviewers as the project's instructions (when it exists)."),
) -> None:
    """Write one Label Studio task per judged user turn, with the extractor's answer as a prediction.

    In Label Studio: create a project, paste <stem>.config.xml as its labelling interface and
    <stem>.instructions.html as its instructions, import the tasks; export as JSON when done.
    """
    from natfeed.data.review import export_tasks, select_turns

    feedback = _read_table(input, "--input: feedback rows")
    convs = _read_table(conversations, "--conversations") if conversations else None
    turns = select_turns(feedback, convs, max_confidence, sample, seed)
    text = guidelines.read_text(encoding="utf-8") if guidelines.exists() else None
    result = export_tasks(turns, output, text)
    shown = ", ".join(f"{k} {v}" for k, v in result["predicted"].items() if v)
    typer.echo(f"wrote {result['tasks']} tasks to {output} (predicted: {shown or 'none'}); labelling config "
               f"{result['config']}, instructions {result['instructions']}")


@review_app.command("import")
def review_import(
    input: Path = typer.Option(..., "--input", help="Label Studio's JSON export of the project."),
    output: Path = typer.Option(..., "--output", help="Gold CSV (conversation_id,user_turn,category,part,note) to "
                                "merge into; created when missing."),
    part: str = typer.Option("review", "--part", help="Value of the part column for the imported rows."),
    prefer_new: bool = typer.Option(False, "--prefer-new", help="On a conflict take the reviewer's label (default: "
                                    "keep the existing one)."),
) -> None:
    """Turn a Label Studio export into gold labels, merged with the existing ones; conflicts are listed."""
    from natfeed.data.review import import_annotations

    result = import_annotations(input, output, part, prefer_new)
    typer.echo(f"{output}: {result.added} labels added, {result.unchanged} unchanged, {len(result.conflicts)} "
               f"conflict(s), {len(result.skipped)} task(s) skipped")
    for c in result.conflicts:
        typer.echo(f"  conflict {c['conversation_id']} turn {c['user_turn']}: existing {c['existing']}, "
                   f"review {c['new']} -> kept {c['kept']}")
    for reason in result.skipped[:10]:
        typer.echo(f"  skipped {reason}")


@app.command()
def summary(params: Path = ProjectParamsOpt) -> None:
    """Print the last run's summary (what `make run` ends with): rows, feedback, quality, validation,
    training, evaluation and the registry decision, from the stages' reports; at most 25 lines."""
    from natfeed.core.gitinfo import git_commit
    from natfeed.report.summary import build_summary

    p = _project(params)
    commit, dirty = git_commit()
    label = (commit[:8] + ("+dirty" if dirty else "")) if commit else None
    typer.echo("\n".join(build_summary(p.paths, p.tracking.tracking_uri, label)))


def _stdout_is_devnull() -> bool:
    try:
        out, null = os.fstat(sys.__stdout__.fileno()), os.stat(os.devnull)
    except (OSError, ValueError, AttributeError):  # pragma: no cover - no real stdout
        return False
    return (out.st_dev, out.st_ino) == (null.st_dev, null.st_ino)


def main() -> None:  # pragma: no cover - the console script
    was_devnull = _stdout_is_devnull()
    try:
        app()
    except SystemExit as done:
        # A write to a closed pipe (`natfeed --help | head`) ends in exit 1 from rich (help pages: stdout moved
        # to /dev/null first) or click (stdout wrapped so the last flush stays quiet). The reader has gone,
        # which is not a failed check: exit 0.
        gone = (not was_devnull and _stdout_is_devnull()) or type(sys.stdout).__name__.lstrip("_") == \
            "PacifyFlushWrapper"
        if done.code == 1 and gone:
            sys.exit(EXIT_OK)
        raise


if __name__ == "__main__":  # python -m natfeed.cli
    main()
