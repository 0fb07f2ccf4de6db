"""Run a graph of steps on a Ray cluster: one Ray task per step, dependencies first, bounded retries.

    from icl_ft.study.ray_executor import run_graph
    outcome = run_graph(
        steps, dependencies=deps_of, execute=run_one_step, is_done=output_exists,
        address="10.0.0.1:6379",            # an existing cluster (`ray start --head`); None starts a local one
    )
    outcome.done, outcome.skipped, outcome.failed        # step labels; failed: label -> one line

The graph is the study's: augment files -> adapters -> scoring cells. Each step's work is a
function (`execute(step)`, run inside a Ray worker) that writes its output into the run
directory, which must be storage that every node and the driver share; a step is done iff
its atomic output exists there (`is_done(step)`, checked by the driver), so a worker that
dies mid-step leaves nothing that counts as done, and either executor resumes the other's
run. The scheduler is a loop over `ray.wait`: a step is submitted when its dependencies are
done, with the resources it needs (by default a GPU where the cluster has GPUs, else
`threads` CPUs). A step that raises, or whose worker dies, is retried up to `max_retries`
times (Ray's own retries are off, so both count alike), then recorded as failed with one
line; the steps that depend on it are recorded as not run, and every other step still runs.

Ray is an optional extra (`pip install 'lm-eval-icl-ft[ray]'`) and is imported only here, inside
functions: the local executor never imports it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

S = TypeVar("S", bound=Hashable)
INSTALL_HINT = "pip install 'lm-eval-icl-ft[ray]'"
# Steps exchange files in the run directory, not Ray objects: a small object store suffices
# for a local instance (Ray's default reserves 30% of the machine's memory).
LOCAL_OBJECT_STORE_BYTES = 256 * 1024**2


class ExecutorError(RuntimeError):
    """The Ray executor cannot run (Ray missing, cluster unreachable, a step no node can fit); one line."""


class StepFailed(RuntimeError):
    """Raised by a step with a one-line error: recorded as it is, without the exception's name.
    `retry=False`: another attempt would fail alike (bad input), so none is made."""

    def __init__(self, message: str, retry: bool = True):
        super().__init__(message)
        self.retry = retry

    def __reduce__(self):  # Ray pickles the exception back to the driver
        return (StepFailed, (str(self), self.retry))


@dataclasses.dataclass(frozen=True)
class Resources:
    num_cpus: float = 1
    num_gpus: float = 0


@dataclasses.dataclass
class GraphOutcome:
    done: list[str] = dataclasses.field(default_factory=list)  # executed in this run, output present
    skipped: list[str] = dataclasses.field(default_factory=list)  # done before the run started
    failed: dict[str, str] = dataclasses.field(default_factory=dict)  # label -> one line
    attempts: dict[str, int] = dataclasses.field(default_factory=dict)  # label -> attempts made


def require_ray():
    """The `ray` module, or a one-line ExecutorError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ExecutorError(f"the Ray executor needs Ray, which is not installed; {INSTALL_HINT}") from None
    return ray


def default_resources(threads: int = 1) -> Callable[[Any, bool], Resources]:
    """A GPU for every step where the cluster has GPUs, else `threads` CPUs."""

    def resources(step: Any, cluster_has_gpus: bool) -> Resources:
        return Resources(num_cpus=1, num_gpus=1) if cluster_has_gpus else Resources(num_cpus=threads)

    return resources


def run_graph(
    steps: Sequence[S],
    dependencies: Callable[[S], Iterable[S]],
    execute: Callable[[S], None],
    is_done: Callable[[S], bool],
    *,
    resources: Callable[[S, bool], Resources] | None = None,
    address: str | None = None,
    max_retries: int = 2,
    local_cpus: int | None = None,
    label: Callable[[S], str] = str,
    on_finished: Callable[[S, str, str | None, float], None] | None = None,
    tolerates_failures: Callable[[S], bool] = lambda step: False,
) -> GraphOutcome:
    """Execute every step of `steps` not done yet on Ray; see the module docstring.

    `execute` and the steps are pickled to the workers: use module-level functions (or
    functools.partial of them) of an installed package. `on_finished(step, status, error,
    seconds)` is called on the driver as each step ends, with status "done", "failed" or
    "blocked" (a dependency failed; not attempted). A step for which `tolerates_failures(step)`
    is true is not blocked: it runs once every dependency has finished, done or failed (e.g. one
    scoring pass over a family's adapters, which scores those that exist and records the others).
    """
    if max_retries < 0:
        raise ValueError(f"max_retries {max_retries} must be >= 0")
    ray = require_ray()
    resources = resources or default_resources()
    order = list(dict.fromkeys(steps))
    deps = {step: list(dependencies(step)) for step in order}
    unknown = {label(d) for step in order for d in deps[step] if d not in deps}
    if unknown:
        raise ValueError(f"dependencies not in the graph: {sorted(unknown)}")

    outcome = GraphOutcome()
    finished: set[S] = set()
    for step in order:
        if is_done(step):
            finished.add(step)
            outcome.skipped.append(label(step))
    todo = [s for s in order if s not in finished]
    if not todo:
        return outcome

    connected_here = _connect(ray, address, local_cpus)
    try:
        has_gpus = ray.cluster_resources().get("GPU", 0) > 0
        needs = {step: resources(step, has_gpus) for step in todo}
        _check_feasible(ray, needs, label)
        scheduler = _Scheduler(
            ray=ray,
            task=ray.remote(_run_step),
            todo=todo,
            deps=deps,
            needs=needs,
            finished=finished,
            execute=execute,
            is_done=is_done,
            max_retries=max_retries,
            label=label,
            on_finished=on_finished,
            tolerates_failures=tolerates_failures,
            outcome=outcome,
        )
        scheduler.run()
    finally:
        if connected_here:
            ray.shutdown()
    return outcome


def _connect(ray, address: str | None, local_cpus: int | None) -> bool:
    """Connect to the cluster at `address`, or start a local instance; True if this call connected."""
    if ray.is_initialized():
        return False
    try:
        if address:
            ray.init(address=address)
        else:
            # address="local": a new instance, even if a cluster started by `ray start` runs on this machine.
            ray.init(
                address="local",
                num_cpus=local_cpus,
                include_dashboard=False,
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            )
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        hint = "start one with `ray start --head` and pass its address" if address else "check `ray status`"
        raise ExecutorError(f"cannot connect to {where} ({_first_line(err)}); {hint}") from None
    totals = {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU", "memory")}
    logger.info("Ray cluster: %s", ", ".join(f"{k} {v:g}" for k, v in sorted(totals.items())))
    return True


def _check_feasible(ray, needs: dict, label: Callable) -> None:
    """A step that no node can fit would wait forever: say so before starting anything."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    for step, need in needs.items():
        if not any(n.get("CPU", 0) >= need.num_cpus and n.get("GPU", 0) >= need.num_gpus for n in nodes):
            raise ExecutorError(
                f"step {label(step)} needs {need.num_cpus:g} CPUs and {need.num_gpus:g} GPUs, more than any "
                "node of the Ray cluster has; use fewer threads per step or add a larger node"
            )


def _run_step(execute: Callable[[Any], None], step: Any) -> None:
    """The body of every Ray task (module level, so workers import it rather than unpickle code)."""
    execute(step)


@dataclasses.dataclass
class _Scheduler:
    """Submit steps whose dependencies are done; collect results with ray.wait; retry; block dependents."""

    ray: Any
    task: Any  # the Ray remote function running _run_step
    todo: list
    deps: dict  # step -> its dependencies
    needs: dict  # step -> Resources
    finished: set  # steps whose output exists
    execute: Callable
    is_done: Callable
    max_retries: int
    label: Callable
    on_finished: Callable | None
    tolerates_failures: Callable
    outcome: GraphOutcome
    failed: dict = dataclasses.field(default_factory=dict)  # step -> one line (failed or blocked)
    pending: dict = dataclasses.field(default_factory=dict)  # object ref -> step
    started: dict = dataclasses.field(default_factory=dict)  # step -> first submission time
    submitted: set = dataclasses.field(default_factory=set)

    def run(self) -> None:
        self._submit_ready()
        try:
            while self.pending:
                (ref,), _ = self.ray.wait(list(self.pending), num_returns=1)
                step = self.pending.pop(ref)
                error, retry = self._result(ref, step)
                if error is None:
                    self._finish(step, "done", None)
                    self._submit_ready()
                elif retry and self.outcome.attempts[self.label(step)] <= self.max_retries:
                    attempt = self.outcome.attempts[self.label(step)]
                    logger.warning("%s: attempt %d failed (%s); retrying", self.label(step), attempt, error)
                    self._submit(step)
                else:
                    self._finish(step, "failed", error)
                    self._block_dependents()
                    self._submit_ready()  # steps that tolerate the failure may be ready now
        except BaseException:
            for ref in self.pending:  # e.g. Ctrl-C: stop the workers; unfinished outputs do not count as done
                self.ray.cancel(ref, force=True)
            raise

    def _submit_ready(self) -> None:
        for step in self.todo:
            if step in self.submitted or step in self.failed:
                continue
            tolerant = self.tolerates_failures(step)
            if all(d in self.finished or (tolerant and d in self.failed) for d in self.deps[step]):
                self.submitted.add(step)
                self._submit(step)

    def _submit(self, step) -> None:
        need = self.needs[step]
        # Ray's own retries are off (max_retries=0): a crash and an exception are retried alike, here.
        task = self.task.options(num_cpus=need.num_cpus, num_gpus=need.num_gpus, max_retries=0, name=self.label(step))
        self.pending[task.remote(self.execute, step)] = step
        self.started.setdefault(step, time.monotonic())
        name = self.label(step)
        self.outcome.attempts[name] = self.outcome.attempts.get(name, 0) + 1

    def _result(self, ref, step) -> tuple[str | None, bool]:
        """(None if the step succeeded and its output is visible to the driver, else one line;
        whether another attempt may succeed)."""
        ray_exceptions = self.ray.exceptions
        try:
            self.ray.get(ref)
        except ray_exceptions.RayTaskError as err:  # the step raised
            cause = getattr(err, "cause", None)
            if isinstance(cause, StepFailed):
                return str(cause), cause.retry  # already one line (the local executor records the same)
            return (_one_line(cause) if isinstance(cause, BaseException) else _first_line(err)), True
        except ray_exceptions.RayError as err:  # the worker or its node died (killed, out of memory, ...)
            return f"its worker died ({type(err).__name__}: {_first_line(err)})", True
        if not self.is_done(step):
            message = (
                "the step returned but its output is not in the run directory as the driver sees it; "
                "the run directory must be on storage that every node shares"
            )
            return message, True
        return None, True

    def _finish(self, step, status: str, error: str | None) -> None:
        seconds = time.monotonic() - self.started.get(step, time.monotonic())
        name = self.label(step)
        if status == "done":
            self.finished.add(step)
            self.outcome.done.append(name)
        else:
            self.failed[step] = error
            self.outcome.failed[name] = error
        if self.on_finished is not None:
            self.on_finished(step, status, error, seconds)

    def _block_dependents(self) -> None:
        """Every not-yet-submitted step with a failed dependency fails without being attempted."""
        changed = True
        while changed:
            changed = False
            for step in self.todo:
                if step in self.submitted or step in self.failed or self.tolerates_failures(step):
                    continue
                culprit = next((d for d in self.deps[step] if d in self.failed), None)
                if culprit is not None:
                    self.submitted.add(step)
                    self._finish(step, "blocked", f"not run: {self.label(culprit)} failed ({self.failed[culprit]})")
                    changed = True


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return (lines[0] if lines else type(err).__name__)[:300]


def _one_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {_first_line(err)}"[:400]
