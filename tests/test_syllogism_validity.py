"""Proof, by brute force over set models, that every syllogism item has exactly one valid answer.

The family's checker (lm_eval_tasks/syllogism/audit.py) parses the generated *text* (the
training document and the six candidates) and decides entailment over every set model of
the item's four terms (2**15 models, as bit masks). This file checks that checker against
a plain set-based brute force, then uses it on every item.

Convention (documented in lm_eval_tasks/syllogism/generator.py): terms may be empty,
"All X are Y" is X <= Y, "No X are Y" is X & Y == {}, "Some but not all X are Y" is
X & Y != {} and not X <= Y; "Y include all X" is "All X are Y".
"""

from __future__ import annotations

import itertools
import re

import pytest

from lm_eval_tasks.api import generate_family
from lm_eval_tasks.syllogism.audit import entailed, statements

QUERY = re.compile(r"^The relationships between (\w+) and (\w+) are:$")


def all_models(terms: list[str]):
    """Every interpretation: the inhabited subset of the Venn regions of `terms`, as sets of region numbers."""
    regions = [r for r in itertools.product((False, True), repeat=len(terms)) if any(r)]
    for inhabited in itertools.product((False, True), repeat=len(regions)):
        used = [r for r, on in zip(regions, inhabited) if on]
        yield {term: {i for i, r in enumerate(used) if r[k]} for k, term in enumerate(terms)}


def holds(statement: tuple[str, str, str], model: dict[str, set]) -> bool:
    quantifier, x, y = statement
    xs, ys = model[x], model[y]
    if quantifier == "all":
        return xs <= ys
    if quantifier == "no":
        return not xs & ys
    return bool(xs & ys) and not xs <= ys


def slow_entailed(premises, candidates) -> list[bool]:
    terms = sorted({t for _, s, p in [*premises, *candidates] for t in (s, p)})
    models = [m for m in all_models(terms) if all(holds(p, m) for p in premises)]
    return [bool(models) and all(holds(c, m) for m in models) for c in candidates]


def items(seed: int, **options):
    data = generate_family("syllogism", seed, **options)
    train = {row["source_id"]: row["text"] for row in data.train}
    for row in data.tests["deduction"]:
        premises = statements(train[row["source_id"]])
        candidates = [statements(choice)[0] for choice in row["choices"]]
        yield row, premises, candidates


def test_statements_read_both_surface_forms():
    assert statements("All glon are yomp. yomp include some but not all troff.") == [
        ("all", "glon", "yomp"),
        ("some", "troff", "yomp"),
    ]


def test_the_fast_checker_agrees_with_plain_set_models():
    for number, (row, premises, candidates) in enumerate(items(0)):
        if number % 9:  # 8 items x 32,768 plain-Python models: a few seconds
            continue
        assert entailed(premises, candidates) == slow_entailed(premises, candidates), row["id"]
    three = [("all", "a", "b"), ("some", "b", "c")]
    for quantifiers in itertools.product(("all", "some", "no"), repeat=2):
        premises = [(q, s, p) for q, (_, s, p) in zip(quantifiers, three)]
        candidates = [(q, s, p) for q in ("all", "some", "no") for s, p in (("a", "c"), ("c", "a"))]
        assert entailed(premises, candidates) == slow_entailed(premises, candidates), premises


@pytest.mark.parametrize("seed, options", [(0, {}), (1, {}), (7, {}), (0, {"num_items": 24})])
def test_every_item_has_exactly_one_entailed_candidate_and_it_is_the_label(seed, options):
    for row, premises, candidates in items(seed, **options):
        assert len(premises) == 4
        valid = [i for i, ok in enumerate(entailed(premises, candidates)) if ok]
        assert valid == [row["label"]], (row["id"], premises, row["choices"], valid)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_decoy_premises_change_nothing(seed):
    """Of the two unasked terms, the premises through one (the core) entail the label alone;
    those through the other (the decoy) entail no candidate at all."""
    for row, premises, candidates in items(seed):
        asked = set(QUERY.match(row["query"]).groups())
        unasked = sorted({t for _, s, p in premises for t in (s, p)} - asked)
        found = sorted(
            tuple(i for i, ok in enumerate(entailed([p for p in premises if t in p[1:]], candidates)) if ok)
            for t in unasked
        )
        assert found == [(), (row["label"],)], (row["id"], found)


def test_the_convention_admits_a_unique_answer_only_for_all_and_some_but_not_all():
    """Exhaustive search over every two-premise form: 'No' is never the unique valid answer."""
    a, b, c = "ax", "bx", "cx"
    quantifiers = ("all", "some", "no")
    unique_answer_quantifiers = set()
    for q1, q2 in itertools.product(quantifiers, repeat=2):
        for (s1, p1), (s2, p2) in itertools.product(((a, b), (b, a)), ((b, c), (c, b))):
            premises = [(q1, s1, p1), (q2, s2, p2)]
            candidates = [(q, s, p) for q in quantifiers for s, p in ((a, c), (c, a))]
            valid = [x for x, ok in zip(candidates, slow_entailed(premises, candidates)) if ok]
            if len(valid) == 1:
                unique_answer_quantifiers.add(valid[0][0])
    assert unique_answer_quantifiers == {"all", "some"}
