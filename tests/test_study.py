"""`icl-ft study`: the grid of conditions on a tiny random model, resume, failures, bad input."""

from __future__ import annotations

import json
import shutil

import pytest

from icl_ft.study import StudyError, runner
from icl_ft.study.cells import RunDir, Step, results_file, steps_of
from icl_ft.study.config import StudyConfig
from icl_ft.study.plan import PRESETS, Preset, build_plan, build_plans

pytestmark = pytest.mark.integration

TINY = Preset(
    name="tiny",
    description="tests: a few facts, 2 training steps, 2 test items per split",
    finetune={
        "steps": 2,
        "batch_size": 2,
        "save_steps": 1,
        "logging_steps": 1,
        "verify_texts": 2,
        "min_loglik_change": 0.0,
        "precision": "fp32",
    },
    augment={
        "local": {"max_new_tokens": 8, "limit": 2},
        "global": {"max_new_tokens": 8, "limit": 2, "context_token_budget": 200},
        "oracle": {},
    },
    limit=2,
)
CONDITIONS = ["base", "icl", "ft", "ft_local", "ft_global", "ft_oracle"]
# A family's data options for a preset it does not declare: given as --family-option does.
TINY_OPTIONS = {"reversal": {"num_facts": 4, "examples_per_fact": 2}}


@pytest.fixture(autouse=True)
def tiny_preset(monkeypatch):
    monkeypatch.setitem(PRESETS, "tiny", TINY)


def scripted_augment(monkeypatch):
    """A scripted generator instead of the tiny model's gibberish (which yields no usable sentence)."""
    import augment.runner
    from tests.test_augment_run import ScriptedGenerator

    monkeypatch.setattr(augment.runner, "load_backend", lambda cfg: ScriptedGenerator())


def study_config(model, **overrides) -> StudyConfig:
    settings = {"model": str(model), "tasks": "icl_ft_reversal", "preset": "tiny", "family_options": TINY_OPTIONS}
    return StudyConfig(**{**settings, **overrides})


def plan_for(model, **overrides):
    return build_plan(study_config(model, oracle=True, **overrides))


@pytest.fixture(scope="module")
def finished_run(tiny_model, tmp_path_factory):
    """One full grid (every condition, seed 0), run once for the module; tests work on copies."""
    run_dir = tmp_path_factory.mktemp("study") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(PRESETS, "tiny", TINY)
        scripted_augment(patch)
        plan = plan_for(tiny_model("llama"))
        outcome = runner.run_study(plan, run_dir)
    return plan, run_dir, outcome


@pytest.fixture
def run_copy(finished_run, tmp_path):
    plan, run_dir, _ = finished_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return plan, copy


def forbid_work(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a finished step was run again")

    for name in ("run_augment", "run_finetune", "evaluate", "score_cells"):
        monkeypatch.setattr(runner, name, forbidden)


def count_evaluations(monkeypatch) -> list:
    """The task of every cell scored: by `evaluate` (ICL cells) or in a scoring pass (one entry per cell)."""
    calls = []
    real, real_pass = runner.evaluate, runner.score_cells

    def counting(model, model_args, task, *args, **kwargs):
        calls.append(task)
        return real(model, model_args, task, *args, **kwargs)

    def counting_pass(model, cells, task, **kwargs):
        calls.extend(task for _ in cells)
        return real_pass(model, cells, task, **kwargs)

    monkeypatch.setattr(runner, "evaluate", counting)
    monkeypatch.setattr(runner, "score_cells", counting_pass)
    return calls


def test_full_grid_completes_with_lm_eval_files_per_cell(finished_run):
    plan, run_dir, outcome = finished_run
    assert outcome.failed == {}
    assert len(outcome.done) == len(steps_of(plan)) == 3 + 4 + 6  # augment modes, adapters, cells
    saved = json.loads((run_dir / "study.json").read_text())
    assert saved["conditions"] == CONDITIONS and saved["families"] == ["reversal"] and saved["train_seeds"] == [0]
    assert saved["schema"] == 2 and saved["data_seed"] == 0
    assert saved["family_options"] == {"reversal": {"num_facts": 4, "examples_per_fact": 2}}
    for mode in ("local", "global", "oracle"):
        assert (run_dir / "augment" / f"reversal-{mode}.jsonl").stat().st_size > 0
    for condition in CONDITIONS:
        seed = 0 if condition.startswith("ft") else None
        cell_dir = run_dir / "cells" / (f"reversal-{condition}" + ("-seed0" if seed is not None else ""))
        state = json.loads((cell_dir / "cell.json").read_text())
        adapter = str(run_dir / "adapters" / f"reversal-{condition}-seed0") if seed is not None else None
        assert state["status"] == "done" and state["error"] is None and state["wall_seconds"] > 0
        recorded = (state["condition"], state["family"], state["train_seed"], state["data_seed"], state["adapter"])
        assert recorded == (condition, "reversal", seed, 0, adapter)
        results = json.loads(results_file(cell_dir).read_text())
        prompt = "icl" if condition == "icl" else "ft"
        assert f"icl_ft_reversal_{prompt}" in results["results"]
        assert results["config"]["model"] == ("hf-prefix" if condition == "icl" else "hf")
        # the same data options for every cell: the scored items are the same
        assert results["configs"][f"icl_ft_reversal_forward_{prompt}"]["metadata"]["num_facts"] == 4
        samples = sorted(results_file(cell_dir).parent.glob("samples_*.jsonl"))
        expected = [f"samples_icl_ft_reversal_{split}_{prompt}" for split in ("forward", "reverse")]
        assert [p.name.split("_2")[0] for p in samples] == expected
        assert len(samples[0].read_text().splitlines()) == 2  # limit=2
    table = runner.accuracy_table(run_dir)
    assert table.splitlines()[0].split() == ["family", *CONDITIONS] and "-" not in table.splitlines()[1].split()


def test_rerun_skips_every_finished_step(run_copy, monkeypatch):
    plan, run_dir = run_copy
    forbid_work(monkeypatch)
    outcome = runner.run_study(plan, run_dir)
    assert outcome.done == [] and outcome.failed == {} and len(outcome.skipped) == len(steps_of(plan))


def test_interrupted_and_corrupted_cells_are_redone_and_nothing_else(run_copy, monkeypatch):
    plan, run_dir = run_copy
    run = RunDir(run_dir)
    icl, ft = Step("cell", "reversal", condition="icl"), Step("cell", "reversal", condition="ft", train_seed=0)
    state = run.read_cell(icl)
    run.write_cell(icl, **{**state, "status": "running"})  # killed mid-cell
    results_file(run.cell_dir(ft)).write_text('{"results": {"icl_ft_rev')  # torn results file
    calls = count_evaluations(monkeypatch)
    monkeypatch.setattr(runner, "run_finetune", lambda *a, **k: pytest.fail("adapters are done"))
    outcome = runner.run_study(plan, run_dir)
    assert sorted(calls) == ["icl_ft_reversal_ft", "icl_ft_reversal_icl"] and outcome.failed == {}
    assert run.read_cell(icl)["status"] == "done" and run.is_done(ft)
    assert len(list((run.cell_dir(ft) / "lm_eval").glob("*/results_*.json"))) == 1  # the torn one is gone


def test_a_familys_ft_cells_are_scored_in_one_pass_and_a_rerun_scores_only_the_missing_ones(run_copy, monkeypatch):
    plan, run_dir = run_copy
    run = RunDir(run_dir)
    redo = [Step("cell", "reversal", condition="base"), Step("cell", "reversal", condition="ft_local", train_seed=0)]
    for cell in redo:
        run.write_cell(cell, **{**run.read_cell(cell), "status": "running"})  # as if the pass was killed
    passes = []
    real = runner.score_cells
    monkeypatch.setattr(runner, "evaluate", lambda *a, **k: pytest.fail("the ICL cell is done"))
    monkeypatch.setattr(
        runner,
        "score_cells",
        lambda model, cells, task, **k: (
            passes.append((task, [c.name for c in cells], [c.adapter for c in cells])),
            real(model, cells, task, **k),
        ),
    )
    outcome = runner.run_study(plan, run_dir)
    adapter = str(run.adapter_dir(redo[1]))
    assert passes == [("icl_ft_reversal_ft", ["reversal-base", "reversal-ft_local-seed0"], [None, adapter])]
    assert sorted(outcome.done) == ["cell reversal-base", "cell reversal-ft_local-seed0"] and outcome.failed == {}
    assert all(run.is_done(cell) for cell in redo)


def test_killed_adapter_training_resumes_and_corrupted_cell_file_is_redone(run_copy, monkeypatch):
    plan, run_dir = run_copy
    run = RunDir(run_dir)
    adapter = Step("adapter", "reversal", condition="ft_local", train_seed=0)
    shutil.rmtree(run.adapter_dir(adapter))  # as if killed before finetune published it
    cell = Step("cell", "reversal", condition="ft_local", train_seed=0)
    (run.cell_dir(cell) / "cell.json").write_text("{not json")
    trained = []
    real = runner.run_finetune
    monkeypatch.setattr(runner, "run_finetune", lambda *a, **k: (trained.append(a[1]), real(*a, **k)))
    calls = count_evaluations(monkeypatch)
    outcome = runner.run_study(plan, run_dir)
    assert outcome.failed == {} and trained == [run.adapter_dir(adapter)] and calls == ["icl_ft_reversal_ft"]


def test_a_failing_step_is_recorded_and_the_others_continue(tiny_model, tmp_path, monkeypatch):
    scripted_augment(monkeypatch)
    real_evaluate = runner.evaluate

    def evaluate(model, model_args, task, *args, **kwargs):
        if task == "icl_ft_reversal_icl":
            raise RuntimeError("out of memory\nwith a long traceback-like second line")
        return real_evaluate(model, model_args, task, *args, **kwargs)

    real_run_augment = runner.run_augment

    def run_augment(plan, output, family, mode):
        if mode == "global":
            raise ValueError("the generator broke")
        return real_run_augment(plan, output, family, mode)

    monkeypatch.setattr(runner, "evaluate", evaluate)
    monkeypatch.setattr(runner, "run_augment", run_augment)
    plan = plan_for(tiny_model("llama"))
    run_dir = tmp_path / "run"
    outcome = runner.run_study(plan, run_dir)
    run = RunDir(run_dir)
    assert set(outcome.failed) == {
        "cell reversal-icl",
        "augment reversal-global",
        "adapter reversal-ft_global-seed0",
        "cell reversal-ft_global-seed0",
    }
    icl = run.read_cell(Step("cell", "reversal", condition="icl"))
    assert icl["status"] == "failed" and icl["error"] == "RuntimeError: out of memory"
    blocked = run.read_cell(Step("cell", "reversal", condition="ft_global", train_seed=0))
    assert blocked["status"] == "failed" and "adapter reversal-ft_global-seed0 failed" in blocked["error"]
    for condition, seed in [("base", None), ("ft", 0), ("ft_local", 0), ("ft_oracle", 0)]:
        assert run.is_done(Step("cell", "reversal", condition=condition, train_seed=seed))
    # the failures are redone by the next run; nothing finished is redone
    monkeypatch.setattr(runner, "evaluate", real_evaluate)
    monkeypatch.setattr(runner, "run_augment", real_run_augment)
    calls = count_evaluations(monkeypatch)
    assert runner.run_study(plan, run_dir).failed == {}
    assert sorted(calls) == ["icl_ft_reversal_ft", "icl_ft_reversal_icl"]


def test_rerun_with_more_seeds_extends_the_run(run_copy, monkeypatch):
    plan, run_dir = run_copy
    calls = count_evaluations(monkeypatch)
    trained = []

    def fake_finetune(plan, output, family, seed, extra):
        trained.append((output.name, seed))
        _fake_adapter(output)

    monkeypatch.setattr(runner, "run_finetune", fake_finetune)
    extended = build_plan(study_config(plan.model, train_seeds=[0, 1], conditions=["ft"]))
    outcome = runner.run_study(extended, run_dir)
    assert outcome.failed == {} and trained == [("reversal-ft-seed1", 1)] and calls == ["icl_ft_reversal_ft"]
    saved = json.loads((run_dir / "study.json").read_text())
    assert saved["train_seeds"] == [0, 1] and saved["conditions"] == CONDITIONS  # the union: what RUN_DIR holds


def _fake_adapter(output):
    """Stands in for finetune: copies the seed-0 adapter (the test is about bookkeeping)."""
    shutil.copytree(output.with_name("reversal-ft-seed0"), output)


# --- bad input --------------------------------------------------------------------------------


def test_unknown_task_and_non_model_path_are_one_line_errors(tiny_model, tmp_path):
    with pytest.raises(StudyError, match=r"unknown task 'icl_ft_nope'.*icl_ft_reversal,.*icl_ft_syllogism"):
        build_plan(study_config(tiny_model("llama"), tasks="icl_ft_reversal,icl_ft_nope"))
    with pytest.raises(StudyError, match="has no config.json, so it is not a model directory"):
        build_plan(study_config(tmp_path))
    with pytest.raises(StudyError, match="unknown condition"):
        build_plan(study_config(tiny_model("llama"), conditions=["ft", "zero_shot"]))


def test_cli_bad_input_is_one_line_and_does_no_work(tmp_path, capsys, monkeypatch):
    from icl_ft.cli import main

    forbid_work(monkeypatch)
    out = str(tmp_path / "r")
    code = main(["study", "--model", str(tmp_path / "missing"), "--tasks", "icl_ft_reversal", "--output", out])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--model" in err and "icl-ft model path" in err
    assert not (tmp_path / "r").exists()


def test_a_run_with_a_different_plan_is_refused_and_kept(run_copy, monkeypatch):
    plan, run_dir = run_copy
    before = (run_dir / "study.json").read_text()
    forbid_work(monkeypatch)
    with pytest.raises(StudyError, match=r"different plan \(limit differ\).*new --output"):
        runner.run_study(build_plan(study_config(plan.model, limit=3)), run_dir)
    assert (run_dir / "study.json").read_text() == before


def test_an_adapter_of_another_base_model_is_reported(run_copy, monkeypatch):
    plan, run_dir = run_copy
    run = RunDir(run_dir)
    adapter = run.adapter_dir(Step("adapter", "reversal", condition="ft", train_seed=0))
    provenance = json.loads((adapter / "icl_ft_provenance.json").read_text())
    provenance["base_model"]["path"] = "/models/some-other-model"
    (adapter / "icl_ft_provenance.json").write_text(json.dumps(provenance))
    cell = Step("cell", "reversal", condition="ft", train_seed=0)
    run.write_cell(cell, **{**run.read_cell(cell), "status": "running"})
    monkeypatch.setattr(runner, "score_cells", lambda *a, **k: pytest.fail("must not score a mismatched adapter"))
    outcome = runner.run_study(plan, run_dir)
    error = outcome.failed["cell reversal-ft-seed0"]
    assert "was trained on /models/some-other-model" in error and "delete it to retrain" in error
    assert adapter.is_dir()  # nothing is deleted


def test_corrupted_plan_file_or_out_file_is_a_one_line_error(tiny_model, tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(StudyError, match="is a file, not a run directory"):
        runner.run_study(plan_for(tiny_model("llama")), tmp_path / "a-file")
    (tmp_path / "study.json").write_text("{")
    with pytest.raises(StudyError, match="not a study plan"):
        runner.run_study(plan_for(tiny_model("llama")), tmp_path)


# --- units ----------------------------------------------------------------------------------


def test_table_cells_show_mean_spread_and_missing_seeds():
    assert runner._format([0.5, 0.7], 2) == "0.600±0.141"
    assert runner._format([0.5], 3) == "0.500 (1/3)"
    assert runner._format([], 1) == "-"


def test_progress_lines_have_elapsed_and_eta(tiny_model, caplog):
    import logging

    plan = plan_for(tiny_model("llama"))
    todo = steps_of(plan)
    progress = runner.Progress(todo, lambda step: runner.estimate_seconds(plan, step))
    with caplog.at_level(logging.INFO, logger="icl_ft.study"):
        progress.finished(todo[0], "done", 5.0, executed=True)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"[1/{len(todo)}] done") and "augment reversal-local" in line
    assert "elapsed 0:00:" in line and "ETA " in line


def test_eta_rescales_each_kind_of_step_by_its_own_measured_speed(caplog):
    import collections
    import logging

    Item = collections.namedtuple("Item", "label kind")
    first, second, cell = Item("adapter a", "adapter"), Item("adapter b", "adapter"), Item("cell c", "cell")
    estimates = {first: 10.0, second: 10.0, cell: 100.0}
    progress = runner.Progress([first, second, cell], estimates.get, kind=lambda item: item.kind)
    with caplog.at_level(logging.INFO, logger="icl_ft.study"):
        # Adapters take 3x their estimate; cells, not measured yet, are assumed as slow: 30 + 300 s.
        progress.finished(first, "done", 30.0, executed=True)
        # Cells take half theirs: the adapter left still takes 3x its estimate (one speed for all
        # steps would have said (30 + 50) / 110 of it, 7 s).
        progress.finished(cell, "done", 50.0, executed=True)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].endswith("ETA 0:05:30") and lines[1].endswith("ETA 0:00:30"), lines


def test_the_cost_model_follows_the_data_of_each_family(tiny_model):
    """Process units are longer than reversal's and semantic has more items than reversal: the
    estimates say so (the progress line's ETA starts from them)."""
    cfg = StudyConfig(model=[str(tiny_model("llama"))], tasks="icl_ft_reversal,icl_ft_semantic,icl_ft_process")
    plan = build_plan(cfg)
    estimate = lambda kind, family, condition: runner.estimate_seconds(plan, Step(kind, family, condition=condition))  # noqa: E731
    adapter = {f: estimate("adapter", f, "ft") for f in plan.families}
    base = {f: estimate("cell", f, "base") for f in plan.families}
    icl = {f: estimate("cell", f, "icl") for f in plan.families}
    assert adapter["process"] > 1.2 * adapter["reversal"]
    assert base["semantic"] > 3 * base["reversal"] and all(icl[f] > base[f] for f in plan.families)


def test_small_and_paper_presets_resolve_for_every_family(tiny_model):
    from lm_eval_tasks.api import FAMILIES, generate_family

    tasks = ",".join(f"icl_ft_{f}" for f in FAMILIES)
    for preset in ("small", "paper"):
        cfg = StudyConfig(model=str(tiny_model("llama")), tasks=tasks, preset=preset, train_seeds=[1, 2, 3], threads=2)
        plan = build_plan(cfg)
        assert plan.families == list(FAMILIES) and plan.train_seeds == [1, 2, 3] and plan.finetune["threads"] == 2
        if preset == "small":  # the small data options are valid generator options
            for family in FAMILIES:
                generate_family(family, plan.data_seed, **plan.options(family))


def test_an_augmentation_that_kept_nothing_is_a_clear_adapter_error(tmp_path):
    output = tmp_path / "reversal-global.jsonl"
    output.write_text("")
    summary = {"kept": 0, "dropped_by_reason": {"empty": 0, "new_nonsense_word": 7}}
    (tmp_path / "reversal-global.summary.json").write_text(json.dumps(summary))
    expected = r"reversal-global.jsonl kept no sentence \(new_nonsense_word 7; see reversal-global.dropped.jsonl\), so"
    with pytest.raises(StudyError, match=expected + " this adapter would equal ft"):
        runner.check_augmentation(output)


def test_a_study_killed_mid_cell_redoes_that_cell_on_rerun(tiny_model, tmp_path):
    """SIGKILL while a cell is scored leaves it `running`; the rerun redoes it and keeps the rest."""
    import os
    import signal
    import subprocess
    import sys
    import time

    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "icl_ft.study",
        "--model",
        str(tiny_model("llama")),
        "--tasks",
        "icl_ft_reversal",
        "--output",
        str(run_dir),
        "--conditions",
        "base,icl",
        "--limit",
        "2",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    icl = Step("cell", "reversal", condition="icl")
    run = RunDir(run_dir)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if (run.read_cell(icl) or {}).get("status") == "running":
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert run.read_cell(icl)["status"] == "running", "the study ended before the kill; nothing was tested"
    assert run.is_done(Step("cell", "reversal", condition="base"))
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 steps run, 1 already done, 0 failed" in result.stdout
    assert run.is_done(icl)


# --- settings: one config mechanism, checked at plan time ------------------------------------


def test_a_run_directory_of_the_previous_schema_resumes(run_copy, monkeypatch):
    """study.json schema 1 named the training seeds `seeds`; cell.json said `seed`. Nothing is redone."""
    plan, run_dir = run_copy
    saved = json.loads((run_dir / "study.json").read_text())
    saved["seeds"] = saved.pop("train_seeds")
    saved["schema"] = 1
    (run_dir / "study.json").write_text(json.dumps(saved))
    for cell_json in run_dir.glob("cells/*/cell.json"):
        state = json.loads(cell_json.read_text())
        state["seed"] = state.pop("train_seed")
        del state["data_seed"]
        cell_json.write_text(json.dumps(state))
    forbid_work(monkeypatch)
    outcome = runner.run_study(plan, run_dir)
    assert outcome.done == [] and outcome.failed == {} and len(outcome.skipped) == len(steps_of(plan))
    upgraded = json.loads((run_dir / "study.json").read_text())
    assert upgraded["schema"] == 2 and upgraded["train_seeds"] == [0] and "seeds" not in upgraded
    assert "| ft_local-seed0 |" not in runner.accuracy_table(run_dir)  # the old cells still count
    assert "-" not in runner.accuracy_table(run_dir).splitlines()[1].split()


def _plan_from_command_line(*argv):
    from icl_ft.cli import build_parser
    from icl_ft_common.config import values_from_namespace

    values, _ = values_from_namespace(StudyConfig, build_parser().parse_args(["study", *argv]), "icl-ft study")
    return build_plan(StudyConfig(**values))


def test_data_seed_and_family_options_come_from_the_command_line(tiny_model, capsys):
    model = str(tiny_model("llama"))
    plan = _plan_from_command_line(
        "--model",
        model,
        "--tasks",
        "icl_ft_reversal,icl_ft_syllogism",
        "--output",
        "unused",
        "--data-seed",
        "3",
        "--family-option",
        "num_facts=6",
        "--family-option",
        "syllogism.num_items=16",
        "--train-seeds",
        "1,2",
    )
    assert plan.data_seed == 3 and plan.train_seeds == [1, 2]
    # num_facts: the reversal option over the small preset's; syllogism's num_items scoped to it
    assert plan.family_options == {"reversal": {"num_facts": 6, "examples_per_fact": 5}, "syllogism": {"num_items": 16}}
    assert plan.metadata("reversal") == {"seed": 3, "num_facts": 6, "examples_per_fact": 5}
    adapter = plan.finetune_config("reversal", "a", 2, [])
    assert (adapter.data_seed, adapter.train_seed, adapter.family_options["num_facts"]) == (3, 2, 6)
    assert plan.augment_config("syllogism", "local", "x").family_options == {"num_items": 16}
    assert "warning" not in capsys.readouterr().err
    # the old spellings still work, each with one line on stderr
    old = _plan_from_command_line("--model", model, "--tasks", "icl_ft_reversal", "--out", "unused", "--seeds", "4")
    assert old.train_seeds == [4]
    warnings = capsys.readouterr().err.splitlines()
    assert warnings == [
        "icl-ft study: warning: --out is deprecated; use --output",
        "icl-ft study: warning: --seeds is deprecated; use --train-seeds",
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_fact": "6"}, r"--family-option num_fact: no family of this study has it; valid: .*'num_facts'"),
        ({"num_facts": "many"}, r"option num_facts='many' must be of type int"),
        ({"syllogism.num_items": "8"}, r"'syllogism' is not a family of this study"),
        ({"num_facts": "3"}, r"reversal data .*num_facts=3: must be an even number"),
    ],
)
def test_a_bad_family_option_is_a_plan_time_error(tiny_model, options, message):
    with pytest.raises(StudyError, match=message):
        build_plan(study_config(tiny_model("llama"), family_options=options, conditions=["ft"]))


def test_presets_are_typed_and_checked_when_defined_and_when_planned(tiny_model, monkeypatch):
    from icl_ft_common.config import ConfigError

    with pytest.raises(ConfigError, match=r"preset 'bad' finetune has unknown key\(s\) \['learning_rat'\]"):
        Preset(name="bad", description="", finetune={"learning_rat": 1e-3})
    with pytest.raises(ConfigError, match=r"preset 'bad' augment local: .*max_new_tokens='many' is not valid"):
        Preset(name="bad", description="", augment={"local": {"max_new_tokens": "many"}})
    with pytest.raises(ConfigError, match=r"sets \['train_seed'\], which the study sets for every step"):
        Preset(name="bad", description="", finetune={"train_seed": 1})
    assert PRESETS["small"].finetune["learning_rate"] == 2e-3  # typed: a float
    monkeypatch.setitem(PRESETS, "bad", Preset(name="bad", description="", augment={"global": {"temperature": -1}}))
    with pytest.raises(StudyError, match=r"reversal ft_global: temperature=-1.0 must be >= 0"):
        build_plan(study_config(tiny_model("llama"), preset="bad"))


def test_another_executor_runs_the_steps_through_the_same_boundary(run_copy, monkeypatch):
    """An executor gets the steps to do and a picklable `execute` (what a process pool or a cluster
    would ship to a worker); the run's bookkeeping comes from the results it reports."""
    import pickle

    plan, run_dir = run_copy
    run = RunDir(run_dir)
    cell = Step("cell", "reversal", condition="base")
    run.write_cell(cell, **{**run.read_cell(cell), "status": "running"})
    seen = []

    class ShippingExecutor:
        def run(self, jobs, graph, report):
            for job in jobs:
                seen.append(job.label)
                remote = pickle.loads(pickle.dumps(graph.execute))  # as if sent to another process
                report(runner.StepResult(job, remote(job), 0.5, True))

    outcome = runner.run_study(plan, run_dir, executor=ShippingExecutor())
    assert seen == ["score reversal-ft"] and outcome.done == ["cell reversal-base"] and outcome.failed == {}
    assert run.is_done(cell)


# --- several models, dry run ------------------------------------------------------------------


def test_two_models_in_one_study_get_their_own_runs_on_the_same_items(tiny_model, tmp_path, capsys):
    from icl_ft.cli import main
    from icl_ft.study.cells import model_id

    models = [tiny_model("llama"), tiny_model("qwen2")]
    out = tmp_path / "run"
    argv = [
        "study",
        "--model",
        str(models[0]),
        "--model",
        str(models[1]),
        "--tasks",
        "icl_ft_reversal",
        "--preset",
        "tiny",
        "--conditions",
        "base,ft",
        "--family-option",
        "num_facts=4",
        "--family-option",
        "examples_per_fact=2",
        "--output",
        str(out),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    ids = [model_id(str(m)) for m in models]
    assert json.loads((out / "models.json").read_text()) == {i: str(m.resolve()) for i, m in zip(ids, models)}
    assert not (out / "study.json").exists() and not (out / "cells").exists()
    hashes = []
    for mid, model in zip(ids, models):
        run = RunDir(out / "models" / mid)
        assert json.loads(run.plan_file.read_text())["model"] == str(model.resolve())
        cell = Step("cell", "reversal", condition="ft", train_seed=0)
        assert run.read_cell(cell)["adapter"] == str(run.adapter_dir(cell))
        samples = sorted(results_file(run.cell_dir(cell)).parent.glob("samples_*.jsonl"))
        hashes.append([json.loads(line)["doc_hash"] for path in samples for line in path.read_text().splitlines()])
    assert hashes[0] == hashes[1] and len(hashes[0]) == 4  # the same items (2 splits x limit 2) for both
    assert f"model {ids[0]}" in printed and f"model {ids[1]}" in printed and "ft_local" not in printed

    # A one-model run directory takes no second model (its layout has no model level).
    with pytest.raises(StudyError, match="holds a one-model study"):
        runner.run_study(build_plans(study_config(",".join(map(str, models)))), out / "models" / ids[0])


def test_dry_run_prints_steps_tokens_and_estimates_and_does_no_work(tiny_model, tmp_path, capsys, monkeypatch):
    from icl_ft.cli import main

    forbid_work(monkeypatch)
    out = tmp_path / "run"
    argv = [
        "study",
        "--model",
        str(tiny_model("llama")),
        "--tasks",
        "icl_ft_reversal",
        "--preset",
        "tiny",
        "--conditions",
        "base,icl,ft,ft_local",
        "--train-seeds",
        "0,1",
        "--family-option",
        "num_facts=4",
        "--family-option",
        "examples_per_fact=2",
        "--output",
        str(out),
        "--dry-run",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert not out.exists()
    lines = {
        line.split()[1]: line.split()
        for line in printed.splitlines()
        if line.startswith("  ") and line.split()[0] in ("augment", "adapter", "cell", "score")
    }
    assert sorted(lines) == [
        "reversal-ft",
        "reversal-ft-seed0",
        "reversal-ft-seed1",
        "reversal-ft_local-seed0",
        "reversal-ft_local-seed1",
        "reversal-icl",
        "reversal-local",
    ]
    # tiny preset: 2 steps x batch 2 units; every adapter trains as many tokens
    train = {
        int(lines[k][3].replace(",", "")) for k in lines if k.startswith("reversal-ft") and lines[k][0] == "adapter"
    }
    assert len(train) == 1 and train.pop() > 0
    assert "score reversal-ft (5 cells, one pass)" in printed and "calibration on this machine" in printed
    assert "formula per step: load + tokens / rate" in printed and "steps: augment 1, adapter 4, cell 6" in printed
