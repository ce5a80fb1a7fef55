"""Streaming readers for conversation logs and incremental parquet writers.

Inputs: JSONL, JSONL.gz and parquet, given as one file, a folder of shards or a glob. Records come
out one at a time with their origin so that a bad line can be quarantined with its location.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet")


class InputError(ValueError):
    """The input path names nothing readable."""


@dataclass(frozen=True)
class RawRecord:
    """One input row: the parsed object, or the reason it could not be parsed (and its raw text)."""

    source_file: str
    line: int
    obj: Any = None
    error: str | None = None
    raw: str | None = None


def resolve_inputs(path: str | Path) -> list[Path]:
    """Expand a file, a folder of shards or a glob into a sorted list of readable files."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(SUFFIXES))
    elif p.is_file():
        files = [p]
    else:
        files = sorted(Path(f) for f in glob.glob(str(path), recursive=True) if Path(f).is_file())
    files = [f for f in files if f.name.endswith(SUFFIXES) and ".rejected." not in f.name]
    if not files:
        raise InputError(f"no .jsonl, .jsonl.gz or .parquet files at {path!s}")
    return files


def _decode_line(source: str, lineno: int, data: bytes) -> RawRecord | None:
    if not data.strip():
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raw = data.decode("utf-8", errors="backslashreplace")
        return RawRecord(source, lineno, error=f"invalid_utf8: {err.reason} at byte {err.start}", raw=raw)
    try:
        return RawRecord(source, lineno, obj=json.loads(text))
    except json.JSONDecodeError as err:
        return RawRecord(source, lineno, error=f"invalid_json: {err.msg} (col {err.colno})", raw=text)


def _iter_jsonl(path: Path) -> Iterator[RawRecord]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        for lineno, data in enumerate(fh, start=1):
            rec = _decode_line(str(path), lineno, data)
            if rec is not None:
                yield rec


def _iter_parquet(path: Path, batch_size: int) -> Iterator[RawRecord]:
    pf = pq.ParquetFile(path)
    row = 0
    for batch in pf.iter_batches(batch_size=batch_size):
        for obj in batch.to_pylist():
            row += 1
            yield RawRecord(str(path), row, obj=obj)


def iter_records(path: str | Path, batch_size: int = 2000) -> Iterator[RawRecord]:
    """Stream every record of every input file, in file order."""
    for f in resolve_inputs(path):
        log.info("reading %s", f)
        if f.name.endswith(".parquet"):
            yield from _iter_parquet(f, batch_size)
        else:
            yield from _iter_jsonl(f)


class ParquetSink:
    """Append rows to a parquet file batch by batch; always leaves a valid file (maybe empty)."""

    def __init__(self, path: str | Path, schema: pa.Schema, batch_size: int = 2000) -> None:
        self.path = Path(path)
        self.schema = schema
        self.batch_size = batch_size
        self.rows_written = 0
        self._buffer: list[dict[str, Any]] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self.path, schema)

    def add(self, row: dict[str, Any]) -> None:
        self._buffer.append(row)
        if len(self._buffer) >= self.batch_size:
            self.flush()

    @property
    def rows(self) -> int:
        """Rows added so far (written or buffered)."""
        return self.rows_written + len(self._buffer)

    def flush(self) -> None:
        if self._buffer:
            self._writer.write_table(pa.Table.from_pylist(self._buffer, schema=self.schema))
            self.rows_written += len(self._buffer)
            self._buffer = []

    def close(self) -> None:
        self.flush()
        self._writer.close()

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sibling(path: str | Path, suffix: str) -> Path:
    """``out/x.parquet`` + ``rejected.parquet`` -> ``out/x.rejected.parquet`` (the output's stem)."""
    p = Path(path)
    stem = p.name.split(".")[0]
    return p.with_name(f"{stem}.{suffix}")


def write_json(path: str | Path, data: Any) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def file_md5(path: str | Path, chunk: int = 1 << 20) -> str:
    """MD5 of a file's bytes: the digest DVC records for a file output."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``path`` so that readers see the old or the new content, never a torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
