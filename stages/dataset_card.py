"""dataset_card: reads ${paths.conversations}, ${paths.feedback}, ${paths.kto_dir} and the extract,
build_kto and extract_quality reports; writes the Hugging Face dataset card ${paths.dataset_card}, its PNG
figures in ${paths.figures_dir} and reports/prevalence.json (feedback share by language and model)."""

from natfeed.core.errors import run_stage
from natfeed.core.logs import setup_logging
from natfeed.core.tracking import stage_run
from natfeed.params import load_params
from natfeed.report.card import write_card


def main() -> None:
    setup_logging()
    params = load_params()
    paths = params.paths
    with stage_run("dataset_card", params.tracking, params.dataset_card.model_dump()) as run:
        result = write_card(params.dataset_card, paths, params.build_kto.undesirable_categories)
        run.metrics({"conversations": result["report"]["conversations"],
                     "with_feedback": result["report"]["with_feedback"]})
        run.artifact(result["card"], "dataset_card")
        run.dataset(paths.feedback, context="described", name="feedback")
        for figure in result["figures"].values():
            run.artifact(figure, "dataset_card/figures")


if __name__ == "__main__":
    run_stage(main)
