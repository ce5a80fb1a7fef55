"""The review loop against a real Label Studio server (SQLite, 127.0.0.1): `make test-review`.

natfeed exports tasks; the test creates a project through Label Studio's HTTP API with natfeed's
labelling config and instructions, imports the tasks (with their predictions), submits one annotation
through the API as a reviewer would, exports the project as JSON and imports it back into a gold CSV.
Label Studio runs from its own virtual environment (`.venv-review`, made by `make test-review`; its
dependencies do not fit natfeed's lock): the path to its `label-studio` command comes in
``NATFEED_LABEL_STUDIO``. Skipped when it is absent.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.review]

REPO = Path(__file__).resolve().parents[2]
CONV = [{"role": "user", "content": "What is the capital of Australia?"},
        {"role": "assistant", "content": "The capital of Australia is Sydney."},
        {"role": "user", "content": "That's wrong, the capital is Canberra."},
        {"role": "assistant", "content": "You are right: Canberra."},
        {"role": "user", "content": "Thanks!"}]


def _label_studio() -> str | None:
    return os.environ.get("NATFEED_LABEL_STUDIO") or shutil.which("label-studio")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    binary = _label_studio()
    if binary is None or not Path(binary).exists():
        pytest.skip("label-studio not installed: `make test-review` makes .venv-review and runs this test")
    data = tmp_path_factory.mktemp("label-studio")
    port, token = _free_port(), secrets.token_hex(20)
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data), "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
           "DJANGO_DB": "sqlite", "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true"}
    log = (data / "server.log").open("w")
    proc = subprocess.Popen(
        [binary, "start", "--no-browser", "--data-dir", str(data), "--port", str(port), "--internal-host", "127.0.0.1",
         "--username", "reviewer@example.com", "--password", secrets.token_hex(8), "--user-token", token,
         "--enable-legacy-api-token"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Token {token}"}
    try:
        deadline = time.time() + 240  # first start runs the database migrations
        while True:
            try:
                if httpx.get(f"{url}/api/projects", headers=headers, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                log.flush()
                pytest.fail("label-studio did not come up:\n" + (data / "server.log").read_text()[-3000:])
            time.sleep(2)
        yield url, headers
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def natfeed(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "natfeed.cli", *args], cwd=cwd, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def test_export_review_in_label_studio_and_import_back(server, tmp_path):
    url, headers = server
    feedback = pd.DataFrame({
        "conversation_id": ["c1", "c1"], "feedback_turn": [1, 2],
        "category": ["make_aware_with_correction", "positive_feedback"],
        "prompt": [CONV[:1], CONV[:3]], "response": [CONV[1]["content"], CONV[3]["content"]],
        "feedback_text": [CONV[2]["content"], CONV[4]["content"]], "confidence": [0.55, 0.9],
        "extractor": ["heuristic-1.0.0"] * 2})
    feedback.to_parquet(tmp_path / "feedback.parquet")
    pd.DataFrame({"conversation_id": ["c1"], "conversation": [CONV]}).to_parquet(tmp_path / "conversations.parquet")
    natfeed("review", "export", "--input", "feedback.parquet", "--conversations", "conversations.parquet",
            "--output", "tasks.json", "--guidelines", str(REPO / "docs/ANNOTATION_GUIDELINES.md"), cwd=tmp_path)
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    assert len(tasks) == 2

    with httpx.Client(base_url=url, headers=headers, timeout=60) as api:
        project = api.post("/api/projects", json={
            "title": "natfeed review", "label_config": (tmp_path / "tasks.config.xml").read_text(),
            "expert_instruction": (tmp_path / "tasks.instructions.html").read_text(), "show_instruction": True})
        assert project.status_code == 201, project.text
        pid = project.json()["id"]
        imported = api.post(f"/api/projects/{pid}/import", json=tasks)
        assert imported.status_code == 201, imported.text
        listed = api.get("/api/tasks", params={"project": pid, "fields": "all"}).json()
        listed = listed["tasks"] if isinstance(listed, dict) else listed
        assert len(listed) == 2 and all(t["predictions"] or t.get("total_predictions") for t in listed)
        # the reviewer confirms the extractor's correction on turn 2 (the existing gold says otherwise: a
        # conflict) and leaves turn 3 unannotated (skipped on import)
        turn2 = next(t for t in listed if t["data"]["user_turn"] == 2)
        annotation = api.post(f"/api/tasks/{turn2['id']}/annotations", json={
            "result": [{"from_name": "category", "to_name": "user_text", "type": "choices",
                        "value": {"choices": ["make_aware_with_correction"]}},
                       {"from_name": "note", "to_name": "user_text", "type": "textarea",
                        "value": {"text": ["gives the right capital"]}}],
            "was_cancelled": False})
        assert annotation.status_code == 201, annotation.text
        export = api.get(f"/api/projects/{pid}/export", params={"exportType": "JSON", "download_all_tasks": "true"})
        assert export.status_code == 200, export.text
    (tmp_path / "export.json").write_text(export.text)

    gold = tmp_path / "gold.csv"
    gold.write_text("conversation_id,user_turn,category,part,note\nc1,2,make_aware_without_correction,dev_part1,x\n")
    out = natfeed("review", "import", "--input", "export.json", "--output", "gold.csv", cwd=tmp_path).stdout
    assert "1 conflict(s)" in out and "1 task(s) skipped" in out, out  # turn 3 was not annotated
    natfeed("review", "import", "--input", "export.json", "--output", "gold.csv", "--prefer-new", cwd=tmp_path)
    rows = list(csv.DictReader(gold.open()))
    assert rows == [{"conversation_id": "c1", "user_turn": "2", "category": "make_aware_with_correction",
                     "part": "review", "note": "gives the right capital"}]
