"""Execute a study plan: every step not done yet, dependencies first, failures isolated.

    from icl_ft.study.config import StudyConfig
    from icl_ft.study.plan import build_plan
    from icl_ft.study.runner import run_study
    outcome = run_study(build_plan(StudyConfig(model=model_dir, tasks="icl_ft_reversal")), "runs/demo")

What runs a step and what decides where and when are separate:

- `execute_step(plan, run_root, step)` does one step in the calling process and returns None or a
  one-line error. Its arguments are plain picklable data, so an executor may call it in another
  process or on another machine; a step's output is atomic, so it is done iff its output exists.
- an executor (`Executor`) runs a list of steps given in dependency order and reports each one's
  `StepResult`. It must start a step only after all of its `dependencies` succeeded, and report a
  step whose dependency failed as failed without running it. `SerialExecutor` runs them one after
  another in this process; a pool of processes or a cluster executor would implement the same `run`.

The three kinds of work go through `run_augment`, `run_finetune` and `evaluate` (module
functions, so tests can replace them).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from icl_ft.conditions import AUGMENT_MODE, is_trained, prompt_condition
from icl_ft.study import StudyError
from icl_ft.study.cells import RunDir, Step, dependencies, results_file, steps_of
from icl_ft.study.plan import StudyPlan, load_saved_plan, merge_plan, plan_differences
from icl_ft_common.artifacts import LM_EVAL_DIR, PROVENANCE_FILE, dropped_path, summary_path
from icl_ft_common.io import read_json, write_json_atomic

logger = logging.getLogger(__name__)


# --- the three kinds of work ------------------------------------------------------------------


def run_augment(plan: StudyPlan, output: Path, family: str, mode: str) -> None:
    """Augmented rows for one family and mode (greedy decoding: the same for every training seed)."""
    import augment

    augment.run(plan.augment_config(family, mode, output))


def run_finetune(plan: StudyPlan, output: Path, family: str, train_seed: int, extra_data: list[str]) -> None:
    """One LoRA adapter; finetune publishes atomically and resumes from its checkpoints."""
    import finetune

    finetune.run(plan.finetune_config(family, output, train_seed, extra_data))


def evaluate(
    model: str,
    model_args: dict[str, Any],
    task: str,
    metadata: dict[str, Any],
    limit: int | None,
    batch_size: int,
    output_path: Path,
) -> None:
    """Score one task with lm-eval's Python API and save its results and samples as `lm_eval` does."""
    import lm_eval
    import torch
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    from lm_eval_tasks import TASKS_DIR

    tracker = EvaluationTracker(output_path=str(output_path))
    # include_defaults=False: our tasks only, without re-indexing lm-eval's ~4 s built-in tree.
    task_manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False, metadata=metadata)
    results = lm_eval.simple_evaluate(
        model=model,
        model_args=model_args,
        tasks=[task],
        batch_size=batch_size,
        device="cuda" if torch.cuda.is_available() else "cpu",
        limit=limit,
        log_samples=True,
        evaluation_tracker=tracker,
        task_manager=task_manager,
        metadata=metadata,
    )
    if results is None:
        raise RuntimeError("lm-eval returned no results")
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for task_name in results["configs"]:
        tracker.save_results_samples(task_name=task_name, samples=samples[task_name])


# --- progress ------------------------------------------------------------------------------


def estimate_seconds(plan: StudyPlan, step: Step) -> float:
    """A rough cost model (measured: SmolLM2-135M, 1 thread on 2 busy cores, small preset);
    the ETA rescales it by the speed measured on the steps done so far."""
    from lm_eval_tasks.families import family_spec

    spec = family_spec(step.family)
    if step.kind == "augment":
        items = plan.augment.get(step.mode, {}).get("limit") or spec.study.augment_items
        return {"local": 1.7, "global": 3.0, "oracle": 0.0}[step.mode] * items + 3
    if step.kind == "adapter":
        return 0.8 * plan.finetune.get("steps", 300) + 5
    docs = (plan.limit or 100) * len(spec.splits)
    return 2 + 0.5 * docs


class Progress:
    """One line per step on stderr: what finished, how long it took, elapsed, ETA."""

    def __init__(self, plan: StudyPlan, todo: list[Step]):
        self.plan = plan
        self.total = len(todo)
        self.remaining = {step: estimate_seconds(plan, step) for step in todo}
        self.started = time.monotonic()
        self.estimated_done = 0.0
        self.actual_done = 0.0
        self.count = 0

    def finished(self, step: Step, status: str, seconds: float, executed: bool) -> None:
        self.count += 1
        estimate = self.remaining.pop(step, 0.0)
        if executed and seconds > 1:
            self.estimated_done += estimate
            self.actual_done += seconds
        speed = self.actual_done / self.estimated_done if self.estimated_done else 1.0
        eta = sum(self.remaining.values()) * speed
        logger.info(
            "[%d/%d] %-8s %-40s %6.0fs | elapsed %s, ETA %s",
            self.count,
            self.total,
            status,
            step.label,
            seconds,
            _clock(time.monotonic() - self.started),
            _clock(eta),
        )


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    message = text[0] if text else ""
    return f"{type(err).__name__}: {message}"[:400]


# --- executing steps ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StepResult:
    step: Step
    error: str | None  # None: done
    seconds: float
    executed: bool  # False: not attempted, a dependency failed


class Executor(Protocol):
    def run(
        self, steps: Sequence[Step], execute: Callable[[Step], str | None], report: Callable[[StepResult], None]
    ) -> None:
        """Run `steps` (listed dependencies first) with `execute`; `report` each one's result once."""


class SerialExecutor:
    """Every step in turn, in this process; a step whose dependency failed is not attempted."""

    def run(
        self, steps: Sequence[Step], execute: Callable[[Step], str | None], report: Callable[[StepResult], None]
    ) -> None:
        failed: dict[Step, str] = {}
        for step in steps:
            started = time.monotonic()
            blocked = [d for d in dependencies(step) if d in failed]
            if blocked:
                error, executed = f"not run: {blocked[0].label} failed ({failed[blocked[0]]})", False
            else:
                error, executed = execute(step), True
            if error is not None:
                failed[step] = error
            report(StepResult(step, error, time.monotonic() - started, executed))


def execute_step(plan: StudyPlan, run_root: Path, step: Step) -> str | None:
    """Run one step; return None on success or a one-line error. KeyboardInterrupt propagates
    (a cell then stays `running`, and the next run redoes it)."""
    run = RunDir(run_root)
    started = time.monotonic()
    try:
        if step.kind == "augment":
            run_augment(plan, run.augment_output(step.family, step.mode), step.family, step.mode)
            return None
        if step.kind == "adapter":
            mode = AUGMENT_MODE[step.condition]
            extra = [str(run.augment_output(step.family, mode))] if mode else []
            if mode:
                check_augmentation(run.augment_output(step.family, mode))
            run_finetune(plan, run.adapter_dir(step), step.family, step.train_seed, extra)
            return None
        _score(plan, run, step, started)
        return None
    except KeyboardInterrupt:
        raise
    except Exception as err:  # noqa: BLE001 - any failure of one step must not stop the others
        error = _one_line(err)
        logger.debug("%s failed", step.label, exc_info=True)
        if step.kind == "cell":
            _write_cell(plan, run, step, "failed", error, time.monotonic() - started)
        return error


# --- the run -------------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    run_dir: Path
    done: list[str]
    skipped: list[str]
    failed: dict[str, str]
    seconds_by_kind: dict[str, float]


def prepare(plan: StudyPlan, run_dir: Path) -> StudyPlan:
    """Refuse a RUN_DIR made with a contradicting plan; record the (possibly extended) plan."""
    if run_dir.exists() and not run_dir.is_dir():
        raise StudyError(f"--output {run_dir} is a file, not a run directory; choose a new --output")
    run = RunDir(run_dir)
    saved = load_saved_plan(run.plan_file)
    recorded = plan
    if saved is not None:
        differing = plan_differences(saved, plan)
        if differing:
            raise StudyError(
                f"{run_dir} holds a study with a different plan ({', '.join(differing)} differ); "
                "choose a new --output, or rerun with the original settings"
            )
        recorded = merge_plan(saved, plan)
    write_json_atomic(run.plan_file, recorded.to_dict())
    return recorded


def run_study(plan: StudyPlan, run_dir: str | Path, executor: Executor | None = None) -> Outcome:
    run = RunDir(Path(run_dir).resolve())  # absolute: cell.json's adapter paths must not depend on the cwd
    prepare(plan, run.root)
    if plan.threads:
        import torch

        torch.set_num_threads(plan.threads)
    steps = steps_of(plan)
    todo = [s for s in steps if not run.is_done(s)]
    outcome = Outcome(run.root, [], [s.label for s in steps if s not in todo], {}, {})
    logger.info(
        "study %s: %d steps (%d done already, %d to run), preset %s, training seeds %s",
        run.root,
        len(steps),
        len(steps) - len(todo),
        len(todo),
        plan.preset,
        plan.train_seeds,
    )
    progress = Progress(plan, todo)

    def report(result: StepResult) -> None:
        step = result.step
        if result.error is None:
            outcome.done.append(step.label)
            outcome.seconds_by_kind[step.kind] = outcome.seconds_by_kind.get(step.kind, 0.0) + result.seconds
        else:
            outcome.failed[step.label] = result.error
            if step.kind == "cell" and not result.executed:
                _write_cell(plan, run, step, "failed", result.error, 0.0)
        progress.finished(step, "done" if result.error is None else "FAILED", result.seconds, result.executed)

    (executor or SerialExecutor()).run(todo, functools.partial(execute_step, plan, run.root), report)
    return outcome


def _adapter_path(run: RunDir, step: Step) -> str | None:
    return str(run.adapter_dir(step)) if is_trained(step.condition) else None


def _write_cell(plan: StudyPlan, run: RunDir, step: Step, status: str, error: str | None, seconds: float) -> None:
    run.write_cell(
        step,
        condition=step.condition,
        family=step.family,
        train_seed=step.train_seed,
        data_seed=plan.data_seed,
        model=plan.model,
        adapter=_adapter_path(run, step),
        status=status,
        error=error,
        wall_seconds=round(seconds, 2),
    )


def scored_task(family: str, condition: str) -> str:
    """The lm-eval group a cell of `condition` scores: every split of the family, ICL or bare prompts."""
    from lm_eval_tasks.families import condition_group

    return condition_group(family, prompt_condition(condition))


def _score(plan: StudyPlan, run: RunDir, step: Step, started: float) -> None:
    cell_dir = run.cell_dir(step)
    adapter = _adapter_path(run, step)
    if adapter is not None:
        check_adapter_base(Path(adapter), plan.model)
    _write_cell(plan, run, step, "running", None, 0.0)
    # An unfinished or failed earlier attempt left partial lm-eval files: start clean.
    shutil.rmtree(cell_dir / LM_EVAL_DIR, ignore_errors=True)
    model_args: dict[str, Any] = {"pretrained": plan.model, "dtype": "float32"}
    if adapter is not None:
        model_args["peft"] = adapter
    model = "hf-prefix" if step.condition == "icl" else "hf"
    task = scored_task(step.family, step.condition)
    evaluate(model, model_args, task, plan.metadata(step.family), plan.limit, plan.batch_size, cell_dir / LM_EVAL_DIR)
    if results_file(cell_dir) is None:
        raise RuntimeError(f"lm-eval wrote no results file under {cell_dir / LM_EVAL_DIR}")
    _write_cell(plan, run, step, "done", None, time.monotonic() - started)


def check_augmentation(output: Path) -> None:
    """An augmentation that kept no sentence would train a copy of the `ft` adapter: say so instead."""
    summary = read_json(summary_path(output))
    if not summary.get("kept"):
        dropped = summary.get("dropped_by_reason", {})
        reasons = ", ".join(f"{r} {n}" for r, n in dropped.items() if n) or "none generated"
        raise StudyError(
            f"{output.name} kept no sentence ({reasons}; see {dropped_path(output).name}), so this adapter would "
            "equal ft; augment more items (the preset's augment limit) or generate with a stronger model"
        )


def check_adapter_base(adapter: Path, model: str) -> None:
    """An adapter trained on another base model cannot be scored on this one."""
    try:
        provenance = read_json(adapter / PROVENANCE_FILE)
    except (OSError, ValueError):
        raise StudyError(f"adapter {adapter} has no readable {PROVENANCE_FILE}; delete it to retrain") from None
    base = provenance.get("base_model", {}).get("path")
    if base and Path(base).resolve() != Path(model).resolve():
        raise StudyError(
            f"adapter {adapter} was trained on {base}, not {model}; delete it to retrain or use a new --output"
        )


# --- the summary table -------------------------------------------------------------------------


def accuracy(cell_dir: Path, task: str) -> float | None:
    path = results_file(cell_dir)
    if path is None:
        return None
    entry = read_json(path)["results"].get(task, {})
    value = entry.get("acc,none")
    return float(value) if isinstance(value, (int, float)) else None


def accuracy_table(run_dir: str | Path) -> str:
    """Family x condition accuracy (mean over seeds, with the spread when there are several)."""
    run = RunDir(Path(run_dir))
    plan = StudyPlan.from_dict(read_json(run.plan_file))
    header = ["family"] + plan.conditions
    rows = [header]
    for family in plan.families:
        row = [family]
        for condition in plan.conditions:
            seeds = plan.train_seeds if is_trained(condition) else [None]
            task = scored_task(family, condition)
            cells = [run.cell_dir(Step("cell", family, condition=condition, train_seed=seed)) for seed in seeds]
            values = [a for cell in cells if (a := accuracy(cell, task)) is not None]
            row.append(_format(values, len(seeds)))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)) for r in rows)


def _format(values: list[float], expected: int) -> str:
    if not values:
        return "-"
    text = f"{statistics.mean(values):.3f}"
    if len(values) > 1:
        text += f"±{statistics.stdev(values):.3f}"
    if len(values) < expected:
        text += f" ({len(values)}/{expected})"
    return text if not math.isnan(statistics.mean(values)) else "nan"
