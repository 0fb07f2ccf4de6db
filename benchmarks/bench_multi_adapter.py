"""Benchmark scoring N LoRA adapters of one family in one pass against N separate `lm_eval` runs.

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python benchmarks/bench_multi_adapter.py \\
        --adapters 6 --task icl_ft_reversal_ft --limit 20 --batch-size 8 --threads 1

In one run, on the same N adapters (random LoRA: rank 16 on every linear layer as `finetune`
trains them, B ~ N(0, 0.02) so that each adapter changes the scores), the same task, items
and settings:

- separately: N `lm_eval --model hf --model_args pretrained=MODEL,dtype=float32,peft=ADAPTER
  --tasks TASK --log_samples ...` subprocesses, one after the other, as a user would type them;
- in one pass: one subprocess running `icl_ft.multi_adapter.score_adapters` on all N (its
  Python start and imports are counted, as the separate runs' are).

Printed: both wall times, their ratio (the speed-up), the max abs log-likelihood difference
over every request of every adapter, and whether every per-doc accuracy agrees. Exit status
1 if |dLL| exceeds 1e-4 or any accuracy differs. The wall times include whatever else the
machine is doing: on a shared machine only the ratio within one run means something.

`--forward-probe` instead times the two ways of running N adapters over the same rows in one
process: switching the active adapter (`set_adapter`, N forwards of B rows, what
`score_adapters` does) and PEFT's mixed-adapter batch (one forward of N x B rows with
`adapter_names=[...]`), and prints their ratio and the max abs difference of the log-probs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MAX_ABS_DLL = 1e-4
# The small study preset's reversal data, so the items are those the study scores.
DEFAULT_METADATA = '{"seed": 0, "num_facts": 20, "examples_per_fact": 5}'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="base model directory (default: the embedded SmolLM2, `icl-ft model path`)")
    parser.add_argument("--adapters", type=int, default=6, help="number of adapters N (default 6)")
    parser.add_argument(
        "--task", default="icl_ft_reversal_ft", help="lm-eval task or group (default icl_ft_reversal_ft)"
    )
    parser.add_argument("--metadata", default=DEFAULT_METADATA, help=f"lm-eval --metadata (default {DEFAULT_METADATA})")
    parser.add_argument("--limit", type=int, default=20, help="lm-eval --limit per task (default 20)")
    parser.add_argument("--batch-size", type=int, default=8, help="lm-eval batch size (default 8)")
    parser.add_argument("--threads", type=int, help="torch threads of every subprocess (OMP_NUM_THREADS)")
    parser.add_argument("--keep", type=Path, help="keep adapters and outputs in this directory")
    parser.add_argument("--json", type=Path, help="also write the measurements as JSON here")
    parser.add_argument("--forward-probe", action="store_true", help="time set_adapter vs mixed-adapter batches only")
    parser.add_argument("--seq-len", type=int, default=32, help="--forward-probe: tokens per row (default 32)")
    parser.add_argument("--repeats", type=int, default=3, help="--forward-probe: timed repeats (default 3)")
    parser.add_argument("--worker-spec", type=Path, help=argparse.SUPPRESS)
    return parser


def make_random_lora(model, out_dir: Path, seed: int) -> Path:
    """Rank 16 on every linear layer (finetune's default) with random non-zero B: a zero B is a no-op."""
    import torch
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
    peft_model.save_pretrained(out_dir)
    return out_dir


def make_adapters(model_dir: str, workdir: Path, count: int) -> list[str]:
    import torch
    from transformers import AutoModelForCausalLM

    adapters = []
    for seed in range(count):
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        adapters.append(str(make_random_lora(model, workdir / "adapters" / f"lora-{seed}", seed)))
    return adapters


def run_worker(spec_file: Path) -> None:
    """The one-pass side, in its own process: score every adapter with score_adapters."""
    import logging

    from icl_ft.multi_adapter import AdapterCell, score_adapters

    logging.basicConfig(level=logging.WARNING)
    spec = json.loads(spec_file.read_text())
    cells = [AdapterCell(Path(a).name, a, Path(spec["out"]) / Path(a).name) for a in spec["adapters"]]
    outcomes = score_adapters(
        spec["model"],
        cells,
        spec["task"],
        metadata=spec["metadata"],
        limit=spec["limit"],
        batch_size=spec["batch_size"],
        device="cpu",
    )
    failed = {name: o.error for name, o in outcomes.items() if o.error}
    if failed:
        raise SystemExit(f"error: cells failed: {failed}")


def forward_probe(model_dir: str, adapters: list[str], rows: int, seq_len: int, repeats: int) -> dict:
    """Median wall time of N adapters over the same rows: adapter switching vs one mixed-adapter batch."""
    import statistics

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    names = [f"adapter{i}" for i in range(len(adapters))]
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32), adapters[0], adapter_name=names[0]
    )
    for name, adapter in zip(names[1:], adapters[1:]):
        model.load_adapter(adapter, adapter_name=name)
    model.eval()
    ids = torch.randint(0, model.config.vocab_size, (rows, seq_len), generator=torch.Generator().manual_seed(0))

    def switching() -> torch.Tensor:
        outputs = []
        for name in names:
            model.set_adapter(name)
            outputs.append(torch.log_softmax(model(input_ids=ids).logits, dim=-1))
        return torch.cat(outputs)

    def mixed() -> torch.Tensor:
        per_row = [name for name in names for _ in range(rows)]
        return torch.log_softmax(model(input_ids=ids.repeat(len(names), 1), adapter_names=per_row).logits, dim=-1)

    seconds: dict[str, list[float]] = {"switching": [], "mixed": []}
    outputs = {}
    with torch.no_grad():
        for _ in range(repeats + 1):  # the first round warms up and is not counted
            for name, run in (("switching", switching), ("mixed", mixed)):
                started = time.perf_counter()
                outputs[name] = run()
                seconds[name].append(time.perf_counter() - started)
    median = {name: statistics.median(values[1:]) for name, values in seconds.items()}
    return {
        "switching_seconds": median["switching"],
        "mixed_seconds": median["mixed"],
        "switching_over_mixed": median["switching"] / median["mixed"],
        "max_abs_logprob_diff": float((outputs["switching"] - outputs["mixed"]).abs().max()),
    }


def child_env(threads: int | None) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def timed(command: list[str], env: dict[str, str], log: Path) -> float:
    started = time.perf_counter()
    with open(log, "w") as handle:
        result = subprocess.run(command, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"error: {command[:3]}... failed (exit {result.returncode}); see {log}")
    return seconds


def read_scores(output: Path) -> dict[str, tuple[float, int]]:
    """request key -> (log-likelihood, acc of its doc), from one lm-eval output dir's samples files."""
    scores = {}
    for path in output.glob("*/samples_*.jsonl"):
        task = path.name.removeprefix("samples_").rsplit("_", 1)[0]
        for line in path.read_text().splitlines():
            row = json.loads(line)
            for choice, ((loglikelihood, _greedy),) in enumerate(row["resps"]):
                scores[f"{task}/{row['doc_id']}/{choice}"] = (float(loglikelihood), row["acc"])
    if not scores:
        raise SystemExit(f"error: no samples under {output}")
    return scores


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker_spec:
        run_worker(args.worker_spec)
        return 0
    if args.adapters < 1 or args.limit < 1 or args.batch_size < 1:
        raise SystemExit("error: --adapters, --limit and --batch-size must be at least 1")
    try:
        metadata = json.loads(args.metadata)
    except ValueError:
        raise SystemExit(f"error: --metadata {args.metadata!r} is not JSON, e.g. {DEFAULT_METADATA}") from None
    os.environ.update(child_env(args.threads))
    if args.model is None:
        from icl_ft_common.embedded_model import ensure_checkpoint

        args.model = str(ensure_checkpoint())
    with tempfile.TemporaryDirectory(prefix="bench-multi-adapter-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        print(f"making {args.adapters} random LoRA adapters ...", file=sys.stderr, flush=True)
        adapters = make_adapters(args.model, workdir, args.adapters)
        if args.forward_probe:
            return report_probe(args, forward_probe(args.model, adapters, args.batch_size, args.seq_len, args.repeats))
        env = child_env(args.threads)

        spec = {
            "model": args.model,
            "adapters": adapters,
            "task": args.task,
            "metadata": metadata,
            "limit": args.limit,
            "batch_size": args.batch_size,
            "out": str(workdir / "one-pass"),
        }
        (workdir / "spec.json").write_text(json.dumps(spec))
        print("scoring all adapters in one pass ...", file=sys.stderr, flush=True)
        one_pass = timed(
            [sys.executable, __file__, "--worker-spec", str(workdir / "spec.json")], env, workdir / "one-pass.log"
        )

        separate = []
        for adapter in adapters:
            name = Path(adapter).name
            print(f"lm_eval for {name} ...", file=sys.stderr, flush=True)
            command = [
                sys.executable,
                "-m",
                "lm_eval",
                "--model",
                "hf",
                "--model_args",
                f"pretrained={args.model},dtype=float32,peft={adapter}",
                "--tasks",
                args.task,
                "--metadata",
                json.dumps(metadata),
                "--limit",
                str(args.limit),
                "--batch_size",
                str(args.batch_size),
                "--device",
                "cpu",
                "--log_samples",
                "--output_path",
                str(workdir / "separate" / name),
            ]
            separate.append(timed(command, env, workdir / f"separate-{name}.log"))

        dlls, docs, acc_differs = [], 0, 0
        for adapter in adapters:
            name = Path(adapter).name
            ours, theirs = read_scores(workdir / "one-pass" / name), read_scores(workdir / "separate" / name)
            if ours.keys() != theirs.keys():
                raise SystemExit(f"error: {name}: the two sides scored different requests")
            dlls += [abs(ours[k][0] - theirs[k][0]) for k in ours]
            by_doc = {k.rsplit("/", 1)[0]: (ours[k][1], theirs[k][1]) for k in ours}
            docs += len(by_doc)
            acc_differs += sum(a != b for a, b in by_doc.values())

    ratio = sum(separate) / one_pass
    max_dll = max(dlls)
    ok = max_dll <= TARGET_MAX_ABS_DLL and acc_differs == 0
    print(
        f"model {args.model}, task {args.task}, --limit {args.limit}, batch size {args.batch_size}, "
        f"threads {args.threads or 'default'}, {args.adapters} adapters, {len(dlls)} requests each side"
    )
    print(f"separate lm_eval runs: {sum(separate):7.1f} s wall ({', '.join(f'{s:.1f}' for s in separate)})")
    print(f"one pass             : {one_pass:7.1f} s wall")
    print(f"speed-up (separate / one pass): {ratio:.2f}x")
    print(f"{'PASS' if max_dll <= TARGET_MAX_ABS_DLL else 'FAIL'}  max |dLL| {max_dll:.2e} (target <= 1e-4)")
    print(f"{'PASS' if acc_differs == 0 else 'FAIL'}  per-doc acc differs on {acc_differs}/{docs} docs (target 0)")
    if args.json:
        measured = {
            "separate_seconds": separate,
            "one_pass_seconds": one_pass,
            "speedup": ratio,
            "max_abs_dll": max_dll,
            "docs": docs,
            "acc_differs": acc_differs,
        }
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, **measured}, indent=1))
    return 0 if ok else 1


def report_probe(args: argparse.Namespace, probe: dict) -> int:
    import torch

    print(
        f"model {args.model}, {args.adapters} adapters x {args.batch_size} rows x {args.seq_len} tokens, "
        f"torch threads {torch.get_num_threads()}, median of {args.repeats}"
    )
    print(f"set_adapter, one forward per adapter: {probe['switching_seconds']:.3f} s")
    print(f"mixed-adapter batch, one forward    : {probe['mixed_seconds']:.3f} s")
    print(
        f"switching / mixed: {probe['switching_over_mixed']:.2f}x; max |d log-prob| {probe['max_abs_logprob_diff']:.2e}"
    )
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, **probe}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
