"""From a model's raw generation to kept sentences, with every dropped sentence counted.

    >>> parse_generation(" Femp are larger than glon.\\n2. femp are bigger than glon.\\nStatement: ...",
    ...     "rephrase", source="femp are bigger than glon.", context_words=words_of("femp are bigger than glon"),
    ...     stop_strings=("Statement:",), seen=set())
    ([Sentence(kind='rephrase', text='Femp are larger than glon.')],
     [Dropped(reason='copy_of_source', kind='rephrase', text='femp are bigger than glon.')])

Splitting: the answer is cut at the first stop string (the model starting another
example), then split into lines; list markers ("1.", "2)", "-", "*", "•") are removed and
each line is split into sentences. A header line ("Reversals:") switches the kind of the
sentences that follow.

Filters, in order (the first that applies is the reason counted):

- `empty`: nothing but a list marker or punctuation;
- `truncated`: the generation's last sentence has no final punctuation (cut off by the
  token limit);
- `too_long`: more than `max_words` words;
- `copy_of_source`: the source sentence (or a context document) again, ignoring case and
  punctuation; it adds nothing to finetuning;
- `new_nonsense_word`: a word that is neither English (wordfreq) nor in the source/context:
  the model invented an entity (or misspelt one), so the sentence states a false fact;
- `off_topic`: mentions none of the source's nonsense entities (e.g. a copied demonstration);
- `lost_entity` (only with `require_all_entities`, for rephrasings and reversals of a
  one-sentence fact):
  leaves out one of the source's entities ("vimo are more popular than Moe"), so it is not a
  restatement of the fact;
- `duplicate`: a sentence already kept for the same source item.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import NamedTuple

DROP_REASONS = (
    "empty",
    "truncated",
    "too_long",
    "copy_of_source",
    "new_nonsense_word",
    "off_topic",
    "lost_entity",
    "duplicate",
)

_LIST_MARKER = re.compile(r"^\s*(?:\(?\d{1,3}[.)]|[-*•·+])\s*")
_HEADER = re.compile(r"^\s*(rephrasings?|rephrased|reversals?|reversed|inferences?|conclusions?)\s*:\s*", re.I)
_HEADER_KINDS = {"rephras": "rephrase", "revers": "reversal", "infer": "inference", "conclu": "inference"}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[a-z]+")


class Sentence(NamedTuple):
    kind: str
    text: str


class Dropped(NamedTuple):
    reason: str  # one of DROP_REASONS
    kind: str
    text: str


def words_of(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


@functools.lru_cache(maxsize=65536)
def is_english(word: str) -> bool:
    from lm_eval_tasks.lexicon import is_english as lexicon_is_english

    return lexicon_is_english(word)


def nonsense_words(text: str) -> set[str]:
    """The words of `text` that are not English: the dataset's entities."""
    return {word for word in words_of(text) if not is_english(word)}


def normalize(sentence: str) -> str:
    """Case- and punctuation-insensitive form, for copy and duplicate checks."""
    return " ".join(_WORD.findall(sentence.lower()))


def cut_at_stop(text: str, stop_strings: Iterable[str]) -> str:
    positions = [text.find(stop) for stop in stop_strings if stop and stop in text]
    return text[: min(positions)] if positions else text


def split_sentences(text: str, first_kind: str) -> list[tuple[str, str]]:
    """(kind, sentence) pairs of an answer, in order; empty items come back as ''."""
    pieces: list[tuple[str, str]] = []
    kind = first_kind
    for line in text.splitlines():
        if not line.strip():
            continue
        header = _HEADER.match(line)
        if header:
            kind = next(k for stem, k in _HEADER_KINDS.items() if header.group(1).lower().startswith(stem))
            line = line[header.end() :]
            if not line.strip():
                continue
        line = _LIST_MARKER.sub("", line, count=1).strip()
        if not line:
            pieces.append((kind, ""))
            continue
        pieces.extend((kind, sentence.strip()) for sentence in _SENTENCE_END.split(line) if sentence.strip())
    return pieces


def parse_generation(
    generation: str,
    first_kind: str,
    *,
    source: str,
    context_words: set[str],
    stop_strings: Iterable[str],
    seen: set[str],
    max_words: int = 40,
    copies: frozenset[str] = frozenset(),
    require_all_entities: bool = False,
) -> tuple[list[Sentence], list[Dropped]]:
    """(kept, dropped) sentences of one generation.

    `context_words` are the words the model was shown (source and context); `seen` holds the
    normalized sentences already kept for this source item and is updated; `copies` are
    further normalized texts (the training documents) that a kept sentence must not repeat.
    """
    pieces = split_sentences(cut_at_stop(generation, stop_strings), first_kind)
    copied = copies | {normalize(source)}
    entities = nonsense_words(source)
    # A restatement of ONE fact must keep all its entities. A multi-sentence source (a
    # semantic document about a category and its relatives) has more entities than any
    # one restated sentence can hold; mentioning one of them (else `off_topic`) is the rule.
    one_fact = len(_SENTENCE_END.split(source.strip())) == 1
    required = entities if require_all_entities and one_fact else set()
    kept, dropped = [], []
    for index, (kind, sentence) in enumerate(pieces):
        reason = _drop_reason(
            sentence, index == len(pieces) - 1, max_words, copied, context_words, entities, required, seen
        )
        if reason:
            dropped.append(Dropped(reason, kind, sentence))
        else:
            seen.add(normalize(sentence))
            kept.append(Sentence(kind, sentence))
    return kept, dropped


def _drop_reason(sentence, is_last, max_words, copied, context_words, entities, required, seen) -> str | None:
    words = _WORD.findall(sentence.lower())
    if not words:
        return "empty"
    if is_last and not sentence.rstrip("\"')]").endswith((".", "!", "?")):
        return "truncated"
    if len(sentence.split()) > max_words:
        return "too_long"
    key = " ".join(words)
    if key in copied:
        return "copy_of_source"
    if any(word not in context_words and not is_english(word) for word in words):
        return "new_nonsense_word"
    if entities and not entities.intersection(words):
        return "off_topic"
    if not required.issubset(words):
        return "lost_entity"
    if key in seen:
        return "duplicate"
    return None
