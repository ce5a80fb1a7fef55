"""A team stack on this machine: PostgreSQL, an MLflow tracking server on it, an S3 object store for DVC.

    .venv/bin/python scripts/team.py up      # make team-up
    .venv/bin/python scripts/team.py down    # make team-down
    .venv/bin/python scripts/team.py status

``up`` starts, on 127.0.0.1 and Unix sockets only:

- PostgreSQL from the ``pgserver`` wheel (its own binaries; data in ``.team/pg``, Unix socket, role
  ``natfeed`` with a random password) and a database ``mlflow``;
- ``mlflow server`` with that database as its backend store and ``--serve-artifacts`` (artifacts in
  ``.team/artifacts``, clients reach them through the server: ``mlflow-artifacts:/``);
- ``moto_server``, an S3-compatible store (the protocol DVC's ``dvc-s3`` speaks), with a bucket
  ``natfeed-dvc`` and random credentials, added to this checkout as the DVC remote ``team``
  (``.dvc/config.local``: credentials stay out of git).

It writes ``.team/state.json`` (URLs, ports, pids) and ``.team/env`` (``export MLFLOW_TRACKING_URI=...``: source
it to point the pipeline at the server). The secrets live only in ``.team/`` (mode 0600) and in
``.dvc/config.local``. ``down`` stops what ``up`` started and removes the remote. Real deployments use
a managed PostgreSQL and S3 (or MinIO) with the same two settings: ``MLFLOW_TRACKING_URI`` and a DVC remote.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STATE_DIR = REPO / ".team"
STATE = STATE_DIR / "state.json"
BUCKET = "natfeed-dvc"
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, what: str, proc: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    import urllib.error
    import urllib.request

    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited {proc.returncode}; its log ({log}):\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=3):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise SystemExit(f"{what} did not answer {url} within {seconds:.0f} s; see {log}")


def _spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    fh = log.open("w")
    return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=STATE_DIR,
                            start_new_session=True)  # its own process group: `down` stops it and its workers


def _dvc(*args: str) -> None:
    subprocess.run([str(BIN / "dvc"), *args], cwd=REPO, check=True, capture_output=True, text=True)


def up() -> dict:
    if STATE.exists():
        raise SystemExit(f"a team stack is already up ({STATE}); `make team-down` first")
    import pgserver

    STATE_DIR.mkdir(exist_ok=True)
    (STATE_DIR / "artifacts").mkdir(exist_ok=True)
    pg = pgserver.get_server(STATE_DIR / "pg", cleanup_mode=None)  # keeps running after this process
    db_password = secrets.token_urlsafe(16)
    pg.psql(f"CREATE ROLE natfeed LOGIN PASSWORD '{db_password}';")
    pg.psql("CREATE DATABASE mlflow OWNER natfeed;")
    socket_dir = pg.get_uri().split("host=", 1)[1]
    backend = f"postgresql+psycopg2://natfeed:{db_password}@/mlflow?host={socket_dir}"

    mlflow_port = _free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    mlflow_log = STATE_DIR / "mlflow.log"
    mlflow_proc = _spawn([str(BIN / "mlflow"), "server", "--backend-store-uri", backend, "--artifacts-destination",
                          (STATE_DIR / "artifacts").as_uri(), "--serve-artifacts", "--host", "127.0.0.1", "--port",
                          str(mlflow_port), "--workers", "2"], mlflow_log, env)
    s3_port = _free_port()
    s3_log = STATE_DIR / "s3.log"
    s3_proc = _spawn([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)], s3_log)
    state = {"mlflow_url": f"http://127.0.0.1:{mlflow_port}", "s3_url": f"http://127.0.0.1:{s3_port}",
             "bucket": BUCKET, "pgdata": str(STATE_DIR / "pg"), "pg_socket": socket_dir,
             "pids": {"mlflow": mlflow_proc.pid, "s3": s3_proc.pid}, "dvc_remote": "team"}
    STATE.write_text(json.dumps(state, indent=2))
    _wait(f"{state['s3_url']}/moto-api/", "moto_server", s3_proc, s3_log)
    _wait(f"{state['mlflow_url']}/health", "mlflow server", mlflow_proc, mlflow_log, 180)

    key_id, key = "natfeed" + secrets.token_hex(6), secrets.token_urlsafe(24)
    import boto3

    boto3.client("s3", endpoint_url=state["s3_url"], aws_access_key_id=key_id, aws_secret_access_key=key,
                 region_name="us-east-1").create_bucket(Bucket=BUCKET)
    _dvc("remote", "add", "--local", "--force", "team", f"s3://{BUCKET}/store")
    for option, value in (("endpointurl", state["s3_url"]), ("access_key_id", key_id), ("secret_access_key", key),
                          ("region", "us-east-1")):
        _dvc("remote", "modify", "--local", "team", option, value)
    secret_file = STATE_DIR / "secrets.json"  # for the tests that check nothing leaks them
    secret_file.write_text(json.dumps({"db_password": db_password, "s3_secret_access_key": key}))
    secret_file.chmod(0o600)
    (STATE_DIR / "env").write_text(f"export MLFLOW_TRACKING_URI={state['mlflow_url']}\n")
    return state


def _stop(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(50):
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(pid, signal.SIGKILL)


def down() -> None:
    if not STATE.exists():
        print("no team stack is up")
        return
    state = json.loads(STATE.read_text())
    for pid in state["pids"].values():
        _stop(pid)
    subprocess.run([str(BIN / "python"), "-c", "import sys, pgserver; pgserver.pg_ctl(['-D', sys.argv[1], '-m', "
                    "'fast', 'stop'])", state["pgdata"]], capture_output=True, check=False)
    subprocess.run([str(BIN / "dvc"), "remote", "remove", "--local", "team"], cwd=REPO, capture_output=True,
                   check=False)
    for name in ("state.json", "env", "secrets.json"):
        (STATE_DIR / name).unlink(missing_ok=True)
    print("team stack stopped (data kept in .team/; remove the folder to start from scratch)")


def main() -> int:
    cmd = sys.argv[1] if len(sys.argv) > 1 else "status"
    if cmd == "up":
        state = up()
        print(f"MLflow server  {state['mlflow_url']}  (PostgreSQL in {state['pgdata']}, artifacts proxied)\n"
              f"S3 (moto)      {state['s3_url']}  bucket {state['bucket']}: DVC remote 'team' (.dvc/config.local)\n"
              f"use it:        . .team/env && dvc push -r team && dvc repro")
    elif cmd == "down":
        down()
    elif cmd == "status":
        print(STATE.read_text() if STATE.exists() else "no team stack is up")
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
