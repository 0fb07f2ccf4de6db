"""A study's run directory is locked: a second study on it stops at once, with one line, and records nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from icl_ft.study.lock import LOCK_FILE
from tests.processes import ctrl_c_when

pytestmark = pytest.mark.integration


def test_a_second_study_on_a_running_run_directory_stops_with_one_line_and_records_nothing(tiny_model, tmp_path):
    """Two real processes: the second stops at once; the first finishes every cell, none marked failed."""
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "icl_ft.study",
        "--model",
        str(tiny_model("llama")),
        "--tasks",
        "icl_ft_reversal",
        "--output",
        str(run_dir),
        "--conditions",
        "base,icl",
        "--limit",
        "4",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None and not list(run_dir.glob("cells/*/cell.json")):
        time.sleep(0.05)
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    still_running = first.poll() is None
    first_out, first_err = first.communicate(timeout=600)
    assert still_running, "the first study ended before the second started; nothing was tested"
    assert second.returncode == 2 and second.stdout == ""
    assert second.stderr == (
        f"icl-ft study: error: {run_dir} is in use by another icl-ft study (lock {run_dir / LOCK_FILE}); "
        "wait until it finishes (it resumes nothing twice), or give another --output\n"
    )
    assert first.returncode == 0, first_err[-2000:]
    assert "2 steps run, 0 already done, 0 failed" in first_out
    cells = sorted(run_dir.glob("cells/*/cell.json"))
    assert len(cells) == 2 and all(json.loads(cell.read_text())["status"] == "done" for cell in cells)
    # The lock goes with its process: the next study on the directory runs (and finds nothing to do).
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "0 steps run, 2 already done, 0 failed" in again.stdout


def test_ctrl_c_stops_a_study_with_one_line_and_releases_the_lock(tiny_model, tmp_path):
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "icl_ft.study",
        "--model",
        str(tiny_model("llama")),
        "--tasks",
        "icl_ft_reversal",
        "--output",
        str(run_dir),
        "--conditions",
        "base,icl",
        "--limit",
        "4",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    returncode, stderr = ctrl_c_when(
        command, env, ready=lambda: any(run_dir.glob("cells/*/cell.json")), wait=120, timeout=300
    )
    assert returncode == 130, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == f"icl-ft study: interrupted; rerun the same command to resume {run_dir}"
    assert "Traceback" not in stderr
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0 and ", 0 failed" in rerun.stdout, rerun.stderr[-2000:]
