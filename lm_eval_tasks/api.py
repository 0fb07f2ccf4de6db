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

import dataclasses
import functools
import hashlib
import importlib
import inspect
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datasets

from lm_eval_tasks import TASKS_DIR

# A family is a folder of lm_eval_tasks/ with a `generator.py` that defines `VERSION` and
# `generate(seed, **options) -> FamilyData`; its keyword defaults are the family's options.
FAMILIES = tuple(sorted(path.parent.name for path in TASKS_DIR.glob("*/generator.py")))

ICL_CONTEXT_CHOICES = ("facts", "train")
ORACLE_KINDS = ("rephrase", "reversal", "inference")


@dataclasses.dataclass(frozen=True)
class FamilyData:
    """One generated instance of a task family.

    Row schemas (every row of one list has the same keys; families may add keys):

    - train: finetuning documents {"id", "source_id", "text"}. `source_id` names the fact or
      item a document expresses; documents that restate one fact share it.
    - icl_facts: each distinct training fact once, in the order the ICL prompt shows them.
    - tests: split name -> {"id", "source_id", "query", "choices", "label"}; `source_id`
      links a test item to the training fact(s) it is about.
    - oracle: what the generator's symbolic knowledge says follows from the training data,
      {"id", "source_id", "kind", "text"} with kind in ORACLE_KINDS. An upper-bound control
      for augmented finetuning; never mixed with model-generated data.
    """

    family: str
    version: str
    seed: int
    options: dict[str, Any]
    train: list[dict[str, Any]]
    icl_facts: list[str]
    tests: dict[str, list[dict[str, Any]]]
    oracle: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def provenance(self) -> dict[str, Any]:
        """What identifies this instance: recorded with every adapter and augmented file."""
        return {
            "family": self.family,
            "version": self.version,
            "seed": self.seed,
            "options": self.options,
            "train_sha256": _sha256_rows(self.train),
        }


def _sha256_rows(rows: list[dict[str, Any]]) -> str:
    payload = "\n".join(json.dumps(row, sort_keys=True, ensure_ascii=False) for row in rows)
    return hashlib.sha256(payload.encode()).hexdigest()


def _generator(family: str):
    if family not in FAMILIES:
        raise ValueError(f"unknown task family {family!r}; choose one of {list(FAMILIES)}")
    return importlib.import_module(f"lm_eval_tasks.{family}.generator")


def family_options(family: str) -> dict[str, Any]:
    """The generator's size/shape options and their defaults (everything but `seed`)."""
    params = inspect.signature(_generator(family).generate).parameters
    return {name: p.default for name, p in params.items() if name != "seed"}


def _coerce_like(default: Any, value: Any, name: str) -> Any:
    """Values from `--model_args`-style strings arrive as str; give them the default's type."""
    if default is None or isinstance(value, type(default)):
        return value
    try:
        return type(default)(value)
    except (TypeError, ValueError):
        raise ValueError(f"option {name}={value!r} must be of type {type(default).__name__}") from None


@functools.lru_cache(maxsize=32)
def _generate_cached(family: str, seed: int, options: tuple[tuple[str, Any], ...]) -> FamilyData:
    return _generator(family).generate(seed=seed, **dict(options))


def parse_family_options(items: list[str]) -> dict[str, str]:
    """`--family-option NAME=VALUE` flags -> `{NAME: VALUE}`; `generate_family` types the values.

    The one spelling of family options on every command line (`icl-ft data`, `finetune`, `augment`).
    """
    options = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--family-option {item!r}: expected NAME=VALUE (e.g. num_facts=20)")
        options[name] = value
    return options


def generate_family(family: str, seed: int = 0, **options: Any) -> FamilyData:
    """Generate (memoized) one instance of `family`. Unknown option names are an error."""
    known = family_options(family)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for family {family!r}; valid options: {sorted(known)}")
    seed = _coerce_like(0, seed, "seed")
    typed = {name: _coerce_like(known[name], value, name) for name, value in options.items()}
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
