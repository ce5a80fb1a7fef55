"""base_model: reads ${paths.conversations} (minus the test split's conversations in ${paths.kto_dir},
which evaluation uses as held-out prompts); writes the embedded default base model (a small Llama, its
byte-level BPE tokenizer trained on the sample and a chat template) to ${paths.base_model_dir} and
reports/base_model.json."""

from pathlib import Path

from natfeed.core.errors import run_stage
from natfeed.core.io import write_json
from natfeed.core.logs import setup_logging
from natfeed.core.tracking import stage_run
from natfeed.model.base_model import build_base_model, heldout_ids, load_conversations
from natfeed.params import load_params


def main() -> None:
    setup_logging()
    params = load_params()
    paths = params.paths
    with stage_run("base_model", params.tracking, params.base_model.model_dump()) as run:
        held_out = heldout_ids(paths.kto_dir)
        report = build_base_model(load_conversations(paths.conversations, held_out), params.base_model,
                                  paths.base_model_dir)
        report["heldout_conversations_excluded"] = len(held_out)
        out = Path(paths.reports_dir) / "base_model.json"
        write_json(out, report)
        run.metrics(report)
        run.artifact(out)
        run.dataset(paths.conversations, context="training", name="conversations")


if __name__ == "__main__":
    run_stage(main)
