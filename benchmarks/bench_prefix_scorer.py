"""Benchmark `hf-prefix` against lm-eval's `hf` on the same ICL task and items, in one run.

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python benchmarks/bench_prefix_scorer.py \\
        --task icl_ft_reversal_forward_icl --limit 40 [--peft ADAPTER | --random-lora] [--random-model gemma3-1b]

Each backend runs in its own subprocess (`hf` first), which loads the model, evaluates
the task through `lm_eval.simple_evaluate` with `log_samples`, and reports its timings,
every request's log-likelihood and its peak resident memory. Separate processes make
the peak-memory numbers honest: torch's allocations are native (tracemalloc sees none
of them) and freed memory is not always returned to the OS, so one backend measured
after the other in one process would inherit its peak. Each peak (`ru_maxrss`)
includes the model weights, which become resident at the first forward pass.

Printed: the speed-up (wall time spent in `loglikelihood`, and end to end; the CPU-time
ratio too, which other jobs on a shared machine disturb less), the max abs
log-likelihood difference over all requests, whether every prediction (argmax over the
choices, raw and length-normalised) and every is_greedy flag agrees, and both peaks,
with the issue's targets (>= 10x, <= 1e-4, all equal, peak not above hf's) marked.
Exit status 1 if a target is missed. Timings on a shared machine are noisy: only the
ratio within one run means something.

`--random-lora` creates a LoRA adapter on the model (every linear projection, rank 8,
non-zero random B so it changes the outputs) in a temporary directory and scores with it.

`--random-model gemma3-1b` scores a model with random weights and the dimensions of a real
sliding-window model instead of the embedded one (see RANDOM_MODELS): Gemma-3-1B's layers
(26, hidden 1152, 4 query heads and 1 key/value head of 256, MLP 6912), its 512-token
sliding window on five layers of six, and the embedded SmolLM2's tokenizer and vocabulary
(49,152 instead of 262,144 rows, to fit CPU memory: ~0.75 B parameters, 3 GB in fp32).
The ICL prompts (1,100+ tokens) outrun the window, the case that needs hf-prefix's
per-layer-type masks. `--layers N` keeps the first N layers (same pattern) for a quick run.
The worker of each backend reports the path hf-prefix took (tree attention, one suffix per
forward, or `hf`) and how many requests took it: a run where hf-prefix fell back fails.
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

BACKENDS = ("hf", "hf-prefix")
TARGET_SPEEDUP = 10.0
TARGET_MAX_ABS_DIFF = 1e-4
# Random-weight models with a real model's dimensions: (the model copied, its text config's fields).
RANDOM_MODELS = {
    "gemma3-1b": (
        "google/gemma-3-1b-pt (vocabulary: the embedded SmolLM2's)",
        {
            "model_type": "gemma3_text",
            "hidden_size": 1152,
            "intermediate_size": 6912,
            "num_hidden_layers": 26,
            "num_attention_heads": 4,
            "num_key_value_heads": 1,
            "head_dim": 256,
            "query_pre_attn_scalar": 256,
            "sliding_window": 512,
            "sliding_window_pattern": 6,
            "max_position_embeddings": 32768,
            "rope_parameters": {
                "full_attention": {"rope_type": "default", "rope_theta": 1_000_000.0},
                "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
            },
        },
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="icl_ft_reversal_forward_icl", help="one lm-eval task (an ICL task)")
    parser.add_argument("--limit", type=int, default=40, help="documents of the task to score (default 40)")
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--model", help="model directory (default: the embedded SmolLM2, `icl-ft model path`)")
    model.add_argument(
        "--random-model",
        choices=sorted(RANDOM_MODELS),
        help="random weights with the dimensions of a real sliding-window model (see above)",
    )
    parser.add_argument("--layers", type=int, help="with --random-model: keep the first N layers (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="with --random-model: weight seed (default 0)")
    adapter = parser.add_mutually_exclusive_group()
    adapter.add_argument("--peft", help="LoRA adapter directory to load on the model")
    adapter.add_argument("--random-lora", action="store_true", help="create a random LoRA adapter and use it")
    parser.add_argument("--dtype", default="float32", help="model dtype (default float32)")
    parser.add_argument("--batch-size", type=int, default=1, help="lm-eval batch size for both backends (default 1)")
    parser.add_argument("--threads", type=int, help="torch threads in each backend (default: torch's)")
    parser.add_argument("--model-args", default="", help="extra key=value,... model args for both backends")
    parser.add_argument("--json", type=Path, help="also write the comparison as JSON here")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    return parser


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def model_args(args: argparse.Namespace) -> dict:
    from lm_eval.utils import simple_parse_args_string

    margs = {"pretrained": args.model, "device": "cpu", "dtype": args.dtype, "batch_size": args.batch_size}
    if args.peft:
        margs["peft"] = args.peft
    margs.update(simple_parse_args_string(args.model_args))
    return margs


def run_worker(args: argparse.Namespace) -> None:
    """One backend: evaluate, then write timings, log-likelihoods and memory to --worker-out."""
    import lm_eval
    import torch
    from lm_eval.api.registry import get_model
    from lm_eval.tasks import TaskManager

    if args.threads:
        torch.set_num_threads(args.threads)
    lm = get_model(args.worker).create_from_arg_obj(model_args(args))
    wall_in_loglikelihood = cpu_in_loglikelihood = 0.0
    original = lm.loglikelihood

    def timed_loglikelihood(*a, **kw):
        nonlocal wall_in_loglikelihood, cpu_in_loglikelihood
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return original(*a, **kw)
        finally:
            wall_in_loglikelihood += time.perf_counter() - wall
            cpu_in_loglikelihood += time.process_time() - cpu

    lm.loglikelihood = timed_loglikelihood
    start = time.perf_counter()
    results = lm_eval.simple_evaluate(
        model=lm,
        tasks=[args.task],
        limit=args.limit,
        log_samples=True,
        task_manager=TaskManager(include_defaults=False),
        verbosity="WARNING",
    )
    seconds_total = time.perf_counter() - start
    samples = results["samples"][args.task]
    requests = {
        f"{sample['doc_id']}/{choice}": response[0]
        for sample in samples
        for choice, response in enumerate(sample["resps"])
    }
    out = {
        "backend": args.worker,
        "class": f"{type(lm).__module__}.{type(lm).__name__}",
        "seconds_loglikelihood": wall_in_loglikelihood,
        "cpu_seconds_loglikelihood": cpu_in_loglikelihood,
        "seconds_total": seconds_total,
        "peak_rss_mib": _peak_rss_mib(),
        "docs": len(samples),
        "requests": requests,  # "doc/choice" -> [loglikelihood, is_greedy]
        "acc_norm": {str(sample["doc_id"]): sample["acc_norm"] for sample in samples},
        "metrics": {k: v for k, v in results["results"][args.task].items() if isinstance(v, (int, float))},
        # hf-prefix only: the path the load-time probe chose, and the requests scored by each path
        "prefix_reuse": results["config"].get("hf_prefix"),
    }
    tmp = args.worker_out.with_suffix(".tmp")
    tmp.write_text(json.dumps(out))
    tmp.replace(args.worker_out)


def make_random_lora(model_dir: str, out_dir: Path, seed: int = 0) -> Path:
    """A rank-8 LoRA adapter on every linear projection with random non-zero B (a zero B would be a no-op)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM")
    model = get_peft_model(model, config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
    model.save_pretrained(out_dir)
    return out_dir


def make_random_model(name: str, out_dir: Path, layers: int | None, seed: int) -> Path:
    """A model with random weights and the dimensions of RANDOM_MODELS[name], the embedded tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from icl_ft_common.embedded_model import ensure_checkpoint

    tokenizer = AutoTokenizer.from_pretrained(ensure_checkpoint())
    fields = dict(RANDOM_MODELS[name][1])
    if layers is not None:
        fields["num_hidden_layers"] = layers
    ids = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config = AutoConfig.for_model(**fields, **ids)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    parameters = sum(p.numel() for p in model.parameters())
    print(
        f"random {name}: {config.num_hidden_layers} layers, {parameters / 1e6:.0f} M parameters, "
        f"layer types {sorted(set(getattr(config, 'layer_types', None) or ['full_attention']))}, "
        f"sliding window {getattr(config, 'sliding_window', None)}",
        file=sys.stderr,
    )
    return out_dir


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> dict:
    out = workdir / f"{backend}.json"
    command = [
        sys.executable,
        __file__,
        "--worker",
        backend,
        "--worker-out",
        str(out),
        "--task",
        args.task,
        "--limit",
        str(args.limit),
        "--model",
        args.model,
        "--dtype",
        args.dtype,
        "--batch-size",
        str(args.batch_size),
        "--model-args",
        args.model_args,
    ]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if args.peft:
        command += ["--peft", args.peft]
    print(f"running {backend} ...", file=sys.stderr, flush=True)
    subprocess.run(command, check=True)
    return json.loads(out.read_text())


def compare(hf: dict, prefix: dict) -> dict:
    if hf["requests"].keys() != prefix["requests"].keys():
        raise SystemExit("error: the two backends scored different requests")
    keys = sorted(hf["requests"])
    diffs = [abs(hf["requests"][k][0] - prefix["requests"][k][0]) for k in keys]
    greedy_equal = sum(hf["requests"][k][1] == prefix["requests"][k][1] for k in keys)

    def predictions(run: dict) -> dict[str, int]:
        by_doc: dict[str, list[float]] = {}
        for key in keys:
            doc, choice = key.split("/")
            by_doc.setdefault(doc, []).append((int(choice), run["requests"][key][0]))
        return {doc: max(scores, key=lambda item: item[1])[0] for doc, scores in by_doc.items()}

    hf_pred, prefix_pred = predictions(hf), predictions(prefix)
    same_pred = sum(hf_pred[d] == prefix_pred[d] for d in hf_pred)
    same_norm = sum(hf["acc_norm"][d] == prefix["acc_norm"][d] for d in hf["acc_norm"])
    return {
        "requests": len(keys),
        "docs": len(hf_pred),
        "speedup_loglikelihood": hf["seconds_loglikelihood"] / prefix["seconds_loglikelihood"],
        "speedup_loglikelihood_cpu": hf["cpu_seconds_loglikelihood"] / prefix["cpu_seconds_loglikelihood"],
        "speedup_total": hf["seconds_total"] / prefix["seconds_total"],
        "max_abs_diff": max(diffs),
        "predictions_equal": same_pred,
        "acc_norm_equal": same_norm,
        "greedy_equal": greedy_equal,
    }


def report(args: argparse.Namespace, peft_label: str | None, runs: dict[str, dict], comparison: dict) -> bool:
    hf, prefix = runs["hf"], runs["hf-prefix"]
    c = comparison
    print(f"task {args.task}, {c['docs']} docs, {c['requests']} loglikelihood requests")
    model = (
        f"random {args.random_model} ({RANDOM_MODELS[args.random_model][0]}, layers {args.layers or 'all'}, "
        f"seed {args.seed})"
        if args.random_model
        else args.model
    )
    print(
        f"model {model}, peft {peft_label or '-'}, dtype {args.dtype}, batch size {args.batch_size}, "
        f"torch threads {args.threads or 'default'}"
    )
    print(
        f"{'backend':<10} {'loglikelihood wall s':>21} {'loglikelihood CPU s':>20} {'evaluate wall s':>16} "
        f"{'peak RSS MiB':>13}"
    )
    for name, run in runs.items():
        print(
            f"{name:<10} {run['seconds_loglikelihood']:>21.1f} {run['cpu_seconds_loglikelihood']:>20.1f} "
            f"{run['seconds_total']:>16.1f} {run['peak_rss_mib']:>13.0f}"
        )
    print(f"accuracy: hf {hf['metrics'].get('acc,none')}, hf-prefix {prefix['metrics'].get('acc,none')}")
    reuse = prefix.get("prefix_reuse") or {}
    print(
        f"hf-prefix path: {reuse.get('mode')} ({reuse.get('reason') or 'exact'}; {reuse.get('cache')}); "
        f"requests {reuse.get('requests')}"
    )
    checks = [
        (
            f"speed-up (wall time in loglikelihood) {c['speedup_loglikelihood']:.1f}x (CPU time "
            f"{c['speedup_loglikelihood_cpu']:.1f}x, end to end {c['speedup_total']:.1f}x)",
            c["speedup_loglikelihood"] >= TARGET_SPEEDUP,
            f">= {TARGET_SPEEDUP:g}x",
        ),
        (
            f"max abs log-likelihood difference {c['max_abs_diff']:.2e}",
            c["max_abs_diff"] <= TARGET_MAX_ABS_DIFF,
            f"<= {TARGET_MAX_ABS_DIFF:g}",
        ),
        (
            f"predictions agree on {c['predictions_equal']}/{c['docs']} docs (acc_norm on {c['acc_norm_equal']}/"
            f"{c['docs']}), is_greedy on {c['greedy_equal']}/{c['requests']} requests",
            c["predictions_equal"] == c["acc_norm_equal"] == c["docs"] and c["greedy_equal"] == c["requests"],
            "all",
        ),
        (
            f"peak RSS hf-prefix {prefix['peak_rss_mib']:.0f} MiB vs hf {hf['peak_rss_mib']:.0f} MiB",
            prefix["peak_rss_mib"] <= hf["peak_rss_mib"],
            "not above hf",
        ),
        (
            f"hf-prefix scored every request from a shared-prefix cache ({reuse.get('mode')})",
            bool(reuse.get("requests")) and all(path.startswith("prefix cache") for path in reuse["requests"]),
            "no request via hf",
        ),
    ]
    for text, ok, target in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}  (target {target})")
    return all(ok for _, ok, _ in checks)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.worker:
        run_worker(args)
        return 0
    if args.limit < 1:
        raise SystemExit("error: --limit must be at least 1")
    if args.layers is not None and (args.random_model is None or args.layers < 1):
        raise SystemExit("error: --layers needs --random-model and a positive number")
    if args.model is None and args.random_model is None:
        from icl_ft_common.embedded_model import ensure_checkpoint

        args.model = str(ensure_checkpoint())
    if args.peft and not Path(args.peft).is_dir():
        raise SystemExit(f"error: --peft {args.peft}: no such adapter directory")
    with tempfile.TemporaryDirectory(prefix="bench-prefix-") as tmp:
        workdir = Path(tmp)
        if args.random_model:
            args.model = str(make_random_model(args.random_model, workdir / "random-model", args.layers, args.seed))
            print(f"random weights with the dimensions of {RANDOM_MODELS[args.random_model][0]}", file=sys.stderr)
        peft_label = args.peft
        if args.random_lora:
            args.peft = str(make_random_lora(args.model, workdir / "random-lora"))
            peft_label = "random LoRA (rank 8, all linear layers, B ~ N(0, 0.02))"
        runs = {backend: run_backend(backend, args, workdir) for backend in BACKENDS}
        comparison = compare(runs["hf"], runs["hf-prefix"])
        ok = report(args, peft_label, runs, comparison)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"args": {**vars(args), "peft": peft_label}, "comparison": comparison, "runs": runs},
                indent=1,
                default=str,
            )
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
