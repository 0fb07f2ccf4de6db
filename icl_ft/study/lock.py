"""The lock of a study's run directory: one study at a time on RUN_DIR."""

from __future__ import annotations

import contextlib
from pathlib import Path

from icl_ft.study import StudyError

__all__ = ["LOCK_FILE", "locked"]

# In RUN_DIR, held by the study running there.
LOCK_FILE = ".study.lock"


@contextlib.contextmanager
def locked(run_dir: Path):
    """Hold RUN_DIR's lock for a study's whole run; a second study on it stops at once with one line.

    Stopping rather than waiting: a second study would find nothing left to do once the first
    finished, and a command that silently waits for hours looks hung. The lock is an OS file
    lock (`filelock`), released by the OS when its process dies, even by kill -9.
    """
    from filelock import FileLock, Timeout

    from icl_ft_common.checks import InputError, check_output_location

    try:
        check_output_location(run_dir, "directory")  # e.g. under a regular file, or in a read-only directory
        run_dir.mkdir(parents=True, exist_ok=True)
    except InputError as err:
        raise StudyError(str(err)) from None
    except OSError as err:
        raise StudyError(f"--output {run_dir} cannot be created ({err.strerror}); choose another --output") from None
    lock = FileLock(run_dir / LOCK_FILE)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise StudyError(
            f"{run_dir} is in use by another icl-ft study (lock {run_dir / LOCK_FILE}); wait until it finishes "
            "(it resumes nothing twice), or give another --output"
        ) from None
    try:
        yield
    finally:
        lock.release()
