"""`icl-ft study`: the paper's grid of conditions on the same test items, resumable.

    icl-ft study --model $(icl-ft model path) \\
        --tasks icl_ft_reversal,icl_ft_syllogism,icl_ft_reversal_curse,icl_ft_semantic --output runs/study-small
    icl-ft study ... --train-seeds 1,2,3 --oracle    # more training seeds, plus the oracle-augmentation control

    icl-ft study --model A --model B ... --executor ray    # several models; steps as Ray tasks
    icl-ft study ... --dry-run                            # steps, tokens, estimated time; nothing runs

Steps are dependencies, each done iff its atomic output exists:
augment data (per family and mode) -> adapters (per family, condition, training seed) -> scoring
cells (the ICL cell alone; the FT-prompt cells of a family in one pass over the base model).
`config` holds the command's settings (`StudyConfig`); `plan` resolves them over a preset into
a `StudyPlan` per model (written as study.json); `cells` names the steps, the run-directory
layout and reads and writes their state; `runner` executes what is not done yet (`StudyGraph`,
behind an `Executor`: `SerialExecutor` or `RayExecutor`, whose scheduler is `ray_executor`);
`dry_run` prices the plan.
"""


class StudyError(ValueError):
    """Bad input to the study; the message is one line that names the fix."""
