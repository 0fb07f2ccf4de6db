"""LoRA finetuning on a task family's training facts: `python -m finetune --help`.

    import finetune
    adapter_dir = finetune.run(finetune.FinetuneConfig(family="reversal", output="adapters/reversal"))

`run(config)` trains, checks and publishes the adapter and returns its directory; it raises
FinetuneError or DataError (one-line messages) when it cannot. Importing this package is
cheap; torch, transformers and peft load inside `run`.
"""

from finetune.config import ConfigError, FinetuneConfig
from finetune.errors import DataError, FinetuneError
from finetune.train import run

__all__ = ["ConfigError", "DataError", "FinetuneConfig", "FinetuneError", "run"]
