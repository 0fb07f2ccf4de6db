"""Group the tidy samples of `loading` into the numbers `icl-ft compare` reports."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import defaultdict

from icl_ft.analysis.loading import CONDITIONS, Loaded, Sample
from icl_ft.analysis.stats import Consistency, McNemar, Spread, paired_test, phrasing_consistency, wilson_interval


def condition_order(condition: str) -> tuple:
    """The paper's order (no-context control, ICL, FT, augmented FT), then hand-made labels."""
    if condition in CONDITIONS:
        return (0, CONDITIONS.index(condition), "")
    return (1, 0, condition)


@dataclasses.dataclass(frozen=True)
class Cell:
    """Accuracy of one condition on one split, pooled over its seeds."""

    condition: str
    family: str
    split: str
    n: int
    correct: int
    acc_norm: float | None
    chance: float
    seeds: dict[int | None, float]  # seed -> accuracy of that seed's run
    items_per_seed: int  # the largest number of items one seed's run scored

    @property
    def acc(self) -> float:
        """Mean over seeds of each seed's accuracy (one seed: its accuracy)."""
        return sum(self.seeds.values()) / len(self.seeds)

    @property
    def interval(self) -> tuple[float, float]:
        """Wilson interval at one seed's number of items: seeds that score the same test
        items add no items, so pooling their samples would overstate the precision.
        Seed-to-seed variation is shown separately (`spread`)."""
        return wilson_interval(self.acc * self.items_per_seed, self.items_per_seed)

    @property
    def spread(self) -> Spread | None:
        """Across seeds, when the condition ran with more than one."""
        return Spread(tuple(self.seeds.values())) if len(self.seeds) > 1 else None


@dataclasses.dataclass(frozen=True)
class Pair:
    a: str
    b: str
    family: str
    split: str
    seed: int | None  # the seed both sides share; None when one side has no seed
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
        by_seed = _group(rows, "seed")
        seeds = {seed: sum(s.correct for s in group) / len(group) for (seed,), group in by_seed.items()}
        cells.append(
            Cell(
                condition=condition,
                family=family,
                split=split,
                n=len(rows),
                correct=sum(s.correct for s in rows),
                acc_norm=sum(norms) / len(norms) if len(norms) == len(rows) else None,
                chance=sum(1 / s.n_choices for s in rows if s.n_choices) / len(rows),
                seeds=dict(sorted(seeds.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))),
                items_per_seed=max(len(group) for group in by_seed.values()),
            )
        )
    cells.sort(key=lambda c: (c.family, c.split, condition_order(c.condition)))
    return Summary(cells, _pairs(loaded.samples), _consistency(loaded.samples))


def _pairs(samples: list[Sample]) -> list[Pair]:
    """Every two conditions on one split, per seed they share. A side without a seed (e.g.
    the base model, which has no training seed) pairs with each seed of the other side;
    items are joined on the doc hash, so runs on different generated data do not pair."""
    pairs = []
    for (family, split), rows in sorted(_group(samples, "family", "split").items()):
        units = {unit: {s.key: s.correct for s in group} for unit, group in _group(rows, "condition", "seed").items()}
        ordered = sorted(units, key=lambda u: (condition_order(u[0]), u[1] is None, u[1] or 0))
        for (cond_a, seed_a), (cond_b, seed_b) in itertools.combinations(ordered, 2):
            if cond_a == cond_b or (seed_a is not None and seed_b is not None and seed_a != seed_b):
                continue
            test = paired_test(units[(cond_a, seed_a)], units[(cond_b, seed_b)])
            if test.n:
                pairs.append(Pair(cond_a, cond_b, family, split, seed_a if seed_a is not None else seed_b, test))
    return pairs


def _consistency(samples: list[Sample]) -> dict[tuple[str, str, str], Consistency]:
    result = {}
    with_items = [s for s in samples if s.item_id is not None]
    for (condition, family, split), rows in sorted(_group(with_items, "condition", "family", "split").items()):
        items = _group(rows, "seed", "item_id")
        consistency = phrasing_consistency([s.correct for s in group] for group in items.values())
        if consistency.items:
            result[(condition, family, split)] = consistency
    return result


def fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"
