"""Process knowledge (Lampinen et al. 2025, dataset 5): a made-up calculus with held-out rule combinations.

A transform with a nonsense name ("hulo") rewrites expressions built from five nonsense
functions ("keku(x)") by sums, products, whole-number multiples and nesting, with rules
unlike calculus (calculus.py). Training states the rules and works some expressions
out step by step (documents.py); the tests ask for the transform of new expressions:

- `seen`: depth 3, every parent-child rule pair ("combination") occurs in a worked example;
- `heldout`: depth 3, with one pair no training document ever uses (HELDOUT_PAIRS):
  the compositional test;
- `deep`: depth 4, one level deeper than any worked example, trained pairs only.

Each item is a forced choice among 4 results, scored by log-likelihood: the correct one,
the real derivative's (same table), one with a rule applied to the wrong part or in the
wrong order, and a partial application (one part's transform never taken). Every
distractor differs from the answer as a function (sympy). Positions are counterbalanced
and the items are chosen so that no surface feature of the choices (length, terms,
likeness to the input, familiarity of tokens) predicts the answer (shortcuts.py).

Sizes: `preset` "small" (the CPU study; an ICL prompt of about 3k SmolLM2 tokens) or
"paper" (under 7k); explicit options override, 0 meaning the preset's value.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import random
from collections.abc import Iterable

import sympy

from lm_eval_tasks.lexicon import sample_words
from lm_eval_tasks.process import shortcuts
from lm_eval_tasks.process.calculus import (
    COMBINATORS,
    PARTIAL_MISTAKES,
    POSSIBLE_PAIRS,
    SCALE_FACTORS,
    Calculus,
    canonical,
    children,
    combinations,
    rule_of,
    written,
)
from lm_eval_tasks.process.documents import MAX_PHRASINGS, rule_facts, source_of, worked_application
from lm_eval_tasks.spec import FamilyData

VERSION = "1.0"

NUM_PRIMITIVES = 5
# The compositional split. Each held-out pair leaves both of its rules trained in other
# pairs: products are trained over leaves and nests (not sums), sums contain products
# (but never a product a sum), nests contain sums, nests and scales (not products), and
# scales occur inside nests (never inside sums).
HELDOUT_PAIRS = ("product>sum", "nest>product", "sum>scale")
TRAINED_PAIRS = tuple(p for p in POSSIBLE_PAIRS if p not in HELDOUT_PAIRS)
# At depth 3 a held-out pair's parent is always the root, so item k of every split has
# the root rule of HELDOUT_PAIRS[k % 3]: seen, heldout and deep items start with the same rules.
ROOT_CYCLE = tuple(pair.split(">")[0] for pair in HELDOUT_PAIRS)
SPLITS = {"seen": 3, "heldout": 3, "deep": 4}  # split -> depth of its expressions
CHOICE_KINDS = ("correct", "derivative", "misapplied", "partial")
# Longest choice and input (characters): longer results would test copying long strings.
# Every depth-3 expression is shorter than MAX_INPUT_CHARS; it limits the deep items.
MAX_CHOICE_CHARS = 130
MAX_INPUT_CHARS = 60
# Longest worked application (characters, about 2 per SmolLM2 token), so that the small
# preset's ICL prompt stays near 3k SmolLM2 tokens.
MAX_WORKED_CHARS = 420
# Share of worked applications of depth 2 (the rest have depth 3), beyond the coverage ones.
DEPTH_2_SHARE = 0.25
# Candidate expressions drawn per test item; the generator keeps the one whose choices keep
# the split's surface features most balanced.
CANDIDATES_PER_ITEM = 4
MISTAKES_PER_KIND = 3  # mistakes of each kind tried per candidate (each costs a sympy expand)
# The surface model is the best proxy found for what a language model without the rules
# picks (shortcuts.SURFACE_MODEL); the number of terms is the hardest feature to balance (a
# nest's answer q(g) + T(g) has one more term than its chain-rule look-alikes q(g)*...).
# Their imbalance costs more.
FEATURE_WEIGHTS = {"surface_model": 4.0, "terms": 2.0}
MAX_DRAWS = 5000  # random depth-4 draws per deep item before giving up


@dataclasses.dataclass(frozen=True)
class Preset:
    num_worked: int  # worked applications in training (>= one per trained pair)
    num_test: int  # items per test split (a multiple of 4 * len(HELDOUT_PAIRS))
    num_oracle: int  # extra worked applications for the oracle control
    rule_phrasings: int  # training sentences per rule fact


PRESETS = {
    "small": Preset(num_worked=16, num_test=24, num_oracle=32, rule_phrasings=3),
    # 40 worked applications keep the ICL prompt under 8k tokens (SmolLM2's context).
    "paper": Preset(num_worked=40, num_test=96, num_oracle=120, rule_phrasings=4),
}


@dataclasses.dataclass(frozen=True)
class Entry:
    """An expression with what the splits select on."""

    expr: sympy.Expr
    pairs: frozenset[str]
    root: str

    @functools.cached_property
    def text(self) -> str:
        """As written in a question."""
        return written(self.expr)


def _entry(expr: sympy.Expr) -> Entry:
    return Entry(expr, combinations(expr), rule_of(expr))


def make_calculus(rng: random.Random) -> Calculus:
    name, *primitives = sample_words(1 + NUM_PRIMITIVES, rng)
    while True:  # a random derangement: no primitive is its own partner
        partners = list(primitives)
        rng.shuffle(partners)
        if all(p != q for p, q in zip(primitives, partners)):
            return Calculus(name=name, partners=tuple(zip(primitives, partners)))


def _combine(calc: Calculus, rule: str, operands: tuple[sympy.Expr, ...], head: str | int = "") -> sympy.Expr | None:
    """The node `rule` over `operands` (head: the nest's primitive or the scale's factor),
    or None if sympy's normal form would not keep exactly this tree (f + f -> 2*f,
    f*f -> f**2, f*(2*g) -> 2*f*g): the tree as built must be the tree as written."""
    if rule == "nest":
        expr = calc.leaf(head, operands[0])
    elif rule == "scale":
        expr = head * operands[0]
    else:
        expr = (sympy.Add if rule == "sum" else sympy.Mul)(*operands)
    try:
        kept = rule_of(expr) == rule and collections.Counter(children(expr)) == collections.Counter(operands)
    except ValueError:  # left the calculus (a power)
        return None
    return expr if kept else None


def _nodes_over(calc: Calculus, rule: str, layers: list[list[sympy.Expr]]) -> Iterable[sympy.Expr | None]:
    """Every node `rule` one level deeper than the last of `layers` (layers[d]: depth d + 1)."""
    deepest = layers[-1]
    if rule in ("nest", "scale"):
        for head in calc.primitives if rule == "nest" else SCALE_FACTORS:
            for operand in deepest:
                yield _combine(calc, rule, (operand,), head)
        return
    shallower = [e for layer in layers[:-1] for e in layer]
    for i, first in enumerate(deepest):
        for second in deepest[i + 1 :] + shallower:
            yield _combine(calc, rule, (first, second))


@functools.cache
def expression_pool(calc: Calculus) -> tuple[tuple[Entry, ...], ...]:
    """Every expression of depth 1, 2 and 3 (index depth - 1), sums and products of two
    operands, in a fixed order (seeded draws from it are reproducible). About 2,400 with
    5 primitives, built once per calculus; none is longer than MAX_INPUT_CHARS."""
    layers = [[calc.leaf(p) for p in calc.primitives]]
    for _ in (2, 3):
        layers.append([node for rule in COMBINATORS for node in _nodes_over(calc, rule, layers) if node is not None])
    return tuple(tuple(_entry(e) for e in layer) for layer in layers)


def deep_expression(calc: Calculus, rng: random.Random, root: str) -> Entry | None:
    """A random expression of depth 4 with root rule `root`: a node over a depth-3 expression
    (and, for sums and products, any shallower or equally deep one); None if the draw fails."""
    pool = expression_pool(calc)
    operand = rng.choice(pool[2]).expr
    if root == "nest":
        expr = _combine(calc, root, (operand,), rng.choice(calc.primitives))
    elif root == "scale":
        expr = _combine(calc, root, (operand,), rng.choice(SCALE_FACTORS))
    else:
        expr = _combine(calc, root, (operand, rng.choice(rng.choice(pool)).expr))
    if expr is None or len(written(expr)) > MAX_INPUT_CHARS:
        return None
    # Read back, "2*(f + g)*h" is (2*f + 2*g)*h, not the scale of a product drawn here:
    # keep only expressions whose written form means the drawn tree (depth 3 always does).
    if calc.parse(written(expr)) != expr:
        return None
    return _entry(expr)


def choice_sets(calc: Calculus, expr: sympy.Expr, rng: random.Random) -> list[dict[str, tuple[str, str]]]:
    """Admissible {kind: (result, how it was made)} sets for `expr`, one per (misapplied,
    partial) mistake pair (at most MISTAKES_PER_KIND random mistakes of each kind), whose four
    results are pairwise different functions (canonical strings) and short enough."""
    answer = canonical(calc.transform(expr))
    if len(answer) >= MAX_CHOICE_CHARS:
        return []
    derivative = canonical(calc.derivative(expr))
    if derivative == answer or len(derivative) >= MAX_CHOICE_CHARS:
        return []
    mistakes = calc.possible_mistakes(expr)
    rng.shuffle(mistakes)
    misapplied, partial = [], []
    for mistake in mistakes:
        found = partial if mistake[1] in PARTIAL_MISTAKES else misapplied
        if len(found) == MISTAKES_PER_KIND:
            continue
        text = canonical(calc.transform(expr, error=mistake))
        if text not in (answer, derivative, *(t for t, _ in found)) and len(text) < MAX_CHOICE_CHARS:
            found.append((text, mistake[1]))
    return [
        {"correct": (answer, "correct"), "derivative": (derivative, "derivative"), "misapplied": m, "partial": p}
        for m in misapplied
        for p in partial
        if m[0] != p[0]
    ]


class _Balancer:
    """Keeps the correct choice's rank under every surface feature uniform over a split, so
    that no fact-blind preference (longest, second longest, most like the input, ...) beats chance."""

    def __init__(self, name: str, counts):
        self.name = name
        self.counts = counts
        self.histograms = {feature: [0.0] * len(CHOICE_KINDS) for feature in shortcuts.FEATURES}
        self.items = 0

    def ranks(self, expression: str, kinds: dict[str, tuple[str, str]]) -> dict[str, list[float]]:
        choices = [kinds[kind][0] + "." for kind in CHOICE_KINDS]  # the correct choice first
        features = shortcuts.choice_features(f"{self.name}[{expression}] =", expression, choices, self.counts)
        return {f: shortcuts.correct_rank_distribution(scores, 0) for f, scores in features.items()}

    def cost(self, ranks: dict[str, list[float]]) -> float:
        target = (self.items + 1) / len(CHOICE_KINDS)
        return sum(
            FEATURE_WEIGHTS.get(f, 1.0) * (h[r] + ranks[f][r] - target) ** 2
            for f, h in self.histograms.items()
            for r in range(len(h))
        )

    def add(self, ranks: dict[str, list[float]]) -> None:
        for feature, histogram in self.histograms.items():
            for r, p in enumerate(ranks[feature]):
                histogram[r] += p
        self.items += 1


def _test_candidates(
    calc: Calculus, rng: random.Random, split: str, index: int, used: set[sympy.Expr]
) -> Iterable[Entry]:
    """Unused expressions that item `index` of `split` may ask about, in random order."""
    trained = frozenset(TRAINED_PAIRS)
    root = ROOT_CYCLE[index % len(ROOT_CYCLE)]
    if split == "deep":
        drawn = set(used)
        for _ in range(MAX_DRAWS):
            entry = deep_expression(calc, rng, root)
            if entry is not None and entry.expr not in drawn and entry.pairs <= trained:
                drawn.add(entry.expr)
                yield entry
        return
    required = HELDOUT_PAIRS[index % len(HELDOUT_PAIRS)] if split == "heldout" else None
    allowed = trained | {required} if required else trained
    eligible = [
        e
        for e in expression_pool(calc)[SPLITS[split] - 1]
        if e.root == root and e.expr not in used and e.pairs <= allowed and (required is None or required in e.pairs)
    ]
    rng.shuffle(eligible)
    yield from eligible


def build_split(
    calc: Calculus, rng: random.Random, split: str, num_items: int, used: set[sympy.Expr], counts
) -> list[dict]:
    """`num_items` counterbalanced items of `split`; their inputs are added to `used`."""
    balancer = _Balancer(calc.name, counts)
    chosen = []
    for index in range(num_items):
        best, candidates = None, 0
        for entry in _test_candidates(calc, rng, split, index, used):
            sets = choice_sets(calc, entry.expr, rng)
            for kinds in sets:
                ranks = balancer.ranks(entry.text, kinds)
                cost = balancer.cost(ranks)
                if best is None or cost < best[0]:
                    best = (cost, entry, kinds, ranks)
            candidates += bool(sets)
            if candidates == CANDIDATES_PER_ITEM:
                break
        if best is None:
            raise ValueError(
                f"split {split!r}: no unused expression left for item {index}; lower num_test (got {num_items})"
            )
        _, entry, kinds, ranks = best
        balancer.add(ranks)
        used.add(entry.expr)
        chosen.append((entry, kinds))

    # Counterbalanced positions: every run of len(CHOICE_KINDS) consecutive items holds the answer
    # once at each position (in a shuffled order), so any `--limit` prefix is balanced too.
    positions = []
    while len(positions) < num_items:
        block = list(range(len(CHOICE_KINDS)))
        rng.shuffle(block)
        positions += block
    positions = positions[:num_items]
    rows = []
    for index, ((entry, kinds), label) in enumerate(zip(chosen, positions)):
        order = list(CHOICE_KINDS[1:])
        rng.shuffle(order)
        order.insert(label, "correct")
        rows.append(
            {
                "id": f"process-{split}-{index:03d}",
                "source_id": source_of(entry.expr),
                "query": f"{calc.name}[{entry.text}] =",
                "choices": [kinds[kind][0] + "." for kind in order],
                "label": label,
                "answer": kinds["correct"][0],
                "expression": entry.text,
                "combinations": sorted(entry.pairs),
                "depth": SPLITS[split],
                "choice_kinds": order,
                # how each choice was made: correct, derivative, or the mistake (calculus.MISTAKES)
                "choice_mistakes": [kinds[kind][1] for kind in order],
                "primitives": list(calc.primitives),
            }
        )
    return rows


def worked_expressions(
    calc: Calculus, rng: random.Random, count: int, used: set[sympy.Expr], cover: bool
) -> list[Entry]:
    """`count` unused expressions of depth 2-3 with trained pairs only, to be worked out.
    With `cover`, the first ones use each trained pair in turn, so that the training
    documents show every trained pair."""
    trained = frozenset(TRAINED_PAIRS)
    pool = expression_pool(calc)
    needs = list(TRAINED_PAIRS) if cover else []
    rng.shuffle(needs)
    found = []
    while len(found) < count:
        need = needs[len(found)] if len(found) < len(needs) else None
        shallow = need.endswith(">table") if need else rng.random() < DEPTH_2_SHARE
        eligible = [
            e
            for e in (pool[1] if shallow else pool[2])
            if e.expr not in used and e.pairs <= trained and (need is None or need in e.pairs)
        ]
        rng.shuffle(eligible)
        entry = next((e for e in eligible if len(worked_application(calc, e.expr)) <= MAX_WORKED_CHARS), None)
        if entry is None and need and eligible:  # cover the pair even if every document is long
            entry = min(eligible, key=lambda e: len(e.text))
        if entry is None:
            raise ValueError(f"ran out of expressions to work out after {len(found)}; lower num_worked or num_oracle")
        used.add(entry.expr)
        found.append(entry)
    return found


def generate(
    seed: int = 0,
    preset: str = "small",
    num_worked: int = 0,
    num_test: int = 0,
    num_oracle: int = 0,
    rule_phrasings: int = 0,
) -> FamilyData:
    """One instance. Size options of 0 take the preset's value (see PRESETS)."""
    if preset not in PRESETS:
        raise ValueError(f"preset={preset!r}: choose one of {sorted(PRESETS)}")
    if min(num_worked, num_test, num_oracle, rule_phrasings) < 0:
        raise ValueError(
            "num_worked, num_test, num_oracle and rule_phrasings must be >= 0 (0 takes the preset's value)"
        )
    defaults = PRESETS[preset]
    sizes = {
        "num_worked": num_worked or defaults.num_worked,
        "num_test": num_test or defaults.num_test,
        "num_oracle": num_oracle or defaults.num_oracle,
        "rule_phrasings": rule_phrasings or defaults.rule_phrasings,
    }
    if sizes["num_worked"] < len(TRAINED_PAIRS):
        raise ValueError(
            f"num_worked={sizes['num_worked']}: must be at least {len(TRAINED_PAIRS)} (one per trained pair)"
        )
    unit = len(CHOICE_KINDS) * len(HELDOUT_PAIRS)
    if sizes["num_test"] % unit:
        raise ValueError(
            f"num_test={sizes['num_test']}: must be a multiple of {unit} (answer positions x held-out pairs)"
        )
    if not 1 <= sizes["rule_phrasings"] <= MAX_PHRASINGS:
        raise ValueError(f"rule_phrasings={sizes['rule_phrasings']}: must be between 1 and {MAX_PHRASINGS}")

    rng = random.Random(f"process-{seed}")
    calc = make_calculus(rng)
    used: set[sympy.Expr] = set()  # every input worked out or asked about, so far
    facts = rule_facts(calc)
    worked = worked_expressions(calc, rng, sizes["num_worked"], used, cover=True)
    rng.shuffle(worked)
    train = [
        {
            "id": f"{source_id}-train-{k}",
            "source_id": source_id,
            "kind": "rule",
            "text": text,
            "expression": "",
            "combinations": [],
        }
        for source_id, phrasings in facts
        for k, text in enumerate(phrasings[: sizes["rule_phrasings"]])
    ] + [
        {
            "id": f"process-worked-{i:03d}",
            "source_id": f"process-worked-{i:03d}",
            "kind": "worked",
            "text": worked_application(calc, entry.expr),
            "expression": entry.text,
            "combinations": sorted(entry.pairs),
        }
        for i, entry in enumerate(worked)
    ]
    # The ICL prompt: each rule fact once (its first phrasing), then every worked application.
    icl_facts = [phrasings[0] for _, phrasings in facts] + [row["text"] for row in train if row["kind"] == "worked"]

    counts = shortcuts.token_counts(row["text"] for row in train)
    tests = {split: build_split(calc, rng, split, sizes["num_test"], used, counts) for split in SPLITS}
    oracle = [
        {
            "id": f"process-oracle-{i:03d}",
            "source_id": source_of(entry.expr),
            "kind": "inference",
            "text": worked_application(calc, entry.expr),
            "expression": entry.text,
            "combinations": sorted(entry.pairs),
        }
        for i, entry in enumerate(worked_expressions(calc, rng, sizes["num_oracle"], used, cover=False))
    ]
    return FamilyData(
        family="process",
        version=VERSION,
        seed=seed,
        options={"preset": preset, **sizes},
        train=train,
        icl_facts=icl_facts,
        tests=tests,
        oracle=oracle,
    )


def calculus_of(seed: int) -> Calculus:
    """The calculus of the instance generated with `seed` (its first random draws)."""
    return make_calculus(random.Random(f"process-{seed}"))
