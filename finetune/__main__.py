"""Train a LoRA adapter on a task family's training facts, then score it with lm-eval.

    python -m finetune --family reversal --output adapters/reversal
    lm_eval --model hf --model_args pretrained=$(icl-ft model path),peft=adapters/reversal \\
        --tasks icl_ft_reversal_ft --device cpu --batch_size 8

    # data-parallel on several processes (GPUs, or CPU processes talking over gloo;
    # `accelerate launch --cpu` would start a single process)
    accelerate launch --multi_gpu --num_processes 2 -m finetune --family reversal --output adapters/reversal

    # a YAML file of defaults; flags override it; kill -9 and continue
    python -m finetune --config run.yaml --learning-rate 1e-4
    python -m finetune --config run.yaml --learning-rate 1e-4 --resume

Every flag is a field of finetune.config.FinetuneConfig (`--help` lists them with their defaults).
"""

from __future__ import annotations

import logging
import sys

from finetune.config import ConfigError, FinetuneConfig

PROG = "python -m finetune"


def build_parser():
    from icl_ft_common.config import build_parser as build

    parser = build(FinetuneConfig, PROG, "Train a LoRA adapter on a task family's training facts (lm-eval-icl-ft).")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def main(cfg: FinetuneConfig) -> int:
    """Run one finetuning; a failure is one line on stderr and exit code 1."""
    import warnings

    from transformers.utils import logging as transformers_logging

    import finetune

    transformers_logging.disable_progress_bar()  # one log line per interval instead
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    try:
        finetune.run(cfg)
    except (finetune.FinetuneError, finetune.DataError) as err:
        print(f"finetune: error: {err}", file=sys.stderr)
        return 1
    return 0


def config_from_args(argv: list[str] | None = None) -> tuple[FinetuneConfig, dict]:
    """(config, other flags such as `verbose`): `--config` YAML first, flags over it. Raises ConfigError."""
    from icl_ft_common.config import parse_config

    return parse_config(FinetuneConfig, build_parser(), argv)


def cli(argv: list[str] | None = None) -> int:
    try:
        cfg, extras = config_from_args(argv)
    except ConfigError as err:
        print(f"finetune: error: {err}", file=sys.stderr)
        return 2
    verbose = extras.get("verbose", False)
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
