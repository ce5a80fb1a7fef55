"""natfeed's error convention, for the CLI and the DVC stages alike.

Exit 0: done. Exit 1: the data failed a check (validate's gate, a refused promotion). Exit 2: a usage or
input error (a missing or unreadable file, the wrong table, bad params, a server that cannot be used).
Exit 3: stopped by a budget (``--max-requests``): what is done is kept, a rerun continues.
Errors print as a few lines that say what is wrong and what to do; the traceback only with ``-v`` (the
CLI) or ``NATFEED_LOG_LEVEL=DEBUG`` (stages).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE, EXIT_BUDGET = 0, 1, 2, 3


class NatfeedError(Exception):
    """An error the user can act on; ``exit_code`` says which kind."""

    exit_code = EXIT_USAGE


class UsageError(NatfeedError, ValueError):
    """A wrong value or an input natfeed cannot use (exit 2); still a ``ValueError`` for callers that catch it."""


class ServerError(NatfeedError, RuntimeError):
    """A model server failed the run (the base of what a caller stops on; exit 2)."""


class CheckFailed(NatfeedError):
    """The data failed a check, or the gate refused a promotion."""

    exit_code = EXIT_CHECK_FAILED


class BudgetStopped(NatfeedError, RuntimeError):
    """A run stopped because its budget was spent (exit 3); its finished work is kept and a rerun continues."""

    exit_code = EXIT_BUDGET


INPUT_ERRORS: tuple[type[BaseException], ...] = (NatfeedError, FileNotFoundError, PermissionError,
                                                  IsADirectoryError, NotADirectoryError)
"""What counts as a usage or input error besides natfeed's own errors."""


def exit_code(err: BaseException) -> int:
    return getattr(err, "exit_code", EXIT_USAGE)


def message(err: BaseException) -> str:
    """``error: <what is wrong and what to do>`` for an error a user can act on."""
    text = str(err).strip() or type(err).__name__
    if isinstance(err, OSError) and err.filename and str(err.filename) not in text:
        text = f"{text}: {err.filename}"
    return f"error: {text}"


def unexpected(err: BaseException, hint: str) -> str:
    """Two lines for an error natfeed did not foresee (a bug, or a library failing): what it said, then where to
    look; the exception's class only on the second line."""
    first = (str(err).strip().splitlines() or [""])[0][:300] or "failed without a message"
    return f"error: {first}\n(unexpected {type(err).__name__}: {hint} for the traceback)"


def run_stage(main: Callable[[], int | None]) -> None:
    """Run a stage's ``main`` under the convention; exits the process with its code."""
    debug = os.environ.get("NATFEED_LOG_LEVEL", "").upper() == "DEBUG"
    try:
        code = main() or EXIT_OK
    except INPUT_ERRORS as err:
        if debug:
            traceback.print_exc()
        print(message(err), file=sys.stderr)
        code = exit_code(err)
    except Exception as err:  # noqa: BLE001 - the stage's last line of defence: say it briefly
        if debug:
            traceback.print_exc()
        else:
            logging.getLogger("natfeed").debug("stage failed", exc_info=True)
        print(unexpected(err, "set NATFEED_LOG_LEVEL=DEBUG"), file=sys.stderr)
        code = EXIT_USAGE
    sys.exit(code)
