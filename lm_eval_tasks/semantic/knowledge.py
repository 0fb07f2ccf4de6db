"""The knowledge base: the real-world skeleton (skeleton.yml), cut to size, with held-out categories.

Facts are triples of English glosses; only `language.Vocabulary` turns them into nonsense
words. Relations:

- `isa`: category -> parent category ("robin isa songbird");
- `is` / `has` / `can`: category -> property gloss ("robin has a red breast");
- a verb of the skeleton's `relations` (hunt, eat, carry): category -> category.

A `KnowledgeBase` is one sized instance: the selected categories, the held-out ones and
the facts that training states. A held-out category contributes only its parent fact
(stated in documents of its own); its own properties and relations are not part of the
instance at all.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import random
from pathlib import Path

from lm_eval_tasks.errors import DataError

# Why .yml: lm-eval's TaskIndex parses every `**/*.yaml` under the task directory as a
# task config on each index build; it never reads `.yml`.
SKELETON_PATH = Path(__file__).with_name("skeleton.yml")

ISA = "isa"
PROPERTY_RELATIONS = ("is", "has", "can")
RESERVED_RELATIONS = (ISA, *PROPERTY_RELATIONS)
MIN_PROPERTIES, MAX_PROPERTIES = 1, 6
MIN_CATEGORIES = 4  # a parent, two children and a root at least


@dataclasses.dataclass(frozen=True, order=True)
class Fact:
    subject: str
    relation: str
    value: str

    @property
    def value_is_category(self) -> bool:
        """True for isa and verb relations (the value is a category), False for properties."""
        return self.relation not in PROPERTY_RELATIONS

    def __str__(self) -> str:
        return f"{self.subject} {self.relation} {self.value}"


@dataclasses.dataclass(frozen=True)
class Skeleton:
    """The whole reviewable taxonomy, validated."""

    parents: dict[str, str | None]  # every category in file order -> its parent (None: a root)
    plurals: dict[str, str]  # English plurals, for glosses only
    own_facts: dict[str, tuple[Fact, ...]]  # category -> its own properties and relations (no isa)

    def ancestors(self, category: str) -> list[str]:
        chain, parent = [], self.parents[category]
        while parent is not None:
            chain.append(parent)
            parent = self.parents[parent]
        return chain

    def plural(self, category: str) -> str:
        """The English plural (glosses only): irregular ones come from the skeleton."""
        if category in self.plurals:
            return self.plurals[category]
        if category.endswith(("s", "x", "z", "sh", "ch")):
            return category + "es"
        if category.endswith("y") and category[-2:-1] not in "aeiou":
            return category[:-1] + "ies"
        return category + "s"


class SkeletonError(DataError):
    """skeleton.yml is malformed; the message names the entry."""


@functools.cache
def load_skeleton(path: Path = SKELETON_PATH) -> Skeleton:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SkeletonError(f"cannot read the semantic skeleton {path}: {err}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("categories"), dict):
        raise SkeletonError(f"{path}: expected a mapping with `categories` and `relations`")
    parents: dict[str, str | None] = {}
    plurals: dict[str, str] = {}
    own: dict[str, list[Fact]] = {}
    for name, entry in raw["categories"].items():
        entry = entry or {}
        if not isinstance(entry, dict) or set(entry) - {"parent", "plural", *PROPERTY_RELATIONS}:
            raise SkeletonError(
                f"{path}: category {name!r} must map to {{parent, plural, is, has, can}}; got {entry!r}"
            )
        parents[name] = entry.get("parent")
        if "plural" in entry:
            plurals[name] = entry["plural"]
        own[name] = []
        for relation in PROPERTY_RELATIONS:
            values = entry.get(relation, [])
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise SkeletonError(
                    f"{path}: category {name!r}: `{relation}` must be a list of glosses; got {values!r}"
                )
            own[name].extend(Fact(name, relation, value) for value in values)
        if not MIN_PROPERTIES <= len(own[name]) <= MAX_PROPERTIES:
            raise SkeletonError(
                f"{path}: category {name!r} has {len(own[name])} properties; give it {MIN_PROPERTIES}-{MAX_PROPERTIES}"
            )
    for name, parent in parents.items():
        if parent is not None and parent not in parents:
            raise SkeletonError(f"{path}: category {name!r} has unknown parent {parent!r}")
        seen, walker = {name}, parent
        while walker is not None:  # before anything calls Skeleton.ancestors, which assumes a tree
            if walker in seen:
                raise SkeletonError(f"{path}: category {name!r} is its own ancestor")
            seen.add(walker)
            walker = parents[walker]
    relations = raw.get("relations") or {}
    if not isinstance(relations, dict):
        raise SkeletonError(f"{path}: `relations` must map verbs to [[subject, object], ...]")
    for verb, pairs in relations.items():
        if verb in RESERVED_RELATIONS:
            raise SkeletonError(f"{path}: relation name {verb!r} is reserved; rename it")
        for pair in pairs if isinstance(pairs, list) else [pairs]:
            if not (isinstance(pair, list) and len(pair) == 2 and all(p in parents for p in pair)):
                raise SkeletonError(f"{path}: relation {verb} {pair!r} must be [subject, object] of known categories")
            own[pair[0]].append(Fact(pair[0], verb, pair[1]))
    skeleton = Skeleton(parents, plurals, {name: tuple(facts) for name, facts in own.items()})
    for name in parents:
        inherited = {(f.relation, f.value) for a in skeleton.ancestors(name) for f in skeleton.own_facts[a]}
        for fact in skeleton.own_facts[name]:
            if (fact.relation, fact.value) in inherited:
                # It would be a trained fact that is also derivable: neither a clean
                # rephrase item nor a clean inference item.
                raise SkeletonError(f"{path}: {name!r} repeats the inherited property {fact.relation} {fact.value!r}")
    return skeleton


@dataclasses.dataclass(frozen=True)
class KnowledgeBase:
    """One instance: the categories in play and every fact the training documents state."""

    skeleton: Skeleton
    categories: tuple[str, ...]  # skeleton order
    holdouts: tuple[str, ...]  # held out: only their parent fact is trained
    facts: tuple[Fact, ...]  # every trained fact, isa facts of held-out categories included

    def parent(self, category: str) -> str | None:
        return self.skeleton.parents[category]

    def source_id(self, category: str) -> str:
        """The `source_id` of the documents that state `category`'s trained facts.

        A category is named by its position in the instance (never by its gloss). A
        held-out category's documents state its parent fact only.
        """
        return f"semantic-category-{self.categories.index(category):03d}"

    def facts_about(self, category: str) -> list[Fact]:
        return [f for f in self.facts if f.subject == category]


def select_categories(skeleton: Skeleton, num_categories: int, rng: random.Random) -> list[str]:
    """A seeded ancestor-closed subset of at most `num_categories` categories.

    It is built from sibling families: a random parent category, its ancestors and 2-4
    of its children at a time. Growing from families (rather than from the roots) keeps
    the hierarchy deep, so that 2-3-hop deductions exist at every size, and gives every
    chosen parent siblings to compare and to hold out.
    """
    if not MIN_CATEGORIES <= num_categories <= len(skeleton.parents):
        raise DataError(
            f"num_categories={num_categories}: must be between {MIN_CATEGORIES} and {len(skeleton.parents)}"
        )
    children: dict[str, list[str]] = {}
    for category, parent in skeleton.parents.items():
        if parent is not None:
            children.setdefault(parent, []).append(category)
    # Families are visited round-robin over the roots, so that even a small selection
    # mixes animals, plants, vehicles and objects: the distractors of one branch are the
    # true properties of another. Passes repeat until the size is reached or nothing fits.
    by_root: dict[str, list[str]] = {}
    for parent in sorted(children):
        by_root.setdefault(([parent, *skeleton.ancestors(parent)])[-1], []).append(parent)
    for families in by_root.values():
        rng.shuffle(families)
        # Families below the root first: their children are 2-3 levels deep, which the
        # 2-3-hop deductions need in every branch.
        families.sort(key=lambda parent: skeleton.parents[parent] is None)
    roots = sorted(by_root)
    rng.shuffle(roots)
    order = [f for turn in itertools.zip_longest(*(by_root[r] for r in roots)) for f in turn if f is not None]
    chosen: set[str] = set()
    grown = True
    while grown and len(chosen) < num_categories:
        grown = False
        for parent in order:
            lineage = {parent, *skeleton.ancestors(parent)} - chosen
            candidates = [c for c in children[parent] if c not in chosen]
            rng.shuffle(candidates)
            room = num_categories - len(chosen) - len(lineage)
            take = min(len(candidates), room, rng.randint(2, 4))
            # A new family needs two children (siblings); a known one may grow by one.
            if take >= (1 if parent in chosen else 2):
                chosen |= lineage | set(candidates[:take])
                grown = True
    return [c for c in skeleton.parents if c in chosen]


def choose_holdouts(
    skeleton: Skeleton,
    categories: list[str],
    num_holdout: int,
    rng: random.Random,
    excluded: frozenset[str] = frozenset(),
) -> list[str]:
    """Leaves whose parent keeps another child, never the object of a relation in play nor `excluded`.

    Round-robin over the roots, so that held-out categories come from different branches
    (the distractors of one are then the true properties of another).
    """
    chosen = set(categories)
    relation_objects = {f.value for c in categories for f in skeleton.own_facts[c] if f.value_is_category}
    child_count: dict[str, int] = {}
    for c in categories:
        if skeleton.parents[c] is not None:
            child_count[skeleton.parents[c]] = child_count.get(skeleton.parents[c], 0) + 1
    eligible = [
        c
        for c in categories
        if c not in child_count  # a leaf of the selection
        and skeleton.parents[c] is not None
        and child_count[skeleton.parents[c]] >= 2
        and c not in relation_objects
        and c not in excluded
    ]
    by_root: dict[str, list[str]] = {}
    for c in eligible:
        by_root.setdefault(skeleton.ancestors(c)[-1], []).append(c)
    for members in by_root.values():
        rng.shuffle(members)
    roots = sorted(by_root)
    rng.shuffle(roots)
    picked: list[str] = []
    parents_used: set[str] = set()
    while len(picked) < num_holdout and any(by_root.values()):
        for root in roots:
            # At most one held-out child per parent, so every parent keeps a trained child.
            while by_root[root] and skeleton.parents[by_root[root][-1]] in parents_used:
                by_root[root].pop()
            if by_root[root] and len(picked) < num_holdout:
                holdout = by_root[root].pop()
                picked.append(holdout)
                parents_used.add(skeleton.parents[holdout])
    if len(picked) < num_holdout:
        raise DataError(
            f"num_holdout={num_holdout}: only {len(picked)} categories of this selection can be held out "
            "(leaves with a sibling, one per parent, not the object of a relation, every inference askable); "
            "lower num_holdout or raise num_categories"
        )
    assert set(picked) <= chosen
    return [c for c in categories if c in picked]


def knowledge_base(skeleton: Skeleton, categories: list[str], holdouts: list[str]) -> KnowledgeBase:
    """The instance: isa facts of every non-root category, own facts of the documented ones."""
    in_play = set(categories)
    facts = [Fact(c, ISA, skeleton.parents[c]) for c in categories if skeleton.parents[c] is not None]
    for c in categories:
        if c in holdouts:
            continue
        facts.extend(f for f in skeleton.own_facts[c] if not f.value_is_category or f.value in in_play)
    return KnowledgeBase(skeleton, tuple(categories), tuple(holdouts), tuple(facts))
