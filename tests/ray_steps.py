"""A graph of trivial steps for the Ray executor's own tests (imported by Ray workers as
`tests.ray_steps`); the study's steps go through `icl-ft study --executor ray` itself."""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class TouchSteps:
    """A graph of trivial steps: step NAME writes DIR/NAME listing the dependencies whose files it found."""

    directory: str
    graph: tuple[tuple[str, tuple[str, ...]], ...]  # (name, dependency names)
    failing: tuple[str, ...] = ()  # steps that raise on every attempt
    tolerant: tuple[str, ...] = ()  # steps that run even if some dependencies failed
    bad_input: tuple[str, ...] = ()  # steps that fail in a way another attempt cannot fix

    def dependencies(self, name: str) -> tuple[str, ...]:
        return dict(self.graph)[name]

    def __call__(self, name: str) -> None:
        if name in self.failing:
            raise RuntimeError(f"{name} fails on purpose")
        if name in self.bad_input:
            from icl_ft.study.ray_executor import StepFailed

            raise StepFailed(f"{name} has bad input", retry=False)
        present = [d for d in self.dependencies(name) if Path(self.directory, d).is_file()]
        if name not in self.tolerant and len(present) != len(self.dependencies(name)):
            raise RuntimeError(f"{name} ran before all of {self.dependencies(name)}")
        Path(self.directory, name).write_text(",".join(present))

    def is_done(self, name: str) -> bool:
        return Path(self.directory, name).is_file()
