"""The semantic structure benchmark (Lampinen et al. 2025, dataset 4, the paper's main dataset).

A real-world taxonomy of animals, plants and objects (skeleton.yml, after Rogers &
McClelland) with properties and relations, every word replaced by a nonsense word,
taught through short wiki-like documents and tested in five splits:

- `rephrase`: trained facts, same direction, in wordings training never uses;
- `reversal`: the same facts asked backwards ("Abmes include" -> "gruds.");
- `syllogism`: facts that follow in one hop ("gruds are abmes; abmes are rony" =>
  "gruds are rony");
- `deduction_long`: facts that follow in 2-3 hops;
- `category_holdout`: every inference about held-out categories, whose only trained
  fact is their parent.

Every item is asked in two phrasings (rows sharing `item_id`), as a forced choice among
NUM_CHOICES continuations (chance 1/4); see questions.py for the distractors and the
counterbalancing, reasoner.py for what "entailed" means.

Size: `preset` ("small": the whole training set fits SmolLM2's context, so the ICL prompt
shows every document; "paper": about 110 categories and 2200 documents) and explicit
overrides, 0 meaning the preset's value. Which documents a larger training set shows in
context is chosen by the facts the test items need (`lm_eval_tasks.icl_context`): every
document states known facts (`train_fact_keys`) and every test row needs the premises of
its answer (`test_needs`).
"""

from __future__ import annotations

import dataclasses
import logging
import random

from lm_eval_tasks.errors import DataError
from lm_eval_tasks.semantic.documents import MIN_SENTENCES, write_documents
from lm_eval_tasks.semantic.knowledge import (
    Fact,
    KnowledgeBase,
    choose_holdouts,
    knowledge_base,
    load_skeleton,
    select_categories,
)
from lm_eval_tasks.semantic.language import Vocabulary, build_vocabulary
from lm_eval_tasks.semantic.questions import build_splits, unaskable_holdouts
from lm_eval_tasks.semantic.reasoner import Reasoner
from lm_eval_tasks.semantic.templates import ORACLE_FORWARD, ORACLE_REVERSE, template_kind
from lm_eval_tasks.spec import FamilyData

logger = logging.getLogger(__name__)

VERSION = "2.0"


@dataclasses.dataclass(frozen=True)
class Preset:
    num_categories: int
    num_holdout: int
    num_documents: int
    max_sentences: int  # per document; at least 4


PRESETS = {
    "small": Preset(num_categories=32, num_holdout=4, num_documents=64, max_sentences=8),
    "paper": Preset(num_categories=110, num_holdout=11, num_documents=2200, max_sentences=20),
}


@dataclasses.dataclass(frozen=True)
class Instance:
    """A generated instance with the symbolic side kept: for tests and debugging (`vocab.gloss`)."""

    kb: KnowledgeBase
    vocab: Vocabulary
    reasoner: Reasoner
    data: FamilyData


def generate(
    seed: int = 0,
    preset: str = "small",
    num_categories: int = 0,
    num_holdout: int = 0,
    num_documents: int = 0,
    max_sentences: int = 0,
) -> FamilyData:
    """The family's data (the data API's entry point); options as in `build_instance`."""
    return build_instance(seed, preset, num_categories, num_holdout, num_documents, max_sentences).data


def build_instance(
    seed: int = 0,
    preset: str = "small",
    num_categories: int = 0,
    num_holdout: int = 0,
    num_documents: int = 0,
    max_sentences: int = 0,
) -> Instance:
    """Generate one instance. Size options of 0 take the preset's value.

    num_categories: taxonomy categories in play (ancestor-closed); num_holdout: held-out
    categories; num_documents: training documents; max_sentences: per document.
    """
    if preset not in PRESETS:
        raise DataError(f"preset={preset!r}: choose one of {sorted(PRESETS)}")
    defaults = PRESETS[preset]
    sizes = {
        "num_categories": num_categories or defaults.num_categories,
        "num_holdout": num_holdout or defaults.num_holdout,
        "num_documents": num_documents or defaults.num_documents,
        "max_sentences": max_sentences or defaults.max_sentences,
    }
    for name, value in sizes.items():
        if value < 1:
            raise DataError(f"{name}={value}: must be positive (0 takes the preset's value)")
    if sizes["max_sentences"] < MIN_SENTENCES:
        raise DataError(f"max_sentences={sizes['max_sentences']}: must be at least {MIN_SENTENCES}")

    rng = random.Random(f"semantic-{seed}")
    skeleton = load_skeleton()
    categories = select_categories(skeleton, sizes["num_categories"], rng)
    # Hold out categories whose every inference can be asked with fair distractors (a
    # relation with too few objects in play cannot be): swap out the others and retry.
    excluded: frozenset[str] = frozenset()
    while True:
        holdouts = choose_holdouts(skeleton, categories, sizes["num_holdout"], rng, excluded)
        kb = knowledge_base(skeleton, categories, holdouts)
        reasoner = Reasoner(kb.facts)
        unaskable = unaskable_holdouts(kb, reasoner)
        if not unaskable:
            break
        logger.info("not holding out %s: some inference has too few fair distractors", sorted(unaskable))
        excluded |= unaskable
    vocab = build_vocabulary(kb, rng)
    documents = write_documents(kb, vocab, sizes["num_documents"], sizes["max_sentences"], rng)
    train = [
        {"id": f"semantic-doc-{i:04d}", "source_id": kb.source_id(d.topic), "style": d.style, "text": d.text}
        for i, d in enumerate(documents)
    ]
    fact_keys = [tuple(sorted({str(f) for f in d.facts})) for d in documents]
    inferred = [f for f in reasoner.closure if f not in reasoner.trained]
    tests, needs = build_splits(kb, reasoner, vocab, rng)
    empty = [split for split, rows in tests.items() if not rows]
    if empty:
        raise DataError(
            f"num_categories={sizes['num_categories']}, num_holdout={sizes['num_holdout']}: split(s) {empty} get no "
            "counterbalanced item at this size; raise num_categories or num_holdout"
        )
    data = FamilyData(
        family="semantic",
        version=VERSION,
        seed=seed,
        options={"preset": preset, **sizes},
        train=train,
        icl_facts=[row["text"] for row in train],
        tests=tests,
        oracle=oracle_rows(kb, inferred, vocab),
        icl_fact_keys=fact_keys,
        train_fact_keys=fact_keys,
        test_needs=needs,
    )
    return Instance(kb, vocab, reasoner, data)


def oracle_rows(kb: KnowledgeBase, inferred: list[Fact], vocab: Vocabulary) -> list[dict]:
    """What the reasoner knows, in wordings neither training nor the tests use."""
    statements = [(f, "rephrase", ORACLE_FORWARD) for f in kb.facts]
    statements += [(f, "reversal", ORACLE_REVERSE) for f in kb.facts]
    statements += [(f, "inference", ORACLE_FORWARD) for f in inferred]
    return [
        {
            "id": f"semantic-oracle-{i:05d}",
            "source_id": kb.source_id(fact.subject),
            "kind": kind,
            "text": vocab.render(templates[template_kind(fact.relation)], fact),
        }
        for i, (fact, kind, templates) in enumerate(statements)
    ]
