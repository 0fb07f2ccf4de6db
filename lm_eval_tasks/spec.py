"""What a task family is: the data it generates (`FamilyData`) and what it declares (`FamilySpec`).

A family is a folder of `lm_eval_tasks/` holding its generator, its task YAMLs, its README
and a `family.py` that defines `SPEC = FamilySpec(...)`. Everything outside the folder that
needs to know about a family (the data API, task names, finetune, augment, the study, the
analysis) reads it from the spec through `lm_eval_tasks.families`, so adding a family means
adding a folder (and naming it in the umbrella group `_icl_ft.yaml`).

This module imports nothing of ours: generators and specs import it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

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

    Coverage annotations (see `lm_eval_tasks.icl_context`), opaque fact keys chosen by the
    family: `icl_fact_keys[i]` / `train_fact_keys[i]` are the facts `icl_facts[i]` /
    `train[i]` state, `test_needs[split][j]` the facts `tests[split][j]` needs. `coverage`
    describes the ICL context that `generate_family` chose and the items it scores.
    """

    family: str
    version: str
    seed: int  # the data seed (`data_seed` in provenance records)
    options: dict[str, Any]
    train: list[dict[str, Any]]
    icl_facts: list[str]
    tests: dict[str, list[dict[str, Any]]]
    oracle: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    icl_fact_keys: list[tuple[str, ...]] = dataclasses.field(default_factory=list)
    train_fact_keys: list[tuple[str, ...]] = dataclasses.field(default_factory=list)
    test_needs: dict[str, list[tuple[str, ...]]] = dataclasses.field(default_factory=dict)
    coverage: dict[str, Any] = dataclasses.field(default_factory=dict)

    def provenance(self) -> dict[str, Any]:
        """What identifies this instance: recorded with every adapter and augmented file."""
        return {
            "family": self.family,
            "version": self.version,
            "data_seed": self.seed,
            "options": self.options,
            "train_sha256": _sha256_rows(self.train),
        }


def _sha256_rows(rows: list[dict[str, Any]]) -> str:
    payload = "\n".join(json.dumps(row, sort_keys=True, ensure_ascii=False) for row in rows)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class StudyDefaults:
    """What `icl-ft study` needs to know about a family beyond its data.

    `options`: study preset name ("small", "paper") -> generator options of that preset; a
    preset not named here uses the generator's defaults (the full-size data).
    `augment_items` feeds the study's rough ETA: the source items an augmentation of the small
    preset's data covers when the preset does not limit them.
    """

    options: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    augment_items: int = 20


@dataclasses.dataclass(frozen=True)
class AugmentPrompt:
    """A family's own augmentation prompt, used instead of augment's generic one for its mode.

    The template is `lm_eval_tasks/<family>/prompts/<version>.jinja`, rendered with the same
    variables as the generic one (local: `statement`; global: `context`, `document`).
    `answer_kind` is the kind of the sentences before any section header of the answer;
    `stop_strings` end the answer; `require_all_entities` drops a sentence that leaves out
    one of a one-sentence source's nonsense words (see augment.parsing).
    """

    version: str
    answer_kind: str
    stop_strings: tuple[str, ...]
    require_all_entities: bool = False


@dataclasses.dataclass(frozen=True)
class FamilySpec:
    """A family's declaration (its folder's `family.py` defines `SPEC`).

    `generate(seed=0, **options) -> FamilyData` makes the data; its keyword defaults are the
    family's options (lm-eval `--metadata`, `--family-option NAME=VALUE`). `splits` are the test
    splits, each a task `icl_ft_<name>_<split>_{icl,ft}`; `chance` the accuracy of guessing
    uniformly among an item's choices; `oracle` whether `FamilyData.oracle` holds statements
    (augment's `oracle` mode, the study's `ft_oracle` condition). `audit_checker(data) ->
    FamilyChecker` is the family's plug-in to `icl-ft audit` (its symbolic checker, in the
    folder's `audit.py`; see `lm_eval_tasks.audit.checker` and docs/audit.md); None gives the
    fact-blind checks only. `augment_prompts`: augment mode ("local", "global") -> the
    family's own prompt (a procedure is restated and applied, not reversed); modes not named
    use augment's generic prompts.
    """

    name: str
    generate: Callable[..., FamilyData]
    splits: tuple[str, ...]
    chance: float
    oracle: bool
    study: StudyDefaults = dataclasses.field(default_factory=StudyDefaults)
    description: str = ""
    audit_checker: Callable[[FamilyData], Any] | None = None
    augment_prompts: Mapping[str, AugmentPrompt] = dataclasses.field(default_factory=dict)
