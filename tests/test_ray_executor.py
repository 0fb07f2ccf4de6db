"""The Ray executor (`icl_ft.study.ray_executor`) on a real local Ray cluster (a head node and a
second node, one CPU each, so steps run in at least two worker processes), running real study
steps on tiny random models: its outputs equal the local runner's, a worker killed mid-step is
retried and leaves nothing half-written, a step that always fails is retried a bounded number of
times and blocks only its dependents. Skipped without Ray (`pip install 'lm-eval-icl-ft[ray]'`)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from icl_ft.study import runner
from icl_ft.study.cells import Step
from icl_ft.study.plan import PRESETS, Preset, build_plan
from icl_ft.study.ray_executor import INSTALL_HINT, ExecutorError, default_resources, run_graph
from tests.ray_steps import StudySteps, TouchSteps

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
TINY = Preset(
    name="tiny-ray",
    description="tests: a few facts, 4 training steps with a checkpoint after each, 2 test items per split",
    family_options={"reversal": {"num_facts": 4, "examples_per_fact": 2}},
    finetune={
        "steps": 4,
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
CONDITIONS = "base,icl,ft"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d+")


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


@pytest.fixture(scope="module")
def plans(tiny_model):
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(PRESETS, "tiny-ray", TINY)
        return [
            build_plan(str(tiny_model(arch)), "icl_ft_reversal", preset="tiny-ray", conditions=CONDITIONS)
            for arch in ("llama", "qwen2")
        ]


@pytest.fixture(scope="module")
def local_runs(plans, tmp_path_factory):
    """The same studies run by the local executor: the reference."""
    root = tmp_path_factory.mktemp("local")
    runs = []
    for index, plan in enumerate(plans):
        outcome = runner.run_study(plan, root / f"m{index}")
        assert outcome.failed == {}
        runs.append(root / f"m{index}")
    return runs


def study_steps(plans, root: Path, **options) -> StudySteps:
    run_dirs = []
    for index, plan in enumerate(plans):
        runner.prepare(plan, root / f"m{index}")  # the driver records the plan, as the local runner does
        run_dirs.append(str(root / f"m{index}"))
    (root / "pids").mkdir()
    return StudySteps(tuple(p.to_dict() for p in plans), tuple(run_dirs), pid_dir=str(root / "pids"), **options)


def run_on_ray(steps: StudySteps, address: str, **options):
    return run_graph(
        steps.items(), steps.dependencies, steps, steps.is_done, address=address, label=steps.label,
        resources=default_resources(threads=1), **options,
    )  # fmt: skip


def attempts_by_pid(root: Path) -> dict[str, list[int]]:
    """Step label -> the PID of the worker process of each attempt."""
    found: dict[str, list[int]] = {}
    for path in (root / "pids").iterdir():
        label, pid, nanoseconds = (path.name.rsplit(".", 2) + ["", ""])[:3]
        if pid.isdigit() and nanoseconds.isdigit():
            found.setdefault(label, []).append(int(pid))
    return found


def files_of(run_dir: Path) -> list[str]:
    """Every file of a run, with lm-eval's timestamps and the run's own path (in the directory lm-eval
    names after an adapter) masked: leftovers show up here."""
    from lm_eval.utils import sanitize_model_name

    def masked(path: Path) -> str:
        return TIMESTAMP.sub("TS", str(path.relative_to(run_dir)).replace(sanitize_model_name(str(run_dir)), "RUN"))

    return sorted(masked(p) for p in run_dir.rglob("*") if p.is_file())


def assert_same_outputs(ours: Path, reference: Path, only: tuple[str, ...] | None = None) -> None:
    """The same files, bit-identical adapter weights, equal cell records, results and samples."""
    from safetensors.torch import load_file

    def select(files):
        return [f for f in files if only is None or any(f.startswith(prefix) for prefix in only)]

    assert select(files_of(ours)) == select(files_of(reference))
    for adapter in (reference / "adapters").glob("*/adapter_model.safetensors"):
        mine = ours / adapter.relative_to(reference)
        if only is None or str(mine.relative_to(ours)).startswith(only):
            a, b = load_file(mine), load_file(adapter)
            assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a), mine
    for cell in (reference / "cells").iterdir():
        if only is not None and not str((cell / "cell.json").relative_to(reference)).startswith(only):
            continue
        record, mine = json.loads((cell / "cell.json").read_text()), json.loads((ours / "cells" / cell.name /
                                                                                  "cell.json").read_text())  # fmt: skip
        keys = ("status", "condition", "family", "seed", "model", "error")
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


# --- on a real cluster -----------------------------------------------------------------------


def test_two_models_on_ray_equal_the_local_executor(ray_cluster, plans, local_runs, tmp_path):
    steps = study_steps(plans, tmp_path)
    outcome = run_on_ray(steps, ray_cluster)
    labels = [steps.label(item) for item in steps.items()]
    assert outcome.failed == {} and sorted(outcome.done) == sorted(labels) and outcome.skipped == []
    assert set(outcome.attempts.values()) == {1}
    pids = attempts_by_pid(tmp_path)
    assert len({pid for found in pids.values() for pid in found}) >= 2  # the steps ran in parallel workers
    for index, reference in enumerate(local_runs):
        assert_same_outputs(tmp_path / f"m{index}", reference)

    # A rerun finds everything done: nothing is submitted (either executor resumes the other's run).
    again = run_on_ray(steps, ray_cluster)
    assert again.done == [] and sorted(again.skipped) == sorted(labels)


def test_a_worker_killed_mid_step_is_retried_and_leaves_nothing_half_written(
    ray_cluster, plans, local_runs, tmp_path
):  # fmt: skip
    victim = "m0:adapter reversal-ft-seed0"
    steps = study_steps(plans[:1], tmp_path, pause_after_checkpoint=victim)
    adapter = tmp_path / "m0" / "adapters" / "reversal-ft-seed0"
    seen: dict[str, object] = {}

    def kill_when_paused():
        marker, deadline = tmp_path / "pids" / f"{victim}.paused", time.monotonic() + 600
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not marker.exists():
            return
        # Mid-step: a checkpoint is written, the adapter is not (nothing counts as done).
        seen["checkpoints"] = sorted(p.name for p in adapter.with_name(adapter.name + ".work").glob("*/checkpoint-*"))
        seen["adapter_done"] = steps.is_done((0, Step("adapter", "reversal", condition="ft", seed=0)))
        os.kill(int(marker.read_text()), signal.SIGKILL)

    killer = threading.Thread(target=kill_when_paused, daemon=True)
    killer.start()
    outcome = run_on_ray(steps, ray_cluster)
    killer.join(timeout=5)
    assert seen.get("checkpoints") == ["checkpoint-1"] and seen["adapter_done"] is False
    assert outcome.failed == {} and outcome.attempts[victim] == 2
    first, second = attempts_by_pid(tmp_path)[victim]
    assert first != second  # the killed worker's retry ran in another process
    assert_same_outputs(tmp_path / "m0", local_runs[0])


def test_a_step_that_always_fails_is_retried_then_recorded_and_blocks_only_its_dependents(
    ray_cluster, plans, local_runs, tmp_path
):  # fmt: skip
    failing = "m0:adapter reversal-ft-seed0"
    steps = study_steps(plans[:1], tmp_path, always_fail=failing)
    finished = []
    outcome = run_on_ray(steps, ray_cluster, max_retries=1,
                         on_finished=lambda item, status, error, s: finished.append((steps.label(item), status)))  # fmt: skip
    assert outcome.attempts[failing] == 2 and len(attempts_by_pid(tmp_path)[failing]) == 2
    assert outcome.failed[failing] == f"DeliberateFailure: {failing} fails on purpose"  # one line
    dependent = "m0:cell reversal-ft-seed0"
    assert outcome.failed[dependent].startswith(f"not run: {failing} failed (DeliberateFailure")
    assert dependent not in attempts_by_pid(tmp_path)  # never attempted
    assert sorted(outcome.done) == ["m0:cell reversal-base", "m0:cell reversal-icl"]
    assert sorted(finished) == sorted([(failing, "failed"), (dependent, "blocked"),
                                       ("m0:cell reversal-base", "done"), ("m0:cell reversal-icl", "done")])  # fmt: skip
    assert_same_outputs(tmp_path / "m0", local_runs[0], only=("cells/reversal-base/", "cells/reversal-icl/"))
    assert not (tmp_path / "m0" / "adapters").exists() or not any((tmp_path / "m0" / "adapters").iterdir())


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
    result = subprocess.run([sys.executable, "-c", LOCAL_INSTANCE, str(tmp_path)], capture_output=True, text=True,
                            env=env, cwd=REPO, timeout=300, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "['a', 'b', 'c', 'd'] {}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c", "d"]


def test_importing_the_study_never_imports_ray():
    code = ("import sys, icl_ft.cli, icl_ft.study.runner, icl_ft.study.ray_executor, icl_ft.multi_adapter; "
            "print('ray' in sys.modules)")  # fmt: skip
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
    outcome = run_graph([name for name, _ in graph], steps.dependencies, steps, steps.is_done, address=ray_cluster,
                        max_retries=0, tolerates_failures=lambda name: name in steps.tolerant)  # fmt: skip
    assert sorted(outcome.done) == ["after_pass", "b", "pass"]
    assert outcome.failed == {"a": "RuntimeError: a fails on purpose", "needs_a": "not run: a failed (RuntimeError: "
                              "a fails on purpose)"}  # fmt: skip
    assert (tmp_path / "pass").read_text() == "b"  # it ran after a failed and b was done


def test_a_step_no_node_can_fit_is_refused_before_anything_runs(ray_cluster, tmp_path):
    from icl_ft.study.ray_executor import Resources

    steps = TouchSteps(str(tmp_path), (("a", ()),))
    with pytest.raises(ExecutorError, match="step a needs 8 CPUs"):
        run_graph(["a"], lambda n: [], steps, steps.is_done, address=ray_cluster,
                  resources=lambda step, gpus: Resources(num_cpus=8))  # fmt: skip
    assert not (tmp_path / "a").exists()
