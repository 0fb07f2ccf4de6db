"""What the generator and the loader of the original data (`original.py`) share: the data
version and the blocks of four celebrities that counterbalance every test split.

Every item of a block offers the same four choices (the block's names, or their
descriptions in one phrasing) and each choice is the answer to exactly one of the block's
items. Any preference among choices that ignores the facts is therefore right on exactly
one item of four.

Blocks are cut round by round (a round asks every tested celebrity once, in one test
phrasing), so items come round-first: the first items of a split name every celebrity
before any is asked again, and a `--limit` prefix is a fair sample of the people.
"""

from __future__ import annotations

import random
from typing import TypeVar

T = TypeVar("T")
VERSION = "1.1"
BLOCK_SIZE = 4  # choices per test item


def blocks_of_four(members: list[T], rng: random.Random) -> list[tuple[list[T], int]]:
    """Shuffle `members` into blocks of BLOCK_SIZE: [(block, number of members it tests)].

    A short last block is filled up with members of the first block, which appear there as
    distractors only; then the block is not an exact Latin square (the generator never
    needs this, original data with a number of people that is not a multiple of four may)."""
    shuffled = rng.sample(members, len(members))
    blocks = []
    for start in range(0, len(shuffled), BLOCK_SIZE):
        block = shuffled[start : start + BLOCK_SIZE]
        owners = len(block)
        block += shuffled[: BLOCK_SIZE - owners] if owners < BLOCK_SIZE else []
        blocks.append((block, owners))
    return blocks


def chained_blocks(rounds: list[list[T]], rng: random.Random) -> list[list[tuple[int, T]]]:
    """Exact blocks over several rounds: [(round, member), ...] x BLOCK_SIZE, members distinct per block.

    Each round's members are shuffled and laid end to end with the next round's; the
    sequence is cut into blocks of four. A block that straddles two rounds keeps distinct
    members (the next round's first members are chosen among those not yet in it). Every
    block is then an exact Latin square of names, whatever the number of people, as long as
    the total number of items is a multiple of four; a remainder forms a last, short block.
    """
    sequence: list[tuple[int, T]] = []
    for number, members in enumerate(rounds):
        pending = rng.sample(members, len(members))
        while pending:
            open_block = {member for _, member in sequence[len(sequence) - len(sequence) % BLOCK_SIZE :]}
            pick = next((m for m in pending if m not in open_block), pending[0])
            pending.remove(pick)
            sequence.append((number, pick))
    return [sequence[start : start + BLOCK_SIZE] for start in range(0, len(sequence), BLOCK_SIZE)]
