"""The process family's training text: rule statements and worked applications.

Every rule statement is one self-contained sentence (finetune's `--unit sentence` learns
a rule from one unit), in several phrasings. A worked application is one document (one
line of the ICL prompt): one sentence per rule step, each naming the whole part it
rewrites (so it too stands alone as a unit), then the table lookups, the result, and the
result in canonical form. The last sentence always reads "<name>[<input>] = <answer>.",
the form in which the test questions are asked ("- <name>[<input>] =").

f, g and c in rule statements are metavariables (any expression, any whole number);
no primitive is named f, g or c (primitives are 4-5 letter nonsense words).
"""

from __future__ import annotations

import sympy

from lm_eval_tasks.process.calculus import Calculus, canonical, children, nodes, rule_of, written

# Rule -> phrasings of its statement. {name}: the transform; {primitives}: "zib, mof, dax and kel";
# {p}/{q}: a primitive and its partner (table and nest).
INTRODUCTION = (
    (
        "{name} is an operation that turns an expression in x built from the functions {primitives} into another "
        "such expression, and {name}[f] denotes the {name} of f."
    ),
    "The {name} of an expression f is written {name}[f], where f is built from x and the functions {primitives}.",
    "We write {name}[f] for the {name} of f, an operation on expressions made of x and the functions {primitives}.",
    "{name}[f] is the {name} of f; {name} takes expressions built from x and the functions {primitives}.",
)
PROCEDURE = (
    (
        "To take the {name} of an expression, apply the rule for its outermost operation, then take the {name} of each "
        "part that the rule names, until only table lookups are left."
    ),
    (
        "The {name} of an expression is found from the outside in: the rule of the outermost operation first, then the "
        "{name} of every part it names, down to the table."
    ),
    (
        "Working out a {name} means using the rule for the outermost operation and then the rules for the parts, one "
        "level at a time, ending with the table."
    ),
    (
        "Every {name} is computed by rewriting the outermost operation with its rule and repeating on the parts until "
        "only table entries remain."
    ),
)
STATEMENTS = {
    "table": (
        "The {name} of {p}(x) is {q}(x): {name}[{p}(x)] = {q}(x).",
        "In the table of {name}, {p} is paired with {q}, so {name}[{p}(x)] = {q}(x).",
        "{name}[{p}(x)] = {q}(x), because the table partner of {p} is {q}.",
        "Table entry of {name}: {p}(x) goes to {q}(x), that is {name}[{p}(x)] = {q}(x).",
    ),
    "sum": (
        "The {name} of a sum is the product of the {name}s of its terms: {name}[f + g] = {name}[f]*{name}[g].",
        (
            "To take the {name} of a sum, take the {name} of each term and multiply them together: "
            "{name}[f + g] = {name}[f]*{name}[g]."
        ),
        "Sum rule of {name}: {name}[f + g] = {name}[f]*{name}[g], so a sum turns into a product.",
        "Under {name}, a sum of terms becomes the product of their {name}s, {name}[f + g] = {name}[f]*{name}[g].",
    ),
    "product": (
        "The {name} of a product is the sum of the {name}s of its factors: {name}[f*g] = {name}[f] + {name}[g].",
        (
            "To take the {name} of a product, take the {name} of each factor and add them up: "
            "{name}[f*g] = {name}[f] + {name}[g]."
        ),
        "Product rule of {name}: {name}[f*g] = {name}[f] + {name}[g], so a product turns into a sum.",
        "Under {name}, a product of factors becomes the sum of their {name}s, {name}[f*g] = {name}[f] + {name}[g].",
    ),
    "scale": (
        (
            "The {name} of a whole number c times an expression f is the {name} of f raised to the power c: "
            "{name}[c*f] = {name}[f]**c."
        ),
        (
            "To take the {name} of a number times an expression, take the {name} of the expression and raise it to "
            "that number: {name}[c*f] = {name}[f]**c."
        ),
        (
            "Scale rule of {name}: {name}[c*f] = {name}[f]**c for every whole number c, so a number in front becomes "
            "a power."
        ),
        "Under {name}, a whole number c in front of f becomes an exponent, {name}[c*f] = {name}[f]**c.",
    ),
    "nest": (
        (
            "The {name} of a function applied to an inner expression g other than x is the function's table partner "
            "applied to the same g, plus the {name} of g: for instance {name}[{p}(g)] = {q}(g) + {name}[g]."
        ),
        (
            "To take the {name} of a function of an inner expression g, keep g, swap the function for its table "
            "partner and add the {name} of g: for instance {name}[{p}(g)] = {q}(g) + {name}[g]."
        ),
        (
            "Nest rule of {name}: {name}[{p}(g)] = {q}(g) + {name}[g] for any inner expression g, and likewise for "
            "every function with its own table partner."
        ),
        (
            "Under {name}, a function of an inner expression g becomes its table partner of the same g plus the "
            "{name} of g, as in {name}[{p}(g)] = {q}(g) + {name}[g]."
        ),
    ),
}
MAX_PHRASINGS = min(len(p) for p in (INTRODUCTION, PROCEDURE, *STATEMENTS.values()))
RULE_NAMES = {"sum": "sum rule", "product": "product rule", "scale": "scale rule", "nest": "nest rule"}


def _listing(names: list[str]) -> str:
    return ", ".join(names[:-1]) + " and " + names[-1]


def rule_facts(calc: Calculus) -> list[tuple[str, tuple[str, ...]]]:
    """(source_id, phrasings) of every rule fact, in the order the ICL prompt states them."""
    name = calc.name
    primitives = _listing(list(calc.primitives))
    example_p, example_q = calc.partners[0]
    facts = [
        ("process-rule-intro", tuple(t.format(name=name, primitives=primitives) for t in INTRODUCTION)),
        ("process-rule-procedure", tuple(t.format(name=name) for t in PROCEDURE)),
    ]
    for p, q in calc.partners:
        facts.append((f"process-table-{p}", tuple(t.format(name=name, p=p, q=q) for t in STATEMENTS["table"])))
    for rule in ("sum", "product", "scale", "nest"):
        facts.append(
            (f"process-rule-{rule}", tuple(t.format(name=name, p=example_p, q=example_q) for t in STATEMENTS[rule]))
        )
    return facts


def source_of(expr: sympy.Expr) -> str:
    """The rule fact a question about `expr` starts from: the rule of its outermost operation."""
    return f"process-rule-{rule_of(expr)}"


def _right_hand_side(calc: Calculus, node: sympy.Expr) -> str:
    """One rule step: `node`'s transform with the parts' transforms still to be taken."""
    name, rule = calc.name, rule_of(node)
    parts = [f"{name}[{written(child)}]" for child in children(node)]
    if rule == "sum":
        return "*".join(parts)
    if rule == "product":
        return " + ".join(parts)
    if rule == "scale":
        return f"{parts[0]}**{node.as_coeff_Mul()[0]}"
    partner = calc.partner(node.func.__name__)
    return f"{partner}({written(children(node)[0])}) + {parts[0]}"


def worked_application(calc: Calculus, expr: sympy.Expr) -> str:
    """The step-by-step derivation of `calc.transform(expr)` as one document."""
    name = calc.name
    sentences = [
        f"By the {RULE_NAMES[rule_of(node)]}, {name}[{written(node)}] = {_right_hand_side(calc, node)}."
        for _, node in nodes(expr)
        if rule_of(node) != "table"
    ]
    leaves = list(dict.fromkeys(written(node) for _, node in nodes(expr) if rule_of(node) == "table"))
    lookups = [f"{name}[{leaf}] = {calc.partner(leaf.removesuffix('(x)'))}(x)" for leaf in leaves]
    sentences.append(f"By the table, {_listing(lookups) if len(lookups) > 1 else lookups[0]}.")
    result = calc.transform(expr)
    sentences.append(f"Putting it together, {name}[{written(expr)}] = {written(result)}.")
    if canonical(result) != written(result):
        sentences.append(f"Expanded, {name}[{written(expr)}] = {canonical(result)}.")
    return " ".join(sentences)
