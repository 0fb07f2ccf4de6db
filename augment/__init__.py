"""Augmented finetuning data from a model's own in-context inferences (`python -m augment`).

Modes: `local` (rephrase and reverse each training fact), `global` (the training set in
context, then inferences linking one fact to the rest), `oracle` (the data generator's
valid statements: an upper-bound control, written to its own file). See `augment.__main__`.
"""

__version__ = "0.1.1"  # 0.1.1: lost_entity applies to one-sentence sources only
