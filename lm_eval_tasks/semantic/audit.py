"""The semantic family's audit plug-in: a parser from text to facts, and the reasoner on what it parsed.

Sentences are parsed with regular expressions built from the template tables (never with
the generator's rendering code) and the instance's word list: a training sentence gives
the facts it states ("They ..." resolves to the subject of the previous statement of the
same document); a test row and a choice give the one statement they make together. What
follows from parsed facts is decided by `Reasoner`, the family's one definition of
entailment. tests/test_semantic_data.py proves the generated data with the same parser.
"""

from __future__ import annotations

import functools
import re
from typing import ClassVar

from lm_eval_tasks.audit.checker import FACT_AWARE, FamilyChecker, tokens
from lm_eval_tasks.semantic import templates as T
from lm_eval_tasks.semantic.knowledge import ISA, Fact
from lm_eval_tasks.semantic.language import Vocabulary, participle, plural
from lm_eval_tasks.semantic.reasoner import Reasoner

WORD = r"[a-z]+"
WORD_LIST = rf"{WORD}(?:, {WORD})*(?: and {WORD})?"
# Sentences of a document end at ". " or "? " before a capital letter.
SENTENCE = re.compile(r"(?<=[.?])\s+(?=[A-Z])")


@functools.cache
def template_regex(template: str) -> re.Pattern:
    """A template as a regex over a lower-cased first letter; each slot a named word group."""
    pattern = ""
    for part in re.split(r"(\{\w+\})", template[:1].lower() + template[1:]):
        if part.startswith("{"):
            pattern += f"(?P<{part[1:-1]}>{WORD_LIST if part == '{value}' else WORD})"
        else:
            pattern += re.escape(part)
    return re.compile(pattern + "$")


class Parser:
    """Sentences -> facts, through the template tables and the instance's word list."""

    def __init__(self, vocab: Vocabulary):
        self.concepts = {word: concept for concept, word in vocab.words.items()}
        self.singular = {plural(word): word for word in self.concepts}
        self.verb_of_participle = {participle(word): c for word, c in self.concepts.items() if c[0] == "verb"}

    def concept(self, word: str, kinds: tuple[str, ...], number: str | None = None) -> tuple[str, str] | None:
        base = self.singular.get(word) if number == "plural" else word
        concept = self.concepts.get(base)
        return concept if concept and concept[0] in kinds else None

    def _facts(self, kind: str, groups: dict[str, str], subject: str | None = None) -> list[Fact] | None:
        if subject is None:
            number = "plural" if "subjects" in groups else "singular"
            concept = self.concept(groups.get("subjects") or groups["subject"], ("category",), number)
            if concept is None:
                return None
            subject = concept[1]
        if kind in ("isa", "verb"):
            number = "plural" if "values" in groups else "singular"
            value = self.concept(groups.get("values") or groups["value"], ("category",), number)
            if value is None:
                return None
            relation = ISA
            if kind == "verb":
                if "verb" in groups:
                    concept = self.concept(groups["verb"], ("verb",))
                else:  # reverse test rows name the participle
                    concept = self.verb_of_participle.get(groups["verbed"])
                if concept is None:
                    return None
                relation = concept[1]
            return [Fact(subject, relation, value[1])]
        values = re.split(r", | and ", groups["value"])
        number = "plural" if kind == "has" else None
        concepts = [self.concept(v, (kind,), number) for v in values]
        if None in concepts:
            return None
        return [Fact(subject, kind, c[1]) for c in concepts]

    def readings(self, sentence: str, tables: dict[str, tuple[str, ...]], subject: str | None = None) -> list:
        found = []
        text = sentence[:1].lower() + sentence[1:]
        for kind, kind_templates in tables.items():
            for template in kind_templates:
                match = template_regex(template).match(text)
                if match:
                    facts = self._facts(kind, match.groupdict(), subject)
                    if facts is not None:
                        found.append(facts)
        return found

    @functools.lru_cache(maxsize=1 << 16)  # noqa: B019 -- one parser per audited instance
    def sentence(self, sentence: str, previous_subject: str | None) -> tuple[tuple[Fact, ...], set[str]]:
        """(facts the sentence states, categories it merely names), reading "They" as `previous_subject`."""
        body = sentence.removeprefix(T.ANSWER_PREFIX)
        readings = self.readings(body, T.TRAINING)
        pronoun = {k: (v,) for k, v in T.PRONOUN.items()}
        if previous_subject is not None:
            readings += self.readings(body, pronoun, previous_subject)
        elif self.readings(body, pronoun, subject="?"):  # "They ..." with nothing before it: states no fact
            return (), set()
        named: set[str] = set()
        if not readings:  # a question or a filler: it may only name a category
            for template in (*T.QUESTION.values(), *T.FILLER):
                match = template_regex(template).match(sentence[:1].lower() + sentence[1:])
                if match:
                    words = [w for k, w in match.groupdict().items() if k in ("subject", "subjects")]
                    number = "plural" if "subjects" in match.groupdict() else "singular"
                    concept = self.concept(words[0], ("category",), number)
                    if concept is not None:
                        named.add(concept[1])
                        readings.append([])
                        break
        if len(readings) != 1:
            raise ValueError(f"sentence {sentence!r} has {len(readings)} readings: {readings}")
        return tuple(readings[0]), named

    def document(self, text: str, previous_subject: str | None = None) -> list[tuple[str, tuple[Fact, ...], set[str]]]:
        """Each sentence with the facts it states and the categories it merely names."""
        parsed = []
        for sentence in SENTENCE.split(text):
            facts, named = self.sentence(sentence, previous_subject)
            if facts:
                previous_subject = facts[0].subject
            parsed.append((sentence, facts, named))
        return parsed

    def last_subject(self, text: str) -> str | None:
        subject = None
        for _, facts, _ in self.document(text) if text else ():
            subject = facts[0].subject if facts else subject
        return subject

    def test_statement(self, row: dict, choice: str) -> Fact:
        """The fact that `query choice` states, through the test templates."""
        text = f"{row['query']} {choice}"
        tables = T.TEST_FORWARD if row["direction"] == "forward" else T.TEST_REVERSE
        found = []
        for kind, phrasings in tables.items():
            for query, answer in phrasings:
                match = template_regex(f"{query} {answer}").match(text[:1].lower() + text[1:])
                if match:
                    facts = self._facts(kind, match.groupdict())
                    if facts:
                        found.append(facts[0])
        if len(set(found)) != 1:
            raise ValueError(f"{text!r} has readings {found}")
        return found[0]


def _template_words() -> frozenset[str]:
    texts = [
        *(t for ts in T.TRAINING.values() for t in ts),
        *T.PRONOUN.values(),
        *T.QUESTION.values(),
        *T.FILLER,
        T.ANSWER_PREFIX,
        *(
            q + " " + a
            for table in (T.TEST_FORWARD, T.TEST_REVERSE)
            for phrasings in table.values()
            for q, a in phrasings
        ),
    ]
    words = {t for text in texts for t in tokens(re.sub(r"\{\w+\}", " ", text)) if t.isalpha()}
    return frozenset(words | {"and"})  # "and" joins the values of a merged statement ("X are a, b and c")


class SemanticChecker(FamilyChecker):
    paper_sizes: ClassVar[dict[str, str]] = {
        "categories": "110 (after Rogers & McClelland)",
        "training documents": "2,200 (4-20 sentences)",
        "ICL context entries": "about 275 (documents subsampled 8x)",
    }
    template_words = _template_words()
    permitted: ClassVar[dict[str, dict[str, str]]] = {
        split: {
            FACT_AWARE: f"{split} asks a trained fact; its subject and answer share the sentence that states it, so "
            "heuristics that use their co-occurrence use the fact (the paper's design)"
        }
        for split in ("rephrase", "reversal")
    }

    def __init__(self, data):
        super().__init__(data)
        from lm_eval_tasks.semantic.generator import build_instance

        self.instance = build_instance(data.seed, **data.options)
        self.parser = Parser(self.instance.vocab)

    def facts_in(self, context: str, target: str) -> frozenset:
        parsed = self.parser.document(target, self.parser.last_subject(context))
        return frozenset(fact for _, facts, _ in parsed for fact in facts)

    @functools.lru_cache(maxsize=8)  # noqa: B019 -- one checker per audited instance
    def reasoner(self, facts: frozenset) -> Reasoner:
        return Reasoner(facts)

    def supported(self, facts: frozenset, split: str, row: dict) -> list[int]:
        reasoner = self.reasoner(facts)
        return [
            i for i, choice in enumerate(row["choices"]) if reasoner.entails(self.parser.test_statement(row, choice))
        ]

    def words(self, text: str) -> list[str]:
        """Concepts (not inflected forms) in order: "gruds" and "grud" are one word."""
        concepts = []
        for token in tokens(text):
            concept = self.instance.vocab.surface_forms.get(token)
            if concept is not None:
                concepts.append(f"{concept[0]}:{concept[1]}")
        return concepts

    def kind(self, split: str, row: dict):
        return row["relation"], row["hops"], row["grouped"]

    def sizes(self) -> dict[str, int]:
        kb = self.instance.kb
        return {"categories": len(kb.categories), "held-out categories": len(kb.holdouts), **super().sizes()}

    def lexicon_forms(self) -> list[str]:
        texts = [row["text"] for row in self.data.train]
        texts += [
            f"{row['query']} {choice}" for rows in self.data.tests.values() for row in rows for choice in row["choices"]
        ]
        return [t for text in texts for t in tokens(text) if t.isalpha() and t not in self.template_words]


def checker(data) -> SemanticChecker:
    return SemanticChecker(data)
