"""The generative process tasks' scorer: exact match after canonicalization, never a crash."""

from __future__ import annotations

import time

import pytest

from lm_eval_tasks.api import generate_family
from lm_eval_tasks.process.scoring import extract_answer, process_results, score_generation

PRIMITIVES = ["zib", "mof", "kel"]
ANSWER = "kel(x)*mof(x) + mof(x)*zib(x)"  # canonical


@pytest.mark.parametrize(
    "generation",
    [
        " kel(x)*mof(x) + mof(x)*zib(x).",  # exactly the canonical form
        " mof(x)*(kel(x) + zib(x)).",  # factored
        " mof(x)*zib(x)+kel(x)*mof(x)",  # other order, no spaces, no period
        " (zib(x) + kel(x))*mof(x).\n- glorp[kel(x)] = zib(x).",  # the model goes on with another bullet
        " glorp[mof(x)] * (glorp[zib(x)] + glorp[kel(x)]) = mof(x)*(kel(x) + zib(x)). By the table ...",
        " 2*mof(x)*kel(x) - kel(x)*mof(x) + zib(x)*mof(x).",  # equal as a function
    ],
)
def test_right_answers_in_any_spelling_score_one(generation):
    assert score_generation(generation, ANSWER, PRIMITIVES) == {"exact_match": 1, "parsed": 1}


@pytest.mark.parametrize(
    "generation", [" kel(x)*mof(x).", " mof(x)*(kel(x) + zib(x))**2.", " kel(x) + mof(x) + zib(x).", " x."]
)
def test_wrong_expressions_score_zero_but_count_as_parsed(generation):
    assert score_generation(generation, ANSWER, PRIMITIVES) == {"exact_match": 0, "parsed": 1}


@pytest.mark.parametrize(
    "generation",
    [
        "",
        "   \n",
        " I do not know.",
        " glorp[mof(x)]*glorp[zib(x)].",  # a step left undone
        " mof(x)*(kel(x) + zib(x)",  # unbalanced
        " mof(x)*snurf(x).",  # a name the calculus does not have
        " kel(x)*mof(x) + mof(x)*zib(x) 9**9**9",
        " __import__('os').system('echo pwned')",
        " (kel(x) + mof(x) + zib(x) + x)**12",
        " mof(x)**99",
    ],
)
def test_unparseable_answers_score_zero_without_raising(generation):
    start = time.perf_counter()
    assert score_generation(generation, ANSWER, PRIMITIVES) == {"exact_match": 0, "parsed": 0}
    assert time.perf_counter() - start < 2


def test_what_is_read_as_the_answer():
    assert extract_answer(" a = b = mof(x). So on.") == "mof(x)"
    assert extract_answer("\n\n mof(x)\nkel(x)") == "mof(x)"
    assert extract_answer("") == ""


def test_on_generated_items_exactly_the_correct_choice_scores_one():
    data = generate_family("process", 0)
    for rows in data.tests.values():
        for row in rows:
            scores = [process_results(row, [" " + choice])["exact_match"] for choice in row["choices"]]
            assert scores == [int(i == row["label"]) for i in range(len(row["choices"]))]
            assert process_results(row, [" " + row["answer"]]) == {"exact_match": 1, "parsed": 1}
