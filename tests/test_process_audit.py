"""The process family's audit plug-in (lm_eval_tasks/process/audit.py): its checker reads the rules and the
table from the text, so every label follows from the training text and only from what it states."""

from __future__ import annotations

import pytest

from lm_eval_tasks.api import generate_family
from lm_eval_tasks.process.audit import checker


@pytest.fixture(scope="module")
def data():
    return generate_family("process", 0)


def _facts(check, texts):
    return frozenset(fact for text in texts for fact in check.facts_in("", text))


def test_every_label_is_the_only_choice_the_training_text_supports(data):
    check = checker(data)
    facts = _facts(check, [row["text"] for row in data.train])
    assert {fact[0] for fact in facts} == {"table", "sum", "product", "scale", "nest"}
    assert facts == _facts(check, data.icl_facts)  # the ICL prompt states every rule and table entry
    for split, rows in data.tests.items():
        for row in rows:
            assert check.supported(facts, split, row) == [row["label"]], row["id"]


def test_nothing_follows_without_the_rules_a_question_needs(data):
    check = checker(data)
    facts = _facts(check, [row["text"] for row in data.train])
    without_sum = frozenset(fact for fact in facts if fact[0] != "sum")
    for split, rows in data.tests.items():
        for row in rows:
            needs_sum = any(pair.startswith("sum>") for pair in row["combinations"])
            assert (check.supported(without_sum, split, row) == []) == needs_sum, row["id"]
    first = data.tests["seen"][0]
    table_entry = next(fact for fact in facts if fact[0] == "table" and fact[1] + "(" in first["expression"])
    assert check.supported(facts - {table_entry}, "seen", first) == []


def test_the_checker_follows_the_rules_as_stated_not_the_generator(data):
    """A text that states calculus' sum rule instead makes the checker pick the derivative on items whose only
    rule besides the table is that sum (and the other rules as calculus would, read from other sentences)."""
    check = checker(data)
    name = check.name
    calculus_rules = [
        f"Sum rule: {name}[f + g] = {name}[f] + {name}[g].",
        f"Product rule: {name}[f*g] = {name}[f]*g + f*{name}[g].",
        f"Scale rule: {name}[c*f] = c*{name}[f].",
        f"Nest rule: {name}[keku(g)] = jeso(g)*{name}[g].",
    ]
    table = [text for text in data.icl_facts if text.startswith(f"The {name} of ") and "(x) is " in text]
    facts = _facts(check, [*calculus_rules, *table])
    picked = [
        row["choice_kinds"][index]
        for split, rows in data.tests.items()
        for row in rows
        for index in check.supported(facts, split, row)
    ]
    assert picked and set(picked) == {"derivative"}
    assert len(picked) == sum(len(rows) for rows in data.tests.values())


def test_the_family_heuristics_are_offered_to_the_audit(data):
    heuristics = checker(data).extra_heuristics()
    assert len(heuristics) == 36 and all(h.fact_aware for h in heuristics)
    row = data.tests["heldout"][0]

    class Corpus:
        texts = [r["text"] for r in data.train]

    longest = next(h for h in heuristics if h.name == "process: longest")
    lengths = [len(choice) for choice in row["choices"]]
    assert longest.score(row, Corpus()) == [float(n) for n in lengths]
    avoid = next(h for h in heuristics if h.name == "process: avoid_longest").score(row, Corpus())
    assert sorted(avoid) == [-1.0, 0.0, 0.0, 0.0] and avoid.index(-1.0) == lengths.index(max(lengths))
