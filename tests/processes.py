"""Helpers for tests that run our commands as real processes."""

import signal
import subprocess
import time
from collections.abc import Callable


def sigint_as_in_a_terminal() -> None:
    """`preexec_fn` for a child that a test interrupts with SIGINT, as Ctrl-C in a terminal would.

    A shell starts background jobs with SIGINT ignored (CI runners often run the suite that way),
    children inherit it, and Python then installs no KeyboardInterrupt handler: the signal would be
    ignored and the command would run to its end. Restoring the default makes the test independent
    of how the suite itself was started.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def ctrl_c_when(
    command: list[str], env: dict[str, str], ready: Callable[[], bool], wait: float, timeout: float
) -> tuple[int, str]:
    """Run `command`, press Ctrl-C once `ready()` holds (or it ended, or `wait` seconds passed) and
    return its exit code and stderr."""
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_in_a_terminal,
    )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and process.poll() is None and not ready():
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=timeout)
    return process.returncode, stderr
