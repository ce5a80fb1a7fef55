"""A local fake OpenAI-compatible chat-completions server (real HTTP on 127.0.0.1, in a thread).

Answers deterministically from the request text: turn mode labels the text inside <judged_turn>
(``thank`` -> positive_feedback, ``wrong`` -> make_aware_without_correction, ``sure?`` ->
ask_for_clarification, else none); paper mode returns the matching user lines as a JSON list. It can
fail the first requests (``fail_first`` statuses), delay every answer, and records what it saw.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RULES = (("wrong", "make_aware_without_correction", "UR3"), ("thank", "positive_feedback", "UR5"),
         ("sure?", "ask_for_clarification", "UR4"))


def label_for(text: str) -> str:
    low = text.lower()
    return next((label for cue, label, _ in RULES if cue in low), "none")


def _judged(content: str) -> str:
    m = re.search(r"<judged_turn>\n(.*)\n</judged_turn>", content, re.DOTALL)
    return m.group(1) if m else ""


def _paper_answer(content: str) -> str:
    items = []
    for m in re.finditer(r'<message role="user" turn="(\d+)">\n(.*?)\n</message>', content, re.DOTALL):
        if int(m.group(1)) < 2:
            continue
        for cue, _, code in RULES:
            if cue in m.group(2).lower():
                items.append({"pattern": code, "text": m.group(2)})
                break
    return json.dumps(items)


class FakeOpenAI:
    """``with FakeOpenAI() as srv: srv.url`` -> ``http://127.0.0.1:PORT/v1``."""

    def __init__(self, delay: float = 0.0, fail_first: list[int] | None = None, hang_first: int = 0,
                 answer: str | None = None) -> None:
        self.delay = delay
        self.fail_first = list(fail_first or [])
        self.hang_first = hang_first
        self.answer = answer
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.statuses: list[int] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _reply(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        content = body["messages"][-1]["content"]
        if self.answer is not None:
            text = self.answer
        elif "<judged_turn>" in content:
            text = label_for(_judged(content))
        else:
            text = _paper_answer(content)
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text},
                                  "finish_reason": "stop"}
        if body.get("logprobs"):
            choice["logprobs"] = {"content": [{"token": text[:3], "logprob": -0.25},
                                              {"token": text[3:], "logprob": -0.05}]}
        usage = {"prompt_tokens": len(content) // 4, "completion_tokens": 2, "total_tokens": len(content) // 4 + 2}
        return 200, {"id": "x", "object": "chat.completion", "choices": [choice], "usage": usage}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                    fake.requests.append(body)
                    fake.headers.append(dict(self.headers))
                    n = len(fake.requests)
                    status = fake.fail_first.pop(0) if fake.fail_first else 200
                try:
                    if n <= fake.hang_first:
                        time.sleep(3.0)
                    time.sleep(fake.delay)
                    code, payload = (status, {"error": {"message": "fake"}}) if status != 200 else fake._reply(body)
                    data = json.dumps(payload).encode()
                finally:
                    # the request stops being "in flight" before its answer is sent: a client that
                    # reads the answer and sends its next request at once must not be counted twice
                    with fake.lock:
                        fake.in_flight -= 1
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    if code == 429:
                        self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(data)
                    with fake.lock:
                        fake.statuses.append(code)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler
