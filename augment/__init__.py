"""Augmented finetuning data from a model's own in-context inferences (`python -m augment`).

    import augment
    summary = augment.run(augment.AugmentConfig(mode="local", family="reversal"))

Modes: `local` (rephrase and reverse each training fact), `global` (the training set in
context, then inferences linking one fact to the rest), `oracle` (the data generator's
valid statements: an upper-bound control, written to its own file). `run(config)` is the
entry point (`augment.runner`); importing this package loads no model library.
"""

from augment.config import AugmentConfig, ConfigError
from augment.runner import VERSION as __version__
from augment.runner import run

__all__ = ["AugmentConfig", "ConfigError", "__version__", "run"]
