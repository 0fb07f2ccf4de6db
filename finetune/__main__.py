"""Train a LoRA adapter on a task family's training facts, then score it with lm-eval.

    python -m finetune --family reversal --output-dir adapters/reversal
    lm_eval --model hf --model_args pretrained=$(icl-ft model path),peft=adapters/reversal \\
        --tasks icl_ft_reversal_ft --device cpu --batch_size 8

    # data-parallel on several processes (GPUs, or CPU processes talking over gloo;
    # `accelerate launch --cpu` would start a single process)
    accelerate launch --multi_gpu --num_processes 2 -m finetune --family reversal --output-dir adapters/reversal

    # a YAML file of defaults; flags override it; kill -9 and continue
    python -m finetune --config run.yaml --learning-rate 1e-4
    python -m finetune --config run.yaml --learning-rate 1e-4 --resume

Every flag is a field of finetune.config.FinetuneConfig (`--help` lists them).
"""

from __future__ import annotations

import logging
import sys

from finetune import FinetuneError
from finetune.config import ConfigError, FinetuneConfig, config_from_args


def main(cfg: FinetuneConfig) -> int:
    import warnings

    from transformers.utils import logging as transformers_logging

    from finetune.data import DataError
    from finetune.train import run

    transformers_logging.disable_progress_bar()  # one log line per interval instead
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

    try:
        run(cfg)
    except (FinetuneError, DataError) as err:
        print(f"finetune: error: {err}", file=sys.stderr)
        return 1
    return 0


def cli(argv: list[str] | None = None) -> int:
    try:
        cfg, verbose = config_from_args(argv)
    except ConfigError as err:
        print(f"finetune: error: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,  # under `icl-ft finetune` the icl-ft command has configured logging already
    )
    # The libraries' own INFO chatter (every Trainer argument, every file saved) drowns the progress lines.
    for noisy in ("transformers", "peft", "accelerate", "datasets", "httpx"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
    return main(cfg)


if __name__ == "__main__":
    sys.exit(cli())
