"""Study steps as the Ray executor's tests run them (imported by Ray workers as `tests.ray_steps`).

One study per model, each in its own run directory; a graph item is (model index, Step). A
worker executes a step exactly as the local runner does (`runner._execute`), and can be told
to record its PID, to stop after the first checkpoint of a step's first attempt (so a test can
kill it mid-step), or to fail a step on every attempt.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from icl_ft.study.cells import RunDir, Step, dependencies, steps_of
from icl_ft.study.plan import StudyPlan

Item = tuple[int, Step]


class DeliberateFailure(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class StudySteps:
    plans: tuple[dict, ...]  # StudyPlan.to_dict() per model
    run_dirs: tuple[str, ...]
    pid_dir: str | None = None  # each attempt writes a file <label>.<pid>.<ns> here
    pause_after_checkpoint: str | None = None  # label of an adapter step whose first attempt stops there
    always_fail: str | None = None  # label of a step that raises on every attempt

    # --- the graph (driver side) ---------------------------------------------------------

    def plan(self, model: int) -> StudyPlan:
        return StudyPlan.from_dict(self.plans[model])

    def run(self, model: int) -> RunDir:
        return RunDir(Path(self.run_dirs[model]))

    def items(self) -> list[Item]:
        return [(m, step) for m in range(len(self.plans)) for step in steps_of(self.plan(m))]

    def dependencies(self, item: Item) -> list[Item]:
        return [(item[0], d) for d in dependencies(item[1])]

    def is_done(self, item: Item) -> bool:
        return self.run(item[0]).is_done(item[1])

    def label(self, item: Item) -> str:
        return f"m{item[0]}:{item[1].label}"

    # --- one step (worker side) ----------------------------------------------------------

    def __call__(self, item: Item) -> None:
        import torch

        from icl_ft.study import runner

        label, plan = self.label(item), self.plan(item[0])
        if self.pid_dir:
            # One file per attempt (a worker process may run several attempts): LABEL.PID.NANOSECONDS
            Path(self.pid_dir, f"{label}.{os.getpid()}.{time.time_ns()}").write_text(str(os.getpid()))
        if label == self.always_fail:
            raise DeliberateFailure(f"{label} fails on purpose\nsecond line that the record must not show")
        if label == self.pause_after_checkpoint:
            _pause_after_first_checkpoint(Path(self.pid_dir, f"{label}.paused"))
        torch.set_num_threads(plan.threads or 1)
        error = runner._execute(plan, self.run(item[0]), item[1])
        if error is not None:
            raise RuntimeError(error)


def _pause_after_first_checkpoint(marker: Path) -> None:
    """On the first attempt only, stop (for a test to kill this process) once a checkpoint is saved."""
    if marker.exists():
        return
    from transformers import Trainer

    save = Trainer._save_checkpoint

    def save_then_stop(self, *args, **kwargs):
        save(self, *args, **kwargs)
        marker.write_text(str(os.getpid()))
        time.sleep(600)

    Trainer._save_checkpoint = save_then_stop


@dataclasses.dataclass(frozen=True)
class TouchSteps:
    """A graph of trivial steps: step NAME writes DIR/NAME listing the dependencies whose files it found."""

    directory: str
    graph: tuple[tuple[str, tuple[str, ...]], ...]  # (name, dependency names)
    failing: tuple[str, ...] = ()  # steps that raise on every attempt
    tolerant: tuple[str, ...] = ()  # steps that run even if some dependencies failed

    def dependencies(self, name: str) -> tuple[str, ...]:
        return dict(self.graph)[name]

    def __call__(self, name: str) -> None:
        if name in self.failing:
            raise RuntimeError(f"{name} fails on purpose")
        present = [d for d in self.dependencies(name) if Path(self.directory, d).is_file()]
        if name not in self.tolerant and len(present) != len(self.dependencies(name)):
            raise RuntimeError(f"{name} ran before all of {self.dependencies(name)}")
        Path(self.directory, name).write_text(",".join(present))

    def is_done(self, name: str) -> bool:
        return Path(self.directory, name).is_file()
