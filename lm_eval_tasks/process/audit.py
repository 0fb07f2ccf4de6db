"""The process family's audit plug-in: the calculus read back from the text, hulo computed from the rules as stated.

`facts_in` reads two kinds of fact from training text: table entries ("hulo[keku(x)] =
jeso(x)", wherever stated, in a rule sentence or a worked application's lookups) and rule
formulas ("hulo[f + g] = hulo[f]*hulo[g]"), parsed by sympy into a template (a sympy
expression, hashable like every fact) over the
metavariables f, g, c and, for the nest rule's instance "hulo[keku(g)] = jeso(g) + hulo[g]",
the applied function and its partner. `supported` evaluates the question's expression with
exactly those templates (a rule or table entry that is not among the facts: nothing follows)
and returns the choices equal to the result as functions (`sympy.expand` of the difference).
Nothing here calls the generator's calculus, its canonical form or its parser.

The family's own fact-blind strategies (`shortcuts.py`: nine surface features, each picked
highest, lowest, or avoided either way) run as extra heuristics against the same bound.
"""

from __future__ import annotations

import collections
import re
from typing import ClassVar

import sympy
from sympy.core.function import AppliedUndef

from lm_eval_tasks.audit.checker import FamilyChecker, Heuristic
from lm_eval_tasks.process import shortcuts

X = sympy.Symbol("x")
F, G, C = sympy.symbols("f g c")
# The transform still to be taken, and the nest rule's "partner of the applied function".
PENDING = sympy.Function("pending_transform")
PARTNER = sympy.Function("partner_of_applied")
APPLIED = sympy.Function("applied")
RULE_LHS = {F + G: "sum", F * G: "product", C * F: "scale"}
SENTENCE_END = re.compile(r"(?<=\.)\s+")
# "NAME[...] = ..." up to the sentence's end, a comma or " for ": the formula a sentence states.
FORMULA = re.compile(r"(\w+)\[([^\]]+)\] = (.+?)(?=,\s|\s+for\s|\s+and\s+\w+\[|\.?$)")
NAME = re.compile(r"^[A-Za-z]\w*$")
# The whole-number multiples a scale node may have, and the largest power a template may build.
MAX_FACTOR = 12


def _parse(text: str, name: str, functions: dict[str, sympy.FunctionClass]) -> sympy.Expr | None:
    """One side of a formula, `name[...]` read as a pending transform; None if it is not an expression."""
    from sympy.parsing.sympy_parser import parse_expr

    if not re.fullmatch(r"[\w\s()+*\[\]]+", text):
        return None
    local = {"x": X, "f": F, "g": G, "c": C, PENDING.__name__: PENDING, **functions}
    try:
        return parse_expr(text.replace(f"{name}[", f"{PENDING.__name__}(").replace("]", ")"), local_dict=local)
    except (SyntaxError, TypeError, ValueError, sympy.SympifyError):
        return None


class ProcessChecker(FamilyChecker):
    paper_sizes: ClassVar[dict[str, str]] = {
        "training documents": "not published (preliminary dataset)",
        "rule combinations": "some in training, others held out (no numbers published)",
    }

    def __init__(self, data):
        super().__init__(data)
        # The transform's name: the word every question applies ("hulo[...] =").
        self.name = collections.Counter(
            re.match(r"^(\w+)\[", row["query"]).group(1) for rows in data.tests.values() for row in rows
        ).most_common(1)[0][0]
        # The functions: every word applied to an argument in the questions and the training text.
        texts = [row["text"] for row in data.train] + [row["query"] for rows in data.tests.values() for row in rows]
        names = {m for text in texts for m in re.findall(r"\b([a-z]\w*)\(", text)}
        self.functions = {n: sympy.Function(n) for n in sorted(names)}
        self.template_words = frozenset({"x", "by", "the", "rule", "table", "and"})

    # -- the symbolic checker --------------------------------------------------------------

    def facts_in(self, context: str, target: str) -> frozenset:
        facts = set()
        for sentence in SENTENCE_END.split(target):
            for name, argument, right in FORMULA.findall(sentence.strip()):
                if name == self.name:
                    fact = self._fact(argument, right.strip())
                    if fact is not None:
                        facts.add(fact)
        return frozenset(facts)

    def _fact(self, argument: str, right: str):
        """("table", p, q), (rule, template) or None for a statement about a particular expression."""
        lhs = _parse(argument, self.name, self.functions)
        rhs = _parse(right, self.name, self.functions)
        if lhs is None or rhs is None:
            return None
        if isinstance(lhs, AppliedUndef) and lhs.args == (X,) and isinstance(rhs, AppliedUndef) and rhs.args == (X,):
            return ("table", lhs.func.__name__, rhs.func.__name__)
        if lhs in RULE_LHS and rhs.free_symbols <= {F, G, C}:
            return (RULE_LHS[lhs], rhs)
        if isinstance(lhs, AppliedUndef) and lhs.args == (G,) and rhs.free_symbols <= {G}:
            # The nest rule's instance: generalize its function to APPLIED and any other
            # function applied to g to PARTNER (the instance's partner, checked against the table later).
            applied = lhs.func
            others = {a.func for a in rhs.atoms(AppliedUndef) if a.func not in (PENDING, applied)}
            if len(others) != 1:
                return None
            (partner,) = others
            general = rhs.replace(partner, PARTNER).replace(applied, APPLIED)
            return ("nest", general, applied.__name__, partner.__name__)
        return None

    def supported(self, facts: frozenset, split: str, row: dict) -> list[int]:
        match = re.match(rf"^{self.name}\[(.+)\] =$", row["query"])
        expression = _parse(match.group(1), self.name, self.functions) if match else None
        result = self._transform(expression, facts) if expression is not None else None
        if result is None:
            return []
        supported = []
        for index, choice in enumerate(row["choices"]):
            parsed = _parse(choice.rstrip(". "), self.name, self.functions)
            if parsed is not None and sympy.expand(parsed - result) == 0:
                supported.append(index)
        return supported

    def _transform(self, expression: sympy.Expr, facts: frozenset) -> sympy.Expr | None:
        """hulo of `expression` by the stated rules; None if a rule or table entry it needs is not stated."""
        table = {fact[1]: fact[2] for fact in facts if fact[0] == "table"}
        rules = {fact[0]: fact[1] for fact in facts if fact[0] != "table"}
        nests = [fact for fact in facts if fact[0] == "nest"]
        # A nest instance is a general rule only if its partner is the table's for its function.
        if nests and not any(table.get(applied) == partner for _, _, applied, partner in nests):
            rules.pop("nest", None)

        def transform(node: sympy.Expr) -> sympy.Expr:
            if isinstance(node, AppliedUndef) and node.args == (X,):
                return self.functions[table[node.func.__name__]](X)
            if isinstance(node, AppliedUndef):
                (inner,) = node.args
                template = rules["nest"]
                partner = self.functions[table[node.func.__name__]]
                filled = template.xreplace({PENDING(G): transform(inner)})
                return filled.replace(PARTNER, partner).replace(APPLIED, node.func).xreplace({G: inner})
            coefficient, rest = node.as_coeff_Mul()
            if coefficient != 1:
                if not (coefficient.is_Integer and 1 < coefficient <= MAX_FACTOR):
                    raise KeyError("not a scale")
                return rules["scale"].xreplace({PENDING(F): transform(rest), F: rest, C: coefficient})
            if isinstance(node, (sympy.Add, sympy.Mul)):
                kind = "sum" if isinstance(node, sympy.Add) else "product"
                first, *others = node.args  # the rule is binary: f is one operand, g the rest
                rest = node.func(*others)
                # One simultaneous pass, top down: f inside "hulo[f]" is replaced with its node.
                return rules[kind].xreplace(
                    {PENDING(F): transform(first), PENDING(G): transform(rest), F: first, G: rest}
                )
            raise KeyError(f"no rule for {node}")

        try:
            return transform(expression)
        except KeyError:
            return None

    # -- the card --------------------------------------------------------------------------

    def kind(self, split: str, row: dict):
        """The rule the question starts from (the splits cycle through them item by item)."""
        return row["source_id"]

    def sizes(self) -> dict[str, int]:
        rows = [row for row in self.data.train if row["source_id"].startswith("process-worked-")]
        return {"rule facts": len(self.data.icl_facts) - len(rows), "worked applications": len(rows), **super().sizes()}

    def lexicon_forms(self) -> list[str]:
        return [self.name, *self.functions]

    def extra_heuristics(self) -> list[Heuristic]:
        """The family's nine surface features (shortcuts.py), each taken at its highest, its
        lowest, and avoided at either end (a uniform pick among the other choices)."""
        found = []
        for feature, (highest, lowest) in shortcuts.FEATURES.items():
            for name, sign, avoid in ((highest, 1, False), (lowest, -1, False)):
                found.append(Heuristic(f"process: {name}", True, _feature_score(feature, sign, avoid)))
                found.append(Heuristic(f"process: avoid_{name}", True, _feature_score(feature, sign, True)))
        return found


def _feature_score(feature: str, sign: int, avoid: bool):
    def score(row, corpus) -> list[float]:
        values = shortcuts.choice_features(row["query"], row["expression"], row["choices"], _counts(corpus))[feature]
        values = [sign * v for v in values]
        if avoid:  # every choice but the extreme one ties: a uniform pick among them
            best = max(values)
            return [0.0 if v < best else -1.0 for v in values]
        return values

    return score


def _counts(corpus) -> collections.Counter:
    cached = getattr(corpus, "_process_token_counts", None)
    if cached is None:
        cached = shortcuts.token_counts(corpus.texts)
        corpus._process_token_counts = cached
    return cached


def checker(data) -> ProcessChecker:
    return ProcessChecker(data)
