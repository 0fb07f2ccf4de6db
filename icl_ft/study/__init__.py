"""`icl-ft study`: the paper's grid of conditions on the same test items, resumable.

    icl-ft study --model $(icl-ft model path) --tasks icl_ft_reversal,icl_ft_syllogism,icl_ft_reversal_curse,icl_ft_semantic \\
        --out runs/study-small
    icl-ft study ... --seeds 1,2,3 --oracle          # more seeds, plus the oracle-augmentation control

Steps are dependencies, each done iff its atomic output exists:
augment data (per family and mode) -> adapters (per family, condition, seed) -> scoring cells.
`plan` resolves presets and flags into a `StudyPlan` (written as RUN_DIR/study.json);
`cells` reads and writes the per-cell state files; `runner` executes what is not done yet.
"""


class StudyError(ValueError):
    """Bad input to the study; the message is one line that names the fix."""
