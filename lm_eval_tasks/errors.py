"""Data errors that reach every user as one line: a Python exception, or one line and exit status 2 under `lm_eval`.

Data code raises `DataError` (a `ValueError`) whose message names the input and the fix,
e.g. "unknown --metadata key 'num_factz' for family 'reversal'; valid keys: ...". A Python
caller (`load_family`, `TaskManager(...).load`, `simple_evaluate`) gets it as a normal
exception it can catch.

The `lm_eval` command line has no hook for such errors: an exception raised inside a
task's `custom_dataset` function travels up through lm-eval's task loading and Python
prints a ~55-line traceback. Decorating the `custom_dataset` function with
`one_line_under_lm_eval` prints the message as one line instead (`lm_eval: error: ...`) and
exits with status 2, but only when the call comes from lm-eval's own command line
(`lm_eval._cli`), so Python callers keep their exception:

    @one_line_under_lm_eval
    def build_task_dataset(family, **metadata): ...

Programming errors (anything that is not a `DataError`) keep their traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

EXIT_STATUS = 2  # what argparse uses for bad command-line input
LM_EVAL_CLI_MODULES = "lm_eval._cli"  # lm-eval 0.4.13's command line: `lm_eval`, `lm-eval`, `python -m lm_eval`


class DataError(ValueError):
    """Bad data input (an option, a file, a directory); the message is one line naming it and the fix."""


def called_from_lm_eval_cli() -> bool:
    """True when lm-eval's command line is on the call stack (not a Python caller of its API)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith(LM_EVAL_CLI_MODULES):
            return True
        frame = frame.f_back
    return False


def one_line_under_lm_eval(function: F) -> F:
    """Under the `lm_eval` CLI, a `DataError` from `function` becomes one stderr line and exit status 2."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except DataError as err:
            if not called_from_lm_eval_cli():
                raise
            message = " ".join(str(err).split())  # one line, whatever the message holds
            sys.stderr.write(f"lm_eval: error: {message}\n")
            sys.stderr.flush()
            raise SystemExit(EXIT_STATUS) from None

    return wrapper  # type: ignore[return-value]
