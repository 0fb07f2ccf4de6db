"""`icl-ft study --dry-run`: the plan without running it - steps per kind, tokens to train, to
score and to generate, and the estimated time per step and in total on this machine.

The estimate is a formula over measured rates, printed with the numbers so a user can redo it
for other hardware (e.g. GPU hours):

    adapter  = load + train tokens / train rate
    cell     = load + score tokens / score rate         (an ICL cell counts its shared facts once:
    pass     = load + sum of its cells' score tokens / score rate       hf-prefix caches them)
    augment  = load + generated tokens / generation rate

Rates come, per model, from this run directory when it has finished steps (the adapters'
recorded training tokens per second, the scoring cells' tokens over their wall time),
otherwise from a calibration on this machine: the model is loaded (`load`), one
forward+backward pass over a batch of training units, one forward pass over scoring texts
and a short generation are timed. Nothing is trained, scored or written.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from icl_ft.study.cells import RunDir, model_run_dirs, pass_cells, steps_of
from icl_ft.study.plan import StudyPlan
from icl_ft_common.io import read_json


@dataclasses.dataclass
class Rates:
    load_seconds: float
    train: float  # tokens per second, forward+backward
    score: float  # tokens per second, forward only
    generate: float  # new tokens per second (a batch of prompts)
    source: str


@dataclasses.dataclass(frozen=True)
class Estimate:
    label: str
    kind: str  # "train" | "score" | "generate"
    tokens: int


def describe_plan(plans: Sequence[StudyPlan], output: str | Path) -> str:
    root = Path(output).expanduser().resolve()
    first = plans[0]
    lines = [
        f"icl-ft study --dry-run: {len(plans)} model(s), families {','.join(first.families)}, conditions "
        f"{','.join(first.conditions)}, training seeds {first.train_seeds}, preset {first.preset} "
        "(nothing is trained, scored or written)"
    ]
    grand_total = 0.0
    for (model_id, run_root), plan in zip(model_run_dirs(root, [p.model for p in plans]), plans):
        estimates = estimate_tokens(plan)
        rates = measured_rates(plan, RunDir(run_root), estimates) or calibrate(plan)
        run = RunDir(run_root)
        done = sum(run.is_done(step) for step in steps_of(plan))
        kinds: dict[str, int] = {}
        for step in steps_of(plan):
            kinds[step.kind] = kinds.get(step.kind, 0) + 1
        passes = len(plan.families)
        lines += [
            "",
            f"model {model_id or Path(plan.model).name} ({plan.model})",
            f"  steps: {', '.join(f'{kind} {n}' for kind, n in kinds.items())} (FT-prompt cells in {passes} scoring "
            f"pass(es), one per family); {done} done already in {run_root}",
            f"  rates ({rates.source}): load {rates.load_seconds:.1f} s, train {rates.train:,.0f} tok/s, "
            f"score {rates.score:,.0f} tok/s, generate {rates.generate:,.1f} tok/s",
        ]
        rate = {"train": rates.train, "score": rates.score, "generate": rates.generate}
        total = {"train": 0, "score": 0, "generate": 0}
        seconds = 0.0
        for estimate in estimates:
            step_seconds = rates.load_seconds + estimate.tokens / rate[estimate.kind]
            seconds += step_seconds
            total[estimate.kind] += estimate.tokens
            row = f"  {estimate.label:<44} {estimate.kind:<8} {estimate.tokens:>12,} tokens"
            lines.append(f"{row}  {_clock(step_seconds)}")
        grand_total += seconds
        lines.append(
            f"  total: train {total['train']:,} tokens, score {total['score']:,}, generate {total['generate']:,}: "
            f"{_clock(seconds)} one step at a time"
        )
    lines += [
        "",
        f"all models: {_clock(grand_total)} one step at a time (an executor running k steps at once divides it by "
        "up to k)",
        "formula per step: load + tokens / rate (train: forward+backward; score: forward; generate: new tokens); "
        "see icl_ft/study/dry_run.py",
    ]
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


# --- tokens -------------------------------------------------------------------------------


def _tokenizer(model: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model)


def estimate_tokens(plan: StudyPlan) -> list[Estimate]:
    """Tokens of every step: trained (unpadded, the family's own units: augmented rows are not known
    before augmentation runs), scored (every choice of every item), generated (items x new tokens)."""
    from finetune.data import load_documents, make_units
    from lm_eval_tasks.api import generate_family
    from lm_eval_tasks.families import family_spec

    tokenizer = _tokenizer(plan.model)
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    estimates = []
    for step in steps_of(plan):
        if step.kind == "augment":
            settings = plan.augment.get(step.mode, {})
            items = settings.get("limit") or family_spec(step.family).study.augment_items
            new_tokens = 0 if step.mode == "oracle" else items * settings.get("max_new_tokens", 64)
            estimates.append(Estimate(step.label, "generate", new_tokens))
        elif step.kind == "adapter":
            cfg = plan.finetune_config(step.family, Path("dry-run"), step.train_seed, [])
            documents, _, _ = load_documents(step.family, plan.data_seed, plan.options(step.family), [])
            lengths = [count(unit.context + unit.target) for unit in make_units(documents, cfg.unit)]
            steps = cfg.num_steps(len(lengths))
            estimates.append(Estimate(step.label, "train", round(steps * cfg.batch_size * statistics.mean(lengths))))
    for family in plan.families:
        data = generate_family(family, plan.data_seed, **plan.options(family))
        item_tokens = 0
        for split in family_spec(family).splits:
            rows = data.tests[split][: plan.limit] if plan.limit else data.tests[split]
            item_tokens += sum(count(row["query"] + " " + choice) for row in rows for choice in row["choices"])
        if "icl" in plan.conditions:
            facts = sum(count(fact) for fact in data.icl_facts) * len(family_spec(family).splits)
            estimates.append(Estimate(f"cell {family}-icl", "score", facts + item_tokens))
        cells = len(pass_cells(plan, family))
        if cells:
            estimates.append(Estimate(f"score {family}-ft ({cells} cells, one pass)", "score", cells * item_tokens))
    return estimates


# --- rates ----------------------------------------------------------------------------------


def measured_rates(plan: StudyPlan, run: RunDir, estimates: list[Estimate]) -> Rates | None:
    """Rates recorded by finished steps of this run directory (adapters and FT cells), if any."""
    from icl_ft_common.artifacts import PROVENANCE_FILE

    train = []
    for step in (s for s in steps_of(plan) if s.kind == "adapter" and run.is_done(s)):
        results = read_json(run.adapter_dir(step) / PROVENANCE_FILE).get("results", {})
        if results.get("tokens_per_second"):
            train.append(float(results["tokens_per_second"]))
    score = []
    for family in plan.families:
        per_cell = next((e.tokens for e in estimates if e.label.startswith(f"score {family}-ft")), 0)
        per_cell //= max(len(pass_cells(plan, family)), 1)
        for step in pass_cells(plan, family):
            state = run.read_cell(step) or {}
            if state.get("status") == "done" and state.get("wall_seconds"):
                score.append(per_cell / float(state["wall_seconds"]))
    if not train or not score:
        return None
    calibrated = calibrate(plan, timed_passes=False)
    return Rates(
        calibrated.load_seconds,
        statistics.median(train),
        statistics.median(score),
        calibrated.generate,
        f"medians of {len(train)} adapters and {len(score)} cells of this run directory; load, generation calibrated",
    )


def calibrate(plan: StudyPlan, timed_passes: bool = True) -> Rates:
    """Load the model and time a training step, a scoring forward pass and a short generation."""
    import torch
    from transformers import AutoModelForCausalLM

    from lm_eval_tasks.api import generate_family

    if plan.threads:
        torch.set_num_threads(plan.threads)
    started = time.perf_counter()
    tokenizer = _tokenizer(plan.model)
    model = AutoModelForCausalLM.from_pretrained(plan.model, dtype=torch.float32)
    load_seconds = time.perf_counter() - started
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # generation continues every row from its last token
    family = plan.families[0]
    texts = [row["text"] for row in generate_family(family, plan.data_seed, **plan.options(family)).train]
    batch = tokenizer(texts[: plan.finetune.get("batch_size", 8)], return_tensors="pt", padding=True)
    tokens = int(batch["attention_mask"].sum())

    def timed(function, repeats: int = 2) -> float:
        function()  # warm-up
        begun = time.perf_counter()
        for _ in range(repeats):
            function()
        return (time.perf_counter() - begun) / repeats

    def train_step():
        model.zero_grad()
        model(**batch, labels=batch["input_ids"]).loss.backward()

    def score_step():
        with torch.no_grad():
            model(**batch)

    new_tokens = 8

    def generate_step():
        with torch.no_grad():
            model.generate(
                **batch,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )

    rows = batch["input_ids"].shape[0]
    generate = rows * new_tokens / timed(generate_step, repeats=1)
    if not timed_passes:
        return Rates(load_seconds, 0.0, 0.0, generate, "calibration")
    return Rates(
        load_seconds,
        tokens / timed(train_step),
        tokens / timed(score_step),
        generate,
        f"calibration on this machine: {rows} training units ({tokens} tokens), threads {plan.threads or 'default'}",
    )
