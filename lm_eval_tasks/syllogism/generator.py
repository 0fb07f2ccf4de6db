"""Simple syllogisms (Lampinen et al. 2025, dataset 2).

Each item introduces three nonsense terms and two premises:

    The relationships between glon, troff and yomp are: All glon are yomp. All troff are glon.

The test names the two conclusion terms ("The relationships between troff and yomp
are:") and scores six continuations, {All, Some but not all, No} x {both directions};
exactly one of them follows from the premises ("All troff are yomp.").

Logical convention (proved for every item by the brute-force set-model checker in
tests/test_syllogism_validity.py): terms denote arbitrary, possibly empty, sets;
"All X are Y" is X <= Y, "No X are Y" is X & Y == {}, and "Some X are Y" is read
scalarly and written out as "Some but not all X are Y" (X & Y != {} and not X <= Y).

Why this convention: "No X are Y" is symmetric, so a valid No-conclusion always makes two
of the six candidates true, and the plain existential "Some" is symmetric too. The scalar
"some but not all" is not, and the exhaustive search over every two-premise form in the
checker's test shows exactly two moods with a single valid candidate:

    all:  All A are B.  All B are C.                 => All A are C.
    some: All B are A.  Some but not all B are C.    => Some but not all A are C.

So "No" is never the answer; it stays among the candidates as a distractor, as in the
paper. Counterbalancing: the quantifier of the answer (All / Some but not all), whether
the test names the answer's subject first, and which premise comes first are crossed in
equal numbers, so each of the four candidates that can be right is right for exactly a
quarter of the items. A model that ignores the facts scores 1/6 by guessing uniformly and
at most 1/4 with any fixed preference among candidates (never choosing "No").
"""

from __future__ import annotations

import itertools
import random

from lm_eval_tasks.lexicon import sample_words
from lm_eval_tasks.spec import FamilyData

VERSION = "1.1"

QUANTIFIER_TEXT = {"all": "All", "some": "Some but not all", "no": "No"}
# Counterbalanced factors, crossed: every combination occurs num_items / 8 times.
MOODS = ("all", "some")
ANSWER_SUBJECT_NAMED_FIRST = (True, False)
MAJOR_PREMISE_FIRST = (True, False)
CELLS = tuple(itertools.product(MOODS, ANSWER_SUBJECT_NAMED_FIRST, MAJOR_PREMISE_FIRST))


def statement(quantifier: str, subject: str, predicate: str) -> str:
    return f"{QUANTIFIER_TEXT[quantifier]} {subject} are {predicate}."


def premises(mood: str, a: str, b: str, c: str) -> tuple[str, str]:
    """(premise about A and B, premise about B and C) of a mood whose answer is about A and C."""
    if mood == "all":
        return statement("all", a, b), statement("all", b, c)
    return statement("all", b, a), statement("some", b, c)


def generate(seed: int = 0, num_items: int = 72) -> FamilyData:
    if num_items < len(CELLS) or num_items % len(CELLS):
        raise ValueError(f"num_items={num_items}: must be a positive multiple of {len(CELLS)} (counterbalanced cells)")
    rng = random.Random(f"syllogism-{seed}")
    words = sample_words(3 * num_items, rng)
    cells = [CELLS[i % len(CELLS)] for i in range(num_items)]
    rng.shuffle(cells)

    train, icl_facts, tests, oracle = [], [], [], []
    for index, (mood, subject_first, major_first) in enumerate(cells):
        a, b, c = words[3 * index : 3 * index + 3]
        minor, major = premises(mood, a, b, c)
        ordered_premises = (major, minor) if major_first else (minor, major)
        listed = [a, b, c]
        rng.shuffle(listed)
        text = f"The relationships between {listed[0]}, {listed[1]} and {listed[2]} are: {' '.join(ordered_premises)}"
        source_id = f"syllogism-item-{index:03d}"
        train.append({"id": f"{source_id}-train", "source_id": source_id, "text": text})
        icl_facts.append(text)
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
    rng.shuffle(icl_facts)
    return FamilyData(
        family="syllogism",
        version=VERSION,
        seed=seed,
        options={"num_items": num_items},
        train=train,
        icl_facts=icl_facts,
        tests={"deduction": tests},
        oracle=oracle,
    )
