"""The check before a run reports success: does the saved adapter change the model at all?

A LoRA adapter whose weights did not load (wrong module names, a save that missed keys,
B matrices still at zero) scores exactly like the base model, and an evaluation of it
would silently report the base model's accuracy. So the adapter is reloaded from disk the
way lm-eval loads it (`PeftModel.from_pretrained` over a fresh base model) and some
training units are scored with and without it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from finetune.data import PaddingCollator
from finetune.errors import FinetuneError

logger = logging.getLogger(__name__)

SCORING_BATCH = 8


def mean_loglik_per_token(model, examples: list[dict[str, list[int]]], pad_token_id: int) -> list[float]:
    """Mean log-probability of each example's labelled tokens under `model` (fp32, no dropout)."""
    import torch

    collate = PaddingCollator(pad_token_id)
    scores = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(examples), SCORING_BATCH):
            batch = collate(examples[start : start + SCORING_BATCH])
            batch = {name: tensor.to(model.device) for name, tensor in batch.items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
            labels = batch["labels"][:, 1:]
            logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
            mask = labels != -100
            token_logprobs = logprobs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1) * mask
            scores += (token_logprobs.sum(-1) / mask.sum(-1).clamp(min=1)).tolist()
    return scores


def check_adapter(
    base_model: str,
    adapter_dir: Path,
    examples: list[dict[str, list[int]]],
    pad_token_id: int,
    trained_scores: list[float],
    min_change: float,
) -> dict[str, Any]:
    """Score `examples` with the base model and with the saved adapter; raise if they barely differ.

    `trained_scores` are the in-memory trained model's scores of the same examples: the
    reloaded adapter must reproduce them (a lossless save/load round trip).
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    base_scores = mean_loglik_per_token(model, examples, pad_token_id)
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    adapted_scores = mean_loglik_per_token(model, examples, pad_token_id)
    changes = [adapted - base for adapted, base in zip(adapted_scores, base_scores)]
    result = {
        "units": len(examples),
        "mean_change_per_token": sum(changes) / len(changes),
        "mean_abs_change_per_token": sum(abs(c) for c in changes) / len(changes),
        "max_reload_difference": max(abs(a - t) for a, t in zip(adapted_scores, trained_scores)),
    }
    logger.info(
        "adapter check on %d training units: log-likelihood %+.4f nats/token (mean |change| %.4f), reload diff %.1e",
        result["units"],
        result["mean_change_per_token"],
        result["mean_abs_change_per_token"],
        result["max_reload_difference"],
    )
    if result["mean_abs_change_per_token"] < min_change:
        raise FinetuneError(
            f"the saved adapter changes the log-likelihood of training units by only "
            f"{result['mean_abs_change_per_token']:.2e} nats/token (< min_loglik_change={min_change}): it would score "
            "like the base model; train longer or with a higher learning rate, or check the LoRA target modules"
        )
    # Same weights, same fp32 arithmetic: only a lossy save/load makes these differ.
    if result["max_reload_difference"] > 1e-3:
        raise FinetuneError(
            f"the adapter reloaded from {adapter_dir} scores differently from the trained model "
            f"(max difference {result['max_reload_difference']:.2e} nats/token): the saved adapter is incomplete"
        )
    return result
