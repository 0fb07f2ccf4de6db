"""Simple syllogisms (Lampinen et al. 2025, dataset 2), each with two decoy premises.

Each item introduces four nonsense terms and four premises: a syllogism about A, B and C,
and two decoy premises that relate A and C to a fourth term D. One core premise and one
decoy are written predicate first ("yomp include all glon" for "All glon are yomp"):

    The relationships between glon, troff, yomp and zarf are: All glon are yomp. troff include
    all yomp. Some but not all zarf are glon. All troff are zarf.

The test names the two conclusion terms ("The relationships between glon and troff
are:") and scores six continuations, {All, Some but not all, No} x {both directions};
exactly one of them follows from the premises ("All glon are troff.").

Logical convention (proved for every item by the brute-force set-model checker in
`audit.py`, run by tests/test_syllogism_validity.py): terms denote arbitrary, possibly
empty, sets; "All X are Y" is X <= Y, "No X are Y" is X & Y == {}, and "Some X are Y" is
read scalarly and written out as "Some but not all X are Y" (X & Y != {} and not X <= Y).
"No X are Y" is symmetric, so a valid No-conclusion always makes two of the six
candidates true; an exhaustive search over two-premise forms finds exactly two moods with
a single valid candidate, and these are the items' cores:

    all:  All A are B.  All B are C.                 => All A are C.
    some: All B are A.  Some but not all B are C.    => Some but not all A are C.

Why the decoys: with the cores alone, copying the premises solves most items without the
inference. "Some but not all" appears in the premises exactly when it is the answer, and
the answer's subject is the only asked term that is a premise's subject in the `all` mood:
"copy the premises' quantifier, subject and predicate" scored 0.75 (the fact-blind ceiling
is 1/4), and a bigram model of the training text solved every `all` item. With the decoys
(`all`: All C are D, Some but not all D are A; `some`: All A are D, All C are D) every item
holds three All-premises and one Some-premise, both asked terms are subjects of an
All-premise, and writing premises predicate first breaks the link between word order and
role. The decoys change nothing about A and C (the checker proves that the premises through
D alone entail no candidate).

Counterbalancing: in every block of eight items, the mood and whether the test names the
answer's subject first are crossed twice, so each of the four candidates that can be right
is right for exactly two items of the block (`--limit` prefixes that are multiples of 8 are
exactly balanced); which core premise and which decoy are written predicate first is
crossed over every two blocks. The premises come in a random order, the terms in another.
"""

from __future__ import annotations

import random

from lm_eval_tasks.errors import DataError
from lm_eval_tasks.lexicon import sample_words
from lm_eval_tasks.spec import FamilyData

VERSION = "2.0"

QUANTIFIER_TEXT = {"all": "All", "some": "Some but not all", "no": "No"}
# Premises over the terms A, B, C and the decoy's D: (quantifier, subject, predicate).
CORES = {
    "all": (("all", "A", "B"), ("all", "B", "C")),
    "some": (("all", "B", "A"), ("some", "B", "C")),
}
DECOYS = {
    "all": (("all", "C", "D"), ("some", "D", "A")),
    "some": (("all", "A", "D"), ("all", "C", "D")),
}
# (mood, whether the test names the answer's subject first): every block of 8 items holds each twice.
CELLS = tuple((mood, subject_first) for mood in ("all", "some") for subject_first in (True, False))
BLOCK = 2 * len(CELLS)
# Which core premise and which decoy are written predicate first ("Y include all X"): one of
# each per item; every two blocks give each (mood, subject first) cell all four patterns.
SWAP_PATTERNS = ((0, 0), (1, 1), (0, 1), (1, 0))


def statement(quantifier: str, subject: str, predicate: str) -> str:
    return f"{QUANTIFIER_TEXT[quantifier]} {subject} are {predicate}."


def predicate_first(quantifier: str, subject: str, predicate: str) -> str:
    """The same statement, predicate first: "All X are Y." -> "Y include all X." """
    return f"{predicate} include {QUANTIFIER_TEXT[quantifier].lower()} {subject}."


def generate(seed: int = 0, num_items: int = 72) -> FamilyData:
    if num_items < BLOCK or num_items % BLOCK:
        raise DataError(f"num_items={num_items}: must be a positive multiple of {BLOCK} (counterbalanced cells)")
    rng = random.Random(f"syllogism-{seed}")
    words = sample_words(4 * num_items, rng)
    cells = []
    for block in range(num_items // BLOCK):  # each block of 8 items: every cell twice, in random order
        patterns = SWAP_PATTERNS[2 * (block % 2) : 2 * (block % 2) + 2]
        cells += rng.sample([(*cell, pattern) for cell in CELLS for pattern in patterns], BLOCK)

    train, tests, oracle, needs = [], [], [], []
    for index, (mood, subject_first, (core_swap, decoy_swap)) in enumerate(cells):
        terms = dict(zip("ABCD", words[4 * index : 4 * index + 4]))
        swapped = {CORES[mood][core_swap], DECOYS[mood][decoy_swap]}
        premises = [*CORES[mood], *DECOYS[mood]]
        rng.shuffle(premises)
        listed = list(terms.values())
        rng.shuffle(listed)
        sentences = " ".join(
            (predicate_first if premise in swapped else statement)(q, terms[s], terms[p])
            for premise in premises
            for q, s, p in [premise]
        )
        text = f"The relationships between {listed[0]}, {listed[1]}, {listed[2]} and {listed[3]} are: {sentences}"
        source_id = f"syllogism-item-{index:03d}"
        train.append({"id": f"{source_id}-train", "source_id": source_id, "text": text})
        a, c = terms["A"], terms["C"]
        oracle.append(
            {
                "id": f"{source_id}-oracle-inference",
                "source_id": source_id,
                "kind": "inference",
                "text": f"The relationships between {a} and {c} are: {statement(mood, a, c)}",
            }
        )
        first, second = (a, c) if subject_first else (c, a)
        candidates = [
            (quantifier, s, p) for quantifier in ("all", "some", "no") for s, p in ((first, second), (second, first))
        ]
        tests.append(
            {
                "id": f"syllogism-deduction-{index:03d}",
                "source_id": source_id,
                "mood": mood,
                "query": f"The relationships between {first} and {second} are:",
                "choices": [statement(*candidate) for candidate in candidates],
                "label": candidates.index((mood, a, c)),
            }
        )
        needs.append((source_id,))
    icl = list(zip(train, range(len(train))))
    rng.shuffle(icl)
    return FamilyData(
        family="syllogism",
        version=VERSION,
        seed=seed,
        options={"num_items": num_items},
        train=train,
        icl_facts=[row["text"] for row, _ in icl],
        tests={"deduction": tests},
        oracle=oracle,
        # An item needs its own document: the ICL context shows every item's premises whole.
        icl_fact_keys=[(row["source_id"],) for row, _ in icl],
        train_fact_keys=[(row["source_id"],) for row in train],
        test_needs={"deduction": needs},
    )
