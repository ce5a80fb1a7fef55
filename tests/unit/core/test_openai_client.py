"""The shared OpenAI-compatible client: fail fast on what retrying cannot fix, retry what it can."""

from __future__ import annotations

import socket
import time

import pytest

from natfeed.core.openai_client import ClientConfig, EndpointError, OpenAIClient
from tests.support.fake_openai import FakeOpenAI

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _client(url: str, **kw: object) -> OpenAIClient:
    fields = {"base_url": url, "api_key_env": None, "timeout_s": 5.0, "max_retries": 5, "backoff_s": 0.5,
              "concurrency": 4}
    return OpenAIClient(ClientConfig(**{**fields, **kw}))


def test_connection_refused_fails_on_the_first_try_with_one_line():
    url = f"http://127.0.0.1:{_free_port()}/v1"
    client = _client(url)
    start = time.perf_counter()
    with pytest.raises(EndpointError) as err:
        client.run([BODY] * 8)
    assert time.perf_counter() - start < 5 and client.stats["retries"] == 0
    message = str(err.value)
    assert message.startswith(f"cannot reach {url}: connection refused — is the server running?")
    assert "\n" not in message


@pytest.mark.parametrize(("status", "words"), [(401, "check the key in NATFEED_KEY"), (403, "HTTP 403"),
                                               (404, "check the base_url")])
def test_auth_and_not_found_are_not_retried(status, words, monkeypatch):
    monkeypatch.setenv("NATFEED_KEY", "k")
    with FakeOpenAI(fail_first=[status] * 3) as srv:
        client = _client(srv.url, api_key_env="NATFEED_KEY")
        with pytest.raises(EndpointError, match=words):
            client.run([BODY])
    assert len(srv.requests) == 1


def test_retryable_statuses_back_off_then_succeed(caplog):
    with FakeOpenAI(fail_first=[503, 429]) as srv:
        client = _client(srv.url, backoff_s=0.01, concurrency=1)
        replies = client.run([BODY])
    assert replies[0].reason is None and replies[0].attempts == 3 and client.stats["retries"] == 2
    assert caplog.text.count("retry") == 2


def test_other_client_errors_come_back_as_failed_replies():
    with FakeOpenAI(fail_first=[422]) as srv:
        replies = _client(srv.url).run([BODY, BODY])
    assert sorted(str(r.reason) for r in replies) == ["None", "http_422"]


def test_unknown_host_message():
    client = _client("http://no-such-host.invalid:8000/v1")
    message = client._unreachable(OSError("[Errno -2] Name or service not known"))
    assert message.startswith("cannot reach http://no-such-host.invalid:8000/v1: unknown host 'no-such-host.invalid'")


def test_a_required_key_must_be_set(monkeypatch):
    monkeypatch.delenv("NATFEED_NO_KEY", raising=False)
    with pytest.raises(EndpointError, match="NATFEED_NO_KEY"):
        _client("http://127.0.0.1:9/v1", api_key_env="NATFEED_NO_KEY", require_key=True)
