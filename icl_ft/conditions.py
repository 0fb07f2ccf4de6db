"""The study's conditions, in the order of the paper's figures, and what each one scores.

    base        base model, the bare questions (`_ft` prompts): the contamination control, at chance
    icl         base model, the training facts before each question (`_icl` prompts)
    ft          a LoRA adapter trained on the family's training data, the bare questions
    ft_local    ... trained on the training data + local augmentation (rephrasings, reversals)
    ft_global   ... + global augmentation (inferences with the whole training set in context)
    ft_oracle   ... + the generator's oracle statements (the upper-bound control)

The study runs them (`icl_ft.study`) and `icl-ft compare` orders its tables by them.
"""

from __future__ import annotations

CONDITIONS = ("base", "icl", "ft", "ft_local", "ft_global", "ft_oracle")
DEFAULT_CONDITIONS = ("base", "icl", "ft", "ft_local", "ft_global")
# Trained condition -> augmentation mode whose rows are added to the training data (None: original data only).
AUGMENT_MODE = {"ft": None, "ft_local": "local", "ft_global": "global", "ft_oracle": "oracle"}
TRAINED = tuple(AUGMENT_MODE)


def is_trained(condition: str) -> bool:
    """Scored on a LoRA adapter (one per training seed)."""
    return condition in AUGMENT_MODE


def prompt_condition(condition: str) -> str:
    """The prompt condition of the tasks a study condition scores: `icl` or `ft` (lm_eval_tasks.families)."""
    return "icl" if condition == "icl" else "ft"
