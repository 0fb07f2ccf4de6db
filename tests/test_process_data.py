"""The process family's generated data: labels, the compositional split, documents, balance.

Everything is checked from the generated *text* with the independent checker
(tests/process_checker.py): the table is read from the training sentences, questions and
choices are parsed back, and the transform is recomputed by sympy pattern replacement.
"""

from __future__ import annotations

import collections
import copy
import hashlib
import json
import re
import subprocess
import sys

import pytest

from finetune.data import split_sentences
from lm_eval_tasks.api import generate_family
from lm_eval_tasks.process import shortcuts
from lm_eval_tasks.process.calculus import (
    MISTAKES,
    PARTIAL_MISTAKES,
    POSSIBLE_PAIRS,
    canonical,
    combinations,
    depth,
    parse_expression,
    rule_of,
)
from lm_eval_tasks.process.generator import CHOICE_KINDS, HELDOUT_PAIRS, SPLITS, calculus_of
from tests import process_checker

SEEDS = [0, 1]


@pytest.fixture(scope="module", params=SEEDS)
def instance(request):
    data = generate_family("process", request.param)
    name, partners = process_checker.table_from_training(data.train)
    return data, name, partners


def test_the_training_text_states_the_generators_calculus(instance):
    data, name, partners = instance
    calc = calculus_of(data.seed)
    assert (calc.name, dict(calc.partners)) == (name, partners)
    assert all(row["primitives"] == list(calc.primitives) for rows in data.tests.values() for row in rows)


def inputs_in(text: str, name: str) -> list[str]:
    """Every expression the text takes the transform of: the insides of `name[...]`."""
    return re.findall(rf"\b{name}\[([^\[\]]*)\]", text)


def pairs_of_documents(rows: list[dict], name: str, primitives: list[str]) -> set[str]:
    """Every rule pair any transform in the rows' text uses (metavariable rule statements skipped)."""
    pairs = set()
    for row in rows:
        for inside in inputs_in(row["text"], name):
            expr = parse_expression(inside, primitives)
            if expr is None:  # a rule statement's f, g, c*f or p(g): metavariables, not an expression
                assert row.get("kind") == "rule" and re.search(r"\b[fgc]\b", inside), (inside, row["text"])
                continue
            pairs |= combinations(expr)
    return pairs


def test_every_label_is_the_transform_and_every_distractor_another_function(instance):
    data, name, partners = instance
    primitives = list(partners)
    for split, rows in data.tests.items():
        for row in rows:
            assert row["query"] == f"{name}[{row['expression']}] ="
            expr = parse_expression(row["expression"], primitives)
            assert depth(expr) == SPLITS[split]
            truth = process_checker.transform(expr, partners)
            parsed = [parse_expression(choice.removesuffix("."), primitives) for choice in row["choices"]]
            assert all(choice.endswith(".") and p is not None for choice, p in zip(row["choices"], parsed))
            assert process_checker.same_function(parsed[row["label"]], truth), row["id"]
            assert row["choices"][row["label"]] == row["answer"] + "."
            for index, choice in enumerate(parsed):
                assert canonical(choice) == row["choices"][index].removesuffix(".")  # choices are canonical
                if index != row["label"]:
                    assert not process_checker.same_function(choice, truth), (row["id"], index)
            assert len({canonical(p) for p in parsed}) == len(CHOICE_KINDS)  # pairwise different functions
            derivative = parsed[row["choice_kinds"].index("derivative")]
            assert process_checker.same_function(derivative, process_checker.real_derivative(expr, partners))


def test_heldout_items_use_a_pair_no_training_document_uses_and_seen_items_only_trained_pairs(instance):
    data, name, partners = instance
    primitives = list(partners)
    trained = pairs_of_documents(data.train, name, primitives)
    assert trained == set(POSSIBLE_PAIRS) - set(HELDOUT_PAIRS)  # every other pair is shown at least once
    oracle_pairs = pairs_of_documents(data.oracle, name, primitives)
    assert oracle_pairs <= trained  # the oracle never shows a held-out combination either
    for split, rows in data.tests.items():
        for row in rows:
            pairs = combinations(parse_expression(row["expression"], primitives))
            assert sorted(pairs) == row["combinations"]
            if split == "heldout":
                assert pairs - trained, row["id"]
                assert len(pairs - trained) == 1  # exactly one held-out pair, the rest trained
            else:
                assert pairs <= trained, row["id"]
    heldout = collections.Counter(pair for row in data.tests["heldout"] for pair in set(row["combinations"]) - trained)
    assert set(heldout.values()) == {len(data.tests["heldout"]) // len(HELDOUT_PAIRS)}


def test_deep_items_are_deeper_than_anything_trained_and_no_test_input_is_ever_worked_out(instance):
    data, name, partners = instance
    primitives = list(partners)
    worked = {inside for row in data.train + data.oracle for inside in inputs_in(row["text"], name)}
    trained_depth = max(depth(e) for e in (parse_expression(i, primitives) for i in worked) if e is not None)
    assert trained_depth == 3
    assert all(row["depth"] == 4 > trained_depth for row in data.tests["deep"])
    tested = [row["expression"] for rows in data.tests.values() for row in rows]
    assert len(set(tested)) == len(tested)
    assert not set(tested) & worked


def test_seen_heldout_and_deep_items_start_with_the_same_rules(instance):
    data, _, _ = instance
    roots = {split: [row["source_id"] for row in rows] for split, rows in data.tests.items()}
    assert roots["seen"] == roots["heldout"] == roots["deep"]


def test_every_statement_in_the_training_and_oracle_documents_is_true(instance):
    data, name, partners = instance
    statements = 0
    for row in data.train + data.oracle:
        if row["kind"] == "rule":
            continue
        for sentence in split_sentences(row["text"]):
            rule = re.match(r"^By the (\w+) rule, ", sentence)
            body = sentence.split(", ", 1)[1].removesuffix(".")
            for statement in re.split(r", | and ", body) if sentence.startswith("By the table") else [body]:
                left, right = statement.split(" = ")
                left_expr = process_checker.parse_with_pending(left, name, partners)
                right_expr = process_checker.parse_with_pending(right, name, partners)
                assert process_checker.same_function(
                    process_checker.resolve(left_expr, partners), process_checker.resolve(right_expr, partners)
                ), sentence
                if rule:  # the rule named is the rule of the part rewritten
                    assert rule_of(left_expr.args[0]) == rule.group(1)
                statements += 1
        last = split_sentences(row["text"])[-1]
        answer = canonical(process_checker.transform(parse_expression(row["expression"], list(partners)), partners))
        assert last.endswith(f"{name}[{row['expression']}] = {answer}.")  # how the questions are asked
    assert statements > 5 * len(data.oracle)


def test_documents_split_into_self_contained_sentences(instance):
    data, name, _ = instance
    for row in data.train:
        sentences = split_sentences(row["text"])
        if row["kind"] == "rule":
            assert sentences == [row["text"]]  # one unit per rule statement
        else:
            # each step names the whole part it rewrites: no "it", "this", "the result"
            assert all(f"{name}[" in s and " = " in s for s in sentences), row["text"]
            assert len(sentences) >= 3
    rule_sources = collections.Counter(row["source_id"] for row in data.train if row["kind"] == "rule")
    phrasings = data.options["rule_phrasings"]
    assert set(rule_sources.values()) == {phrasings}
    # the ICL prompt: each rule fact once, then every worked application
    worked = [row["text"] for row in data.train if row["kind"] == "worked"]
    assert data.icl_facts[-len(worked) :] == worked
    assert len(data.icl_facts) == len(rule_sources) + len(worked)


def test_oracle_rows_are_worked_applications_of_new_expressions(instance):
    data, _, partners = instance
    train_inputs = {row["expression"] for row in data.train}
    assert len(data.oracle) == data.options["num_oracle"]
    for row in data.oracle:
        assert row["kind"] == "inference" and row["expression"] not in train_inputs
        assert row["source_id"] == f"process-rule-{rule_of(parse_expression(row['expression'], list(partners)))}"
        assert row["text"].startswith("By the ")


def test_answer_positions_are_counterbalanced(instance):
    data, _, _ = instance
    made_by = {
        "correct": {"correct"},
        "derivative": {"derivative"},
        "misapplied": {"swapped", "inside_out"},
        "partial": set(PARTIAL_MISTAKES),
    }
    for rows in data.tests.values():
        positions = collections.Counter(row["label"] for row in rows)
        assert set(positions.values()) == {len(rows) // len(CHOICE_KINDS)} and len(positions) == len(CHOICE_KINDS)
        for row in rows:
            assert sorted(row["choice_kinds"]) == sorted(CHOICE_KINDS)
            assert row["choice_kinds"][row["label"]] == "correct"
            assert all(m in made_by[k] for k, m in zip(row["choice_kinds"], row["choice_mistakes"]))
    used = collections.Counter(m for rows in data.tests.values() for row in rows for m in row["choice_mistakes"])
    assert set(used) == {"correct", "derivative", *MISTAKES}  # every kind of mistake is asked about


@pytest.mark.parametrize("seed", SEEDS)
def test_no_fact_blind_strategy_beats_chance(seed):
    """No shortcut strategy (pick or avoid the extreme choice of any surface feature, or a
    position) scores above the 99% binomial bound of chance, on each split and on all
    splits together (48 items per split here, 144 in all)."""
    data = generate_family("process", seed, num_test=48)
    texts = [row["text"] for row in data.train]
    all_rows = [row for rows in data.tests.values() for row in rows]
    for rows in [*data.tests.values(), all_rows]:
        assert shortcuts.shortcut_failures(rows, texts) == []
    _, high = shortcuts.chance_interval(len(all_rows), 0.25)
    assert high < 0.35  # the bound is tight enough to mean something
    accuracies = shortcuts.baseline_accuracies(all_rows, texts)
    required = {"longest", "shortest", "position_0", "most_familiar_tokens", "most_like_input", "most_copied"}
    assert required | {f"avoid_{name}" for name in required - {"position_0"}} <= set(accuracies)
    assert sum(accuracies[f"position_{k}"] for k in range(4)) == pytest.approx(1.0)


def test_the_shortcut_checks_catch_a_biased_split():
    data = generate_family("process", 0)
    rows = copy.deepcopy(data.tests["seen"])  # the generated data is memoized: never edit it in place
    for row in rows:  # a biased variant: the answer is always the longest choice
        longest = max(range(len(row["choices"])), key=lambda i: len(row["choices"][i]))
        row["label"] = longest
    failures = shortcuts.shortcut_failures(rows, [row["text"] for row in data.train])
    assert any(failure.startswith("longest:") for failure in failures)
    # The opposite bias, over 12 x 24 rows: the answer is never the longest, so avoiding the
    # longest choice scores 1/3, above the bound (0.316 for 288 items).
    rows = copy.deepcopy(data.tests["seen"] * 12)
    for row in rows:
        row["label"] = min(range(len(row["choices"])), key=lambda i: len(row["choices"][i]))
    failures = shortcuts.shortcut_failures(rows, [row["text"] for row in data.train])
    assert any(failure.startswith("avoid_longest:") for failure in failures)


def test_same_seed_gives_the_same_bytes_in_another_process():
    script = (
        "import hashlib, json\n"
        "from lm_eval_tasks.api import generate_family\n"
        "d = generate_family('process', 0)\n"
        "rows = [d.train, d.icl_facts, d.tests, d.oracle]\n"
        "print(hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest())\n"
    )
    here = generate_family("process", 0)
    expected = hashlib.sha256(
        json.dumps([here.train, here.icl_facts, here.tests, here.oracle], sort_keys=True).encode()
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    )
    assert result.stdout.strip() == expected.hexdigest()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"preset": "huge"}, "preset='huge'"),
        ({"num_test": 10}, "multiple of 12"),
        ({"num_worked": 5}, "at least 12"),
        ({"rule_phrasings": 9}, "rule_phrasings=9"),
        ({"num_oracle": -1}, ">= 0"),
    ],
)
def test_bad_options_are_one_line_errors(options, message):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        generate_family("process", 0, **options)
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_icl_prompts_fit_the_embedded_models_context(smollm2_path):
    """small: the whole ICL prompt well under 4k SmolLM2 tokens; paper: under its 8k context."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    for preset, limit in (("small", 3300), ("paper", 7600)):
        data = generate_family("process", 0, preset=preset)
        block = "".join(f"- {fact}\n" for fact in data.icl_facts) + "\n"
        # the fact block, then the longest question with its longest choice (split at a line break)
        longest = len(tokenizer(block)["input_ids"]) + max(
            len(tokenizer("- " + row["query"] + " " + choice)["input_ids"])
            for rows in data.tests.values()
            for row in rows
            for choice in row["choices"]
        )
        assert longest < limit, (preset, longest)
