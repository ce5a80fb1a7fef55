"""Writing outputs so that a failure never loses an earlier result.

Every output is written to a temporary file beside its target (same folder, so the rename cannot cross
file systems) and renamed onto it only when the write succeeded: a failed or killed run leaves the
previous output byte-identical and never a torn file. :class:`ParquetSink` streams rows that way;
:func:`atomic_path` gives any writer (pandas, csv, pyarrow) the same guarantee.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from natfeed.core.gitinfo import git_commit

log = logging.getLogger(__name__)


def temp_path(path: str | Path) -> Path:
    """A hidden temporary name beside ``path`` (``out/.x.parquet.<pid>.tmp``)."""
    p = Path(path)
    return p.with_name(f".{p.name}.{os.getpid()}.tmp")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on an exception it is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(target)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``path`` so that readers see the old or the new content, never a torn file."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_json(path: str | Path, data: Any) -> None:
    """A JSON report, written atomically."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    atomic_write(path, text.encode("utf-8"))


class ParquetSink:
    """Append rows to a parquet file batch by batch, into a temporary file that becomes ``path`` on
    :meth:`close`; :meth:`abort` (or leaving the ``with`` block by an exception) discards it, leaving any
    earlier ``path`` untouched. A closed sink always leaves a valid file (maybe without rows)."""

    def __init__(self, path: str | Path, schema: pa.Schema, batch_size: int = 2000) -> None:
        self.path = Path(path)
        self.schema = schema
        self.batch_size = batch_size
        self.rows_written = 0
        self._buffer: list[dict[str, Any]] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = temp_path(self.path)
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(self._tmp, schema)

    def add(self, row: dict[str, Any]) -> None:
        self._buffer.append(row)
        if len(self._buffer) >= self.batch_size:
            self.flush()

    def write_table(self, table: pa.Table) -> None:
        """Append a whole table (same schema)."""
        self.flush()
        if table.num_rows and self._writer is not None:
            self._writer.write_table(table)
            self.rows_written += table.num_rows

    @property
    def rows(self) -> int:
        """Rows added so far (written or buffered)."""
        return self.rows_written + len(self._buffer)

    def flush(self) -> None:
        if self._buffer and self._writer is not None:
            self._writer.write_table(pa.Table.from_pylist(self._buffer, schema=self.schema))
            self.rows_written += len(self._buffer)
            self._buffer = []

    def close(self) -> None:
        """Write what is buffered and put the file in place."""
        if self._writer is None:
            return
        self.flush()
        self._writer.close()
        self._writer = None
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Discard everything written; ``path`` keeps its earlier content."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def sibling(path: str | Path, suffix: str) -> Path:
    """``out/x.parquet`` + ``rejected.parquet`` -> ``out/x.rejected.parquet`` (the output's stem)."""
    p = Path(path)
    stem = p.name.split(".")[0]
    return p.with_name(f"{stem}.{suffix}")


def file_md5(path: str | Path, chunk: int = 1 << 20) -> str:
    """MD5 of a file's bytes: the digest DVC records for a file output."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def is_timing_key(key: str) -> bool:
    """A figure that differs on every run: ``seconds``, ``*_seconds``, ``seconds_*``, ``*_per_second``."""
    return key == "seconds" or key.endswith("_seconds") or key.startswith("seconds_") or key.endswith("_per_second")


def split_timings(report: Any) -> tuple[Any, dict[str, Any]]:
    """``report`` without its timing figures, and those figures at the same nested places.

    Only numbers (or nested mappings of numbers) under a timing key move: a param that happens to be called
    ``shard_seconds`` inside a list or a string value stays where it is."""
    if not isinstance(report, dict):
        return report, {}
    stable: dict[str, Any] = {}
    timings: dict[str, Any] = {}
    for key, value in report.items():
        if is_timing_key(str(key)) and _numeric(value):
            timings[key] = value
        elif isinstance(value, dict):
            inner, inner_timings = split_timings(value)
            stable[key] = inner
            if inner_timings:
                timings[key] = inner_timings
        else:
            stable[key] = value
    return stable, timings


def _numeric(value: Any) -> bool:
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return True
    return isinstance(value, dict) and bool(value) and all(_numeric(v) for v in value.values())


def timings_path(path: str | Path) -> Path:
    """``reports/train.json`` -> ``reports/train.timings.json`` (git-ignored: ``*.timings.json``)."""
    p = Path(path)
    return p.with_name(f"{p.name[:-5] if p.name.endswith('.json') else p.name}.timings.json")


def write_report(path: str | Path, report: dict[str, Any]) -> dict[str, Any]:
    """Write a report that is the same on every run of the same inputs: its timing figures go to the
    git-ignored ``timings_path(path)`` beside it, with when and from which commit it was written (the stage
    logs them to MLflow too), so a tracked report and ``dvc.lock`` stay unchanged by a rerun. Returns the
    timings."""
    from datetime import UTC, datetime

    stable, timings = split_timings(report)
    write_json(path, stable)
    sha, dirty = git_commit()
    facts = {"written_at": datetime.now(UTC).isoformat(timespec="seconds"), "git_commit": sha, "git_dirty": dirty}
    write_json(timings_path(path), {**timings, **facts})
    return timings


def read_report(path: str | Path) -> dict[str, Any]:
    """A report written by :func:`write_report` with its timings merged back (when the sidecar exists)."""
    report = json.loads(Path(path).read_text(encoding="utf-8"))
    side = timings_path(path)
    if side.is_file():
        try:
            _merge(report, json.loads(side.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            log.warning("%s is unreadable; timings left out", side)
    return report


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
