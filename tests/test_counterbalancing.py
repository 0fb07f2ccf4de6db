"""A model that knows no facts must sit at chance: no surface preference may beat it.

These tests play fact-blind "models" that always prefer one surface form (a comparative,
a candidate slot, a quantifier) against the generated test splits. Counterbalancing is
exact by construction, so their accuracy is exactly chance (or, for syllogisms, exactly
the 1/4 ceiling that the README documents), for every seed.
"""

from __future__ import annotations

import collections

import pytest

from lm_eval_tasks.api import generate_family

SEEDS = [0, 1, 7]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("split", ["forward", "reverse"])
def test_reversal_each_comparative_is_right_exactly_half_the_time_per_feature(seed, split):
    rows = generate_family("reversal", seed).tests[split]
    right = collections.Counter()
    asked = collections.Counter()
    for row in rows:
        for choice in row["choices"]:
            comparative = choice.rsplit(" than ", 1)[0]
            asked[comparative] += 1
            right[comparative] += choice == row["choices"][row["label"]]
    for comparative, n in asked.items():
        assert right[comparative] * 2 == n, (comparative, right[comparative], n)


@pytest.mark.parametrize("seed", SEEDS)
def test_reversal_fact_blind_preferences_score_exactly_one_half(seed):
    data = generate_family("reversal", seed)
    for rows in data.tests.values():
        first_choice = sum(row["label"] == 0 for row in rows) / len(rows)
        prefers_more = sum("more" in row["choices"][row["label"]] for row in rows if "more" in row["choices"][0])
        more_items = sum("more" in row["choices"][0] for row in rows)
        assert first_choice == 0.5
        assert prefers_more * 2 == more_items


@pytest.mark.parametrize("seed", SEEDS)
def test_syllogism_every_possible_answer_slot_is_right_for_a_quarter_of_items(seed):
    rows = generate_family("syllogism", seed).tests["deduction"]
    slots = collections.Counter(row["label"] for row in rows)
    assert set(slots) == {0, 1, 2, 3}  # "No" (slots 4, 5) is never the unique answer
    assert all(count * 4 == len(rows) for count in slots.values())
    # The best fact-blind strategy (a fixed slot) reaches 1/4; uniform guessing 1/6.
    assert max(slots.values()) / len(rows) == 0.25


@pytest.mark.parametrize("seed", SEEDS)
def test_syllogism_premise_forms_and_answer_quantifier_are_balanced(seed):
    data = generate_family("syllogism", seed)
    moods = collections.Counter(row["mood"] for row in data.tests["deduction"])
    assert moods["all"] == moods["some"]
    # Both moods hold three All-premises and one Some-premise, two of them written predicate
    # first: the premises' quantifiers and surface forms do not tell the answer's quantifier.
    for row in data.train:
        body = row["text"].split(": ", 1)[1]
        assert body.count("Some but not all") + body.count("some but not all") == 1, row["text"]
        assert body.count(" include ") == 2, row["text"]
    # Every block of eight consecutive items holds each answer slot twice: --limit 8k is balanced.
    labels = [row["label"] for row in data.tests["deduction"]]
    for start in range(0, len(labels), 8):
        assert collections.Counter(labels[start : start + 8]) == {0: 2, 1: 2, 2: 2, 3: 2}
