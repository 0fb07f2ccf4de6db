"""The dataset audit: a family instance's card, from checks any family plugs into.

    >>> from lm_eval_tasks.audit import audit_family, render_markdown
    >>> card = audit_family("syllogism", seed=0, units_of=my_unit_maker)   # `icl-ft audit` passes finetune's
    >>> print(render_markdown(card))

The card holds: sizes beside the paper's, label validity by the family's symbolic checker,
the ICL context and the items it entails, per finetuning unit the items whose facts are
each learnable from one unit, every shortcut heuristic per split with its accuracy, chance
and binomial bound, the balance of `--limit` prefixes and the lexicon check.

Generic checks live here (`checks.py`, `heuristics.py`); what they need from a family, its
symbolic checker above all, comes from the family's folder: `lm_eval_tasks/<family>/audit.py`
defines it and `family.py` declares it (`FamilySpec(audit_checker=checker)`); `checker.py`
documents that interface. This package imports no trainer: the caller passes
`units_of(texts, unit) -> [(context, target)]`, finetune's own unit maker, so the
learnability check follows the trainer.
"""

from __future__ import annotations

from typing import Any

from lm_eval_tasks.audit.card import render_markdown
from lm_eval_tasks.audit.checker import FACT_AWARE, FamilyChecker
from lm_eval_tasks.audit.checks import CONFIDENCE, UNITS, UnitsOf

__all__ = ["FACT_AWARE", "FamilyChecker", "audit_data", "audit_family", "family_checker", "render_markdown"]


def family_checker(data) -> FamilyChecker:
    """The family's checker, as its spec declares it (`FamilySpec.audit_checker`), else the fact-blind base."""
    from lm_eval_tasks.families import family_spec

    make_checker = family_spec(data.family).audit_checker
    if make_checker is None:
        checker = FamilyChecker(data)
        checker.symbolic = False
        return checker
    return make_checker(data)


def audit_data(data, units_of: UnitsOf | None = None) -> dict[str, Any]:
    """The card of one generated instance (`FamilyData`, as `generate_family` returns it)."""
    from lm_eval_tasks.audit import checks

    checker = family_checker(data)
    sizes = checker.sizes()
    card: dict[str, Any] = {
        "family": data.family,
        "version": data.version,
        "seed": data.seed,
        "options": data.options,
        "sizes": [
            {"what": what, "ours": ours, "paper": checker.paper_sizes.get(what, "")} for what, ours in sizes.items()
        ],
        "symbolic_checker": checker.symbolic,
        "labels": checks.label_validity(checker) if checker.symbolic else None,
        "icl_coverage": checks.icl_coverage(checker) if checker.symbolic else {"context": data.coverage},
        "learnability": checks.learnability(checker, units_of) if checker.symbolic and units_of else None,
        "shortcuts": checks.shortcuts(checker),
        "bound": f"a heuristic fails above the {CONFIDENCE:.0%} quantile of Binomial(items, chance) / items",
        "prefix_balance": checks.prefix_balance(checker),
        "lexicon": checks.lexicon(checker),
    }
    card["passed"] = passed(card)
    return card


def audit_family(family: str, seed: int = 0, units_of: UnitsOf | None = None, **options: Any) -> dict[str, Any]:
    """The card of `generate_family(family, seed, **options)`."""
    from lm_eval_tasks.api import generate_family

    return audit_data(generate_family(family, seed, **options), units_of)


def passed(card: dict[str, Any]) -> bool:
    """True when every label is valid, every item covered and learnable, no shortcut fails, no English form."""
    ok = all(r["status"] != "FAIL" for r in card["shortcuts"])
    if card["labels"]:
        ok &= all(s["valid"] == s["rows"] for s in card["labels"].values())
    if card["icl_coverage"].get("splits"):
        ok &= all(s["entailed"] == s["rows"] for s in card["icl_coverage"]["splits"].values())
    for unit in UNITS if card["learnability"] else ():
        ok &= all(s["entailed"] == s["rows"] for s in card["learnability"][unit]["splits"].values())
    if card["lexicon"]:
        ok &= not card["lexicon"]["english"] and not card["lexicon"]["near_english"]
    return bool(ok)
