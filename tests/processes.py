"""Helpers for tests that run our commands as real processes."""

import signal


def sigint_as_in_a_terminal() -> None:
    """`preexec_fn` for a child that a test interrupts with SIGINT, as Ctrl-C in a terminal would.

    A shell starts background jobs with SIGINT ignored (CI runners often run the suite that way),
    children inherit it, and Python then installs no KeyboardInterrupt handler: the signal would be
    ignored and the command would run to its end. Restoring the default makes the test independent
    of how the suite itself was started.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
