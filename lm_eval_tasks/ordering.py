"""Test-row order that makes every prefix a fair sample (lm-eval's `--limit N` scores the first N docs).

Families build their test items in units that are balanced on their own (a Latin-square
group of the semantic family, a block of four celebrities, a counterbalanced cell set of
the syllogisms). `interleave` orders those units so that the kinds of unit (relation,
hops, answer form, ...) are spread evenly over the whole split: a prefix holds each kind
in proportion, to within one unit, instead of all groups of one kind first.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


def interleave(units: list[T], kind: Callable[[T], Hashable], rng: random.Random) -> list[T]:
    """`units` reordered: each kind's units in seeded random order, spread evenly over the sequence.

    The k-th of a kind's n units gets the position (k + offset) / n, with a random offset
    per kind; sorting by position interleaves the kinds in proportion to their sizes.
    """
    by_kind: dict[Hashable, list[T]] = {}
    for unit in units:
        by_kind.setdefault(kind(unit), []).append(unit)
    keyed = []
    for number, name in enumerate(sorted(by_kind, key=repr)):
        members = by_kind[name]
        rng.shuffle(members)
        offset = rng.random()
        keyed += [((k + offset) / len(members), number, k, unit) for k, unit in enumerate(members)]
    keyed.sort(key=lambda entry: entry[:3])
    return [entry[3] for entry in keyed]
