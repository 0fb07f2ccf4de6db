"""Global (document) augmentation: the training set in context, then one fact; the model
writes the inferences that link the fact to the rest (`prompts/global-v1.jinja`).

The context is the same for every fact, so it fits the prefix-cache reuse of
`HFGenerator.generate_with_prefix` (computed once per run) and vLLM's prefix caching.
When the training documents exceed `context_token_budget`, a seeded random subsample that
fits is shown (in training order), as the paper subsampled its largest ICL contexts; the
summary and the log say how many were shown.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from augment.backends import Generator
from augment.config import AugmentConfig
from augment.io import ResumableWriter
from augment.items import SourceItem, check_generations, chunks, record_item, sampling_params
from augment.parsing import normalize, words_of
from augment.prompting import prompt_for, split_shared_prefix
from lm_eval_tasks.context_budget import CHARS_PER_TOKEN, estimate_tokens, fit_to_budget

logger = logging.getLogger(__name__)


def context_documents(cfg: AugmentConfig, data, generate: Generator) -> tuple[list[str], dict[str, Any]]:
    """The documents shown in context, and what the summary records about them."""
    documents = [row["text"] for row in data.train] if cfg.context == "train" else list(data.icl_facts)
    count_tokens = getattr(generate, "count_tokens", None)
    # +1: the line break after each document. Without a tokenizer (a fake or foreign generator),
    # the shared tokenizer-free estimate.
    if count_tokens is not None:
        sizes = [count_tokens(document) + 1 for document in documents]
    else:
        sizes = [estimate_tokens(document) for document in documents]
    chosen = fit_to_budget(sizes, cfg.context_token_budget, random.Random(f"augment-global-context-{cfg.sample_seed}"))
    info = {
        "source": cfg.context,
        "documents_total": len(documents),
        "documents_shown": len(chosen),
        "subsampled": len(chosen) < len(documents),
        "tokens_shown": sum(sizes[index] for index in chosen),
        "token_budget": cfg.context_token_budget,
        "tokens_counted_by": "tokenizer" if count_tokens is not None else f"characters/{CHARS_PER_TOKEN}",
    }
    if info["subsampled"]:
        logger.warning(
            "global context: %d of %d training documents fit in %d tokens; showing a random subsample (seed %d)",
            len(chosen),
            len(documents),
            cfg.context_token_budget,
            cfg.sample_seed,
        )
    return [documents[index] for index in chosen], info


def run_global(
    cfg: AugmentConfig, data, items: list[SourceItem], generate: Generator, writer: ResumableWriter
) -> dict[str, Any]:
    generator_name = getattr(generate, "name", type(generate).__name__)
    prompt = prompt_for("global", cfg.family)
    shown, context_info = context_documents(cfg, data, generate)
    context_words = words_of(" ".join(shown))
    # A kept inference must say something new: no training document or fact again.
    copies = frozenset(normalize(text) for text in [*(row["text"] for row in data.train), *data.icl_facts])
    reuse = cfg.reuse_prefix_cache and hasattr(generate, "generate_with_prefix")
    todo = [item for item in items if not writer.is_done(item.id)]
    logger.info(
        "global augmentation: %d item(s) to do, %d already done, prefix cache reuse %s",
        len(todo),
        len(items) - len(todo),
        "on" if reuse else "off",
    )
    for chunk in chunks(todo, cfg.batch_size):
        prefix, suffixes = split_shared_prefix(prompt, [item.text for item in chunk], context=shown)
        suffixes = [suffix for suffix in suffixes for _ in range(cfg.num_samples)]
        params = sampling_params(cfg, prompt.stop_strings, [item.id for item in chunk])
        if reuse:
            generations = generate.generate_with_prefix(prefix, suffixes, params)
        else:
            generations = generate([prefix + suffix for suffix in suffixes], params)
        check_generations(generations, len(suffixes))
        for position, item in enumerate(chunk):
            item_generations = generations[position * cfg.num_samples : (position + 1) * cfg.num_samples]
            record_item(
                cfg,
                writer,
                generator_name,
                prompt,
                item,
                item_generations,
                context_words | words_of(item.text),
                copies,
            )
        logger.info("global augmentation: %d/%d item(s) done", len(writer.records), len(items))
    return context_info
