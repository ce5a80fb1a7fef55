"""The ``natfeed`` command line: the pipeline's steps on your own files, without DVC.

Each command reads its defaults from ``params.yaml`` when one is present (``--params``) and calls
the same library function as the DVC stage.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer

from natfeed.config import Params, ParamsError, load_params, parse_params
from natfeed.logs import setup_logging

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
    from natfeed.ingest import run_ingest
    from natfeed.io import InputError, sibling, write_json

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
    params: Path = ParamsOpt,
) -> None:
    """Find feedback turns (the five categories of the paper) in conversations."""
    from natfeed.extract.run import extract_file, write_paper_csv
    from natfeed.io import InputError

    p = _params(params).extract
    if backend:
        p = p.model_copy(update={"backend": backend})
    try:
        result = extract_file(input, output, p)
    except (InputError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    if paper_csv:
        write_paper_csv(output, paper_csv)
    typer.echo(f"{result['conversations']} conversations, {result['user_turns']} judged turns -> "
               f"{result['rows']} feedback rows {result['rows_per_category']} in {result['seconds']}s")


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

    from natfeed.expectations import load_baseline, profile, save_baseline
    from natfeed.io import write_json
    from natfeed.validate import summary, validate_tables

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

    from natfeed.io import write_json
    from natfeed.kto_dataset import build_kto as build

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

    from natfeed.gold import compare, load_gold
    from natfeed.io import write_json

    q = compare(pd.read_parquet(feedback), load_gold(gold))
    if report:
        write_json(report, q)
    d, m = q["detection"], q["micro"]
    typer.echo(f"turns {q['n_turns']}  detection P/R/F1 {d['precision']:.3f}/{d['recall']:.3f}/{d['f1']:.3f}  "
               f"category P/R/F1 {m['precision']:.3f}/{m['recall']:.3f}/{m['f1']:.3f}")


def main() -> None:  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":  # python -m natfeed.cli
    main()
