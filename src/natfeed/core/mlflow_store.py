"""The project's own MLflow store: ``sqlite:///mlruns/mlflow.db`` with artifacts under ``mlruns/artifacts``,
both relative to the project root, so that a copied repository (or a second clone) writes its runs and
models into its own ``mlruns/`` and never into the first one's.

MLflow makes an experiment's artifact location absolute when it creates it; natfeed stores the relative
location in the SQLite store instead (MLflow then derives relative run and model locations from it, which
resolve against the working directory: the project root, where stages, ``natfeed`` and ``mlflow ui`` /
``mlflow models serve`` run). A store created by an older natfeed, with absolute locations inside some
copy's ``mlruns/artifacts``, is rewritten to relative ones once. Remote stores (a tracking server,
PostgreSQL) are never touched.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from natfeed.core.errors import NatfeedError

log = logging.getLogger(__name__)

LOCATION_COLUMNS = (("experiments", "artifact_location"), ("runs", "artifact_uri"),
                    ("model_versions", "storage_location"), ("logged_models", "artifact_location"))
"""The columns of MLflow's SQL schema that hold artifact locations."""


class StoreError(NatfeedError, RuntimeError):
    """The project's MLflow store is missing or unusable."""


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative or absolute); None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    rest = uri.removeprefix("sqlite:///")
    return Path("/" + rest.lstrip("/")) if uri.startswith("sqlite:////") else Path(rest)


def _tables(con: sqlite3.Connection) -> set[str]:
    return {r[0] for r in con.execute("select name from sqlite_master where type = 'table'")}


def _prefixes(location: str, db: Path, relative: str) -> list[tuple[str, str]]:
    """(absolute prefix, relative replacement) pairs that make ``location`` project-relative, if any."""
    path = location.removeprefix("file://").rstrip("/")
    store = db.parent.resolve()
    inside = path == str(store) or path.startswith(f"{store}/")
    if inside and store.is_relative_to(Path.cwd()):  # this project's mlruns/ (the store sits in the project)
        rel = store.relative_to(Path.cwd()).as_posix()
        return [(f"file://{store}", rel), (str(store), rel)]
    if path.endswith("/" + relative.strip("/")):  # another copy's mlruns/artifacts (a copied repository)
        return [("file://" + path, relative.rstrip("/")), (path, relative.rstrip("/"))]
    return []


def relativise(db: Path, experiment: str, relative: str) -> int:
    """Make the artifact locations of ``experiment`` relative to the project (``relative`` = e.g.
    ``mlruns/artifacts``, the location new experiments get); return how many locations were rewritten."""
    con = sqlite3.connect(db)
    try:
        row = con.execute("select artifact_location from experiments where name = ?", (experiment,)).fetchone()
        if row is None or not row[0] or not (row[0].startswith("/") or row[0].startswith("file://")):
            return 0
        changed = 0
        tables = _tables(con)
        for prefix, replacement in dict.fromkeys(_prefixes(row[0], db, relative)):
            for table, column in LOCATION_COLUMNS:
                if table in tables:
                    cur = con.execute(f"update {table} set {column} = ? || substr({column}, ?) "
                                      f"where {column} = ? or {column} like ?",
                                      (replacement, len(prefix) + 1, prefix, prefix + "/%"))
                    changed += cur.rowcount
        con.commit()
        return changed
    finally:
        con.close()


def require_store(uri: str) -> None:
    """For commands that read the registry: a local store must already exist (never create one here)."""
    db = sqlite_path(uri)
    if db is not None and not db.exists():
        raise StoreError(f"no MLflow store at {db} (from {uri}): run the pipeline first (dvc repro), run "
                         "from the project root, or set MLFLOW_TRACKING_URI")
