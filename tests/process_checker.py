"""An independent checker for the process family, used by its tests.

It reads the calculus from the training *text* (the table sentences), applies the rules
as a rewrite system with sympy's pattern replacement (`Expr.replace`) instead of the
generator's recursion, and computes the real derivative with `sympy.diff`. What it
shares with the generator is sympy and the definition of a rule pair (`combinations`).
"""

from __future__ import annotations

import re

import sympy
from sympy.core.function import AppliedUndef

X = sympy.Symbol("x")
# The placeholder for "the transform of ...", rewritten away by the rules.
PENDING = sympy.Function("pending_transform")
TABLE_SENTENCE = re.compile(r"^The (\w+) of (\w+)\(x\) is (\w+)\(x\): \1\[\2\(x\)\] = \3\(x\)\.$")


def table_from_training(train_rows: list[dict]) -> tuple[str, dict[str, str]]:
    """(the transform's name, primitive -> partner) as the table sentences state them."""
    partners, names = {}, set()
    for row in train_rows:
        match = TABLE_SENTENCE.match(row["text"])
        if match:
            name, primitive, partner = match.groups()
            names.add(name)
            partners[primitive] = partner
    assert len(names) == 1, names
    return names.pop(), partners


def parse_with_pending(text: str, name: str, partners: dict[str, str]) -> sympy.Expr:
    """A statement's side, with `name[...]` read as a pending transform."""
    from sympy.parsing.sympy_parser import parse_expr

    local = {"x": X, PENDING.__name__: PENDING, **{p: sympy.Function(p) for p in partners}}
    return parse_expr(text.replace(f"{name}[", f"{PENDING.__name__}(").replace("]", ")"), local_dict=local)


def _argument_of(rule):
    return lambda e: isinstance(e, AppliedUndef) and e.func == PENDING and rule(e.args[0])


def resolve(expr: sympy.Expr, partners: dict[str, str]) -> sympy.Expr:
    """Rewrite every pending transform in `expr` away with the family's rules."""
    c = sympy.Wild("c", properties=[lambda k: k.is_Integer and k > 1])
    f = sympy.Wild("f")

    def partner_of(node: sympy.Expr) -> sympy.FunctionClass:
        return sympy.Function(partners[node.func.__name__])

    for _ in range(100):
        if not expr.has(PENDING):
            return expr
        # sum: T(f + g) = T(f) * T(g), for the sum's terms. Matched by a query, not the Wild
        # pattern a + b, which also matches 2*f (as f + f).
        expr = expr.replace(
            _argument_of(lambda arg: arg.is_Add), lambda e: sympy.Mul(*(PENDING(term) for term in e.args[0].args))
        )
        # scale: T(c * f) = T(f) ** c
        expr = expr.replace(PENDING(c * f), lambda c, f: PENDING(f) ** c)
        # product: T(f * g) = T(f) + T(g), for products without a number in front
        expr = expr.replace(
            _argument_of(lambda arg: arg.is_Mul and arg.as_coeff_Mul()[0] == 1),
            lambda e: sympy.Add(*(PENDING(factor) for factor in e.args[0].args)),
        )
        # table: T(p(x)) = q(x); nest: T(p(g)) = q(g) + T(g)
        expr = expr.replace(
            _argument_of(lambda arg: isinstance(arg, AppliedUndef) and arg.args == (X,)),
            lambda e: partner_of(e.args[0])(X),
        )
        expr = expr.replace(
            _argument_of(lambda arg: isinstance(arg, AppliedUndef) and arg.args != (X,)),
            lambda e: partner_of(e.args[0])(e.args[0].args[0]) + PENDING(e.args[0].args[0]),
        )
    raise AssertionError(f"the rules did not terminate on {expr}")


def transform(expr: sympy.Expr, partners: dict[str, str]) -> sympy.Expr:
    return resolve(PENDING(expr), partners)


def real_derivative(expr: sympy.Expr, partners: dict[str, str]) -> sympy.Expr:
    """d/dx with p'(u) = q(u) for every primitive p with partner q (sympy.diff, then the table)."""
    derived = sympy.diff(expr, X)

    def table(node: sympy.Expr) -> sympy.Expr:
        if isinstance(node, sympy.Subs):  # d p(u)/du at u = g, as older sympy writes it
            return sympy.Function(partners[node.expr.expr.func.__name__])(node.point[0])
        return sympy.Function(partners[node.expr.func.__name__])(node.expr.args[0])

    derived = derived.replace(lambda e: isinstance(e, sympy.Subs), table)
    return derived.replace(lambda e: isinstance(e, sympy.Derivative), table)


def same_function(a: sympy.Expr, b: sympy.Expr) -> bool:
    return sympy.expand(a - b) == 0
