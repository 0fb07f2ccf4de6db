"""Group the tidy samples of `loading` into the numbers `icl-ft compare` reports."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import defaultdict
from typing import NamedTuple

from icl_ft.analysis.loading import Loaded, Sample
from icl_ft.analysis.stats import Consistency, McNemar, Spread, paired_test, phrasing_consistency, wilson_interval
from icl_ft.conditions import CONDITIONS


def condition_order(condition: str) -> tuple:
    """The paper's order (no-context control, ICL, FT, augmented FT), then hand-made labels."""
    if condition in CONDITIONS:
        return (0, CONDITIONS.index(condition), "")
    return (1, 0, condition)


class Seeds(NamedTuple):
    """What tells two runs of one condition apart: the data they were scored on and the adapter's training."""

    data_seed: int | None
    train_seed: int | None

    def describe(self) -> str:
        parts = [f"{name} {value}" for name, value in (("data seed", self.data_seed), ("train seed", self.train_seed))]
        return ", ".join(part for part, value in zip(parts, self) if value is not None) or "–"


def _seeds_key(seeds: Seeds) -> tuple:
    return tuple((value is None, value or 0) for value in seeds)


@dataclasses.dataclass(frozen=True)
class Cell:
    """Accuracy of one condition on one split, pooled over its runs (one per data and training seed)."""

    condition: str
    family: str
    split: str
    n: int
    correct: int
    acc_norm: float | None
    chance: float
    runs: dict[Seeds, float]  # the seeds of a run -> its accuracy
    items_per_run: int  # the largest number of items one run scored

    @property
    def acc(self) -> float:
        """Mean over runs of each run's accuracy (one run: its accuracy)."""
        return sum(self.runs.values()) / len(self.runs)

    @property
    def interval(self) -> tuple[float, float]:
        """Wilson interval at one run's number of items: runs that score the same test items
        add no items, so pooling their samples would overstate the precision. Run-to-run
        variation is shown separately (`spread`)."""
        return wilson_interval(self.acc * self.items_per_run, self.items_per_run)

    @property
    def spread(self) -> Spread | None:
        """Across runs, when the condition ran with more than one seed."""
        return Spread(tuple(self.runs.values())) if len(self.runs) > 1 else None


@dataclasses.dataclass(frozen=True)
class Pair:
    a: str
    b: str
    family: str
    split: str
    seeds: Seeds  # the seeds both sides share; a side without one pairs with each of the other's
    test: McNemar


@dataclasses.dataclass(frozen=True)
class Summary:
    cells: list[Cell]
    pairs: list[Pair]
    consistency: dict[tuple[str, str, str], Consistency]  # (condition, family, split)

    @property
    def conditions(self) -> list[str]:
        return sorted({c.condition for c in self.cells}, key=condition_order)

    @property
    def splits(self) -> list[tuple[str, str]]:
        return sorted({(c.family, c.split) for c in self.cells})

    def cell(self, condition: str, family: str, split: str) -> Cell | None:
        return next((c for c in self.cells if (c.condition, c.family, c.split) == (condition, family, split)), None)


def _group(samples: list[Sample], *fields: str) -> dict[tuple, list[Sample]]:
    groups: dict[tuple, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[tuple(getattr(s, f) for f in fields)].append(s)
    return groups


def summarize(loaded: Loaded) -> Summary:
    cells = []
    for (condition, family, split), rows in _group(loaded.samples, "condition", "family", "split").items():
        norms = [s.correct_norm for s in rows if s.correct_norm is not None]
        by_run = {Seeds(*key): group for key, group in _group(rows, "data_seed", "train_seed").items()}
        runs = {seeds: sum(s.correct for s in group) / len(group) for seeds, group in by_run.items()}
        cells.append(
            Cell(
                condition=condition,
                family=family,
                split=split,
                n=len(rows),
                correct=sum(s.correct for s in rows),
                acc_norm=sum(norms) / len(norms) if len(norms) == len(rows) else None,
                chance=sum(1 / s.n_choices for s in rows if s.n_choices) / len(rows),
                runs=dict(sorted(runs.items(), key=lambda kv: _seeds_key(kv[0]))),
                items_per_run=max(len(group) for group in by_run.values()),
            )
        )
    cells.sort(key=lambda c: (c.family, c.split, condition_order(c.condition)))
    return Summary(cells, _pairs(loaded.samples), _consistency(loaded.samples))


def _shared(a: int | None, b: int | None) -> tuple[bool, int | None]:
    """(whether two runs' seeds of one kind pair, the seed the pair has): a missing seed pairs with any."""
    if a is not None and b is not None:
        return a == b, a
    return True, a if a is not None else b


def _pairs(samples: list[Sample]) -> list[Pair]:
    """Every two conditions on one split, per seeds they share. A side without a training seed
    (e.g. the base model) pairs with each training seed of the other side; items are joined on
    the doc hash, so runs on different generated data do not pair."""
    pairs = []
    for (family, split), rows in sorted(_group(samples, "family", "split").items()):
        units = {
            (condition, Seeds(data_seed, train_seed)): {s.key: s.correct for s in group}
            for (condition, data_seed, train_seed), group in _group(
                rows, "condition", "data_seed", "train_seed"
            ).items()
        }
        ordered = sorted(units, key=lambda u: (condition_order(u[0]), _seeds_key(u[1])))
        for (cond_a, seeds_a), (cond_b, seeds_b) in itertools.combinations(ordered, 2):
            data_pairs, data_seed = _shared(seeds_a.data_seed, seeds_b.data_seed)
            train_pairs, train_seed = _shared(seeds_a.train_seed, seeds_b.train_seed)
            if cond_a == cond_b or not (data_pairs and train_pairs):
                continue
            test = paired_test(units[(cond_a, seeds_a)], units[(cond_b, seeds_b)])
            if test.n:
                pairs.append(Pair(cond_a, cond_b, family, split, Seeds(data_seed, train_seed), test))
    return pairs


def _consistency(samples: list[Sample]) -> dict[tuple[str, str, str], Consistency]:
    result = {}
    with_items = [s for s in samples if s.item_id is not None]
    for (condition, family, split), rows in sorted(_group(with_items, "condition", "family", "split").items()):
        items = _group(rows, "data_seed", "train_seed", "item_id")
        consistency = phrasing_consistency([s.correct for s in group] for group in items.values())
        if consistency.items:
            result[(condition, family, split)] = consistency
    return result


def fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"
