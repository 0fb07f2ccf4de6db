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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datasets

from icl_ft_common.config import parse_bool

# FamilyData and ORACLE_KINDS are defined in `spec`, FAMILIES in `families`; importable from here too.
from lm_eval_tasks.families import FAMILIES, family_spec
from lm_eval_tasks.spec import ORACLE_KINDS, FamilyData

__all__ = [
    "FAMILIES",
    "ORACLE_KINDS",
    "FamilyData",
    "build_task_dataset",
    "family_options",
    "generate_family",
    "load_family",
    "typed_family_options",
]

ICL_CONTEXT_CHOICES = ("facts", "train")


def family_options(family: str) -> dict[str, Any]:
    """The generator's size/shape options and their defaults (everything but `seed`)."""
    params = inspect.signature(family_spec(family).generate).parameters
    return {name: p.default for name, p in params.items() if name != "seed"}


def _coerce_like(default: Any, value: Any, name: str) -> Any:
    """Values from `--model_args`-style strings arrive as str; give them the default's type."""
    if default is None or isinstance(value, type(default)):
        return value
    try:
        return parse_bool(value) if isinstance(default, bool) else type(default)(value)
    except (TypeError, ValueError):
        raise ValueError(f"option {name}={value!r} must be of type {type(default).__name__}") from None


@functools.lru_cache(maxsize=32)
def _generate_cached(family: str, seed: int, options: tuple[tuple[str, Any], ...]) -> FamilyData:
    return family_spec(family).generate(seed=seed, **dict(options))


def typed_family_options(family: str, options: dict[str, Any]) -> dict[str, Any]:
    """`options` with each value given its default's type (command-line values arrive as text).

    An unknown option name or a value of the wrong type is a ValueError naming the valid options.
    """
    known = family_options(family)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for family {family!r}; valid options: {sorted(known)}")
    return {name: _coerce_like(known[name], value, name) for name, value in options.items()}


def generate_family(family: str, seed: int = 0, **options: Any) -> FamilyData:
    """Generate (memoized) one instance of `family` from its data seed. Unknown option names are an error."""
    typed = typed_family_options(family, options)
    seed = _coerce_like(0, seed, "seed")
    return _generate_cached(family, seed, tuple(sorted(typed.items())))


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


def build_task_dataset(family: str, seed: int = 0, icl_context: str = "facts", **metadata: Any) -> datasets.DatasetDict:
    """`custom_dataset` of every task YAML: the test splits, each doc carrying the ICL context.

    lm-eval calls this with the task's `dataset_kwargs` (the family), its `metadata`
    (seed, version, ...), `--metadata` and every `--model_args` entry; only the
    generator's own options are taken from them.

    Every doc gets `facts`: the list the ICL template renders before the question. It is
    the same list for every doc of a task, so all ICL prompts share one prefix.
    `icl_context="train"` shows every training document (as finetuning sees them)
    instead of each distinct fact once.
    """
    import datasets

    if icl_context not in ICL_CONTEXT_CHOICES:
        raise ValueError(f"icl_context={icl_context!r}; choose one of {ICL_CONTEXT_CHOICES}")
    options = {name: metadata[name] for name in family_options(family) if name in metadata}
    data = generate_family(family, seed, **options)
    facts = data.icl_facts if icl_context == "facts" else [row["text"] for row in data.train]
    return datasets.DatasetDict(
        {
            name: datasets.Dataset.from_list([{**row, "facts": facts} for row in rows])
            for name, rows in data.tests.items()
        }
    )
