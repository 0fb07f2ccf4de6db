"""The Ray executor on a real local Ray cluster (a head node and a second node, one CPU each, so
steps run in at least two worker processes), through `icl-ft study --executor ray` itself, on two
tiny random models in one study: its outputs equal the local executor's; a worker killed with
SIGKILL mid-step is retried and leaves nothing half-written; a cell whose worker dies on its only
attempt is recorded failed by the driver, and the local executor finishes that run. Also the
scheduler (`run_graph`) on trivial steps. Skipped without Ray (`pip install 'lm-eval-icl-ft[ray]'`)."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from icl_ft.study.cells import MODELS_FILE, RunDir, Step
from icl_ft.study.lock import LOCK_FILE
from icl_ft.study.plan import PRESETS, Preset
from icl_ft.study.ray_executor import INSTALL_HINT, ExecutorError, run_graph
from tests.ray_steps import TouchSteps

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
TINY = Preset(
    name="tiny-ray",
    description="tests: 12 training steps with a checkpoint after each (time to kill one), 2 test items per split",
    finetune={
        "steps": 12,
        "batch_size": 2,
        "save_steps": 1,
        "logging_steps": 1,
        "verify_texts": 2,
        "min_loglik_change": 0.0,
        "precision": "fp32",
    },
    augment={},
    limit=2,
    threads=1,
)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d+")
# Written next to the cells by the analysis at the end of every run, not by a step.
ANALYSIS_FILES = ("report.md", "figure.png")


@pytest.fixture(scope="module")
def ray_cluster():
    """A head node and one more node, one CPU each; yields the address to connect to."""
    pytest.importorskip("ray", reason=f"Ray is not installed (optional extra: {INSTALL_HINT})")
    from ray.cluster_utils import Cluster

    # Workers start in the driver's directory and import from it: `tests.ray_steps` must be importable.
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(REPO)
        node = {"num_cpus": 1, "object_store_memory": 100 * 1024**2}
        cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
        cluster.add_node(**node)
        try:
            yield cluster.address
        finally:
            cluster.shutdown()


@pytest.fixture(autouse=True)
def tiny_preset(monkeypatch):
    monkeypatch.setitem(PRESETS, "tiny-ray", TINY)


@pytest.fixture(scope="module")
def models(tiny_model):
    return [tiny_model("llama"), tiny_model("qwen2")]


def study(models, output: Path, *extra: str) -> int:
    """`icl-ft study` as a user runs it (in this process: the driver)."""
    from icl_ft.cli import main

    model_flags = [flag for model in models for flag in ("--model", str(model))]
    return main(
        [
            "study",
            *model_flags,
            "--tasks",
            "icl_ft_reversal",
            "--preset",
            "tiny-ray",
            "--conditions",
            "base,icl,ft",
            "--family-option",
            "num_facts=4",
            "--family-option",
            "examples_per_fact=2",
            "--output",
            str(output),
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def local_run(models, tmp_path_factory):
    """The same two-model study run by the local executor: the reference."""
    output = tmp_path_factory.mktemp("local") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(PRESETS, "tiny-ray", TINY)
        assert study(models, output) == 0
    return output


def model_dirs(run_dir: Path) -> dict[str, Path]:
    """Model path -> that model's run directory in a study of several models."""
    recorded = json.loads((run_dir / MODELS_FILE).read_text())
    return {path: run_dir / "models" / model_id for model_id, path in recorded.items()}


def files_of(run_dir: Path) -> list[str]:
    """Every file of a run, with lm-eval's timestamps and the run's own path (in the directory lm-eval
    names after an adapter) masked: leftovers show up here."""
    from lm_eval.utils import sanitize_model_name

    def masked(path: Path) -> str:
        return TIMESTAMP.sub("TS", str(path.relative_to(run_dir)).replace(sanitize_model_name(str(run_dir)), "RUN"))

    # The run directory's lock file (issue 14) belongs to the run, not to one model's outputs.
    skipped = (*ANALYSIS_FILES, LOCK_FILE)
    return sorted(masked(p) for p in run_dir.rglob("*") if p.is_file() and p.name not in skipped)


def assert_same_outputs(ours: Path, reference: Path) -> None:
    """The same files, bit-identical adapter weights, equal cell records, results and samples."""
    from safetensors.torch import load_file

    assert files_of(ours) == files_of(reference)
    for adapter in (reference / "adapters").glob("*/adapter_model.safetensors"):
        mine = ours / adapter.relative_to(reference)
        a, b = load_file(mine), load_file(adapter)
        assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a), mine
    for cell in (reference / "cells").iterdir():
        record = json.loads((cell / "cell.json").read_text())
        mine = json.loads((ours / "cells" / cell.name / "cell.json").read_text())
        keys = ("status", "condition", "family", "train_seed", "data_seed", "model", "error")
        assert {k: mine[k] for k in keys} == {k: record[k] for k in keys}
        (ref_results,) = cell.glob("lm_eval/*/results_*.json")
        (our_results,) = (ours / "cells" / cell.name).glob("lm_eval/*/results_*.json")
        our_record, ref_record = json.loads(our_results.read_text()), json.loads(ref_results.read_text())
        assert our_record["results"] == ref_record["results"] and our_record["n-samples"] == ref_record["n-samples"]
        for ref_samples in cell.glob("lm_eval/*/samples_*.jsonl"):
            name = ref_samples.name.rsplit("_", 1)[0]
            (our_samples,) = our_results.parent.glob(f"{name}_*.jsonl")
            assert [json.loads(r) for r in our_samples.read_text().splitlines()] == [
                json.loads(r) for r in ref_samples.read_text().splitlines()
            ]


def worker_pid(task_name: str) -> int | None:
    """The PID of the Ray worker running the task named `task_name` (Ray titles it `ray::<name>`)."""
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (OSError, ValueError):
            continue
        if command == f"ray::{task_name}":
            return int(entry.name)
    return None


def kill_when(condition, task_name: str, seen: dict, timeout: float = 600) -> threading.Thread:
    """A thread that SIGKILLs the worker of `task_name` once `condition()` (a dict of what it saw then) holds."""

    def watch():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = condition()
            pid = worker_pid(task_name) if state else None
            if pid is not None:
                seen.update(state, pid=pid)
                os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


# --- the study on a real cluster ---------------------------------------------------------------


def test_two_models_on_ray_equal_the_local_executor(ray_cluster, models, local_run, tmp_path):
    output = tmp_path / "run"
    assert study(models, output, "--executor", "ray", "--ray-address", ray_cluster) == 0
    ours, reference = model_dirs(output), model_dirs(local_run)
    assert sorted(ours) == sorted(reference) == sorted(str(m.resolve()) for m in models)
    for model in ours:
        assert_same_outputs(ours[model], reference[model])
    workers = {json.loads(p.read_text())["worker"] for p in output.glob("models/*/cells/*/cell.json")}
    assert len(workers) >= 2 and f"{os.uname().nodename}:{os.getpid()}" not in workers  # in parallel, not here

    # Either executor resumes the other's run: the local executor finds every step done.
    from icl_ft.study import runner

    monkeypatch = pytest.MonkeyPatch()
    for name in ("run_augment", "run_finetune", "evaluate"):
        monkeypatch.setattr(runner, name, lambda *a, **k: pytest.fail("a finished step was run again"))
    try:
        assert study(models, output) == 0
    finally:
        monkeypatch.undo()


def test_a_worker_killed_mid_step_is_retried_and_leaves_nothing_half_written(
    ray_cluster, models, local_run, tmp_path, caplog
):
    output = tmp_path / "run"
    adapter = RunDir(output).adapter_dir(Step("adapter", "reversal", condition="ft", train_seed=0))
    work = adapter.with_name(adapter.name + ".work")

    def mid_training():  # a checkpoint is written, the adapter is not: nothing counts as done
        if any(work.glob("**/checkpoint-2")):
            return {"adapter_exists": adapter.exists()}
        return None

    seen: dict = {}
    killer = kill_when(mid_training, "adapter reversal-ft-seed0", seen)
    scheduler_log = logging.getLogger("icl_ft.study.ray_executor")
    scheduler_log.addHandler(caplog.handler)  # the study's loggers do not propagate to pytest's
    try:
        assert study(models[:1], output, "--executor", "ray", "--ray-address", ray_cluster) == 0
    finally:
        scheduler_log.removeHandler(caplog.handler)
    killer.join(timeout=5)
    assert seen.get("adapter_exists") is False, "the worker was not killed mid-training"
    assert "adapter reversal-ft-seed0: attempt 1 failed (its worker died" in caplog.text
    assert_same_outputs(output, model_dirs(local_run)[str(models[0].resolve())])  # as if never killed


def test_a_cell_whose_worker_dies_is_recorded_failed_and_the_local_executor_finishes_it(
    ray_cluster, models, local_run, tmp_path, capsys
):
    output = tmp_path / "run"
    cell = Step("cell", "reversal", condition="icl")

    def scoring():
        state = RunDir(output).read_cell(cell)
        return {"status": state["status"]} if state else None

    seen: dict = {}
    killer = kill_when(scoring, "cell reversal-icl", seen)
    code = study(models[:1], output, "--executor", "ray", "--ray-address", ray_cluster, "--max-retries", "0")
    killer.join(timeout=5)
    assert seen.get("status") == "running" and code == 1
    record = RunDir(output).read_cell(cell)
    assert record["status"] == "failed" and record["error"].startswith("its worker died")  # not left "running"
    assert "FAILED cell reversal-icl: its worker died" in capsys.readouterr().out
    assert study(models[:1], output) == 0  # the local executor redoes only that cell
    assert_same_outputs(output, model_dirs(local_run)[str(models[0].resolve())])


def test_ray_flags_without_ray_or_with_bad_values_are_one_line_errors(models, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    assert study(models[:1], tmp_path / "run", "--executor", "ray") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and INSTALL_HINT in err
    assert study(models[:1], tmp_path / "run", "--executor", "ray", "--max-retries", "-1") == 2
    assert "--max-retries -1 must be >= 0" in capsys.readouterr().err
    assert study(models[:1], tmp_path / "run", "--ray-address", "10.0.0.1:6379") == 2
    assert "--ray-address 10.0.0.1:6379 needs --executor ray" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# --- without a cluster -------------------------------------------------------------------------

LOCAL_INSTANCE = """
import sys
from pathlib import Path
from icl_ft.study.ray_executor import run_graph
from tests.ray_steps import TouchSteps

steps = TouchSteps(sys.argv[1], (("a", ()), ("b", ("a",)), ("c", ("a",)), ("d", ("b", "c"))))
outcome = run_graph([name for name, _ in steps.graph], steps.dependencies, steps, steps.is_done, local_cpus=2)
print(sorted(outcome.done), outcome.failed)
"""


def test_without_an_address_a_local_ray_instance_is_started_and_stopped(tmp_path):
    pytest.importorskip("ray", reason=f"Ray is not installed (optional extra: {INSTALL_HINT})")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", LOCAL_INSTANCE, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "['a', 'b', 'c', 'd'] {}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c", "d"]


def test_importing_the_study_never_imports_ray():
    code = (
        "import sys, icl_ft.cli, icl_ft.study.runner, icl_ft.study.ray_executor, icl_ft.multi_adapter; "
        "print('ray' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.strip() == "False"


def test_without_ray_installed_the_error_is_one_line_naming_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    steps = TouchSteps(str(tmp_path), (("a", ()),))
    with pytest.raises(ExecutorError) as raised:
        run_graph(["a"], lambda n: [], steps, steps.is_done)
    message = str(raised.value)
    assert "\n" not in message and INSTALL_HINT in message


def test_a_step_that_tolerates_failures_runs_after_its_failed_dependencies(ray_cluster, tmp_path):
    """E.g. one scoring pass over a family's adapters: it scores the adapters that exist."""
    graph = (("a", ()), ("b", ()), ("pass", ("a", "b")), ("after_pass", ("pass",)), ("needs_a", ("a",)))
    steps = TouchSteps(str(tmp_path), graph, failing=("a",), tolerant=("pass",))
    outcome = run_graph(
        [name for name, _ in graph],
        steps.dependencies,
        steps,
        steps.is_done,
        address=ray_cluster,
        max_retries=0,
        tolerates_failures=lambda name: name in steps.tolerant,
    )
    assert sorted(outcome.done) == ["after_pass", "b", "pass"]
    assert outcome.failed == {
        "a": "RuntimeError: a fails on purpose",
        "needs_a": "not run: a failed (RuntimeError: a fails on purpose)",
    }
    assert (tmp_path / "pass").read_text() == "b"  # it ran after a failed and b was done


def test_a_step_no_node_can_fit_is_refused_before_anything_runs(ray_cluster, tmp_path):
    from icl_ft.study.ray_executor import Resources

    steps = TouchSteps(str(tmp_path), (("a", ()),))
    with pytest.raises(ExecutorError, match="step a needs 8 CPUs"):
        run_graph(
            ["a"],
            lambda n: [],
            steps,
            steps.is_done,
            address=ray_cluster,
            resources=lambda step, gpus: Resources(num_cpus=8),
        )
    assert not (tmp_path / "a").exists()


def test_a_step_that_always_fails_is_tried_a_bounded_number_of_times_and_blocks_only_its_dependents(
    ray_cluster, tmp_path
):
    graph = (("a", ()), ("b", ()), ("needs_a", ("a",)), ("needs_needs_a", ("needs_a",)), ("needs_b", ("b",)))
    steps = TouchSteps(str(tmp_path), graph, failing=("a",))
    finished = []

    def on_finished(name, status, error, seconds):
        finished.append((name, status))

    outcome = run_graph(
        [name for name, _ in graph],
        steps.dependencies,
        steps,
        steps.is_done,
        address=ray_cluster,
        max_retries=1,
        on_finished=on_finished,
    )
    assert outcome.attempts["a"] == 2 and outcome.failed["a"] == "RuntimeError: a fails on purpose"  # one line
    assert (
        outcome.failed["needs_needs_a"] == "not run: needs_a failed (not run: a failed (RuntimeError: a fails on "
        "purpose))"
    )
    assert sorted(outcome.done) == ["b", "needs_b"] and "needs_a" not in outcome.attempts
    assert sorted(finished) == [
        ("a", "failed"),
        ("b", "done"),
        ("needs_a", "blocked"),
        ("needs_b", "done"),
        ("needs_needs_a", "blocked"),
    ]


def test_a_step_failing_on_bad_input_is_not_retried(ray_cluster, tmp_path):
    steps = TouchSteps(str(tmp_path), (("bad", ()), ("flaky", ())), failing=("flaky",), bad_input=("bad",))
    outcome = run_graph(["bad", "flaky"], steps.dependencies, steps, steps.is_done, address=ray_cluster, max_retries=2)
    assert outcome.attempts == {"bad": 1, "flaky": 3}
    assert outcome.failed == {"bad": "bad has bad input", "flaky": "RuntimeError: flaky fails on purpose"}
