"""Every wording of the semantic benchmark, as data: training, test and oracle templates.

Slots are those of `language.Vocabulary.slots`. Relations are grouped into template
kinds: `isa`, `is`, `has`, `can`, and `verb` for every relation verb ("hunt", "eat").

The three sets are disjoint on purpose (tests/test_semantic_data.py checks it):

- TRAINING: forward statements only (subject first), so that every test of the
  `reversal` split asks for a direction training never shows;
- TEST: two phrasings per kind and direction, none used in training, so that `rephrase`
  items test the fact and not the sentence;
- ORACLE: one more wording per kind and direction, for the oracle rows (an upper-bound
  augmentation control), so that training on them is never training on a test prompt.
"""

from __future__ import annotations

from lm_eval_tasks.semantic.knowledge import RESERVED_RELATIONS

KINDS = ("isa", "is", "has", "can", "verb")
# Kinds whose facts may share one sentence ("Gruds are rony and tolp.").
LISTABLE_KINDS = ("is", "has", "can")


def template_kind(relation: str) -> str:
    return relation if relation in RESERVED_RELATIONS else "verb"


# -- training documents ------------------------------------------------------------------

TRAINING: dict[str, tuple[str, ...]] = {
    "isa": (
        "{subjects} are a type of {value}.",
        "{subjects} are a kind of {value}.",
        "The {subject} is a kind of {value}.",
        "{subjects} are {values}.",
    ),
    "is": (
        "{subjects} are {value}.",
        "A {subject} is {value}.",
        "{subjects} are known to be {value}.",
    ),
    "has": (
        "{subjects} have {value}.",
        "A {subject} has {value}.",
        "{subjects} are known to have {value}.",
    ),
    "can": (
        "{subjects} can {value}.",
        "A {subject} can {value}.",
        "{subjects} are known to {value}.",
    ),
    "verb": (
        "{subjects} {verb} {values}.",
        "{subjects} often {verb} {values}.",
        "{subjects} are known to {verb} {values}.",
    ),
}
# The same statements about the subject of the previous sentence.
PRONOUN: dict[str, str] = {
    "isa": "They are a type of {value}.",
    "is": "They are {value}.",
    "has": "They have {value}.",
    "can": "They can {value}.",
    "verb": "They {verb} {values}.",
}
# Question-answer documents ask before each statement.
QUESTION: dict[str, str] = {
    "isa": "Q: What kind of thing is a {subject}?",
    "is": "Q: What are {subjects} like?",
    "has": "Q: What do {subjects} have?",
    "can": "Q: What can {subjects} do?",
    "verb": "Q: What do {subjects} {verb}?",
}
ANSWER_PREFIX = "A: "
# Sentences that name the document's topic and state nothing: openers come first,
# asides last.
OPENERS: tuple[str, ...] = (
    "Here is what is known about {subjects}.",
    "This entry describes the {subject}.",
    "Field notes on {subjects}.",
)
ASIDES: tuple[str, ...] = (
    "Many people have written about {subjects}.",
    "{subjects} have been studied for many years.",
    "That is all for now about {subjects}.",
)
FILLER = OPENERS + ASIDES

# -- test questions: (query, answer) per phrasing -----------------------------------------
# Forward asks for the value, reverse for the subject. The query never ends in whitespace
# (lm-eval joins query and choice with target_delimiter " ").

TEST_FORWARD: dict[str, tuple[tuple[str, str], ...]] = {
    "isa": (
        ("If something is a {subject}, then it is also a", "{value}."),
        ("Every {subject} is an example of a", "{value}."),
    ),
    "is": (
        ("If something is a {subject}, then it is", "{value}."),
        ("Every {subject} is, by nature,", "{value}."),
    ),
    "has": (
        ("If something is a {subject}, then it has", "{value}."),
        ("Every {subject} comes with its own", "{value}."),
    ),
    "can": (
        ("If something is a {subject}, then it can", "{value}."),
        ("Every {subject} is able to", "{value}."),
    ),
    "verb": (
        ("If something is a {subject}, then it will {verb}", "{values}."),
        ("It is in the nature of every {subject} to {verb}", "{values}."),
    ),
}
TEST_REVERSE: dict[str, tuple[tuple[str, str], ...]] = {
    "isa": (
        ("{values} include", "{subjects}."),
        ("One example of a {value} is the", "{subject}."),
    ),
    "is": (
        ("Things that are {value} include", "{subjects}."),
        ("One example of something {value} is the", "{subject}."),
    ),
    "has": (
        ("Things that have {value} include", "{subjects}."),
        ("One example of something with {value} is the", "{subject}."),
    ),
    "can": (
        ("Things that can {value} include", "{subjects}."),
        ("One example of something that can {value} is the", "{subject}."),
    ),
    "verb": (
        ("{values} are {verbed} by", "{subjects}."),
        ("One example of something that will {verb} {values} is the", "{subject}."),
    ),
}

# -- oracle statements --------------------------------------------------------------------

ORACLE_FORWARD: dict[str, str] = {
    "isa": "It is true of every {subject} that it is a {value}.",
    "is": "It is true of every {subject} that it is {value}.",
    "has": "It is true of every {subject} that it has {value}.",
    "can": "It is true of every {subject} that it can {value}.",
    "verb": "It is true of every {subject} that it will {verb} {values}.",
}
ORACLE_REVERSE: dict[str, str] = {
    "isa": "Among the {values} are the {subjects}.",
    "is": "Among the things that are {value} are the {subjects}.",
    "has": "Among the things that have {value} are the {subjects}.",
    "can": "Among the things that can {value} are the {subjects}.",
    "verb": "Among the things that {verb} {values} are the {subjects}.",
}
