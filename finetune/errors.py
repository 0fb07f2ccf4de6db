"""The errors a finetuning run reports as one line (`python -m finetune` exits 1 with it)."""


class FinetuneError(RuntimeError):
    """A run cannot proceed or its result is unusable; the message says what to do."""


class DataError(ValueError):
    """Training data cannot be read; the message names the file and what is wrong."""
