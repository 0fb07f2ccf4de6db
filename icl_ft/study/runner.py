"""Execute a study plan: every step not done yet, dependencies first, failures isolated.

    from icl_ft.study.config import StudyConfig
    from icl_ft.study.plan import build_plans
    from icl_ft.study.runner import run_study
    outcome = run_study(build_plans(StudyConfig(model=[model_a, model_b], tasks="icl_ft_reversal")), "runs/demo")

What runs a step and what decides where and when are separate:

- `execute_step(plan, run_root, step)` does one step in the calling process and returns None or a
  one-line error; a step's output is atomic, so it is done iff its output exists.
- `StudyGraph` (made by `prepare_study`, which checks and records RUN_DIR on the driver) holds the
  plans of every model: its `Job`s (a step of one model's run directory), their dependencies,
  `is_done`, and `execute(job)`. It is plain picklable data, so an executor may call `execute`
  in another process or on another machine.
- an executor (`Executor`) runs a list of jobs given in dependency order and reports each one's
  `StepResult`. It must start a job only after all of its dependencies succeeded, and report a
  job whose dependency failed as failed without running it. `SerialExecutor` runs them one after
  another in this process; `RayExecutor` runs them as Ray tasks (its scheduler:
  `icl_ft.study.ray_executor.run_graph`, the only module that imports Ray).

The three kinds of work go through `run_augment`, `run_finetune` and `evaluate` (module
functions, so tests can replace them).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import shutil
import socket
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from icl_ft.conditions import AUGMENT_MODE, is_trained, prompt_condition
from icl_ft.study import StudyError
from icl_ft.study.cells import (
    RunDir,
    Step,
    dependencies,
    model_run_dirs,
    pass_cells,
    record_models,
    results_file,
    score_pass,
    steps_of,
)
from icl_ft.study.lock import locked
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
    """A rough cost model of one step from the plan's data (the generators are memoized, so this
    costs nothing after the plan check). Its constants were measured with SmolLM2-135M on 2 idle
    cores (`make run`, 2026-12-03: adapters 28-77 s, FT scoring passes 17-212 s); the ETA rescales
    each kind of step by the speed measured on the steps of that kind done so far."""
    from lm_eval_tasks.api import generate_family
    from lm_eval_tasks.families import family_spec

    if step.kind == "augment":
        items = plan.augment.get(step.mode, {}).get("limit") or family_spec(step.family).study.augment_items
        return {"local": 1.7, "global": 3.0, "oracle": 0.0}[step.mode] * items + 3
    if step.kind == "adapter":
        from finetune.data import load_documents, make_units

        # Training time follows the tokens seen: steps x units per step x mean unit length, with
        # finetune's own units and step count (augmented rows, not known yet, are left out).
        cfg = plan.finetune_config(step.family, Path("estimate"), step.train_seed or 0, [])
        documents, _, _ = load_documents(cfg.family, cfg.data_seed, cfg.family_options, [])
        units = make_units(documents, cfg.unit)
        mean_chars = sum(len(u.context) + len(u.target) for u in units) / max(len(units), 1)
        return 20 + 0.0011 * cfg.num_steps(len(units)) * cfg.batch_size * mean_chars
    data = generate_family(step.family, plan.data_seed, **plan.options(step.family))
    # Scoring time follows the characters scored: every choice after its question (an ICL cell
    # adds its shared context once: hf-prefix caches it).
    rows = [row for split in data.tests.values() for row in split[: plan.limit]]
    chars = sum(len(row["query"]) * len(row["choices"]) + sum(map(len, row["choices"])) for row in rows)
    if step.condition == "icl":
        chars += sum(map(len, data.icl_facts))
    return 5 + 0.0013 * chars


class Progress:
    """One line per step on stderr: what finished, how long it took, elapsed, ETA."""

    def __init__(self, todo: Sequence[Any], estimate: Callable[[Any], float], kind: Callable[[Any], str] | None = None):
        self.total = len(todo)
        self.kind = kind or (lambda item: "")  # without `kind`, one speed for every step
        self.remaining = {item: estimate(item) for item in todo}
        self.started = time.monotonic()
        self.estimated_done: dict[str, float] = {}  # per kind of step
        self.actual_done: dict[str, float] = {}
        self.count = 0

    def speed(self, kind: str) -> float:
        """Measured / estimated seconds of the steps of `kind` done so far (of all steps if none)."""
        if self.estimated_done.get(kind):
            return self.actual_done[kind] / self.estimated_done[kind]
        estimated = sum(self.estimated_done.values())
        return sum(self.actual_done.values()) / estimated if estimated else 1.0

    def finished(self, step: Any, status: str, seconds: float, executed: bool) -> None:
        self.count += 1
        estimate = self.remaining.pop(step, 0.0)
        if executed and seconds > 1:
            kind = self.kind(step)
            self.estimated_done[kind] = self.estimated_done.get(kind, 0.0) + estimate
            self.actual_done[kind] = self.actual_done.get(kind, 0.0) + seconds
        eta = sum(seconds * self.speed(self.kind(item)) for item, seconds in self.remaining.items())
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


def quiet_libraries() -> None:
    """lm-eval, transformers and datasets log every request batch and file; keep their warnings only."""
    for noisy in ("transformers", "peft", "accelerate", "datasets", "httpx", "augment", "finetune"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("lm_eval").setLevel(logging.ERROR)  # a warning per task about --metadata hints


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    message = text[0] if text else ""
    return f"{type(err).__name__}: {message}"[:400]


# --- executing steps ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Job:
    """One step of one model's run directory: what an executor schedules."""

    run_root: str
    step: Step
    model: str = ""  # the model's id in a study of several models, "" in a one-model study

    @property
    def label(self) -> str:
        return f"{self.model}: {self.step.label}" if self.model else self.step.label


@dataclasses.dataclass(frozen=True)
class StudyGraph:
    """The jobs of a study, their dependencies and how to run one. Plain picklable data: an executor
    may call `execute` (or `execute_or_raise`) in another process or on another machine."""

    runs: tuple[tuple[str, str, StudyPlan], ...]  # (run root, model id, plan) per model

    @functools.cached_property
    def _plans(self) -> dict[str, StudyPlan]:
        return {root: plan for root, _, plan in self.runs}

    def plan_of(self, job: Job) -> StudyPlan:
        return self._plans[job.run_root]

    def jobs(self) -> list[Job]:
        """Every job, dependencies first: a family's FT-prompt cells are one `score` job (`members`)."""
        jobs: dict[Job, None] = {}  # ordered, without repeats
        for root, model, plan in self.runs:
            for step in steps_of(plan):
                if step.kind == "cell" and step.condition != "icl":
                    step = score_pass(step.family)
                jobs[Job(root, step, model)] = None
        return list(jobs)

    def members(self, job: Job) -> list[Job]:
        """The cells a job scores: itself, or every cell of a scoring pass."""
        if job.step.kind != "score":
            return [job]
        return [Job(job.run_root, cell, job.model) for cell in pass_cells(self.plan_of(job), job.step.family)]

    def dependencies(self, job: Job) -> list[Job]:
        steps = [d for member in self.members(job) for d in dependencies(member.step)]
        return [Job(job.run_root, step, job.model) for step in dict.fromkeys(steps)]

    def is_done(self, job: Job) -> bool:
        run = RunDir(Path(job.run_root))
        return all(run.is_done(member.step) for member in self.members(job))

    def tolerates_failures(self, job: Job) -> bool:
        """A scoring pass runs once its adapters are finished, done or failed: it scores those that exist."""
        return job.step.kind == "score"

    def estimate_seconds(self, job: Job) -> float:
        return sum(estimate_seconds(self.plan_of(job), member.step) for member in self.members(job))

    def execute(self, job: Job) -> str | None:
        """Run one job in this process: None, or its one-line error."""
        plan = self.plan_of(job)
        if plan.threads:
            import torch

            torch.set_num_threads(plan.threads)  # also in a reused worker process
        return execute_step(plan, Path(job.run_root), job.step)

    def execute_or_raise(self, job: Job) -> None:
        """`execute` for executors that need an exception on failure (a Ray task, in a worker process)."""
        from icl_ft.study.ray_executor import StepFailed  # imports no Ray

        quiet_libraries()  # a worker's output is forwarded to the driver's terminal
        plan = self.plan_of(job)
        if plan.threads:
            import torch

            torch.set_num_threads(plan.threads)  # a worker process runs many steps
        error, retry = _attempt(plan, Path(job.run_root), job.step)
        if error is not None:
            raise StepFailed(error, retry=retry)


@dataclasses.dataclass(frozen=True)
class StepResult:
    step: Any  # the Job
    error: str | None  # None: done
    seconds: float
    executed: bool  # False: not attempted, a dependency failed


class Executor(Protocol):
    def run(self, jobs: Sequence[Job], graph: StudyGraph, report: Callable[[StepResult], None]) -> None:
        """Run `jobs` (listed dependencies first) with `graph.execute`; `report` each one's result once."""


class SerialExecutor:
    """Every job in turn, in this process; a job whose dependency failed is not attempted."""

    def run(self, jobs: Sequence[Job], graph: StudyGraph, report: Callable[[StepResult], None]) -> None:
        failed: dict[Job, str] = {}
        for job in jobs:
            started = time.monotonic()
            blocked = [] if graph.tolerates_failures(job) else [d for d in graph.dependencies(job) if d in failed]
            if blocked:
                error, executed = f"not run: {blocked[0].label} failed ({failed[blocked[0]]})", False
            else:
                error, executed = graph.execute(job), True
            if error is not None:
                failed[job] = error
            report(StepResult(job, error, time.monotonic() - started, executed))


@dataclasses.dataclass
class RayExecutor:
    """Every job a Ray task (`icl-ft study --executor ray`; icl_ft.study.ray_executor, imported only here)."""

    address: str | None = None  # None: start a local Ray instance
    max_retries: int = 2
    threads: int = 1  # CPUs per step where the cluster has no GPU
    local_cpus: int | None = None  # CPUs of a local instance (None: every core)

    def run(self, jobs: Sequence[Job], graph: StudyGraph, report: Callable[[StepResult], None]) -> None:
        from icl_ft.study.ray_executor import default_resources, run_graph

        def on_finished(job: Job, status: str, error: str | None, seconds: float) -> None:
            report(StepResult(job, error, seconds, executed=status != "blocked"))

        run_graph(
            jobs,
            graph.dependencies,
            graph.execute_or_raise,
            graph.is_done,
            resources=default_resources(self.threads),
            address=self.address,
            max_retries=self.max_retries,
            local_cpus=self.local_cpus,
            label=lambda job: job.label,
            on_finished=on_finished,
            tolerates_failures=graph.tolerates_failures,
        )


def execute_step(plan: StudyPlan, run_root: Path, step: Step) -> str | None:
    """Run one step; return None on success or a one-line error. KeyboardInterrupt propagates
    (a cell then stays `running`, and the next run redoes it)."""
    return _attempt(plan, run_root, step)[0]


def _attempt(plan: StudyPlan, run_root: Path, step: Step) -> tuple[str | None, bool]:
    """(`execute_step`'s result, whether another attempt may succeed: not after bad input, a StudyError)."""
    run = RunDir(run_root)
    started = time.monotonic()
    try:
        if step.kind == "augment":
            run_augment(plan, run.augment_output(step.family, step.mode), step.family, step.mode)
            return None, True
        if step.kind == "adapter":
            mode = AUGMENT_MODE[step.condition]
            extra = [str(run.augment_output(step.family, mode))] if mode else []
            if mode:
                check_augmentation(run.augment_output(step.family, mode))
            run_finetune(plan, run.adapter_dir(step), step.family, step.train_seed, extra)
            return None, True
        if step.kind == "score":
            _score_pass(plan, run, step.family)
            return None, True
        _score(plan, run, step, started)
        return None, True
    except KeyboardInterrupt:
        raise
    except Exception as err:  # noqa: BLE001 - any failure of one step must not stop the others
        error = _one_line(err)
        logger.debug("%s failed", step.label, exc_info=True)
        if step.kind == "cell":
            _write_cell(plan, run, step, "failed", error, time.monotonic() - started)
        return error, not isinstance(err, StudyError)


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


def prepare_study(plans: StudyPlan | Sequence[StudyPlan], run_dir: str | Path) -> StudyGraph:
    """Check RUN_DIR against the plans and record them (the driver does this before any step runs)."""
    plans = [plans] if isinstance(plans, StudyPlan) else list(plans)
    root = Path(run_dir).resolve()  # absolute: cell.json's adapter paths must not depend on the cwd
    if root.exists() and not root.is_dir():
        raise StudyError(f"--output {root} is a file, not a run directory; choose a new --output")
    runs = model_run_dirs(root, [plan.model for plan in plans])
    if runs[0][0]:  # several models
        root.mkdir(parents=True, exist_ok=True)
        record_models(root, [plan.model for plan in plans])
    for (_, model_root), plan in zip(runs, plans):
        prepare(plan, model_root)
    return StudyGraph(tuple((str(model_root), mid, plan) for (mid, model_root), plan in zip(runs, plans)))


def run_study(plans: StudyPlan | Sequence[StudyPlan], run_dir: str | Path, executor: Executor | None = None) -> Outcome:
    """Run every step of `plans` (one per model) not done yet in RUN_DIR with `executor` (default: serial).

    RUN_DIR is locked for the whole run: a second study on it stops at once (`icl_ft.study.lock`).
    """
    root = Path(run_dir).resolve()
    if root.exists() and not root.is_dir():
        raise StudyError(f"--output {root} is a file, not a run directory; choose a new --output")
    with locked(root):
        return _run_locked(plans, root, executor)


def _run_locked(plans: StudyPlan | Sequence[StudyPlan], run_dir: Path, executor: Executor | None) -> Outcome:
    graph = prepare_study(plans, run_dir)
    plans = [plan for _, _, plan in graph.runs]
    if plans[0].threads:
        import torch

        torch.set_num_threads(plans[0].threads)
    jobs = graph.jobs()
    todo = [job for job in jobs if not graph.is_done(job)]
    done_before = {cell for job in jobs for cell in graph.members(job) if graph.is_done(cell)}
    outcome = Outcome(
        Path(run_dir).resolve(), [], [c.label for job in jobs for c in graph.members(job) if c in done_before], {}, {}
    )
    logger.info(
        "study %s: %d model(s), %d steps (%d done already, %d to run), preset %s, training seeds %s",
        outcome.run_dir,
        len(plans),
        len(jobs),
        len(jobs) - len(todo),
        len(todo),
        plans[0].preset,
        plans[0].train_seeds,
    )
    progress = Progress(todo, graph.estimate_seconds, kind=lambda job: job.step.kind)

    def report(result: StepResult) -> None:
        job = result.step
        outcome.seconds_by_kind[job.step.kind] = outcome.seconds_by_kind.get(job.step.kind, 0.0) + result.seconds
        run = RunDir(Path(job.run_root))
        # Per cell (a scoring pass reports each of its cells), as the cells' records say.
        for member in graph.members(job):
            step = member.step
            if member in done_before:
                continue
            if run.is_done(step):
                outcome.done.append(member.label)
                continue
            state = (run.read_cell(step) or {}) if step.kind == "cell" else {}
            error = state.get("error") if state.get("status") == "failed" else None
            outcome.failed[member.label] = error or result.error or "its output is missing"
            # Not attempted, or its worker died (cell.json stays "running"): record it failed here.
            if step.kind == "cell" and state.get("status") != "failed":
                _write_cell(graph.plan_of(job), run, step, "failed", outcome.failed[member.label], result.seconds)
        progress.finished(job, "done" if result.error is None else "FAILED", result.seconds, result.executed)

    (executor or SerialExecutor()).run(todo, graph, report)
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
        worker=f"{socket.gethostname()}:{os.getpid()}",  # where it ran (an executor may use many processes)
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


def score_cells(model: str, cells: list, task: str, **options: Any) -> None:
    """Score adapter cells of one base model in one pass (module level, so tests can replace it)."""
    from icl_ft.multi_adapter import score_adapters

    score_adapters(model, cells, task, **options)


def _score_pass(plan: StudyPlan, run: RunDir, family: str) -> None:
    """Every FT-prompt cell of `family` not done yet, in one pass over the base model: the cells whose
    adapter exists are scored, the others recorded as not run; raises if any cell is not done."""
    from icl_ft.multi_adapter import AdapterCell

    members = pass_cells(plan, family)
    to_score: dict[str, Step] = {}
    cells = []
    for step in (s for s in members if not run.is_done(s)):
        adapter = _adapter_path(run, step)
        adapter_step = Step("adapter", family, condition=step.condition, train_seed=step.train_seed)
        if adapter is not None and not run.is_done(adapter_step):
            _write_cell(plan, run, step, "failed", f"not run: {adapter_step.label} failed or is missing", 0.0)
            continue
        try:
            if adapter is not None:
                check_adapter_base(Path(adapter), plan.model)
        except StudyError as err:
            _write_cell(plan, run, step, "failed", str(err), 0.0)
            continue
        _write_cell(plan, run, step, "running", None, 0.0)
        to_score[step.id] = step
        cells.append(AdapterCell(step.id, adapter, run.cell_dir(step) / LM_EVAL_DIR))

    scoring_failed = []

    def cell_done(cell, result) -> None:
        step = to_score[cell.name]
        if result.error is None and results_file(run.cell_dir(step)) is None:
            result.error = f"lm-eval wrote no results file under {cell.output_path}"
        status = "done" if result.error is None else "failed"
        if result.error is not None:
            scoring_failed.append(step)
        _write_cell(plan, run, step, status, result.error, result.seconds)

    if cells:
        score_cells(
            plan.model,
            cells,
            scored_task(family, "ft"),
            metadata=plan.metadata(family),
            limit=plan.limit,
            batch_size=plan.batch_size,
            on_cell_done=cell_done,
        )
    failed = [s for s in members if not run.is_done(s)]
    if failed:
        first = run.read_cell(failed[0]) or {}
        message = f"{len(failed)} of {len(members)} cells not done ({failed[0].label}: {first.get('error')})"
        # Cells that failed while scoring may succeed on another attempt; missing adapters will not.
        raise RuntimeError(message) if scoring_failed else StudyError(message)


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
    """Family x condition accuracy (mean over seeds, with the spread when there are several); one
    table per model in a study of several models."""
    from icl_ft.study.cells import study_models

    models = study_models(Path(run_dir))
    if models[0][0]:
        return "\n\n".join(f"model {mid} ({model})\n{_accuracy_table(root)}" for mid, model, root in models)
    return _accuracy_table(Path(run_dir))


def _accuracy_table(run_dir: Path) -> str:
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
