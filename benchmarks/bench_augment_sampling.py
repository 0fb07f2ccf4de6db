"""Augment's sampling: one seeded random stream per prompt vs transformers' one stream per batch.

    python benchmarks/bench_augment_sampling.py                  # SmolLM2, 16 local prompts, batch 8
    python benchmarks/bench_augment_sampling.py --prompts 4 --batch-size 2 --max-new-tokens 16

Per-prompt seeds (`augment.backends.per_prompt_sampler`: Gumbel-max on the warped logits, a
torch.Generator per row) make what a prompt samples independent of its batch, which makes a
resumed augmentation exact. This measures what that costs against `generate(do_sample=True)`
with one global seed, on the same local-augmentation prompts, alternating the two batch by
batch in one process. Prints both times and their ratio, and whether the per-prompt outputs
are the same in batches of `--batch-size` and of 1 (exit status 1 if not).
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="HF model directory (default: the embedded SmolLM2)")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--top-p", type=float, default=0.95)
    args = parser.parse_args(argv)

    import torch

    from augment.backends import HFGenerator, SamplingParams
    from augment.items import prompt_seed, source_items
    from augment.prompting import LOCAL_PROMPT, render
    from icl_ft_common.embedded_model import ensure_checkpoint
    from lm_eval_tasks.api import generate_family

    model = args.model or str(ensure_checkpoint())
    items = source_items(generate_family("reversal"))[: args.prompts]
    prompts = [render(LOCAL_PROMPT, statement=item.text) for item in items]
    seeds = tuple(prompt_seed(0, item.id, 0) for item in items)
    params = SamplingParams(
        temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens, prompt_seeds=seeds
    )
    generator = HFGenerator(model, dtype="float32", batch_size=args.batch_size)
    tokenizer = generator.tokenizer

    per_prompt_seconds = global_seconds = 0.0
    per_prompt_outputs = []
    for start in range(0, len(prompts), args.batch_size):
        batch = prompts[start : start + args.batch_size]
        started = time.perf_counter()
        per_prompt_outputs += generator(batch, SamplingParams(**{**vars(params), "prompt_seeds": seeds[start:]}))
        per_prompt_seconds += time.perf_counter() - started

        started = time.perf_counter()
        torch.manual_seed(0)
        encoded = tokenizer(batch, return_tensors="pt", padding=True)
        with torch.no_grad():
            generator.model.generate(
                **encoded,
                max_new_tokens=args.max_new_tokens,
                do_sample=True,
                temperature=args.temperature,
                top_p=args.top_p,
                pad_token_id=tokenizer.pad_token_id,
            )
        global_seconds += time.perf_counter() - started

    single = HFGenerator.__new__(HFGenerator)
    single.__dict__.update(generator.__dict__)
    single.batch_size = 1
    alone = single(prompts, params)
    same = alone == per_prompt_outputs
    print(f"{len(prompts)} prompts, batch {args.batch_size}, {args.max_new_tokens} new tokens, {model}")
    print(
        f"per-prompt seeds: {per_prompt_seconds:.2f} s; transformers do_sample: {global_seconds:.2f} s; "
        f"ratio {per_prompt_seconds / global_seconds:.2f}"
    )
    print(f"per-prompt outputs in batches of {args.batch_size} equal those of batch 1: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
