"""The made-up calculus of the process family: expressions, the transform, its look-alikes, the canonical form.

Expressions are sympy trees in one variable `x` built from a few undefined functions with
nonsense names (`zib(x)`; the generator uses five) by four combinators. Every node is handled by
exactly one rule, named after the node:

    rule      node                         the transform T ("the glorp of ...")
    table     p(x)                         T(p(x)) = q(x), q = p's partner in the table
    sum       f + g                        T(f + g) = T(f) * T(g)
    product   f * g                        T(f * g) = T(f) + T(g)
    scale     c * f  (c a whole number)    T(c * f) = T(f) ** c
    nest      p(g)   (g not x)             T(p(g)) = q(g) + T(g)

The rules swap the roles of sum and product relative to calculus (a derivative is
additive over sums, uses Leibniz's rule over products, multiplies in the chain rule and
is linear in constants), so "apply the real derivative with the same table" gives a
different answer (`derivative`, a distractor), not a shortcut.

T depends on the expression *as written*: sympy's automatic normal form (flattened,
sorted sums and products) is the written form, and T is well defined on it because the
sum and product rules are symmetric and associative. T is not compatible with
distributivity (T(a*(b + c)) != T(a*b + a*c)), so inputs are never expanded. Results,
on the other hand, are compared as functions: `canonical` expands them.
"""

from __future__ import annotations

import dataclasses
import functools
import keyword
import re
from collections.abc import Iterable

import sympy
from sympy.core.function import AppliedUndef

X = sympy.Symbol("x")
RULES = ("table", "sum", "product", "scale", "nest")
COMBINATORS = ("sum", "product", "scale", "nest")
SCALE_FACTORS = (2, 3)

# A parent-child rule pair ("product>sum": a sum directly inside a product) is possible
# unless sympy's normal form makes it impossible: sums inside sums and products inside
# products are flattened, a number times a sum is distributed (2*(f + g) -> 2*f + 2*g),
# a scaled factor inside a product is a scaled product (f*(2*g) -> 2*(f*g)) and a scale
# of a scale is one scale.
IMPOSSIBLE_PAIRS = frozenset({"sum>sum", "product>product", "scale>sum", "product>scale", "scale>scale"})
POSSIBLE_PAIRS = tuple(
    f"{parent}>{child}" for parent in COMBINATORS for child in RULES if f"{parent}>{child}" not in IMPOSSIBLE_PAIRS
)

# Mistakes `Calculus.transform(error=(path, kind))` can make at one node:
# - "skipped": the transform of an inner part (not the root) is never taken; the part is
#   left as written (a partial application: one rule step missing).
# - "table_only": an inner part (not the root, not a single p(x)) is rewritten by the table
#   alone, every function swapped for its partner, its own rule step missing (a partial
#   application too). The two pull a fact-blind reader opposite ways: "skipped" repeats
#   names of the question (SmolLM2 without the rules preferred it for 62% of the items of
#   a draft that had only it), "table_only" is shorter than the answer.
# - "swapped": the node is handled with another rule's operation (a sum's transforms added
#   as the product rule does, a product's multiplied as the sum rule does, a nest's
#   multiplied like the chain rule, a scale multiplied by c instead of raised to c): a rule
#   applied to the wrong part.
# - "inside_out": at a nest p(g), the partner is applied to T(g) instead of g: the inner
#   transform taken first, the rules applied in the wrong order.
MISTAKES = ("skipped", "table_only", "swapped", "inside_out")
PARTIAL_MISTAKES = ("skipped", "table_only")

# How a generated answer may be written: names, whole numbers, + - * ** ^ and parentheses.
_ANSWER_CHARACTERS = re.compile(r"^[A-Za-z0-9_\s()+*^-]*$")
_NAME = re.compile(r"[A-Za-z_]\w*")
_NUMBER = re.compile(r"\d+")
# An exponent is a plain whole number, never followed by another power: "9**9**9" (a tower
# Python would try to compute while parsing) and "x**(1+1)" are refused as unparseable.
_POWER = re.compile(r"(?:\*\*|\^)\s*(?:\d+(?!\d)|\(\s*\d+\s*\))(?!\s*(?:\*\*|\^))")
_POWER_OPERATOR = re.compile(r"\*\*|\^")
MAX_ANSWER_CHARS = 400
MAX_NUMBER = 99  # no answer has a larger number
MAX_EXPONENT = 12  # no answer has a larger exponent
MAX_EXPANDED_TERMS = 10_000  # an upper bound on an answer's expansion; answers have a few dozen terms at most


class UnsupportedExpression(ValueError):
    """An expression outside the calculus (e.g. a power or a bare x); the message says which."""


@functools.lru_cache(maxsize=4096)  # the generator canonicalizes the same results many times
def canonical(expr: sympy.Expr) -> str:
    """THE canonical string of a result: the expanded polynomial in the applied functions
    (arguments expanded too), printed by sympy in its sorted term order.

    Two results are equal as functions iff their canonical strings are equal. The
    generator writes every choice with it, the tests check labels with it and the
    generative scorer compares a parsed answer with it.

    The expand hints that cannot apply to the calculus (powers with symbolic exponents,
    logarithms) are off: same result, a third less time.
    """
    return sympy.sstr(sympy.expand(expr, power_base=False, power_exp=False, log=False))


def written(expr: sympy.Expr) -> str:
    """An input as written in a question (sympy's normal form, not expanded: T depends on it)."""
    return sympy.sstr(expr)


def rule_of(expr: sympy.Expr) -> str:
    """The rule that handles the node `expr`."""
    if isinstance(expr, AppliedUndef) and len(expr.args) == 1:
        return "table" if expr.args[0] == X else "nest"
    if expr.is_Add:
        return "sum"
    if expr.is_Mul:
        coefficient, _ = expr.as_coeff_Mul()
        if coefficient == 1:
            return "product"
        if coefficient.is_Integer and coefficient > 1:
            return "scale"
    raise UnsupportedExpression(f"{expr} is not an expression of the calculus (no rule handles {type(expr).__name__})")


def children(expr: sympy.Expr) -> tuple[sympy.Expr, ...]:
    """The nodes a rule's right-hand side takes the transform of, in sympy's order."""
    rule = rule_of(expr)
    if rule == "table":
        return ()
    if rule == "nest":
        return (expr.args[0],)
    if rule == "scale":
        return (expr.as_coeff_Mul()[1],)
    return expr.args


def nodes(expr: sympy.Expr, path: tuple[int, ...] = ()) -> Iterable[tuple[tuple[int, ...], sympy.Expr]]:
    """(path, node) for every node, pre-order; a path is the child indices from the root."""
    yield path, expr
    for index, child in enumerate(children(expr)):
        yield from nodes(child, path + (index,))


def depth(expr: sympy.Expr) -> int:
    """1 for p(x); 1 + the deepest child otherwise."""
    return 1 + max((depth(child) for child in children(expr)), default=0)


def combinations(expr: sympy.Expr) -> frozenset[str]:
    """The rule combinations an evaluation of `expr` uses: every parent-child rule pair "parent>child".

    This is what the family's compositional split is defined on: an expression is
    `seen` if each of its pairs occurs in some training document, `heldout` if one does not.
    """
    return frozenset(f"{rule_of(parent)}>{rule_of(child)}" for _, parent in nodes(expr) for child in children(parent))


@dataclasses.dataclass(frozen=True)
class Calculus:
    """One instance of the calculus: the transform's name and the primitives' table.

    `partners` lists (primitive, partner) in table order; the partner map is a
    derangement of the primitives (no primitive is its own partner).
    """

    name: str
    partners: tuple[tuple[str, str], ...]

    def __post_init__(self):
        names = [self.name, *self.primitives]
        bad = [n for n in names if not n.isidentifier() or keyword.iskeyword(n) or n == str(X)]
        if bad or len(set(names)) != len(names):
            raise ValueError(f"names {names} must be distinct identifiers other than x and Python keywords")
        if sorted(self.primitives) != sorted(p for _, p in self.partners):
            raise ValueError(f"partners {self.partners} must be a permutation of the primitives")
        if any(p == q for p, q in self.partners):
            raise ValueError(f"partners {self.partners}: no primitive may be its own partner")

    @property
    def primitives(self) -> tuple[str, ...]:
        return tuple(p for p, _ in self.partners)

    @functools.cached_property
    def functions(self) -> dict[str, sympy.FunctionClass]:
        return {p: sympy.Function(p) for p in self.primitives}

    def partner(self, name: str) -> str:
        return dict(self.partners)[name]

    def parse(self, text: str) -> sympy.Expr | None:
        """`text` as an expression of this calculus, or None (see `parse_expression`)."""
        return parse_expression(text, self.primitives)

    def leaf(self, name: str, argument: sympy.Expr = X) -> sympy.Expr:
        return self.functions[name](argument)

    def _partner_applied(self, expr: sympy.Expr, argument: sympy.Expr) -> sympy.Expr:
        """q(argument) for the node p(...) whose primitive's partner is q."""
        name = expr.func.__name__
        if name not in self.functions:
            raise UnsupportedExpression(f"{expr}: {name} is not a primitive of this calculus ({self.primitives})")
        return self.functions[self.partner(name)](argument)

    # --- the transform and its near misses --------------------------------------------
    def transform(self, expr: sympy.Expr, error: tuple[tuple[int, ...], str] | None = None) -> sympy.Expr:
        """T(expr), unexpanded; with `error=(path, kind)`, the same evaluation with one mistake
        at the node `path` (see `MISTAKES`)."""
        return self._evaluate(expr, (), error)

    def _evaluate(self, expr, path, error) -> sympy.Expr:
        mistake = error[1] if error is not None and error[0] == path else None
        if mistake == "skipped":
            return expr  # the step that takes this part's transform is missing
        rule = rule_of(expr)
        if mistake == "table_only":
            if rule == "table":
                raise ValueError("mistake 'table_only' needs a combinator node (on p(x) it is the table itself)")
            return self.renamed(expr)
        kids = children(expr)
        transformed = [self._evaluate(kid, path + (i,), error) for i, kid in enumerate(kids)]
        swapped = mistake == "swapped"
        if mistake is not None and mistake not in MISTAKES:
            raise ValueError(f"unknown mistake {mistake!r}; choose one of {MISTAKES}")
        if mistake == "inside_out" and rule != "nest":
            raise ValueError(f"mistake 'inside_out' needs a nest node, {expr} is a {rule}")
        if rule == "table":
            if swapped:
                raise ValueError("mistake 'swapped' needs a combinator node, not a table lookup")
            return self._partner_applied(expr, X)
        if rule == "sum":  # "swapped": added, as the product rule does
            return sympy.Add(*transformed) if swapped else sympy.Mul(*transformed)
        if rule == "product":  # "swapped": multiplied, as the sum rule does
            return sympy.Mul(*transformed) if swapped else sympy.Add(*transformed)
        if rule == "scale":
            coefficient = expr.as_coeff_Mul()[0]
            return coefficient * transformed[0] if swapped else transformed[0] ** coefficient
        # nest: q(g) + T(g); "inside_out" feeds T(g) to q, "swapped" multiplies.
        inner = transformed[0] if mistake == "inside_out" else kids[0]
        outer = self._partner_applied(expr, inner)
        return outer * transformed[0] if swapped else outer + transformed[0]

    def renamed(self, expr: sympy.Expr) -> sympy.Expr:
        """`expr` with every function swapped for its table partner (arguments included)."""
        return expr.replace(lambda e: isinstance(e, AppliedUndef), lambda e: self._partner_applied(e, *e.args))

    def derivative(self, expr: sympy.Expr) -> sympy.Expr:
        """The real derivative's rules with this table: linear, Leibniz over products, the
        chain rule for nests (p(g))' = q(g) * g', with p(x)' = q(x)."""
        rule = rule_of(expr)
        kids = children(expr)
        if rule == "table":
            return self._partner_applied(expr, X)
        if rule == "sum":
            return sympy.Add(*(self.derivative(kid) for kid in kids))
        if rule == "product":
            return sympy.Add(
                *(
                    self.derivative(kid) * sympy.Mul(*(k for j, k in enumerate(kids) if j != i))
                    for i, kid in enumerate(kids)
                )
            )
        if rule == "scale":
            return expr.as_coeff_Mul()[0] * self.derivative(kids[0])
        return self._partner_applied(expr, kids[0]) * self.derivative(kids[0])

    def possible_mistakes(self, expr: sympy.Expr) -> list[tuple[tuple[int, ...], str]]:
        """Every (path, mistake) that `transform(expr, error=...)` accepts, pre-order."""
        found = []
        for path, node in nodes(expr):
            rule = rule_of(node)
            if path:
                found.append((path, "skipped"))
            if path and rule != "table":
                found.append((path, "table_only"))
            if rule != "table":
                found.append((path, "swapped"))
            if rule == "nest":
                found.append((path, "inside_out"))
        return found


def parse_expression(text: str, primitives: Iterable[str]) -> sympy.Expr | None:
    """`text` as an expression in x and the given primitives, or None if it is not one.

    Only x, the primitives, whole numbers up to MAX_NUMBER, + - * ** ^ and parentheses are
    accepted, checked *before* sympy sees the text (sympy's parser evaluates Python code).
    Never raises on bad input.
    """
    text = text.strip()
    if not text or len(text) > MAX_ANSWER_CHARS or not _ANSWER_CHARACTERS.match(text):
        return None
    functions = {name: sympy.Function(name) for name in primitives}
    if any(name != str(X) and name not in functions for name in _NAME.findall(text)):
        return None
    if any(int(number) > MAX_NUMBER for number in _NUMBER.findall(text)):
        return None
    if len(_POWER.findall(text)) != len(_POWER_OPERATOR.findall(text)):
        return None
    from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations

    try:
        expr = parse_expr(
            text,
            local_dict={str(X): X, **functions},
            global_dict={"Integer": sympy.Integer, "Symbol": sympy.Symbol, "__builtins__": {}},
            transformations=standard_transformations + (convert_xor,),
        )
        if not isinstance(expr, sympy.Expr):
            return None
        for node in sympy.preorder_traversal(expr):
            if isinstance(node, AppliedUndef) and len(node.args) != 1:
                return None  # zib(x, x)
            if node.is_Pow and not (node.exp.is_Integer and 0 < node.exp <= MAX_EXPONENT):
                return None
    except Exception:  # noqa: BLE001 - whatever the parser or sympy raise, the text is not an answer
        return None
    return expr if _expanded_terms_bound(expr) <= MAX_EXPANDED_TERMS else None


def _expanded_terms_bound(expr: sympy.Expr) -> int:
    """An upper bound on the terms of expand(expr), plus those of every function argument:
    what `canonical` would build. Computed without expanding."""
    if expr.is_Add:
        return sum(_expanded_terms_bound(a) for a in expr.args)
    if expr.is_Mul:
        product = 1
        for a in expr.args:
            product *= _expanded_terms_bound(a)
        return product
    if expr.is_Pow:
        return _expanded_terms_bound(expr.base) ** int(expr.exp)
    return 1 + sum(_expanded_terms_bound(a) for a in expr.args if not a.is_Atom)
