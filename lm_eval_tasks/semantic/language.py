"""Nonsense words for every noun, adjective and verb of a knowledge base, and sentence rendering.

Each concept (a category, a property, a relation verb) gets one word from the shared
lexicon. English-like morphology is applied on top: plural nouns ("grud" -> "gruds",
"brax" -> "braxes") and past participles of relation verbs ("plonk" -> "plonked").
Property nouns of `has` are always plural ("Gruds have trolps.").

Templates are `str.format` strings over the slots of `Vocabulary.slots`:

    subject, subjects            the fact's subject, singular / plural
    value, values                isa and verb relations: the object category, singular / plural;
                                 is: the adjective; has: the part (plural); can: the verb
    verb, verbed                 verb relations: the verb and its past participle
"""

from __future__ import annotations

import dataclasses
import functools
import random
import re

from lm_eval_tasks.lexicon import sample_words
from lm_eval_tasks.semantic.knowledge import ISA, Fact, KnowledgeBase

CATEGORY = "category"
VERB = "verb"


def plural(word: str) -> str:
    return word + "es" if word.endswith(("s", "x", "z", "sh", "ch")) else word + "s"


def participle(word: str) -> str:
    return word + "d" if word.endswith("e") else word + "ed"


def capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Concept -> nonsense word. A concept is (kind, gloss), kind in category/is/has/can/verb."""

    words: dict[tuple[str, str], str]

    def word(self, kind: str, gloss: str) -> str:
        return self.words[(kind, gloss)]

    def noun(self, category: str, number: str = "singular") -> str:
        word = self.words[(CATEGORY, category)]
        return plural(word) if number == "plural" else word

    def slots(self, fact: Fact) -> dict[str, str]:
        slots = {"subject": self.noun(fact.subject), "subjects": self.noun(fact.subject, "plural")}
        if fact.value_is_category:
            slots.update(value=self.noun(fact.value), values=self.noun(fact.value, "plural"))
            if fact.relation != ISA:
                verb = self.word(VERB, fact.relation)
                slots.update(verb=verb, verbed=participle(verb))
        else:
            word = self.word(fact.relation, fact.value)
            slots["value"] = plural(word) if fact.relation == "has" else word
        return slots

    def render(self, template: str, fact: Fact, **overrides: str) -> str:
        """Fill `template` with the fact's words (or `overrides`); the result starts with a capital."""
        return capitalize(template.format(**{**self.slots(fact), **overrides}))

    def render_about(self, template: str, category: str) -> str:
        """Fill a template that only names a category ({subject}, {subjects})."""
        return capitalize(template.format(subject=self.noun(category), subjects=self.noun(category, "plural")))

    @functools.cached_property
    def surface_forms(self) -> dict[str, tuple[str, str]]:
        """Every inflected nonsense form -> its concept (a reverse index, for parsing and glosses)."""
        forms: dict[str, tuple[str, str]] = {}
        for concept, word in self.words.items():
            kind = concept[0]
            variants = {word}
            if kind in (CATEGORY, "has"):
                variants.add(plural(word))
            if kind == VERB:
                variants.add(participle(word))
            for form in variants:
                if form in forms:
                    raise ValueError(f"nonsense form {form!r} names both {forms[form]} and {concept}")
                forms[form] = concept
        return forms

    def gloss(self, text: str) -> str:
        """Debugging only: `text` with every nonsense word followed by its English gloss."""

        def replace(match: re.Match) -> str:
            concept = self.surface_forms.get(match.group(0).lower())
            return f"{match.group(0)}[{concept[1]}]" if concept else match.group(0)

        return re.sub(r"[A-Za-z]+", replace, text)


def inflections(kind: str, word: str) -> tuple[str, ...]:
    """Every form in which a word of this concept kind appears in the data."""
    if kind in (CATEGORY, "has"):
        return word, plural(word)
    if kind == VERB:
        return word, participle(word)
    return (word,)


def build_vocabulary(kb: KnowledgeBase, rng: random.Random) -> Vocabulary:
    """One distinct nonsense word per concept in play, drawn in a fixed concept order.

    Every inflected form is checked against English like the word itself (`sample_words`'s
    `forms`): "negu" is a fine word, but its plural "negus" is English."""
    concepts = [(CATEGORY, c) for c in kb.categories]
    for fact in kb.facts:
        if fact.relation == ISA:
            continue
        concept = (VERB, fact.relation) if fact.value_is_category else (fact.relation, fact.value)
        if concept not in concepts:
            concepts.append(concept)
    words = sample_words(len(concepts), rng, forms=lambda i, word: inflections(concepts[i][0], word))
    vocabulary = Vocabulary(dict(zip(concepts, words)))
    vocabulary.surface_forms  # noqa: B018 -- fail now if two inflected forms collide
    return vocabulary
