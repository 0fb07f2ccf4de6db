"""`icl-ft compare`: statistics checked against hand-computed values, then end to end on
real `lm_eval --log_samples` output of a tiny random model (a base run and a run with a
random LoRA adapter), arranged both as hand-made dirs and as a study RUN_DIR."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from icl_ft import cli
from icl_ft.analysis.loading import Loaded, Sample, parse_task
from icl_ft.analysis.stats import Spread, mcnemar_exact, paired_test, phrasing_consistency, wilson_interval
from icl_ft.analysis.summary import summarize
from tests.tiny_models import save_random_lora

LIMIT = 6  # semantic rephrase: 3 items x 2 phrasings


# --- pure statistics ---------------------------------------------------------------------


def test_wilson_interval_matches_hand_computation():
    # p = .7, z^2 = 3.8415: centre (.7 + .19207) / 1.38415 = .64449,
    # half 1.96 * sqrt(.021 + .0096037) / 1.38415 = .24772
    low, high = wilson_interval(7, 10)
    assert low == pytest.approx(0.39677, abs=1e-4) and high == pytest.approx(0.89222, abs=1e-4)
    # all wrong: [0, z^2 / (n + z^2)] = [0, 3.8415 / 13.8415]
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.72247, 1.0), abs=1e-4)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    # Exactly 0 and 1 at the ends, whatever the rounding (a plot's error bar refuses -3e-17).
    for n in range(1, 200):
        assert wilson_interval(0, n)[0] == 0.0 and wilson_interval(n, n)[1] == 1.0
    with pytest.raises(ValueError, match="successes=11"):
        wilson_interval(11, 10)


def test_exact_mcnemar_is_a_binomial_test_on_discordant_pairs():
    assert mcnemar_exact(5, 0) == pytest.approx(2 / 32)  # 2 * (1/2)^5
    assert mcnemar_exact(3, 1) == pytest.approx(2 * (1 + 4) / 16)  # 2 * P(X <= 1 | n=4)
    assert mcnemar_exact(1, 6) == pytest.approx(2 * (1 + 7) / 128)
    assert mcnemar_exact(4, 4) == 1.0
    assert mcnemar_exact(0, 0) == 1.0  # no discordant pairs: no evidence either way


def test_paired_test_joins_on_shared_keys_only():
    a = {"h1": True, "h2": True, "h3": False, "h4": False, "only-in-a": True}
    b = {"h1": True, "h2": False, "h3": True, "h4": False, "only-in-b": False}
    test = paired_test(a, b)
    assert (test.n, test.both, test.only_a, test.only_b, test.neither) == (4, 1, 1, 1, 1)
    assert test.acc_a == test.acc_b == 0.5 and test.p_value == 1.0


def test_phrasing_consistency():
    result = phrasing_consistency([[True, True], [False, False], [True, False], [True]])
    assert result.items == 3  # the single-phrasing item says nothing about consistency
    assert result.all_correct == pytest.approx(1 / 3) and result.agree == pytest.approx(2 / 3)
    assert phrasing_consistency([[True]]).items == 0


def test_seed_spread():
    spread = Spread((0.5, 0.7, 0.6))
    assert (spread.mean, spread.low, spread.high) == pytest.approx((0.6, 0.5, 0.7))
    assert spread.sd == pytest.approx(0.1)


def _sample(condition, train_seed, key, correct, item_id=None):
    return Sample(
        condition,
        0,
        train_seed,
        "semantic",
        "reversal",
        key,
        int(key[1:]),
        correct,
        None,
        4,
        item_id,
        f"{condition}{train_seed}",
    )


def test_summary_seeds_pairs_and_consistency_without_files():
    samples = [
        *(_sample("base", None, f"h{i}", i < 1, f"item{i // 2}") for i in range(4)),  # 1/4
        *(_sample("ft_local", 1, f"h{i}", i < 2, f"item{i // 2}") for i in range(4)),  # 2/4
        *(_sample("ft_local", 2, f"h{i}", i < 4, f"item{i // 2}") for i in range(4)),  # 4/4
    ]
    summary = summarize(Loaded(samples, runs=[], missing=[]))
    ft = summary.cell("ft_local", "semantic", "reversal")
    assert ft.acc == pytest.approx(0.75) and ft.items_per_run == 4 and ft.chance == 0.25
    assert ft.interval == pytest.approx(wilson_interval(3, 4))  # one run's items, not 8
    assert [seeds.describe() for seeds in ft.runs] == ["data seed 0, train seed 1", "data seed 0, train seed 2"]
    assert (ft.spread.low, ft.spread.high) == (0.5, 1.0)
    assert summary.cell("base", "semantic", "reversal").spread is None
    # the seedless base pairs with each ft_local seed; the two ft_local seeds do not pair
    pairs = {(p.a, p.b, p.seeds): (p.test.only_a, p.test.only_b) for p in summary.pairs}
    assert pairs == {("base", "ft_local", (0, 1)): (0, 1), ("base", "ft_local", (0, 2)): (0, 3)}
    # items item0 (h0, h1) and item1 (h2, h3); ft_local: seed 1 gets item0 only, seed 2 both
    consistency = summary.consistency[("ft_local", "semantic", "reversal")]
    assert (consistency.items, consistency.all_correct, consistency.agree) == (4, 0.75, 1.0)
    assert summary.consistency[("base", "semantic", "reversal")].agree == 0.5


@pytest.mark.parametrize(
    "task, expected",
    [
        ("icl_ft_reversal_forward_icl", ("reversal", "forward", "icl")),
        ("icl_ft_reversal_curse_reverse_ft", ("reversal_curse", "reverse", "ft")),  # longest family wins
        ("icl_ft_semantic_deduction_long_ft", ("semantic", "deduction_long", "ft")),
        ("icl_ft_reversal_icl", None),  # a condition group, not a leaf
        ("icl_ft_reversal", None),
        ("arc_easy", None),
    ],
)
def test_parse_task(task, expected):
    assert parse_task(task) == expected


# --- real lm_eval output ------------------------------------------------------------------


def _lm_eval(model_args: str, tasks: str, out: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "lm_eval",
        "--model",
        "hf",
        "--model_args",
        model_args,
        "--tasks",
        tasks,
        "--device",
        "cpu",
        "--batch_size",
        "8",
        "--limit",
        str(LIMIT),
        "--output_path",
        str(out),
        "--log_samples",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(command, check=False, capture_output=True, text=True, env=env, cwd=out.parent)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tiny_model, tmp_path_factory):
    """Two real lm_eval runs: the base model on the ICL and FT tasks (conditions icl and
    base), and the base model with a random LoRA adapter on the FT tasks."""
    root = tmp_path_factory.mktemp("compare-runs")
    model = tiny_model("llama")
    adapter = save_random_lora(model, root / "adapter-local")

    ft_tasks = "icl_ft_reversal_forward_ft,icl_ft_semantic_rephrase_ft"
    _lm_eval(f"pretrained={model}", f"icl_ft_reversal_forward_icl,{ft_tasks}", root / "base")
    _lm_eval(f"pretrained={model},peft={adapter}", ft_tasks, root / "adapter")
    return root


def _results_file(run: Path) -> Path:
    (path,) = run.rglob("results_*.json")
    return path


def _compare(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(["compare", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.integration
def test_compare_hand_made_runs(runs, tmp_path, capsys):
    code, out, err = _compare(capsys, runs / "base", runs / "adapter", "--output", tmp_path / "cmp")
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split() == ["condition", "reversal/forward", "semantic/rephrase"]
    assert [r.split()[0] for r in rows[1:6]] == ["base", "icl", "ft:adapter-local", "chance", "n"]
    assert rows[4].split()[1:] == ["0.50", "0.25"]  # chance: 2 choices, 4 choices

    report = (tmp_path / "cmp" / "report.md").read_text()
    assert (tmp_path / "cmp" / "figure.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    # accuracy from the samples equals lm-eval's own aggregate
    for run, condition in ((runs / "base", "base"), (runs / "adapter", "ft:adapter-local")):
        acc = json.loads(_results_file(run).read_text())["results"]
        splits = (
            ("icl_ft_reversal_forward_ft", "reversal | forward"),
            ("icl_ft_semantic_rephrase_ft", "semantic | rephrase"),
        )
        for task, split in splits:
            assert f"| {split} | {condition} | {LIMIT} | {acc[task]['acc,none']:.3f} |" in report
    # doc_hash is the same under the _icl and _ft task of a split: base and icl pair on every item
    # hand-made runs: the data seed from lm-eval's metadata; a random adapter records no training seed
    assert "| reversal | forward | base | icl | 0 | – | 6 |" in report
    assert "| reversal | forward | base | ft:adapter-local | 0 | – | 6 |" in report
    assert "| semantic | rephrase | base | ft:adapter-local | 0 | – | 6 |" in report
    # semantic docs carry item_id: 3 items asked in 2 phrasings each
    assert "| semantic | rephrase | base | 3 |" in report
    assert "--limit" in report and "0.4.13" in report


@pytest.mark.integration
def test_compare_study_dir_with_seeds_and_a_failed_cell(runs, tmp_path, capsys):
    run_dir = tmp_path / "study"

    def cell(cell_id, source, condition, seed, status="done", seed_key="train_seed"):
        directory = run_dir / "cells" / cell_id
        if status == "done":
            shutil.copytree(source, directory / "lm_eval")
        else:
            directory.mkdir(parents=True)
        record = {
            "condition": condition,
            "family": "reversal",
            seed_key: seed,
            "model": "tiny",
            "adapter": None,
            "status": status,
            "error": "CUDA out of memory" if status == "failed" else None,
            "wall_seconds": 1.0,
        }
        (directory / "cell.json").write_text(json.dumps(record))

    cell("base", runs / "base", "base", None)
    cell("ft_local-s1", runs / "adapter", "ft_local", 1)
    cell("ft_local-s2", runs / "adapter", "ft_local", 2, seed_key="seed")  # a cell.json of the previous version
    cell("ft_global-s1", None, "ft_global", 1, status="failed")
    cell("ft_global-s2", None, "ft_global", 2, status="running", seed_key="seed")

    code, out, err = _compare(capsys, run_dir)
    assert code == 0, err
    # conditions come from cell.json; the base cell's stray ICL task is not counted as base
    assert [r.split()[0] for r in out.splitlines()[2:6]] == ["base", "ft_local", "chance", "n"]
    assert out.splitlines()[5].split()[2:] == [str(LIMIT), str(LIMIT)]  # items per seed
    assert "*" in out  # ft_local pooled over two seeds
    report = (run_dir / "report.md").read_text()  # default --out: the RUN_DIR itself
    assert (run_dir / "figure.png").exists()
    assert "2 seeds (data seed 0, train seed 1; data seed 0, train seed 2): mean" in report
    assert "| ft_global-s1 | ft_global | reversal | 1 | failed | CUDA out of memory |" in report
    assert "| ft_global-s2 | ft_global | reversal | 2 | running |" in report
    # the seedless base cell pairs with each seed of ft_local
    assert "| reversal | forward | base | ft_local | 0 | 1 | 6 |" in report
    assert "| reversal | forward | base | ft_local | 0 | 2 | 6 |" in report


@pytest.mark.integration
def test_a_hand_made_adapter_run_takes_its_training_seed_from_the_adapter(runs, tmp_path, capsys):
    provenance = runs / "adapter-local" / "icl_ft_provenance.json"
    provenance.write_text(json.dumps({"data_seed": 0, "train_seed": 7}))
    try:
        code, _, err = _compare(capsys, runs / "base", runs / "adapter", "--output", tmp_path / "cmp")
    finally:
        provenance.unlink()
    assert code == 0, err
    report = (tmp_path / "cmp" / "report.md").read_text()
    assert "| reversal | forward | base | ft:adapter-local | 0 | 7 | 6 |" in report
    assert "| reversal | forward | ft:adapter-local | 6 |" in report and "data seed 0, train seed 7 |" in report


@pytest.mark.integration
def test_newest_results_file_of_a_model_dir_counts(runs, tmp_path, capsys):
    run = tmp_path / "adapter"
    shutil.copytree(runs / "adapter", run)
    (_results_file(run).parent / "results_2000-01-01T00-00-00.000000.json").write_text("{ broken")
    code, _, err = _compare(capsys, run, "--out", tmp_path / "cmp")  # --out: the older spelling of --output
    assert code == 0 and err == "icl-ft compare: warning: --out is deprecated; use --output\n", err
    assert (tmp_path / "cmp" / "report.md").is_file()


def _assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    assert err.startswith("icl-ft: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def _with_reversal_metadata(source: Path, target: Path, **metadata) -> Path:
    """A copy of the run `source` whose reversal task records extra --metadata (as lm_eval writes it)."""
    shutil.copytree(source, target)
    results = _results_file(target)
    record = json.loads(results.read_text())
    for task, config in record["configs"].items():
        if task.startswith("icl_ft_reversal"):
            config["metadata"] = {**config.get("metadata", {}), **metadata}
    results.write_text(json.dumps(record))
    return results


@pytest.mark.integration
def test_runs_on_different_data_options_are_refused_not_averaged(runs, tmp_path, capsys):
    """A 4-fact run and a 100-fact run of one family are not two seeds of one condition."""
    four_facts = _with_reversal_metadata(runs / "adapter", tmp_path / "four-facts", num_facts=4)
    out = tmp_path / "cmp"
    code, _, err = _compare(capsys, runs / "base", tmp_path / "four-facts", "--output", out)
    _assert_one_line_error(code, err, "reversal runs on different data:", '{"num_facts": 4}', str(four_facts))
    assert not out.exists()
    # The default given explicitly (and lm-eval's own metadata keys) are the same data as none given.
    _with_reversal_metadata(runs / "adapter", tmp_path / "explicit", num_facts=100, pretrained="elsewhere")
    code, _, err = _compare(capsys, runs / "base", tmp_path / "explicit", "--output", out)
    assert code == 0, err


@pytest.mark.integration
def test_bad_input_is_a_one_line_error_and_keeps_the_previous_report(runs, tmp_path, capsys):
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "report.md").write_text("previous report\n")

    corrupted = tmp_path / "corrupted"
    shutil.copytree(runs / "adapter", corrupted)
    results = _results_file(corrupted)
    results.write_text(results.read_text()[:200])  # cut short, as by a full disk
    code, _, err = _compare(capsys, runs / "base", corrupted, "--output", out)
    _assert_one_line_error(code, err, str(results), "not valid JSON", "rerun")

    no_samples = tmp_path / "no-samples"
    shutil.copytree(runs / "adapter", no_samples)
    for path in no_samples.rglob("samples_icl_ft_semantic_rephrase_ft_*.jsonl"):
        path.unlink()
    code, _, err = _compare(capsys, no_samples, "--output", out)
    _assert_one_line_error(code, err, "icl_ft_semantic_rephrase_ft", "--log_samples")

    bad_sample = tmp_path / "bad-sample"
    shutil.copytree(runs / "adapter", bad_sample)
    (samples,) = bad_sample.rglob("samples_icl_ft_reversal_forward_ft_*.jsonl")
    samples.write_text(samples.read_text() + '{"doc_id": 99, "tru')
    code, _, err = _compare(capsys, bad_sample, "--output", out)
    _assert_one_line_error(code, err, f"{samples}:{LIMIT + 1}", "--log_samples")

    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _compare(capsys, empty, "--output", out)
    _assert_one_line_error(code, err, str(empty), "no lm-eval results_*.json")

    twin = tmp_path / "twin"
    shutil.copytree(runs / "adapter", twin)
    code, _, err = _compare(capsys, runs / "adapter", twin, "--output", out)
    _assert_one_line_error(code, err, "in two runs", "pass only one")

    assert (out / "report.md").read_text() == "previous report\n"
    assert not (out / "figure.png").exists()


@pytest.mark.integration
def test_compare_a_study_of_two_models_per_model_with_gaps_side_by_side(runs, tmp_path, capsys):
    run_dir = tmp_path / "study"
    # Model "a": ft is the adapter run; model "b": ft is the base run. Both share one ICL run.
    layout = {
        "a-000001": {"base": runs / "base", "icl": runs / "base", "ft": runs / "adapter"},
        "b-000002": {"base": runs / "adapter", "icl": runs / "base", "ft": runs / "base"},
    }
    for model_id, cells in layout.items():
        for condition, source in cells.items():
            directory = run_dir / "models" / model_id / "cells" / condition
            shutil.copytree(source, directory / "lm_eval")
            record = {
                "condition": condition,
                "family": "reversal",
                "train_seed": 0 if condition == "ft" else None,
                "model": f"/models/{model_id}",
                "adapter": None,
                "status": "done",
                "error": None,
            }
            (directory / "cell.json").write_text(json.dumps(record))
    (run_dir / "models.json").write_text(json.dumps({m: f"/models/{m}" for m in layout}))

    code, out, err = _compare(capsys, run_dir)
    assert code == 0, err

    def acc(run: Path, task: str) -> float:
        return json.loads(_results_file(run).read_text())["results"][task]["acc,none"]

    icl = acc(runs / "base", "icl_ft_reversal_forward_icl")
    gaps = {
        "a-000001": icl - acc(runs / "adapter", "icl_ft_reversal_forward_ft"),
        "b-000002": icl - acc(runs / "base", "icl_ft_reversal_forward_ft"),
    }
    assert "model a-000001 (/models/a-000001)" in out and "model b-000002 (/models/b-000002)" in out
    (gap_row,) = [line for line in out.splitlines() if line.startswith("icl - ft") and "reversal/forward" in line]
    assert gap_row.split()[-2:] == [f"{gaps['a-000001']:+.2f}", f"{gaps['b-000002']:+.2f}"]
    report = (run_dir / "report.md").read_text()
    assert "## Gaps per model" in report and "## Model a-000001" in report and "## Model b-000002" in report
    assert "### Accuracy" in report  # each model's own report, one heading level down
    # paired tests stay within a model: model b's ft (the base run) pairs with its own base (the adapter run)
    b_section = report.split("## Model b-000002")[1]
    assert "| reversal | forward | base | ft | 0 | 0 | 6 |" in b_section
    assert (run_dir / "figure.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
