"""Local (sentence) augmentation: the model rephrases and reverses each training fact.

One few-shot prompt per fact (`prompts/local-v1.jinja`, or the family's own) asks for both; the answer's
"Rephrasings:" and "Reversals:" sections give each kept sentence its kind.
"""

from __future__ import annotations

import logging

from augment.backends import Generator
from augment.config import AugmentConfig
from augment.io import ResumableWriter
from augment.items import SourceItem, check_generations, chunks, record_item, sampling_params
from augment.parsing import words_of
from augment.prompting import prompt_for, render

logger = logging.getLogger(__name__)


def run_local(cfg: AugmentConfig, items: list[SourceItem], generate: Generator, writer: ResumableWriter) -> None:
    generator_name = getattr(generate, "name", type(generate).__name__)
    prompt = prompt_for("local", cfg.family)
    todo = [item for item in items if not writer.is_done(item.id)]
    logger.info("local augmentation: %d item(s) to do, %d already done", len(todo), len(items) - len(todo))
    for chunk in chunks(todo, cfg.batch_size):
        prompts = [render(prompt, statement=item.text) for item in chunk for _ in range(cfg.num_samples)]
        params = sampling_params(cfg, prompt.stop_strings, [item.id for item in chunk])
        generations = check_generations(generate(prompts, params), len(prompts))
        for position, item in enumerate(chunk):
            item_generations = generations[position * cfg.num_samples : (position + 1) * cfg.num_samples]
            record_item(cfg, writer, generator_name, prompt, item, item_generations, words_of(item.text))
        logger.info("local augmentation: %d/%d item(s) done", len(writer.records), len(items))
