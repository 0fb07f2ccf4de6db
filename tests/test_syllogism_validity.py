"""Proof, by brute force over set models, that every syllogism item has exactly one valid answer.

The checker is independent of the generator: it parses the generated *text* (the training
sentence and the six candidates) and decides entailment semantically. Three terms split
the universe into 7 Venn regions (plus the outside); a model is the set of inhabited
regions, so 2**7 models cover every possible interpretation of the terms.

Convention (documented in lm_eval_tasks/syllogism/generator.py): terms may be empty,
"All X are Y" is X <= Y, "No X are Y" is X & Y == {}, "Some but not all X are Y" is
X & Y != {} and not X <= Y.
"""

from __future__ import annotations

import itertools
import re

import pytest

from lm_eval_tasks.api import generate_family

REGIONS = [r for r in itertools.product((False, True), repeat=3) if any(r)]
STATEMENT = re.compile(r"^(All|Some but not all|No) (\w+) are (\w+)\.$")


def all_models(terms: list[str]):
    for inhabited in itertools.product((False, True), repeat=len(REGIONS)):
        regions = [r for r, used in zip(REGIONS, inhabited) if used]
        yield {term: {i for i, r in enumerate(regions) if r[k]} for k, term in enumerate(terms)}


def holds(sentence: str, model: dict[str, set]) -> bool:
    quantifier, x, y = STATEMENT.match(sentence).groups()
    xs, ys = model[x], model[y]
    if quantifier == "All":
        return xs <= ys
    if quantifier == "No":
        return not xs & ys
    return bool(xs & ys) and not xs <= ys


def entailed(premises: list[str], conclusion: str, terms: list[str]) -> bool:
    return all(holds(conclusion, m) for m in all_models(terms) if all(holds(p, m) for p in premises))


def parse_item(text: str) -> tuple[list[str], list[str]]:
    head, _, body = text.partition(": ")
    terms = re.match(r"The relationships between (\w+), (\w+) and (\w+) are$", head).groups()
    premises = [s if s.endswith(".") else s + "." for s in re.split(r"(?<=\.) ", body)]
    return list(terms), premises


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_every_item_has_exactly_one_entailed_candidate_and_it_is_the_label(seed):
    data = generate_family("syllogism", seed)
    train_by_source = {row["source_id"]: row["text"] for row in data.train}
    for item in data.tests["deduction"]:
        terms, premises = parse_item(train_by_source[item["source_id"]])
        assert len(premises) == 2
        assert any(all(holds(p, m) for p in premises) for m in all_models(terms)), "premises are inconsistent"
        valid = [i for i, choice in enumerate(item["choices"]) if entailed(premises, choice, terms)]
        assert valid == [item["label"]], (item["id"], premises, item["choices"], valid)


def test_the_convention_admits_a_unique_answer_only_for_all_and_some_but_not_all():
    """Exhaustive search over every two-premise form: 'No' is never the unique valid answer."""
    a, b, c = "ax", "bx", "cx"
    quantifiers = ("All", "Some but not all", "No")
    unique_answer_quantifiers = set()
    for q1, q2 in itertools.product(quantifiers, repeat=2):
        for (s1, p1), (s2, p2) in itertools.product(((a, b), (b, a)), ((b, c), (c, b))):
            premises = [f"{q1} {s1} are {p1}.", f"{q2} {s2} are {p2}."]
            if not any(all(holds(p, m) for p in premises) for m in all_models([a, b, c])):
                continue
            candidates = [f"{q} {s} are {p}." for q in quantifiers for s, p in ((a, c), (c, a))]
            valid = [x for x in candidates if entailed(premises, x, [a, b, c])]
            if len(valid) == 1:
                unique_answer_quantifiers.add(STATEMENT.match(valid[0]).group(1))
    assert unique_answer_quantifiers == {"All", "Some but not all"}
