"""What the generator and the loader of the original data (`original.py`) share: the data
version and the counterbalanced blocks of four test items."""

from __future__ import annotations

import random

VERSION = "1.0"
BLOCK_SIZE = 4  # choices per test item


def blocks_of_four(members: list, rng: random.Random) -> list[tuple[list, int]]:
    """Shuffle `members` into blocks of BLOCK_SIZE: [(block, number of members it tests)].

    A short last block is filled up with members of the first block; those appear there as
    distractors only (the generator never needs this, original data may)."""
    shuffled = rng.sample(members, len(members))
    blocks = []
    for start in range(0, len(shuffled), BLOCK_SIZE):
        block = shuffled[start : start + BLOCK_SIZE]
        owners = len(block)
        block += shuffled[: BLOCK_SIZE - owners] if owners < BLOCK_SIZE else []
        blocks.append((block, owners))
    return blocks
