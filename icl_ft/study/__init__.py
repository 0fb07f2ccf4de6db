"""`icl-ft study`: the paper's grid of conditions on the same test items, resumable.

    icl-ft study --model $(icl-ft model path) \\
        --tasks icl_ft_reversal,icl_ft_syllogism,icl_ft_reversal_curse,icl_ft_semantic --output runs/study-small
    icl-ft study ... --train-seeds 1,2,3 --oracle    # more training seeds, plus the oracle-augmentation control

Steps are dependencies, each done iff its atomic output exists:
augment data (per family and mode) -> adapters (per family, condition, training seed) -> scoring cells.
`config` holds the command's settings (`StudyConfig`); `plan` resolves them over a preset into
a `StudyPlan` (written as RUN_DIR/study.json); `cells` names the steps and reads and writes their
state; `runner` executes what is not done yet (`execute_step`, behind an `Executor`).
"""


class StudyError(ValueError):
    """Bad input to the study; the message is one line that names the fix."""
