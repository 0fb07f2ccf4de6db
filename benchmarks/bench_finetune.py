"""Finetuning throughput: tokens/s and the fraction of this machine's matmul FLOP/s it achieves.

    HF_HUB_OFFLINE=1 python benchmarks/bench_finetune.py                 # SmolLM2, reversal, fp32 vs bf16
    HF_HUB_OFFLINE=1 python benchmarks/bench_finetune.py --steps 30 --precisions bf16 --threads 1

Everything is measured in this one process, so the ratios hold on a shared, noisy machine:

- peak: the best time of a large square matmul per dtype (what the hardware gives a matmul);
- training: `finetune.train.run` for --steps optimizer steps per precision (checkpointing off),
  tokens/s = real (non-padding) tokens / training seconds;
- FLOPs of LoRA training, per token: 2*N forward + 2*N backward through the frozen weights
  (gradients w.r.t. activations; the frozen weights get none) + 6*N_lora for the adapters,
  where N counts every matmul weight of the base model including the output head, but not
  the embedding lookup. Attention score FLOPs are left out (sequences are ~25 tokens).
  Full finetuning would be the usual 6*N.
- padding: fraction of processed tokens that are padding, with the length-grouped batch
  order `finetune` uses and with a plain shuffled order, for the same units.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def matmul_peak(dtype_name: str, size: int = 2048, repeats: int = 5) -> float:
    """Best FLOP/s of a size x size x size matmul in `dtype_name`."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def matmul_parameters(model_path: str) -> tuple[int, int]:
    """(weights that take part in matmuls, embedding-table weights) of the base model."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    total = sum(p.numel() for p in model.parameters())  # a tied head is counted once here
    embedding = model.get_input_embeddings().weight.numel()
    head = model.get_output_embeddings().weight.numel()
    return total - embedding + head, embedding


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--family", default="reversal")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default); 1 on a busy machine")
    args = parser.parse_args()

    import logging

    import torch
    from transformers.utils import logging as transformers_logging

    from finetune import data
    from finetune.config import FinetuneConfig
    from finetune.train import resolve_model, run

    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    transformers_logging.disable_progress_bar()
    model_path = resolve_model(args.model)
    n_matmul, _ = matmul_parameters(model_path)
    print(
        f"model {model_path}: {n_matmul / 1e6:.1f}M matmul weights; {torch.get_num_threads()} torch thread(s)",
        flush=True,
    )

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for precision in args.precisions.split(","):
            peak_before = matmul_peak(precision)
            cfg = FinetuneConfig(
                family=args.family,
                model=model_path,
                output=str(Path(scratch) / precision),
                steps=args.steps,
                batch_size=args.batch_size,
                precision=precision,
                save_steps=10**6,
                logging_steps=10**6,
                min_loglik_change=0.0,
                threads=args.threads,
            )
            run(cfg)
            record = json.loads((cfg.output_path / "icl_ft_provenance.json").read_text())
            peak = max(peak_before, matmul_peak(precision))
            results = record["results"]
            from safetensors import safe_open

            with safe_open(str(cfg.output_path / "adapter_model.safetensors"), "pt") as adapter:
                n_lora = sum(adapter.get_tensor(name).numel() for name in adapter.keys())
            flops_per_token = 4 * n_matmul + 6 * n_lora
            achieved = results["tokens_per_second"] * flops_per_token
            rows.append((precision, results["tokens_per_second"], achieved, peak, results["padding_fraction"]))

        # Padding with the grouped order vs a plain shuffle of the same units.
        from transformers import AutoTokenizer

        documents, _, _ = data.load_documents(args.family, 0, {}, [])
        examples, _ = data.tokenize_units(
            data.make_units(documents, "sentence"), AutoTokenizer.from_pretrained(model_path), 256
        )
        lengths = [len(e["input_ids"]) for e in examples]
        grouped = data.training_order(lengths, args.steps * args.batch_size * 10, args.batch_size, 0)
        rng = random.Random(0)
        shuffled = [rng.randrange(len(lengths)) for _ in grouped]

    print(f"\n{'precision':>9} {'tokens/s':>9} {'GFLOP/s':>8} {'peak GFLOP/s':>13} {'of peak':>8} {'padding':>8}")
    for precision, tokens_per_second, achieved, peak, padding in rows:
        rates = f"{tokens_per_second:9.0f} {achieved / 1e9:8.1f} {peak / 1e9:13.1f}"
        print(f"{precision:>9} {rates} {achieved / peak:8.1%} {padding:8.1%}")
    if len(rows) == 2:
        print(f"\n{rows[1][0]} / {rows[0][0]} training tokens/s: {rows[1][1] / rows[0][1]:.2f}x")
    print(
        f"padding over {len(grouped)} units in batches of {args.batch_size}: "
        f"length-grouped {data.padding_stats(lengths, grouped, args.batch_size)['padding_fraction']:.1%}, "
        f"shuffled {data.padding_stats(lengths, shuffled, args.batch_size)['padding_fraction']:.1%}"
    )


if __name__ == "__main__":
    main()
