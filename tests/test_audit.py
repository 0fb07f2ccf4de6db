"""The dataset audit (`lm_eval_tasks.audit`, `icl-ft audit`) on every family and preset at two seeds.

Each card must pass: every label valid by the family's symbolic checker, every scored item
entailed by the ICL context and learnable from single finetuning units (finetune's own
splitter), no English nonsense form, and no shortcut heuristic above the binomial bound
(99% quantile of Binomial(items, chance) / items) unless the family README states why the
paper's design permits it. Cards are computed once per session.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from icl_ft.audit import finetune_units
from lm_eval_tasks.audit import audit_family
from lm_eval_tasks.families import family_spec

FIXTURE = Path(__file__).parent / "fixtures" / "reversal_curse_original"


def small(family: str) -> dict:
    """The options of the study's small preset, as the family declares them."""
    return dict(family_spec(family).study.options["small"])


SEEDS = (0, 1)
# (family, options): each family's defaults, the study's small preset, the semantic presets, the original files.
CONFIGS = [
    ("reversal", {}),
    ("reversal", small("reversal")),
    ("syllogism", {}),
    ("syllogism", small("syllogism")),
    ("reversal_curse", {}),
    ("reversal_curse", small("reversal_curse")),
    ("reversal_curse", {"source_dir": str(FIXTURE)}),
    ("semantic", {"preset": "small"}),
    ("semantic", small("semantic")),
    ("semantic", {"preset": "paper"}),
    ("process", small("process")),
    ("process", {"preset": "paper"}),
]
CASES = [(family, options, seed) for family, options in CONFIGS for seed in SEEDS]
# Splits that re-ask a trained fact (or its reversal): heuristics that use the fact's words are the fact.
ASKS_TRAINED_FACTS = {
    ("reversal", "forward"),
    ("reversal_curse", "forward"),
    ("reversal_curse", "reverse"),
    ("semantic", "rephrase"),
    ("semantic", "reversal"),
}


def case_id(case) -> str:
    family, options, seed = case
    return "-".join([family, *(f"{k}={Path(str(v)).name}" for k, v in options.items()), f"seed{seed}"])


def ids_of_cards(family: str, options: dict):
    """Test ids of a test parametrized by seed: the id of the card it reads (tests/conftest.py sends
    every test of one card to one pytest-xdist worker, which computes the card once)."""
    return lambda seed: case_id((family, options, seed))


@pytest.fixture(scope="session")
def cards():
    computed = {}

    def card(family, options, seed):
        key = (family, json.dumps(options, sort_keys=True), seed)
        if key not in computed:
            computed[key] = audit_family(family, seed, units_of=finetune_units, **options)
        return computed[key]

    return card


def failures(card) -> list[str]:
    found = [
        f"{r['split']}: {r['heuristic']} ({r['corpus']}) {r['accuracy']} > {r['bound']}"
        for r in card["shortcuts"]
        if r["status"] == "FAIL"
    ]
    for split, r in (card["labels"] or {}).items():
        found += [f"{split}: invalid labels {r['invalid']}"] if r["valid"] != r["rows"] else []
    for split, r in card["icl_coverage"].get("splits", {}).items():
        found += [f"{split}: ICL context misses {r['not_entailed']}"] if r["entailed"] != r["rows"] else []
    for unit, report in (card["learnability"] or {}).items():
        for split, r in report["splits"].items():
            found += [f"{unit} units, {split}: not learnable {r['not_entailed']}"] if r["entailed"] != r["rows"] else []
    if card["lexicon"]:
        found += [f"English forms {card['lexicon']['english'] + card['lexicon']['near_english']}"] * bool(
            card["lexicon"]["english"] or card["lexicon"]["near_english"]
        )
    return found


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_card_passes(cards, case):
    card = cards(*case)
    assert failures(card) == [] and card["passed"]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_shortcuts_are_permitted_only_where_a_split_asks_a_trained_fact(cards, case):
    card = cards(*case)
    permitted = {(card["family"], r["split"]) for r in card["shortcuts"] if r["status"] == "permitted"}
    assert permitted <= ASKS_TRAINED_FACTS
    assert all(r["fact_aware"] for r in card["shortcuts"] if r["status"] == "permitted")  # never a fact-blind one


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_limit_prefixes_are_balanced(cards, case):
    """Every prefix holds each label position, item kind and answer in proportion, to within one balanced unit."""
    card = cards(*case)
    for split, excess in card["prefix_balance"].items():
        assert excess["label"] <= 2, (split, excess)
        assert excess["kind"] <= 5, (split, excess)  # a Latin-square group adds 4 items of one kind at once
        assert excess["answer"] <= 4, (split, excess)


@pytest.mark.parametrize("seed", SEEDS, ids=ids_of_cards("semantic", {"preset": "paper"}))
def test_inference_splits_have_no_co_occurrence_shortcut(cards, seed):
    """Finding: the answer of a 1-hop semantic item shared a document with its subject in 100% of rows (0.99)."""
    card = cards("semantic", {"preset": "paper"}, seed)
    for result in card["shortcuts"]:
        if (
            result["split"] in ("syllogism", "deduction_long", "category_holdout")
            and "co-occurrence" in result["heuristic"]
        ):
            assert result["accuracy"] <= result["chance"] + 0.01, result


@pytest.mark.parametrize("seed", SEEDS, ids=ids_of_cards("syllogism", {}))
def test_syllogism_copying_fails(cards, seed):
    """Finding: "copy the premises' quantifier and subject" scored 0.75 and a bigram model solved every All item."""
    card = cards("syllogism", {}, seed)
    scores = {r["heuristic"]: r["accuracy"] for r in card["shortcuts"] if r["corpus"] == "train"}
    assert scores["copy a premise's quantifier and subject"] <= 0.25
    assert scores["copy the premises' quantifier"] <= 0.25
    assert scores["bigram model"] <= card["shortcuts"][0]["bound"]


@pytest.mark.parametrize("seed", SEEDS, ids=ids_of_cards("reversal_curse", {}))
def test_sentence_units_lose_no_fact_in_reversal_curse_documents(cards, seed):
    """Finding: 76 of 960 training rows were two-sentence templates whose halves lost the fact."""
    card = cards("reversal_curse", {}, seed)
    assert card["learnability"]["sentence"]["documents_losing_a_fact"] == 0


def test_icl_ft_audit_prints_and_writes_the_card(tmp_path, capsys):
    from icl_ft.cli import main

    argv = ["audit", "reversal", "--family-option", "num_facts=4", "--data-seed", "3", "--output", str(tmp_path)]
    status = main(argv)
    assert status == 0
    printed = capsys.readouterr().out
    assert printed.startswith("# Dataset card: reversal")
    stem = tmp_path / "reversal-num_facts-4-seed3"
    assert stem.with_suffix(".md").read_text() == printed
    card = json.loads(stem.with_suffix(".json").read_text())
    assert card["seed"] == 3 and card["passed"] and card["learnability"]["sentence"]["documents"] == 40


@pytest.mark.parametrize(
    "argv, message",
    [
        (["audit", "nonexistent"], "icl-ft: error: unknown task family 'nonexistent'"),
        (["audit", "reversal", "--family-option", "num_facts=3"], "icl-ft: error: num_facts=3: must be an even number"),
        (["audit", "reversal", "--family-option", "num_factz=4"], "icl-ft: error: unknown option(s) ['num_factz']"),
    ],
)
def test_icl_ft_audit_bad_input_is_one_line(tmp_path, capsys, argv, message):
    from icl_ft.cli import main

    assert main([*argv, "--output", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(message) and error.count("\n") == 1
    assert not list(tmp_path.iterdir())
