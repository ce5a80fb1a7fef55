"""Progress lines off a terminal come on time, even while one long batch is still running."""

import io
import logging
import time

from natfeed.extract.progress import RequestProgress


def test_lines_come_every_progress_seconds_without_any_update(caplog):
    caplog.set_level(logging.INFO, logger="natfeed.extract")
    progress = RequestProgress(100, "test", every_s=0.1, stream=io.StringIO(), tty=False)
    progress.update(5)
    time.sleep(0.55)  # a batch that has not come back yet
    progress.close()
    lines = [r.getMessage() for r in caplog.records if "requests (" in r.getMessage()]
    assert 3 <= len(lines) <= 6 and "5/100 requests (5%)" in lines[-1]
    time.sleep(0.25)
    assert len([r for r in caplog.records if "requests (" in r.getMessage()]) == len(lines)  # closed: no more


def test_on_a_terminal_the_bar_is_used_and_no_ticker_runs():
    progress = RequestProgress(10, "test", every_s=0.05, stream=io.StringIO(), tty=True)
    assert progress.bar is not None and progress._ticker is None
    progress.close()
