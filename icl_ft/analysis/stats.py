"""Pure statistics for `icl-ft compare`: no files, no plotting, unit-tested by hand.

>>> wilson_interval(7, 10)            # 95% Wilson score interval
(0.3967..., 0.8922...)
>>> mcnemar_exact(only_a=5, only_b=0)  # two-sided exact test on the discordant pairs
0.0625
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence

# Two-sided 95%: the normal quantile used by the Wilson interval.
Z_95 = 1.959963984540054


def wilson_interval(successes: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (`successes` may be fractional: a
    mean accuracy times the number of items).

    Chosen over the normal (Wald) interval because our splits are small (tens to a few
    hundred items) and accuracies sit near 0 or 1 for some conditions: Wilson stays inside
    [0, 1] and keeps close to nominal coverage there. n == 0 gives (nan, nan).
    """
    if n == 0:
        return (math.nan, math.nan)
    if not 0 <= successes <= n:
        raise ValueError(f"successes={successes} must lie in [0, n={n}]")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # Clamp rounding noise: the interval always contains p and lies in [0, 1] (at p = 0,
    # centre - half can come out as +3e-17, which a plot's error bar refuses as negative).
    return (min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half)))


@dataclasses.dataclass(frozen=True)
class McNemar:
    """Paired comparison of two conditions on the same items."""

    n: int  # items scored under both conditions
    both: int  # correct under both
    only_a: int  # correct under A only
    only_b: int  # correct under B only
    neither: int
    p_value: float

    @property
    def acc_a(self) -> float:
        return (self.both + self.only_a) / self.n if self.n else math.nan

    @property
    def acc_b(self) -> float:
        return (self.both + self.only_b) / self.n if self.n else math.nan


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Exact McNemar p-value: two-sided binomial test of only_a out of the discordant pairs
    against p = 1/2. No discordant pairs means no evidence of a difference: p = 1."""
    from scipy.stats import binomtest

    discordant = only_a + only_b
    if discordant == 0:
        return 1.0
    return float(binomtest(only_a, discordant, 0.5, alternative="two-sided").pvalue)


def paired_test(a: Mapping[object, bool], b: Mapping[object, bool]) -> McNemar:
    """McNemar on the items present in both mappings (item key -> correct)."""
    keys = a.keys() & b.keys()
    both = sum(1 for k in keys if a[k] and b[k])
    only_a = sum(1 for k in keys if a[k] and not b[k])
    only_b = sum(1 for k in keys if b[k] and not a[k])
    neither = len(keys) - both - only_a - only_b
    return McNemar(len(keys), both, only_a, only_b, neither, mcnemar_exact(only_a, only_b))


@dataclasses.dataclass(frozen=True)
class Consistency:
    """Agreement across the phrasings of one item (items with at least two phrasings)."""

    items: int
    all_correct: float  # fraction of items whose phrasings are all answered correctly
    agree: float  # fraction of items whose phrasings are all right or all wrong


def phrasing_consistency(groups: Iterable[Sequence[bool]]) -> Consistency:
    """`groups` holds one sequence of per-phrasing correctness per item. Items with a single
    phrasing (e.g. cut by `--limit`) say nothing about consistency and are skipped."""
    groups = [list(g) for g in groups if len(g) >= 2]
    if not groups:
        return Consistency(0, math.nan, math.nan)
    all_correct = sum(all(g) for g in groups)
    agree = sum(all(g) or not any(g) for g in groups)
    return Consistency(len(groups), all_correct / len(groups), agree / len(groups))


@dataclasses.dataclass(frozen=True)
class Spread:
    """Per-seed accuracies of one condition and split."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    @property
    def sd(self) -> float:
        """Sample standard deviation (n - 1); nan for a single seed."""
        return statistics.stdev(self.values) if len(self.values) > 1 else math.nan
