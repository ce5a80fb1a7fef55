"""Streaming readers for conversation logs: JSONL, JSONL.gz, JSON arrays or JSON lines (``.json``,
``.json.gz``) and parquet.

An input is one file, a folder of shards or a glob. Extensions match in any case (``.JSONL``,
``.Parquet``); in a folder or glob, files natfeed cannot read (``.txt``, ``.csv``, ...) and natfeed's own
side outputs (``*.rejected.parquet``, ``*.report.json``, ...) are skipped and listed with the reason, so a
report can say what was left out. Records come out one at a time with their origin, so that a bad line
can be quarantined with its location: ``line`` is the line of a JSONL row, the 1-based position of a row in
a JSON array (:mod:`natfeed.core.json_array`: a cut or malformed tail becomes one error record), the row
number in a parquet file.
"""

from __future__ import annotations

import glob
import gzip
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from natfeed.core.errors import NatfeedError
from natfeed.core.json_array import JsonLayoutError, iter_array, json_layout

log = logging.getLogger(__name__)

SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet")
SIDE_OUTPUTS = (".rejected.parquet", ".filtered.parquet", ".report.json", ".ingest.json", ".parse_failures.jsonl",
                ".timings.json")
"""natfeed's own files written beside an output: never read back as conversations."""


class InputError(NatfeedError, ValueError):
    """The input path names nothing readable."""


@dataclass(frozen=True)
class RawRecord:
    """One input row: the parsed object, or the reason it could not be parsed (and its raw text)."""

    source_file: str
    line: int
    obj: Any = None
    error: str | None = None
    raw: str | None = None


@dataclass(frozen=True)
class InputScan:
    """The files an input path names: those read, in order, and those skipped with the reason."""

    files: list[Path]
    skipped: list[dict[str, str]] = field(default_factory=list)


def is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(".parquet")


def is_json_array(path: Path) -> bool:
    """Whether ``path`` is a ``.json``/``.json.gz`` file holding a JSON array (else JSON lines, or an error)."""
    if not path.name.lower().endswith((".json", ".json.gz")):
        return False
    try:
        return json_layout(path) == "array"
    except JsonLayoutError as err:
        raise InputError(str(err)) from None


def _skip_reason(path: Path) -> str | None:
    name = path.name.lower()
    if name.startswith("."):
        return "hidden file"
    if name.endswith(SIDE_OUTPUTS):
        return "a natfeed side output (rejected/filtered rows or a report), not conversations"
    if not name.endswith(SUFFIXES):
        return f"unsupported extension {''.join(path.suffixes[-2:]) or '(none)'}: natfeed reads {', '.join(SUFFIXES)}"
    return None


def scan_inputs(path: str | Path) -> InputScan:
    """Expand a file, a folder of shards or a glob; raise :class:`InputError` when nothing is readable."""
    p = Path(path)
    if p.is_file():
        reason = _skip_reason(p)
        if reason is not None and not reason.startswith("hidden"):
            raise InputError(f"{p}: {reason}")
        is_json_array(p)  # a .json file that holds neither rows nor an array of rows fails here
        return InputScan([p])
    if p.is_dir():
        found = sorted(f for f in p.rglob("*") if f.is_file() and not any(x.startswith(".") for x in
                                                                          f.relative_to(p).parts[:-1]))
    else:
        found = sorted(Path(f) for f in glob.glob(str(path), recursive=True) if Path(f).is_file())
        if not found:
            raise InputError(f"{path}: no such file or folder (and no file matches it as a glob)")
    files, skipped = [], []
    for f in found:
        reason = _skip_reason(f)
        if reason is None:
            files.append(f)
        else:
            skipped.append({"file": str(f), "reason": reason})
    for s in skipped:
        log.info("skipping %s: %s", s["file"], s["reason"])
    for f in files:
        is_json_array(f)
    if not files:
        raise InputError(f"no {', '.join(SUFFIXES)} files at {path!s}" + (f" ({len(skipped)} other files skipped)"
                                                                        if skipped else ""))
    return InputScan(files, skipped)


def resolve_inputs(path: str | Path) -> list[Path]:
    """The readable files at ``path``, sorted (see :func:`scan_inputs`)."""
    return scan_inputs(path).files


def decode_line(source: str, lineno: int, data: bytes) -> RawRecord | None:
    """One JSONL line as a record (``None`` for a blank line); undecodable lines become error records."""
    if not data.strip():
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raw = data.decode("utf-8", errors="backslashreplace")
        return RawRecord(source, lineno, error=f"invalid_utf8: {err.reason} at byte {err.start}", raw=raw)
    try:
        return RawRecord(source, lineno, obj=json.loads(text))
    except (json.JSONDecodeError, RecursionError) as err:
        msg = f"{err.msg} (col {err.colno})" if isinstance(err, json.JSONDecodeError) else "nested too deeply"
        return RawRecord(source, lineno, error=f"invalid_json: {msg}", raw=text)


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of a JSONL file (``.gz`` too), undecoded."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            yield from enumerate(fh, start=1)
    except (OSError, EOFError) as err:  # a truncated or corrupt .gz
        raise InputError(f"{path}: cannot read ({err})") from None


def _iter_jsonl(path: Path) -> Iterator[RawRecord]:
    for lineno, data in iter_lines(path):
        rec = decode_line(str(path), lineno, data)
        if rec is not None:
            yield rec


def _iter_json_array(path: Path) -> Iterator[RawRecord]:
    try:
        for index, obj, error, raw in iter_array(path):
            yield RawRecord(str(path), index, obj=obj, error=error, raw=raw)
    except JsonLayoutError as err:
        raise InputError(f"{path}: {err}") from None
    except (OSError, EOFError) as err:
        raise InputError(f"{path}: cannot read ({err})") from None


def _iter_parquet(path: Path, batch_size: int) -> Iterator[RawRecord]:
    try:
        pf = pq.ParquetFile(path, pre_buffer=False)  # pre-buffering keeps every row group read so far
    except Exception as err:  # pyarrow raises ArrowInvalid / OSError for a file that is not parquet
        raise InputError(f"{path}: not a readable parquet file ({err})") from None
    row = 0
    for batch in pf.iter_batches(batch_size=batch_size):
        for obj in batch.to_pylist():
            row += 1
            yield RawRecord(str(path), row, obj=obj)


def iter_files(files: list[Path], batch_size: int = 2000) -> Iterator[RawRecord]:
    """Stream every record of ``files``, in order."""
    for f in files:
        log.info("reading %s", f)
        if is_parquet(f):
            yield from _iter_parquet(f, batch_size)
        else:
            yield from (_iter_json_array(f) if is_json_array(f) else _iter_jsonl(f))


def iter_records(path: str | Path, batch_size: int = 2000) -> Iterator[RawRecord]:
    """Stream every record of every input file at ``path``, in file order."""
    yield from iter_files(resolve_inputs(path), batch_size)
