"""What an adapter directory records about how it was made, and how to score it.

`icl_ft_provenance.json` (`icl_ft_common.artifacts.PROVENANCE_FILE`, the file name the
embedded model's conversion uses too) holds the base model, the family's data identity
(`FamilyData.provenance()`), a sha256 of every data file, the full config, the data and
training seeds, training results and the lm-eval command that scores the adapter.
`README.md` is the model card: the same facts for humans.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from icl_ft_common.artifacts import PROVENANCE_FILE

# Files of a base model directory worth hashing: weights and what shapes tokenization.
_MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".json", ".model", ".jinja")


def base_model_record(model_path: str) -> dict[str, Any]:
    """The base model's path and, for a local directory, the sha256 of its weight/config files."""
    from finetune.data import sha256_file

    record: dict[str, Any] = {"path": model_path}
    directory = Path(model_path)
    if directory.is_dir():
        record["files_sha256"] = {
            path.name: sha256_file(path)
            for path in sorted(directory.iterdir())
            if path.is_file() and path.name.endswith(_MODEL_FILE_SUFFIXES)
        }
        embedded = directory / PROVENANCE_FILE
        if embedded.is_file():  # e.g. the embedded SmolLM2's conversion record
            record["provenance"] = json.loads(embedded.read_text())
    return record


def lm_eval_command(base_model: str, adapter_dir: str | Path, family: str, data_seed: int, options: dict) -> str:
    """The command that scores the adapter in the FT condition on the data it was trained on.

    The tasks generate their data from `--metadata` (seed 0 and the generator's default
    options unless given), so a non-default seed or option must be passed on.
    """
    from lm_eval_tasks.families import condition_group

    command = [
        "lm_eval",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={base_model},peft={adapter_dir}",
        "--tasks",
        condition_group(family, "ft"),
    ]
    metadata = {**({"seed": data_seed} if data_seed != 0 else {}), **options}
    if metadata:
        command += ["--metadata", json.dumps(metadata, sort_keys=True)]
    return shlex.join(command)


def non_default_options(family: str, options: dict[str, Any]) -> dict[str, Any]:
    from lm_eval_tasks.api import family_options

    defaults = family_options(family)
    return {name: value for name, value in sorted(options.items()) if defaults.get(name) != value}


def model_card(record: dict[str, Any]) -> str:
    """README.md of the adapter directory, from its provenance record."""
    from lm_eval_tasks.families import family_group

    config, results = record["config"], record["results"]
    family = record["data"]["family"]
    data = f"data seed {config['data_seed']}, training seed {config['train_seed']}, "
    data += f"generator version {record['data']['version']}"
    data += ", plus extra data files" if config["extra_data"] else ""
    lora = f"r={config['lora_r']}, alpha={config['lora_alpha']}, dropout={config['lora_dropout']}"
    lora += f", modules={config['lora_target_modules']}"
    return f"""---
base_model: {record["base_model"]["path"]}
library_name: peft
tags: [lora, lm-eval-icl-ft, {family_group(family)}]
---

# LoRA adapter: `{family}` training facts (lm-eval-icl-ft)

A LoRA adapter for `{record["base_model"]["path"]}`, finetuned on the training split of the `{family}`
task family ({data}), split into `{config["unit"]}` units.
It exists to test what finetuning generalizes to (Lampinen et al. 2025, arXiv:2505.00661).
Score it in the FT condition with

```bash
{record["lm_eval_command"]}
```

| | |
|---|---|
| training units | {results["units"]} |
| optimizer steps | {results["steps"]} (batch {config["batch_size"]}, learning rate {config["learning_rate"]}) |
| LoRA | {lora} |
| final training loss | {results["final_loss"]:.4f} |
| tokens seen | {results["tokens_seen"]} (padding {100 * results["padding_fraction"]:.1f}% of processed tokens) |
| log-likelihood change on training units | {results["loglik_check"]["mean_change_per_token"]:+.3f} nats/token |
| wall time | {results["wall_time_seconds"]:.0f} s |

Everything needed to reproduce it (config, data hashes, library versions) is in
`{PROVENANCE_FILE}`.
"""
