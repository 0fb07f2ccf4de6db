"""LoRA finetuning on a task family's training facts: `python -m finetune --help`.

    from finetune.config import FinetuneConfig
    from finetune.train import run
    adapter_dir = run(FinetuneConfig(family="reversal", output_dir="adapters/reversal"))

Importing this package is cheap; torch, transformers and peft load inside `run`.
"""


class FinetuneError(RuntimeError):
    """A run cannot proceed or its result is unusable; the message says what to do."""
