"""The Python data API: every task family's generated data, for lm-eval and for finetuning.

    >>> from lm_eval_tasks.api import load_family
    >>> data = load_family("reversal", seed=0)   # a datasets.DatasetDict
    >>> data["train"][0]["text"]                 # what `finetune` trains on
    >>> data["reverse"][0]["query"], data["reverse"][0]["choices"]

The same call with the same arguments returns byte-identical data, so an adapter trained
on `load_family(f, seed=s)["train"]` learned exactly the facts that the ICL prompts of
the `icl_ft_<f>_*` tasks show when run with `--metadata '{"seed": s}'`.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datasets

from lm_eval_tasks.errors import DataError, one_line_under_lm_eval

# FamilyData and ORACLE_KINDS are defined in `spec`, FAMILIES in `families`; importable from here too.
from lm_eval_tasks.families import FAMILIES, family_spec
from lm_eval_tasks.icl_context import DEFAULT_CONTEXT_TOKENS, GENERIC_OPTIONS, ICL_CONTEXT_CHOICES, scored_view
from lm_eval_tasks.metadata import coerce_option, model_context_tokens, task_options
from lm_eval_tasks.spec import ORACLE_KINDS, FamilyData

__all__ = [
    "FAMILIES",
    "ICL_CONTEXT_CHOICES",
    "ORACLE_KINDS",
    "DataError",
    "FamilyData",
    "build_task_dataset",
    "family_options",
    "generate_family",
    "load_family",
    "typed_family_options",
]
logger = logging.getLogger(__name__)


def family_options(family: str) -> dict[str, Any]:
    """The family's data options and their defaults (everything but `seed`).

    The generator's own size/shape options, plus `icl_context` and `icl_token_budget`,
    which every family takes (see `lm_eval_tasks.icl_context`)."""
    params = inspect.signature(family_spec(family).generate).parameters
    return {**{name: p.default for name, p in params.items() if name != "seed"}, **GENERIC_OPTIONS}


@functools.lru_cache(maxsize=32)
def _generate_cached(family: str, seed: int, options: tuple[tuple[str, Any], ...]) -> FamilyData:
    return family_spec(family).generate(seed=seed, **dict(options))


@functools.lru_cache(maxsize=64)
def _scored_cached(
    family: str, seed: int, options: tuple, icl_context: str, budget: int, context_tokens: int | None, source: str
) -> FamilyData:
    return scored_view(_generate_cached(family, seed, options), icl_context, budget, context_tokens, source)


def typed_family_options(family: str, options: dict[str, Any]) -> dict[str, Any]:
    """`options` with each value given its default's type (command-line values arrive as text).

    An unknown option name or a value of the wrong type is a DataError (a ValueError) naming the valid options.
    """
    known = family_options(family)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise DataError(f"unknown option(s) {unknown} for family {family!r}; valid options: {sorted(known)}")
    return {name: coerce_option(name, known[name], value) for name, value in options.items()}


def generate_family(
    family: str, seed: int = 0, *, model_context_tokens: int | None = None, model_source: str = "", **options: Any
) -> FamilyData:
    """Generate (memoized) one instance of `family`, its ICL context chosen and its scored items.

    Unknown option names and values of the wrong type are a DataError. `model_context_tokens`
    (described by `model_source`, for the coverage report) is the scoring model's context
    length, which the ICL budget follows when the `icl_token_budget` option is 0."""
    typed = typed_family_options(family, options)
    seed = coerce_option("seed", 0, seed)
    generic = {name: typed.pop(name, default) for name, default in GENERIC_OPTIONS.items()}
    if model_context_tokens is None:
        model_source = f"the default context of {DEFAULT_CONTEXT_TOKENS} tokens (no model given)"
    return _scored_cached(
        family,
        seed,
        tuple(sorted(typed.items())),
        generic["icl_context"],
        generic["icl_token_budget"],
        model_context_tokens,
        model_source,
    )


def load_family(family: str, seed: int = 0, **options: Any) -> datasets.DatasetDict:
    """The family's train split, every test split and (if the family has one) the `oracle` split."""
    import datasets

    data = generate_family(family, seed, **options)
    description = json.dumps(data.provenance(), sort_keys=True)
    splits = {"train": data.train, **data.tests, **({"oracle": data.oracle} if data.oracle else {})}
    return datasets.DatasetDict(
        {
            name: datasets.Dataset.from_list(rows, info=datasets.DatasetInfo(description=description))
            for name, rows in splits.items()
        }
    )


@one_line_under_lm_eval
def build_task_dataset(family: str, **metadata: Any) -> datasets.DatasetDict:
    """`custom_dataset` of every task YAML: the scored test splits, each doc carrying the ICL context.

    lm-eval calls this with the task's `dataset_kwargs` (the family), its `metadata`
    (seed, version, ...), `--metadata` and every `--model_args` entry. The family's options
    are taken from them; a key that is neither an option nor lm-eval's own nor a model
    argument, or a value of the wrong type, is a DataError (one line under `lm_eval`, see
    `lm_eval_tasks.errors`). The ICL budget follows the model's context length unless
    `icl_token_budget` is given.

    Every doc gets `facts`: the list the ICL template renders before the question. It is
    the same list for every doc of a task, so all ICL prompts share one prefix.
    `icl_context="train"` shows training documents (as finetuning sees them) instead of
    each distinct fact once. ICL and FT tasks of a family score the same items.
    """
    import datasets

    options = task_options(family, metadata, {"seed": 0, **family_options(family)})
    context_tokens, source = model_context_tokens() if not options.get("icl_token_budget") else (None, "")
    data = generate_family(family, model_context_tokens=context_tokens, model_source=source, **options)
    dropped = sum(len(ids) for ids in data.coverage.get("dropped", {}).values())
    empty = [split for split, rows in data.tests.items() if not rows]
    if empty:
        raise DataError(
            f"{family}: the ICL budget of {data.coverage['budget_tokens']} estimated tokens (from "
            f"{data.coverage['budget_source']}) covers no item of split(s) {empty}; raise icl_token_budget "
            "or use a model with a longer context"
        )
    if dropped:
        logger.warning(
            "%s: the ICL context (%d of %d documents, budget %d estimated tokens from %s) leaves %d test row(s) "
            "uncovered; they are scored in neither condition",
            family,
            data.coverage["documents_shown"],
            data.coverage["documents_total"],
            data.coverage["budget_tokens"],
            data.coverage["budget_source"],
            dropped,
        )
    return datasets.DatasetDict(
        {
            name: datasets.Dataset.from_list([{**row, "facts": data.icl_facts} for row in rows])
            for name, rows in data.tests.items()
        }
    )
