"""Simple reversals (Lampinen et al. 2025, dataset 1): "femp are more dangerous than glon".

Each fact compares two nonsense entities on one feature. Training shows every fact in
`examples_per_fact` sentences with different preambles ("Did you know that ..."). Tests
ask, as a forced choice between two continuations that differ only in the comparative:

- `forward`: the trained direction again ("femp are" -> "more dangerous than glon." vs
  "less dangerous than glon."): did the model learn the fact?
- `reverse`: the reversal ("glon are" -> "less dangerous than femp." vs the
  contradiction "more dangerous than femp.").

Counterbalancing: facts come in twins that share a feature, one stated with the
feature's first comparative ("more dangerous"), the other with its second ("less
dangerous"). Each comparative is therefore the correct answer exactly as often as it is
the wrong one, per feature and per split, so a model that prefers "more X" over "less X"
without knowing the facts scores exactly chance (1/2).
"""

from __future__ import annotations

import random

from lm_eval_tasks.errors import DataError
from lm_eval_tasks.lexicon import sample_words
from lm_eval_tasks.spec import FamilyData

VERSION = "1.1"

# (first, second) comparative of each feature; the reversal of "A are <first> than B" is
# "B are <second> than A". No comparative appears in two features, so every sentence
# has exactly one reversal.
FEATURES: tuple[tuple[str, str], ...] = (
    ("more dangerous", "less dangerous"),
    ("heavier", "lighter"),
    ("bigger", "smaller"),
    ("faster", "slower"),
    ("stronger", "weaker"),
    ("taller", "shorter"),
    ("older", "younger"),
    ("warmer", "colder"),
    ("louder", "quieter"),
    ("brighter", "dimmer"),
    ("harder", "softer"),
    ("richer", "poorer"),
    ("wetter", "drier"),
    ("thicker", "thinner"),
    ("wider", "narrower"),
    ("cleaner", "dirtier"),
    ("happier", "sadder"),
    ("deeper", "shallower"),
    ("smoother", "rougher"),
    ("sharper", "duller"),
    ("more friendly", "less friendly"),
    ("more intelligent", "less intelligent"),
    ("more common", "less common"),
    ("more colorful", "less colorful"),
    ("more curious", "less curious"),
    ("more patient", "less patient"),
    ("more aggressive", "less aggressive"),
    ("more expensive", "less expensive"),
    ("more popular", "less popular"),
    ("more flexible", "less flexible"),
)

# Preambles of the training sentences; "{fact}" is the bare fact without final period.
PREAMBLES: tuple[str, ...] = (
    "Did you know that {fact}?",
    "Fun fact: {fact}.",
    "I read that {fact}.",
    "It is well known that {fact}.",
    "Scientists have found that {fact}.",
    "Everyone agrees that {fact}.",
    "According to my teacher, {fact}.",
    "Here is something interesting: {fact}.",
    "It turns out that {fact}.",
    "Remember that {fact}.",
    "People often say that {fact}.",
    "As you may know, {fact}.",
    "In fact, {fact}.",
    "My friend told me that {fact}.",
    "Believe it or not, {fact}.",
    "It is true that {fact}.",
    "Researchers report that {fact}.",
    "Note that {fact}.",
    "Studies show that {fact}.",
    "{fact}.",
)


def generate(seed: int = 0, num_facts: int = 100, examples_per_fact: int = 10) -> FamilyData:
    if num_facts < 2 or num_facts % 2:
        raise DataError(f"num_facts={num_facts}: must be an even number >= 2 (facts come in counterbalanced twins)")
    if not 1 <= examples_per_fact <= len(PREAMBLES):
        raise DataError(f"examples_per_fact={examples_per_fact}: must be between 1 and {len(PREAMBLES)}")
    # A string seed is hashed with SHA-512: stable across runs and Python versions, and
    # independent of other families' streams for the same integer seed.
    rng = random.Random(f"reversal-{seed}")
    entities = sample_words(2 * num_facts, rng)
    features = list(FEATURES)
    rng.shuffle(features)  # which features get a second twin varies with the seed

    facts = []
    for twin in range(num_facts // 2):
        feature = features[twin % len(features)]
        for side in (0, 1):  # the twins state the feature with opposite comparatives
            index = 2 * twin + side
            facts.append(
                {
                    "fact_id": index,
                    "subject": entities[2 * index],
                    "object": entities[2 * index + 1],
                    "feature": feature,
                    "stated": side,
                }
            )

    def sentence(fact: dict, reverse: bool = False) -> str:
        if reverse:  # "B are <other comparative> than A"
            return f"{fact['object']} are {fact['feature'][1 - fact['stated']]} than {fact['subject']}"
        return f"{fact['subject']} are {fact['feature'][fact['stated']]} than {fact['object']}"

    def source_id(fact: dict) -> str:
        return f"reversal-fact-{fact['fact_id']:03d}"

    train = [
        {
            "id": f"{source_id(fact)}-train-{k}",
            "source_id": source_id(fact),
            "text": template.format(fact=sentence(fact)),
        }
        for fact in facts
        for k, template in enumerate(rng.sample(PREAMBLES, examples_per_fact))
    ]
    rng.shuffle(train)
    icl = [(sentence(fact) + ".", source_id(fact)) for fact in facts]
    rng.shuffle(icl)

    def test_row(fact: dict, split: str) -> dict:
        # forward asks about the subject (answer: the stated comparative); reverse asks
        # about the object (answer: the other comparative of the feature).
        asked, other = (fact["subject"], fact["object"]) if split == "forward" else (fact["object"], fact["subject"])
        label = fact["stated"] if split == "forward" else 1 - fact["stated"]
        return {
            "id": f"reversal-{split}-{fact['fact_id']:03d}",
            "source_id": source_id(fact),
            "feature": fact["feature"][0],
            "query": f"{asked} are",
            "choices": [f"{comparative} than {other}." for comparative in fact["feature"]],
            "label": label,
        }

    tests = {split: [test_row(fact, split) for fact in facts] for split in ("forward", "reverse")}
    # The oracle states each reversal, and each fact in a wording training never used.
    oracle = [
        row
        for fact in facts
        for row in (
            {
                "id": f"{source_id(fact)}-oracle-reversal",
                "source_id": source_id(fact),
                "kind": "reversal",
                "text": sentence(fact, reverse=True) + ".",
            },
            {
                "id": f"{source_id(fact)}-oracle-rephrase",
                "source_id": source_id(fact),
                "kind": "rephrase",
                "text": f"Compared with {fact['object']}, {fact['subject']} are {fact['feature'][fact['stated']]}.",
            },
        )
    ]
    return FamilyData(
        family="reversal",
        version=VERSION,
        seed=seed,
        options={"num_facts": num_facts, "examples_per_fact": examples_per_fact},
        train=train,
        icl_facts=[text for text, _ in icl],
        tests=tests,
        oracle=oracle,
        # Every item needs its one fact; the ICL context and each training sentence state one.
        icl_fact_keys=[(key,) for _, key in icl],
        train_fact_keys=[(row["source_id"],) for row in train],
        test_needs={split: [(row["source_id"],) for row in rows] for split, rows in tests.items()},
    )
