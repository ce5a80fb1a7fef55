"""The judgement cache: every LLM answer, keyed by everything that decides it, reused across runs and inputs.

A key (:func:`request_key`) hashes the backend, the model's identity (its name and, for a local model, the
sha256 of its files), the params that change answers (decoding, calibration, truncation, constrained
output), the prompt version and the exact request (its messages and allowed answers). Never the input file:
the same request in another file, or in yesterday's logs plus today's, is a hit. A hit gives back the answer
as the backend returned it (text, log-probabilities, token counts), so it yields the row the request did.

Storage is one SQLite database in WAL mode (``<cache_dir>/judgements.sqlite``): writers in several processes
(two runs, worker processes, Ray actors on one machine) wait for each other (``timeout``), and a transaction
is either in the file or not, so a ``kill -9`` never leaves a torn entry. Each value carries its own digest:
an entry that does not match it, or does not decode, is a miss with one warning, never a wrong answer; a
database that cannot be opened at all turns the cache off for the run, with one warning. SQLite needs a
local disk (not NFS): on a multi-node cluster give each node its own ``cache_dir``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_VERSION = 1
"""Part of every key: bump it when what a key covers changes."""
FILENAME = "judgements.sqlite"
_CHUNK = 500  # keys per SELECT (SQLite's variable limit is 32766; small chunks keep each query short)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, created REAL NOT NULL, value TEXT NOT NULL, digest TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hits (model TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
                                  sha256 TEXT NOT NULL);
"""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def request_key(parts: dict[str, Any]) -> str:
    """The cache key of one request: sha256 of ``parts`` (JSON, sorted keys) and :data:`CACHE_VERSION`."""
    blob = json.dumps({"cache_version": CACHE_VERSION, **parts}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class CacheStats:
    path: str
    entries: int
    bytes: int
    by_model: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class JudgementCache:
    """``<cache_dir>/judgements.sqlite``; picklable (each process opens its own connection, lazily)."""

    def __init__(self, cache_dir: str | Path) -> None:
        self.dir = Path(cache_dir)
        self.path = self.dir / FILENAME
        self._conn: sqlite3.Connection | None = None
        self.disabled = False
        self._warned: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_conn": None}

    def __repr__(self) -> str:
        return f"JudgementCache({str(self.path)!r})"

    # -- connection ----------------------------------------------------------------------------------
    def _warn(self, what: str, message: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            log.warning("judgement cache %s: %s", self.path, message)

    def _connect(self) -> sqlite3.Connection | None:
        if self.disabled:
            return None
        if self._conn is None:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=120, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_SCHEMA)
                self._conn = conn
            except (sqlite3.Error, OSError) as err:
                self.disabled = True
                self._warn("open", f"cannot be used ({err}); this run answers every request afresh (delete the "
                           "file to start a new cache)")
                return None
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):  # another process holds it: its own close checkpoints
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            self._conn = None

    # -- answers ---------------------------------------------------------------------------------------
    def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The cached values of ``keys`` that are present and intact (a damaged one is a miss, warned once)."""
        conn = self._connect()
        found: dict[str, dict[str, Any]] = {}
        if conn is None or not keys:
            return found
        unique = list(dict.fromkeys(keys))
        try:
            for i in range(0, len(unique), _CHUNK):
                chunk = unique[i:i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, value, digest in conn.execute(
                        f"SELECT key, value, digest FROM answers WHERE key IN ({marks})", chunk):
                    decoded = self._decode(key, value, digest)
                    if decoded is not None:
                        found[key] = decoded
        except sqlite3.Error as err:
            self._warn("read", f"cannot be read ({err}): its entries count as misses")
            return {}
        return found

    def _decode(self, key: str, value: Any, digest: Any) -> dict[str, Any] | None:
        try:
            if not isinstance(value, str) or _digest(value) != digest:
                raise ValueError("its digest does not match")
            decoded = json.loads(value)
            if not isinstance(decoded, dict):
                raise ValueError("not an object")
            return decoded
        except ValueError as err:
            self._warn("entry", f"entry {key[:12]}… is damaged ({err}): answered afresh (further damaged "
                       "entries are not reported)")
            return None

    def contains(self, keys: Sequence[str]) -> set[str]:
        return set(self.get_many(keys))

    def put_many(self, items: Iterable[tuple[str, str, dict[str, Any]]]) -> int:
        """Store ``(key, model, value)`` items in one transaction; returns how many were written."""
        conn = self._connect()
        rows = [(key, model, time.time(), text, _digest(text))
                for key, model, value in items
                for text in [json.dumps(value, sort_keys=True, ensure_ascii=False)]]
        if conn is None or not rows:
            return 0
        try:
            with _transaction(conn):
                conn.executemany("INSERT OR REPLACE INTO answers (key, model, created, value, digest) "
                                 "VALUES (?, ?, ?, ?, ?)", rows)
        except sqlite3.Error as err:
            self._warn("write", f"cannot be written ({err}): this run's answers are not cached")
            return 0
        return len(rows)

    def count_hits(self, model: str, n: int) -> None:
        conn = self._connect()
        if conn is None or n <= 0:
            return
        try:
            with _transaction(conn):
                conn.execute("INSERT INTO hits (model, n) VALUES (?, ?) ON CONFLICT(model) DO UPDATE SET "
                             "n = n + excluded.n", (model, n))
        except sqlite3.Error as err:
            self._warn("write", f"cannot be written ({err})")

    # -- local model files -------------------------------------------------------------------------------
    def file_sha256(self, path: Path) -> str:
        """sha256 of a file, remembered by (path, size, mtime) so a second run does not read it again."""
        stat = path.stat()
        conn = self._connect()
        name = str(path.resolve())
        if conn is not None:
            try:
                row = conn.execute("SELECT sha256 FROM files WHERE path = ? AND size = ? AND mtime_ns = ?",
                                   (name, stat.st_size, stat.st_mtime_ns)).fetchone()
                if row:
                    return str(row[0])
            except sqlite3.Error:
                pass
        digest = file_sha256(path)
        if conn is not None:
            try:
                with _transaction(conn):
                    conn.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                                 (name, stat.st_size, stat.st_mtime_ns, digest))
            except sqlite3.Error:
                pass
        return digest

    # -- maintenance ------------------------------------------------------------------------------------
    def stats(self) -> CacheStats:
        conn = self._connect()
        size = sum(p.stat().st_size for p in self.dir.glob(FILENAME + "*") if p.is_file())
        if conn is None:
            return CacheStats(str(self.path), 0, size, [])
        hits = dict(conn.execute("SELECT model, n FROM hits").fetchall())
        by_model = [{"model": model, "entries": n, "hits": int(hits.pop(model, 0)),
                     "oldest": _iso(oldest), "newest": _iso(newest)}
                    for model, n, oldest, newest in conn.execute(
                        "SELECT model, COUNT(*), MIN(created), MAX(created) FROM answers GROUP BY model ORDER BY model")]
        by_model += [{"model": model, "entries": 0, "hits": int(n), "oldest": None, "newest": None}
                     for model, n in sorted(hits.items())]
        entries = sum(m["entries"] for m in by_model)
        return CacheStats(str(self.path), entries, size, by_model)

    def prune(self, older_than_s: float) -> int:
        """Delete the entries written more than ``older_than_s`` seconds ago; returns how many."""
        conn = self._connect()
        if conn is None:
            return 0
        with _transaction(conn):
            n = conn.execute("DELETE FROM answers WHERE created < ?", (time.time() - older_than_s,)).rowcount
        conn.execute("VACUUM")
        return int(n)


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): one writer at a time, waiting up to the timeout."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _iso(ts: float | None) -> str | None:
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_fingerprint(model: str, cache: JudgementCache | None) -> dict[str, Any]:
    """A model's identity for the key: its name, and for a local file or folder the sha256 of every file in it
    (weights, tokenizer, config; remembered per file by the cache)."""
    path = Path(model)
    if not path.exists():
        return {"name": model}
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()
                                                  and not any(part.startswith(".") for part in p.relative_to(path).parts))
    digest = (cache.file_sha256 if cache is not None else file_sha256)
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.relative_to(path) if f != path else f.name}\0{digest(f)}\n".encode())
    return {"name": path.name, "sha256": h.hexdigest()}


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``45s`` or plain seconds -> seconds."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration: write e.g. 30d, 12h, 90m or 3600")
    return float(m.group(1)) * _UNIT[m.group(2)]


def attach_cache(params: Any, extractor: Any) -> JudgementCache | None:
    """The run's judgement cache (``extract.cache_dir``, resolved), attached to ``extractor`` unless it has one;
    None when the cache is off or the extractor asks no model (the heuristic)."""
    if not params.cache or not hasattr(extractor, "use_cache"):
        return None
    cache: JudgementCache | None = getattr(extractor, "cache", None)
    if cache is None and params.cache_dir:
        cache = JudgementCache(params.cache_dir)
        extractor.use_cache(cache)
    return cache


def default_cache_dir(shard_root: Path) -> Path:
    """``<shard root>/cache``: beside the resumable shards, outside every DVC output."""
    return shard_root / "cache"
