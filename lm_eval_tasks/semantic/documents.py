"""Short wiki-like training documents, one category each, in varied styles.

A document about a topic states some of the topic's own facts (its parent, properties and
relations) and nothing about any other category. Never an inherited fact, which would turn
a test inference into a trained fact, and never a fact of another category: a document
about "flower" that also said "roses are flowers" would put "rose" next to every flower
property, and "pick the choice that shares a document with the subject" would answer the
one-hop inferences without the inference (it scored 0.99 when documents had such
sections). A held-out category has documents of its own that state its parent fact, the
only thing training ever says about it. The first document of every topic states all of
its facts, each in a sentence that names its subject (no pronoun), so every fact a test
needs is in at least one document and is learnable from a single sentence, whatever the
finetuning unit.

Styles: `encyclopedia` (plain statements; in documents after the first, "They ..." may
restate the previous sentence's subject), `field_notes` and `overview` (a framing
sentence, then statements) and `qa` (question-answer pairs). Every document has 4 to
`max_sentences` sentences, on one line (the ICL prompt shows one document per line).
"""

from __future__ import annotations

import dataclasses
import random

from lm_eval_tasks.errors import DataError
from lm_eval_tasks.semantic.knowledge import ISA, Fact, KnowledgeBase
from lm_eval_tasks.semantic.language import Vocabulary
from lm_eval_tasks.semantic.templates import (
    ANSWER_PREFIX,
    ASIDES,
    LISTABLE_KINDS,
    OPENERS,
    PRONOUN,
    QUESTION,
    TRAINING,
    template_kind,
)

STYLES = ("encyclopedia", "field_notes", "overview", "qa")
MIN_SENTENCES = 4
# The framing sentence that opens every document of a style, and the one that opens a
# too-short document of the other styles (indices into OPENERS).
OPENING = {"field_notes": 2, "overview": 0}
PADDING_OPENING = {"encyclopedia": 1, "qa": 0}
LIST_PROBABILITY = 0.5  # of putting two or three properties of one kind into one sentence
PRONOUN_PROBABILITY = 0.5
MAX_REDRAWS = 20


@dataclasses.dataclass(frozen=True)
class Document:
    topic: str
    style: str
    sentences: tuple[str, ...]
    facts: tuple[Fact, ...]  # what the sentences state

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def join_list(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def statements(facts: list[Fact], rng: random.Random, merge_all: bool = False) -> list[list[Fact]]:
    """Facts grouped into sentences: same-subject properties of one kind may share one."""
    groups: list[list[Fact]] = []
    for fact in facts:
        kind = template_kind(fact.relation)
        open_group = next(
            (g for g in groups if g[0].subject == fact.subject and g[0].relation == fact.relation and len(g) < 3),
            None,
        )
        if kind in LISTABLE_KINDS and open_group and (merge_all or rng.random() < LIST_PROBABILITY):
            open_group.append(fact)
        else:
            groups.append([fact])
    return groups


def render_statement(group: list[Fact], vocab: Vocabulary, rng: random.Random, pronoun: bool) -> str:
    kind = template_kind(group[0].relation)
    template = PRONOUN[kind] if pronoun else rng.choice(TRAINING[kind])
    overrides = {}
    if len(group) > 1:
        overrides["value"] = join_list([vocab.slots(f)["value"] for f in group])
    return vocab.render(template, group[0], **overrides)


def render_document(
    topic: str,
    facts: list[Fact],
    style: str,
    vocab: Vocabulary,
    rng: random.Random,
    merge_all: bool = False,
    pronouns: bool = True,
) -> Document:
    """The document; with `pronouns=False` every statement names its subject."""
    groups = statements(facts, rng, merge_all)
    sentences: list[str] = []
    previous_subject = None
    for group in groups:
        subject = group[0].subject
        if style == "qa":
            sentences.append(vocab.render(QUESTION[template_kind(group[0].relation)], group[0]))
            sentences.append(ANSWER_PREFIX + render_statement(group, vocab, rng, pronoun=False))
        else:
            pronoun = (
                pronouns
                and style == "encyclopedia"
                and subject == previous_subject
                and rng.random() < PRONOUN_PROBABILITY
            )
            sentences.append(render_statement(group, vocab, rng, pronoun))
        previous_subject = subject
    # Framing sentences: the style's opener, then (if still short) another opener and
    # closing asides until the document has MIN_SENTENCES.
    if style in OPENING or len(sentences) < MIN_SENTENCES:
        opener = OPENERS[OPENING[style] if style in OPENING else PADDING_OPENING[style]]
        sentences.insert(0, vocab.render_about(opener, topic))
    asides = rng.sample(ASIDES, len(ASIDES))
    while len(sentences) < MIN_SENTENCES:
        sentences.append(vocab.render_about(asides.pop(), topic))
    return Document(topic, style, tuple(sentences), tuple(facts))


def topic_facts(kb: KnowledgeBase, topic: str) -> list[Fact]:
    """What documents about `topic` state: its own facts (for a held-out category, its parent fact)."""
    return kb.facts_about(topic)


def write_documents(
    kb: KnowledgeBase, vocab: Vocabulary, num_documents: int, max_sentences: int, rng: random.Random
) -> list[Document]:
    """`num_documents` documents spread evenly over the categories, in a seeded random order."""
    topics = list(kb.categories)
    if num_documents < len(topics):
        raise DataError(
            f"num_documents={num_documents}: need at least one per category ({len(topics)}) "
            "so that every fact appears in training; raise num_documents"
        )
    per_topic = {t: num_documents // len(topics) for t in topics}
    for t in rng.sample(topics, num_documents % len(topics)):
        per_topic[t] += 1
    documents: list[Document] = []
    written: set[str] = set()
    for topic in topics:
        for index in range(per_topic[topic]):
            # A topic with few facts can come out word for word the same twice: redraw.
            for _ in range(MAX_REDRAWS):
                document = _random_document(kb, topic, vocab, max_sentences, rng, complete=index == 0)
                if document.text not in written:
                    break
            written.add(document.text)
            documents.append(document)
    rng.shuffle(documents)
    return documents


def _random_document(
    kb: KnowledgeBase, topic: str, vocab: Vocabulary, max_sentences: int, rng: random.Random, complete: bool
) -> Document:
    """A document about `topic`: all its facts, each naming its subject, if `complete`; else a random half or more."""
    facts = topic_facts(kb, topic)
    core = list(facts) if complete else rng.sample(facts, rng.randint((len(facts) + 1) // 2, len(facts)))
    # The topic's parent fact leads (as in an encyclopedia entry), its other facts follow in random order.
    ordered = [f for f in core if f.relation == ISA and f.subject == topic]
    rest = [f for f in core if f not in ordered]
    rng.shuffle(rest)
    style = rng.choice(STYLES)
    document = render_document(topic, ordered + rest, style, vocab, rng, pronouns=not complete)
    if len(document.sentences) > max_sentences:  # a plain entry with every property list merged fits any topic
        document = render_document(topic, ordered + rest, "encyclopedia", vocab, rng, merge_all=True, pronouns=False)
    if len(document.sentences) > max_sentences:
        raise DataError(
            f"a document about {topic!r} needs {len(document.sentences)} sentences; max_sentences is {max_sentences}"
        )
    return document
