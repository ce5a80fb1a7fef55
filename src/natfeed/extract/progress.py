"""Progress of an LLM extraction over its requests: a bar on a terminal, log lines elsewhere.

On a terminal (stderr is a TTY) a tqdm bar shows requests done / total, the rate, the ETA and the parse
failures so far; in a log (CI, ``nohup``, DVC's captured output) one line every ``progress_seconds``.
After the first shard of a run, a run that would take more than :data:`LONG_RUN_S` at the measured rate
says so, with what makes it cheaper.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

from tqdm import tqdm

log = logging.getLogger("natfeed.extract")

LONG_RUN_S = 3600.0


def duration(seconds: float) -> str:
    """``95`` -> ``1 min 35 s``, ``7300`` -> ``2 h 2 min``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class RequestProgress:
    """Requests done out of ``total`` (``resumed`` of them by earlier runs), shown as a bar or log lines."""

    def __init__(self, total: int, label: str, every_s: float = 30.0, resumed: int = 0,
                 stream: Any = None, tty: bool | None = None) -> None:
        self.total, self.label, self.every_s = total, label, every_s
        self.resumed = self.done = resumed
        self.failures = 0
        self.start = time.monotonic()
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.bar = tqdm(total=total, initial=resumed, desc=f"extract ({label})", unit=" req", file=self.stream,
                        dynamic_ncols=True, smoothing=0.1) if self.tty else None
        self.warned = False
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if self.bar is None and every_s > 0:  # off a terminal: a line every every_s, even inside a long batch
            self._ticker = threading.Thread(target=self._tick, name="natfeed-progress", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(self.every_s):
            log.info("%s", self.line())

    @property
    def rate(self) -> float:
        """Requests per second in this run."""
        elapsed = time.monotonic() - self.start
        return (self.done - self.resumed) / elapsed if elapsed > 0 else 0.0

    def eta_s(self) -> float | None:
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 else None

    def update(self, requests: int, failures: int = 0) -> None:
        self.done += requests
        self.failures += failures
        if self.bar is not None:
            self.bar.update(requests)
            self.bar.set_postfix(parse_failures=self.failures, refresh=False)

    def line(self) -> str:
        """One progress line: done/total, share, rate, ETA, parse failures."""
        share = 100 * self.done / self.total if self.total else 100.0
        eta = self.eta_s()
        return (f"extract ({self.label}): {self.done:,}/{self.total:,} requests ({share:.0f}%), {self.rate:.2f} req/s, "
                f"ETA {duration(eta) if eta is not None else '?'}, {self.failures} parse failures")

    def shard_done(self, index: int) -> None:
        """After a committed shard: log it (off a terminal) and, once, warn when the rest would take long."""
        if self.bar is None:
            log.info("shard %d saved; %s", index, self.line())
        eta = self.eta_s()
        if not self.warned and eta is not None and eta > LONG_RUN_S:
            self.warned = True
            message = (f"at the measured {self.rate:.2f} requests/s the remaining {self.total - self.done:,} requests "
                       f"take about {duration(eta)} on this hardware; shorter prompts (extract.llm.max_model_len, "
                       "context_turns), a GPU or a server (--backend vllm/openai) are faster. Finished shards are "
                       "kept: stop any time and rerun the same command to continue")
            if self.bar is not None:
                self.bar.write(f"natfeed: {message}", file=self.stream)
            log.warning("%s", message)

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=1)
        if self.bar is not None:
            self.bar.close()
