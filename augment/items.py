"""What gets augmented (a family's source items) and what is recorded for each of them.

A source item is one distinct training fact (a `source_id` of the family's train rows).
Families restate a fact in several training documents (reversal: 10 preamble variants
per fact), and rephrasing "Fun fact: X." and "Did you know that X?" would spend ten times
the compute on one fact and teach the preambles, so each fact is augmented once, from its
plain statement: the family's `icl_facts` entry contained in the fact's training
documents (reversal: "femp are more dangerous than glon."), else its first document
(syllogism, where document and fact coincide).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from augment.backends import SamplingParams
from augment.config import AugmentConfig
from augment.io import ResumableWriter
from augment.parsing import Dropped, Sentence, parse_generation
from augment.prompting import PromptSpec


@dataclasses.dataclass(frozen=True)
class SourceItem:
    id: str  # the source_id of the family's rows
    text: str  # the fact's plain statement


def source_items(data) -> list[SourceItem]:
    """The family's distinct training facts, in order of first appearance in `data.train`."""
    documents: dict[str, list[str]] = {}
    for row in data.train:
        documents.setdefault(row["source_id"], []).append(row["text"])
    items = []
    for source_id, texts in documents.items():
        stated = [fact for fact in data.icl_facts if all(fact.rstrip(".") in text for text in texts)]
        items.append(SourceItem(source_id, stated[0] if stated else texts[0]))
    return items


def chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def chunk_seed(seed: int, item_ids: list[str]) -> int:
    """The sampling seed of one generation call: fixed by the run seed and the items in it."""
    digest = hashlib.sha256(f"{seed}:{','.join(item_ids)}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def output_row(
    cfg: AugmentConfig, generator: str, prompt_version: str, item_id: str, index: int, sentence: Sentence
) -> dict[str, Any]:
    """One generated training row, with everything needed to know where it came from."""
    return {
        "id": f"{item_id}-{cfg.mode}-{index:02d}",
        "source_id": item_id,
        "kind": sentence.kind,
        "text": sentence.text,
        "mode": cfg.mode,
        "generator": generator,
        "prompt_version": prompt_version,
        "sampling": cfg.sampling(),
        "sample_seed": cfg.sample_seed,
        "family": cfg.family,
        "data_seed": cfg.data_seed,
    }


def dropped_row(item_id: str, dropped: Dropped) -> dict[str, Any]:
    return {"source_id": item_id, "reason": dropped.reason, "kind": dropped.kind, "text": dropped.text}


def sampling_params(cfg: AugmentConfig, stop_strings: tuple[str, ...], item_ids: list[str]) -> SamplingParams:
    return SamplingParams(
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        max_new_tokens=cfg.max_new_tokens,
        seed=chunk_seed(cfg.sample_seed, item_ids),
        stop_strings=stop_strings,
    )


def check_generations(generations: list[str], expected: int) -> list[str]:
    if len(generations) != expected:
        raise RuntimeError(f"the generator returned {len(generations)} generations for {expected} prompts")
    return generations


def record_item(
    cfg: AugmentConfig,
    writer: ResumableWriter,
    generator_name: str,
    spec: PromptSpec,
    item: SourceItem,
    generations: list[str],
    context_words: set[str],
    copies: frozenset[str] = frozenset(),
) -> None:
    """Parse and filter one item's generations and record its kept rows and dropped sentences."""
    seen: set[str] = set()  # duplicates are judged across all of the item's samples and kinds
    kept, dropped = [], []
    for generation in generations:
        item_kept, item_dropped = parse_generation(
            generation,
            spec.answer_kind,
            source=item.text,
            context_words=context_words,
            stop_strings=spec.stop_strings,
            seen=seen,
            max_words=cfg.max_sentence_words,
            copies=copies,
            require_all_entities=spec.require_all_entities,
        )
        kept += item_kept
        dropped += item_dropped
    rows = [output_row(cfg, generator_name, spec.version, item.id, index, s) for index, s in enumerate(kept)]
    writer.add(item.id, rows, [dropped_row(item.id, d) for d in dropped], len(generations))
