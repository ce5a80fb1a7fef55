"""The ``natfeed`` command line: the pipeline's steps on your own files, without DVC.

Each command reads its defaults from ``params.yaml`` when one is present (``--params``) and calls
the same library function as the DVC stage.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer

from natfeed.core.logs import setup_logging
from natfeed.params import Params, ParamsError, load_params, parse_params

app = typer.Typer(
    help="natfeed: extract naturally occurring feedback from chat logs and build SFT/KTO data.",
    no_args_is_help=True,
    add_completion=False,
)
log = logging.getLogger("natfeed")

ParamsOpt = typer.Option(Path("params.yaml"), "--params", help="params.yaml to read defaults from "
                         "(built-in defaults when the file does not exist).")


def _params(path: Path) -> Params:
    try:
        return load_params(path) if path.exists() else parse_params({})
    except ParamsError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from None


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    setup_logging("DEBUG" if verbose else None)


@app.command()
def ingest(
    input: str = typer.Option(..., "--input", "-i", help="JSONL, JSONL.gz or parquet: a file, a folder of "
                              "shards or a glob. LMSYS, WildChat, OpenAI `messages` and ShareGPT rows."),
    output: Path = typer.Option(..., "--output", "-o", help="Normalised conversations parquet. Malformed rows go "
                                "to <stem>.rejected.parquet, filtered rows to <stem>.filtered.parquet."),
    report: Path = typer.Option(None, "--report", help="Where to write the counts JSON "
                                "(default: <stem>.ingest.json beside the output)."),
    min_user_turns: int = typer.Option(None, help="Override ingest.min_user_turns."),
    language: list[str] = typer.Option(None, "--language", help="Keep only this language (repeatable)."),
    params: Path = ParamsOpt,
) -> None:
    """Normalise, quarantine malformed rows, filter and de-duplicate conversations."""
    from natfeed.core.io import InputError, sibling, write_json
    from natfeed.data.ingest import run_ingest

    p = _params(params).ingest
    overrides = {k: v for k, v in {"min_user_turns": min_user_turns, "languages": language}.items() if v}
    p = p.model_copy(update=overrides)
    try:
        result = run_ingest(input, output, p)
    except InputError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    write_json(report or sibling(output, "ingest.json"), result)
    typer.echo(f"read {result['rows_read']}: kept {result['rows_kept']}, rejected {result['rows_rejected']} "
               f"{result['rejected_by_reason']}, filtered {result['rows_filtered']} {result['filtered_by_filter']}")


@app.command()
def extract(
    input: str = typer.Option(..., "--input", "-i", help="Conversations: an ingested parquet, or raw logs in "
                              "any format `ingest` reads (normalised on the fly; malformed rows quarantined)."),
    output: Path = typer.Option(..., "--output", "-o", help="feedback.parquet (one row per feedback turn); "
                                "<stem>.report.json is written beside it."),
    backend: str = typer.Option(None, "--backend", help="Extractor backend (default: extract.backend, "
                                "'heuristic')."),
    paper_csv: Path = typer.Option(None, "--paper-csv", help="Also write the paper's CSV format "
                                   "(conversation_id, feedback_turn, category UR1-UR5, label)."),
    model: str = typer.Option(None, "--model", help="LLM backends: hub id or local path (transformers, "
                              "paper_loop, vllm) or the served model name (openai); extract.llm.model."),
    mode: str = typer.Option(None, "--mode", help="LLM backends: turn (one constrained label per user turn) "
                             "or paper (the paper's prompt per conversation); extract.mode."),
    base_url: str = typer.Option(None, "--base-url", help="openai backend: API root, e.g. "
                                 "http://localhost:8000/v1; extract.openai.base_url."),
    shard_dir: Path = typer.Option(None, "--shard-dir", help="LLM backends: folder of resumable shards "
                                   "(a rerun continues there); extract.shard_dir."),
    shard_index: int = typer.Option(None, "--shard-index", help="Scale-out: extract only the conversations "
                                    "with hash(conversation_id) % --num-shards == this (0-based); merge the "
                                    "parts with `natfeed extract-merge`. docs/SCALING.md."),
    num_shards: int = typer.Option(None, "--num-shards", help="Scale-out: how many jobs share the input."),
    params: Path = ParamsOpt,
) -> None:
    """Find feedback turns (the five categories of the paper) in conversations."""
    from natfeed.core.io import InputError
    from natfeed.extract.run import extract_file, write_paper_csv
    from natfeed.params import ExtractParams

    p = _params(params).extract
    if backend:
        p = p.model_copy(update={"backend": backend})
    overrides = {"mode": mode, "shard_dir": str(shard_dir) if shard_dir else None,
                 "llm": {"model": model} if model else None, "openai": {"base_url": base_url} if base_url else None}
    if any(v is not None for v in overrides.values()):
        data = p.model_dump()
        for key, value in overrides.items():
            if isinstance(value, dict):
                data[key] = {**data[key], **value}
            elif value is not None:
                data[key] = value
        try:
            p = ExtractParams.model_validate(data)
        except ValueError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None
    if (shard_index is None) != (num_shards is None):
        typer.echo("error: give --shard-index and --num-shards together", err=True)
        raise typer.Exit(2)
    try:
        if num_shards is not None:
            from natfeed.extract.run import extract_partition

            result = extract_partition(input, output, p, shard_index, num_shards)
        else:
            result = extract_file(input, output, p)
    except (InputError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    if paper_csv:
        write_paper_csv(output, paper_csv)
    typer.echo(f"{result['conversations']} conversations, {result['user_turns']} judged turns -> "
               f"{result['rows']} feedback rows {result['rows_per_category']} in {result['seconds']}s")
    if result.get("requests"):
        typer.echo(f"{result['requests']} requests, {result['prompt_tokens']} prompt + {result['generated_tokens']} "
                   f"generated tokens, {result['parse_failures']} parse failures, {result['unmatched_spans']} "
                   f"unmatched spans; {result.get('shards_resumed', 0)} of {result.get('shards', 0)} shards resumed")


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
    except (FileNotFoundError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    if paper_csv:
        write_paper_csv(output, paper_csv)
    typer.echo(f"{result['num_shards']} parts: {result['conversations']} conversations -> {result['rows']} "
               f"feedback rows {result['rows_per_category']}")


@app.command()
def validate(
    input: Path = typer.Option(..., "--input", "-i", help="feedback.parquet to check."),
    conversations: Path = typer.Option(None, "--conversations", help="The ingested conversations; enables the "
                                       "turn-range check and the distribution expectations (Data Docs)."),
    report: Path = typer.Option(None, "--report", help="Write the full report JSON here."),
    docs_dir: Path = typer.Option(Path("reports/data_docs"), "--docs-dir", help="Data Docs output folder."),
    accept_baseline: bool = typer.Option(False, "--accept-baseline", help="On success, save this dataset's "
                                         "profile as the accepted baseline for drift checks."),
    params: Path = ParamsOpt,
) -> None:
    """Check schema, balance and distribution; exit 1 naming every failed check."""
    import pandas as pd

    from natfeed.core.io import write_json
    from natfeed.data.expectations import load_baseline, profile, save_baseline
    from natfeed.data.validate import summary, validate_tables

    cfg = _params(params)
    conv = pd.read_parquet(conversations) if conversations else None
    feedback = pd.read_parquet(input)
    baseline_path = Path(cfg.paths.expectations_baseline)
    result = validate_tables(conv, feedback, cfg.validate_, load_baseline(baseline_path), docs_dir)
    if report:
        write_json(report, result)
    typer.echo(summary(result), err=not result["passed"])
    if not result["passed"]:
        raise typer.Exit(1)
    if accept_baseline and conv is not None:
        save_baseline(profile(conv, feedback), baseline_path)
        typer.echo(f"accepted as baseline: {baseline_path}")


@app.command("build-kto")
def build_kto(
    input: Path = typer.Option(..., "--input", "-i", help="feedback.parquet (validated)."),
    output_dir: Path = typer.Option(..., "--output-dir", "-o", help="Folder for kto_train/kto_test/sft_train/"
                                    "sft_test parquet files."),
    params: Path = ParamsOpt,
) -> None:
    """Build KTO (prompt, completion, label) and SFT data, balanced and split by conversation."""
    import pandas as pd

    from natfeed.core.io import write_json
    from natfeed.data.build_kto import build_kto as build

    frames, result = build(pd.read_parquet(input), _params(params).build_kto)
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.to_parquet(output_dir / f"{name}.parquet", index=False)
    write_json(output_dir / "build_kto.json", result)
    typer.echo(f"desirable {result['desirable']}, undesirable {result['undesirable']} "
               f"(weighted ratio {result['weighted_ratio']}); train {result['kto_train_rows']}, "
               f"test {result['kto_test_rows']} -> {output_dir}")


@app.command()
def quality(
    feedback: Path = typer.Option(..., "--feedback", help="feedback.parquet from `natfeed extract`."),
    gold: list[Path] = typer.Option(..., "--gold", help="Gold CSV(s): conversation_id,user_turn,category."),
    report: Path = typer.Option(None, "--report", help="Write the metrics JSON here."),
) -> None:
    """Score extracted feedback against gold labels (turn-level detection and category F1)."""
    import pandas as pd

    from natfeed.core.io import write_json
    from natfeed.data.extract_quality import compare, load_gold

    q = compare(pd.read_parquet(feedback), load_gold(gold))
    if report:
        write_json(report, q)
    d, m = q["detection"], q["micro"]
    typer.echo(f"turns {q['n_turns']}  detection P/R/F1 {d['precision']:.3f}/{d['recall']:.3f}/{d['f1']:.3f}  "
               f"category P/R/F1 {m['precision']:.3f}/{m['recall']:.3f}/{m['f1']:.3f}")


def _register_params(params: Path):  # -> natfeed.params.RegisterParams
    """params.yaml's register section, with MLflow pointed at its store (MLFLOW_TRACKING_URI wins)."""
    from natfeed.core.tracking import configure

    cfg = _params(params)
    configure(cfg.tracking)
    return cfg.register_


def _v(version: str | None) -> str:
    return f"v{version}" if version else "unset"


def _report_decision(name: str, decide) -> None:  # decide: () -> natfeed.registry.promote.Decision
    """Run a promotion or rollback; print it; exit 1 when it is refused, 2 on bad input."""
    from natfeed.registry.promote import RegistryError

    try:
        decision = decide()
    except RegistryError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    for failure in decision.failures:
        typer.echo(f"  gate: {failure}", err=True)
    if not decision.applied:
        typer.echo(f"refused ({decision.action}) v{decision.version}: {name}@champion stays "
                   f"{_v(decision.champion_before)}; --force --reason TEXT overrides", err=True)
        raise typer.Exit(1)
    typer.echo(f"{decision.action}: {name}@champion {_v(decision.champion_before)} -> "
               f"v{decision.champion_after} (by {decision.by}; recorded in the tag natfeed.decision)")


ForceOpt = typer.Option(False, "--force", help="Apply even when the gate fails (needs --reason).")
ReasonOpt = typer.Option(None, "--reason", help="Why; required with --force, recorded with the decision.")


@app.command()
def promote(
    version: int = typer.Option(..., "--version", help="Registered model version to make champion."),
    force: bool = ForceOpt,
    reason: str = ReasonOpt,
    params: Path = ParamsOpt,
) -> None:
    """Point the champion alias of register.model_name at a version if register.gate passes."""
    from natfeed.registry import promote as registry

    reg = _register_params(params)
    _report_decision(reg.model_name, lambda: registry.promote(reg.model_name, version, reg.gate, force=force,
                                                              reason=reason))


@app.command()
def rollback(force: bool = ForceOpt, reason: str = ReasonOpt, params: Path = ParamsOpt) -> None:
    """Give the champion alias back to the version that held it before the current one."""
    from natfeed.registry import promote as registry

    reg = _register_params(params)
    _report_decision(reg.model_name, lambda: registry.rollback(reg.model_name, reg.gate, force=force,
                                                               reason=reason))


def main() -> None:  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":  # python -m natfeed.cli
    main()
