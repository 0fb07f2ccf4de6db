"""Fit the process family's surface model to a language model's no-context choices.

`lm_eval_tasks.process.shortcuts.SURFACE_MODEL` is a linear model of what a language model
without the rules prefers among an item's choices. This script refits it from lm-eval
samples files of the process FT tasks run on a base model (the no-context control), and
prints the coefficients, the within-item R^2, how often the model's pick is each kind of
choice, and how often the surface model's favourite is the language model's pick.

    lm_eval --model hf --model_args pretrained=$(icl-ft model path),dtype=float32 --tasks icl_ft_process_ft \\
        --device cpu --batch_size 8 --output_path runs/process-nocontext --log_samples
    python benchmarks/process_surface_model.py runs/process-nocontext
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path


def load(directory: Path) -> list[tuple[dict, list[float]]]:
    items = []
    for path in sorted(directory.rglob("samples_icl_ft_process_*_ft_*.jsonl")):
        for line in path.read_text().splitlines():
            sample = json.loads(line)
            items.append((sample["doc"], [float(response[0][0]) for response in sample["resps"]]))
    if not items:
        raise SystemExit(f"no samples_icl_ft_process_*_ft_*.jsonl under {directory}; run lm_eval with --log_samples")
    return items


def main() -> None:
    import numpy as np

    from lm_eval_tasks.process import shortcuts

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("samples_dir", type=Path, help="an lm-eval --output_path with process FT samples files")
    args = parser.parse_args()

    items = load(args.samples_dir)
    names = [name for name in shortcuts.SURFACE_MODEL]
    rows, targets, picks, agree = [], [], collections.Counter(), 0
    for doc, loglikelihoods in items:
        features = shortcuts.choice_features(doc["query"], doc["expression"], doc["choices"], collections.Counter())
        features["tokens"] = [float(len(shortcuts.tokens(c))) for c in doc["choices"]]
        matrix = np.array([[features[name][i] for name in names] for i in range(len(doc["choices"]))])
        rows.append(matrix - matrix.mean(0))  # within item: only differences between choices matter
        targets.append(np.array(loglikelihoods) - np.mean(loglikelihoods))
        best = int(np.argmax(loglikelihoods))
        picks[doc.get("choice_mistakes", doc["choice_kinds"])[best]] += 1
        agree += best == int(np.argmax(features["surface_model"]))
    x, y = np.vstack(rows), np.concatenate(targets)
    coefficients, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ coefficients
    print(f"{len(items)} items")
    print("coefficients:", {name: round(float(c), 2) for name, c in zip(names, coefficients)})
    print(f"within-item R^2: {1 - residual.var() / y.var():.2f}")
    print("the language model picked:", dict(picks.most_common()))
    print(f"the current SURFACE_MODEL's favourite is its pick for {agree / len(items):.2f} of the items")


if __name__ == "__main__":
    main()
