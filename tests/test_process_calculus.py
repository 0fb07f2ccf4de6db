"""The process family's calculus: the transform, its look-alikes, the canonical form and the parser.

The transform and the derivative distractor are checked against independent
implementations (tests/process_checker.py: sympy pattern replacement, sympy.diff) on every
expression of depth 2, a sample of depth 3 and random depth-4 expressions.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time

import pytest
import sympy

from lm_eval_tasks.process.calculus import (
    IMPOSSIBLE_PAIRS,
    MISTAKES,
    POSSIBLE_PAIRS,
    Calculus,
    UnsupportedExpression,
    canonical,
    combinations,
    parse_expression,
    rule_of,
    written,
)
from lm_eval_tasks.process.generator import deep_expression, expression_pool, make_calculus
from tests import process_checker


def calculus(seed: int) -> Calculus:
    return make_calculus(random.Random(f"process-{seed}"))


def sample_expressions(calc: Calculus, seed: int, depth3: int = 80, depth4: int = 25) -> list[sympy.Expr]:
    rng = random.Random(seed)
    pool = expression_pool(calc)
    deep = []
    while len(deep) < depth4:
        entry = deep_expression(calc, rng, rng.choice(("sum", "product", "nest", "scale")))
        if entry is not None:
            deep.append(entry.expr)
    return [e.expr for e in pool[1]] + [e.expr for e in rng.sample(pool[2], depth3)] + deep


@pytest.mark.parametrize("seed", [0, 1])
def test_transform_equals_the_rules_applied_by_sympy_pattern_replacement(seed):
    calc = calculus(seed)
    partners = dict(calc.partners)
    for expr in sample_expressions(calc, seed):
        ours, theirs = calc.transform(expr), process_checker.transform(expr, partners)
        assert process_checker.same_function(ours, theirs), (written(expr), ours, theirs)
        assert canonical(ours) == canonical(theirs)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_derivative_distractor_is_sympys_derivative_and_never_the_transform(seed):
    calc = calculus(seed)
    partners = dict(calc.partners)
    for expr in sample_expressions(calc, seed):
        derivative = calc.derivative(expr)
        assert process_checker.same_function(derivative, process_checker.real_derivative(expr, partners)), written(expr)
        # the rules are unlike calculus on every expression with a combinator
        assert not process_checker.same_function(derivative, calc.transform(expr)), written(expr)


def test_every_mistake_kind_changes_some_result():
    calc = calculus(0)
    kinds_that_changed = set()
    for expr in sample_expressions(calc, 0, depth3=60, depth4=10):
        correct = canonical(calc.transform(expr))
        for mistake in calc.possible_mistakes(expr):
            assert mistake[1] in MISTAKES
            if canonical(calc.transform(expr, error=mistake)) != correct:
                kinds_that_changed.add(mistake[1])
    assert kinds_that_changed == set(MISTAKES)


def test_the_rules_on_a_worked_example():
    calc = Calculus("glorp", (("zib", "mof"), ("mof", "kel"), ("kel", "zib")))
    zib, mof, kel = (calc.functions[n] for n in ("zib", "mof", "kel"))
    x = sympy.Symbol("x")
    expr = zib(x) * (mof(x) + kel(x))  # product rule over a sum: T(zib) + T(mof) * T(kel)
    assert canonical(calc.transform(expr)) == "kel(x)*zib(x) + mof(x)"
    assert canonical(calc.transform(2 * zib(x))) == "mof(x)**2"  # scale: T(f) ** c
    assert canonical(calc.transform(zib(mof(x)))) == "kel(x) + mof(mof(x))"  # nest: q(g) + T(g)
    # Leibniz: T'(zib)*(mof + kel) + zib*(T'(mof) + T'(kel)) = mof*(mof + kel) + zib*(kel + zib)
    assert canonical(calc.derivative(expr)) == "kel(x)*mof(x) + kel(x)*zib(x) + mof(x)**2 + zib(x)**2"
    assert canonical(calc.transform(expr, error=((), "swapped"))) == "kel(x)*mof(x)*zib(x)"
    sum_path = (expr.args.index(mof(x) + kel(x)),)  # the sum's transform never taken: it stays as written
    assert canonical(calc.transform(expr, error=(sum_path, "skipped"))) == "kel(x) + 2*mof(x)"
    # the sum rewritten by the table alone: mof + kel -> kel + zib, the sum rule's step missing
    assert canonical(calc.transform(expr, error=(sum_path, "table_only"))) == "kel(x) + mof(x) + zib(x)"
    assert calc.renamed(zib(mof(x) * kel(x))) == mof(kel(x) * zib(x))
    assert sorted(combinations(expr)) == ["product>sum", "product>table", "sum>table"]


def test_canonical_is_one_string_per_function():
    calc = Calculus("glorp", (("zib", "mof"), ("mof", "kel"), ("kel", "zib")))
    same = [
        "mof(x)*(kel(x) + zib(x))",
        "kel(x)*mof(x) + mof(x)*zib(x)",
        "zib(x)*mof(x)+mof(x)*kel(x)",
        "(zib(x) + kel(x))*mof(x)",
        "mof(x)*kel(x) + mof(x)*zib(x) + 0",
        "2*mof(x)*kel(x) - mof(x)*kel(x) + zib(x)*mof(x)",
    ]
    assert len({canonical(calc.parse(text)) for text in same}) == 1
    different = [
        "mof(x)*kel(x) + zib(x)",
        "mof(x)*(kel(x) + zib(x))**2",
        "mof(x)*(kel(x) + mof(x))",
        "mof(kel(x) + zib(x))",
    ]
    assert len({canonical(calc.parse(text)) for text in [same[0], *different]}) == 5
    # inside function arguments too
    assert canonical(calc.parse("zib(mof(x)*(kel(x) + x))")) == canonical(calc.parse("zib(x*mof(x) + kel(x)*mof(x))"))


def test_canonical_strings_do_not_depend_on_the_hash_seed():
    script = (
        "import random\n"
        "from lm_eval_tasks.process.calculus import canonical\n"
        "from lm_eval_tasks.process.generator import make_calculus, expression_pool\n"
        "calc = make_calculus(random.Random('process-0'))\n"
        "exprs = [e.expr for e in random.Random(1).sample(expression_pool(calc)[2], 60)]\n"
        "print('|'.join(canonical(calc.transform(e)) + canonical(calc.derivative(e)) for e in exprs))\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": hash_seed, "PATH": ""},
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert len(outputs) == 1 and len(outputs.pop()) > 1000


def test_written_inputs_parse_back_to_the_same_tree():
    calc = calculus(0)
    for expr in sample_expressions(calc, 3, depth3=len(expression_pool(calc)[2]), depth4=40):
        parsed = calc.parse(written(expr))
        assert parsed == expr and written(parsed) == written(expr)
        assert combinations(parsed) == combinations(expr)


def test_pairs_are_exactly_the_ones_sympys_normal_form_allows():
    calc = calculus(0)
    seen = set()
    for layer in expression_pool(calc):
        for entry in layer:
            seen |= entry.pairs
    assert seen == set(POSSIBLE_PAIRS)
    assert not seen & IMPOSSIBLE_PAIRS
    assert len(POSSIBLE_PAIRS) == 15


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "the answer is mof(x)",
        "glorp[zib(x)]",
        "mof(x) +",
        "mof(x, x)",
        "1/mof(x)",
        "mof(x)**x",
        "mof(x)**-1",
        "mof(x)**2**3",
        "99**99**99",
        "99 ** 99 ** 99",
        "9^9^9",
        "(zib(x) + mof(x) + kel(x) + x)**12",
        "((zib(x) + mof(x))**12 + x)**12",
        "mof(x)*1000",
        "__import__('os').system('true')",
        "exec('1')",
        "lambda: 1",
        "mof(x)(x)",
        "x(x)",
        "zib(x).diff(x)",
        "mof(x) = kel(x)",
        "Symbol('y')",
        "y + mof(x)",
        "m" * 500,
        "(" * 200 + "x" + ")" * 200,
    ],
)
def test_the_parser_refuses_what_is_not_an_expression_of_the_calculus(text):
    start = time.perf_counter()
    assert parse_expression(text, ["zib", "mof", "kel"]) is None
    assert time.perf_counter() - start < 2


def test_the_parser_reads_usual_spellings():
    def read(text):
        return canonical(parse_expression(text, ["zib", "mof"]))

    assert read("mof(x)^2") == read("mof(x)**2") == read("mof(x) ** (2)") == read("mof(x)*mof(x)")
    assert read(" zib( x )  +mof(x) ") == "mof(x) + zib(x)"
    assert read("3*x") == "3*x"


def test_expressions_outside_the_calculus_are_a_clear_error():
    calc = calculus(0)
    x = sympy.Symbol("x")
    for expr in (x, calc.leaf(calc.primitives[0]) ** 2, sympy.Integer(3)):
        with pytest.raises(UnsupportedExpression, match="not an expression of the calculus"):
            rule_of(expr)
    with pytest.raises(ValueError, match="permutation|own partner|distinct"):
        Calculus("glorp", (("zib", "zib"),))
