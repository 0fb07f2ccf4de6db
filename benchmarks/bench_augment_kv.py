"""Global augmentation: KV-cache reuse of the shared context vs recomputing it per document.

    python benchmarks/bench_augment_kv.py                       # SmolLM2, reversal, 16 documents
    python benchmarks/bench_augment_kv.py --documents 4 --batch-size 2 --context-token-budget 2000

Builds the global-augmentation prompts exactly as `python -m augment --mode global` does
(the reversal family's training documents in context, subsampled to the token budget),
then generates greedily for the first N facts in both ways in one process, alternating
batch by batch: continuing each batch of documents from a copy of the context's KV cache
(computed once, inside the timing), and recomputing the context for every document. Prints
both times, their ratio, and whether every greedy output is identical (exit status 1 if not).
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="HF model directory (default: the embedded SmolLM2)")
    parser.add_argument("--family", default="reversal")
    parser.add_argument("--documents", type=int, default=16, help="documents generated in each condition")
    parser.add_argument("--batch-size", type=int, default=8, help="documents generated together")
    parser.add_argument("--context-token-budget", type=int, default=4000)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--dtype", default="float32", help="float32 or bfloat16")
    args = parser.parse_args(argv)

    import torch

    from augment.backends import HFGenerator, SamplingParams
    from augment.config import AugmentConfig
    from augment.global_ import context_documents
    from augment.items import source_items
    from augment.prompting import GLOBAL_PROMPT, split_shared_prefix
    from lm_eval_tasks.api import generate_family

    model = args.model
    if model is None:
        from icl_ft_common.embedded_model import ensure_checkpoint

        model = str(ensure_checkpoint())
    generator = HFGenerator(model, dtype=args.dtype, batch_size=args.batch_size)
    cfg = AugmentConfig(mode="global", family=args.family, context_token_budget=args.context_token_budget)
    data = generate_family(args.family)
    shown, info = context_documents(cfg, data, generator)
    documents = [item.text for item in source_items(data)[: args.documents]]
    prefix, suffixes = split_shared_prefix(GLOBAL_PROMPT, documents, context=shown)
    params = SamplingParams(max_new_tokens=args.max_new_tokens, stop_strings=GLOBAL_PROMPT.stop_strings)
    print(f"model {model} ({args.dtype}), torch threads {torch.get_num_threads()}")
    if generator.cache_reuse is None:  # the probe's reason was logged
        print("error: this model cannot reuse a prefix KV cache, nothing to compare", file=sys.stderr)
        return 1
    print(
        f"prefix KV cache reuse: {generator.cache_reuse.describe()}; batches mix suffix lengths: "
        f"{generator.padding_is_ignored}"
    )
    print(
        f"context: {info['documents_shown']}/{info['documents_total']} documents, "
        f"{generator.count_tokens(prefix)} prefix tokens; {len(documents)} documents in batches of "
        f"{args.batch_size}, max_new_tokens {args.max_new_tokens}, greedy"
    )

    # The two conditions alternate batch by batch, so that load from other processes on a
    # shared machine falls on both alike; the first reuse call includes computing the
    # context's KV cache (once for the whole run).
    timings, outputs = {True: 0.0, False: 0.0}, {True: [], False: []}
    for start in range(0, len(suffixes), args.batch_size):
        for reuse in (True, False):
            begin = time.perf_counter()
            batch = suffixes[start : start + args.batch_size]
            outputs[reuse] += generator.generate_with_prefix(prefix, batch, params, reuse_cache=reuse)
            timings[reuse] += time.perf_counter() - begin
        print(
            f"  {len(outputs[True])}/{len(documents)} documents: reuse {timings[True]:.1f} s, "
            f"recompute {timings[False]:.1f} s",
            flush=True,
        )
    for reuse, label in ((True, "reuse prefix KV cache"), (False, "recompute context    ")):
        print(f"{label}: {timings[reuse]:7.1f} s ({timings[reuse] / len(documents):.2f} s/document)")
    identical = outputs[True] == outputs[False]
    print(f"speed-up (recompute / reuse): {timings[False] / timings[True]:.2f}x")
    matches = sum(a == b for a, b in zip(outputs[True], outputs[False]))
    print(f"greedy outputs identical: {identical} ({matches}/{len(documents)})")
    print(f"example output: {outputs[True][0]!r}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
