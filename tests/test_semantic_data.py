"""The semantic benchmark's data, proved from its text.

Training documents and test rows are parsed back into facts by the family's audit parser
(`lm_eval_tasks.semantic.audit.Parser`: regular expressions built from the template
tables, never the generator's rendering code). The reasoner, run on the facts parsed from
the training text, must entail every correct answer and show every distractor clearly
false; held-out categories must appear in training only in their parent fact.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict

import pytest

from lm_eval_tasks.api import generate_family
from lm_eval_tasks.context_budget import estimate_tokens
from lm_eval_tasks.semantic import templates as T
from lm_eval_tasks.semantic.audit import Parser
from lm_eval_tasks.semantic.generator import PRESETS, build_instance, generate
from lm_eval_tasks.semantic.knowledge import ISA, PROPERTY_RELATIONS, Fact, SkeletonError, load_skeleton
from lm_eval_tasks.semantic.language import plural
from lm_eval_tasks.semantic.questions import NUM_CHOICES, SPLITS
from lm_eval_tasks.semantic.reasoner import Reasoner


@pytest.fixture(scope="module", params=["small", "paper"])
def instance(request):
    return build_instance(seed=0, preset=request.param)


@pytest.fixture(scope="module")
def parsed(instance):
    parser = Parser(instance.vocab)
    sentences = [s for row in instance.data.train for s in parser.document(row["text"])]
    facts = {f for _, facts, _ in sentences for f in facts}
    return parser, sentences, facts


# -- training text -------------------------------------------------------------------------


def test_training_text_states_exactly_the_knowledge_base(instance, parsed):
    _, _, facts = parsed
    assert facts == set(instance.kb.facts)


def test_every_answer_is_entailed_by_the_training_text_and_every_distractor_clearly_false(instance, parsed):
    parser, _, facts = parsed
    reasoner = Reasoner(facts)  # built from the parsed text, not from the generator's knowledge base
    for split, rows in instance.data.tests.items():
        assert rows, f"split {split} is empty"
        for row in rows:
            statements = [parser.test_statement(row, choice) for choice in row["choices"]]
            correct = statements[row["label"]]
            assert reasoner.entails(correct), (split, row["id"], correct)
            assert reasoner.hops(correct) == row["hops"], (split, row["id"])
            for index, wrong in enumerate(statements):
                if index != row["label"]:
                    assert not reasoner.entails(wrong), (split, row["id"], wrong)
                    assert reasoner.clearly_false(wrong), (split, row["id"], wrong)


def test_distractors_bear_the_asked_relation_to_another_entity(instance):
    """Each wrong answer is a value (forward) or subject (reverse) of another entailed fact."""
    holdouts = set(instance.kb.holdouts)
    lends = defaultdict(set)  # (relation, direction) -> answers that other facts have
    for f in instance.reasoner.closure:
        if f.subject not in holdouts:
            lends[(f.relation, "forward")].add(f.value)
            lends[(f.relation, "reverse")].add(f.subject)
    parser = Parser(instance.vocab)
    for rows in instance.data.tests.values():
        for row in rows:
            assert len(set(row["choices"])) == len(row["choices"]) == NUM_CHOICES
            statements = [parser.test_statement(row, c) for c in row["choices"]]
            for statement in statements:
                answer = statement.value if row["direction"] == "forward" else statement.subject
                assert answer in lends[(statement.relation, row["direction"])], (row["id"], statement)


def test_splits_ask_what_they_promise(instance, parsed):
    parser, _, facts = parsed
    holdouts = set(instance.kb.holdouts)
    for split, rows in instance.data.tests.items():
        for row in rows:
            fact = parser.test_statement(row, row["choices"][row["label"]])
            trained = fact in facts
            if split in ("rephrase", "reversal"):
                assert trained and fact.subject not in holdouts
                assert row["direction"] == ("forward" if split == "rephrase" else "reverse")
            else:
                assert not trained and row["direction"] == "forward"
                assert (fact.subject in holdouts) == (split == "category_holdout")
            if split == "syllogism":
                assert row["hops"] == 1
            if split == "deduction_long":
                assert 2 <= row["hops"] <= 3


def test_held_out_categories_leak_nothing_beyond_their_parent_fact(instance, parsed):
    _, sentences, _ = parsed
    kb = instance.kb
    forms = {}
    for holdout in kb.holdouts:
        word = instance.vocab.noun(holdout)
        forms[holdout] = {word, plural(word)}
    for sentence, facts, named in sentences:
        words = set(re.findall(r"[a-z]+", sentence.lower()))
        for holdout, holdout_forms in forms.items():
            if words & holdout_forms:
                # Either the parent fact itself, or a question or framing sentence that only names it.
                parent_fact = (Fact(holdout, ISA, kb.parent(holdout)),)
                assert facts == parent_fact or (not facts and named == {holdout}), sentence
    for holdout in kb.holdouts:
        assert kb.facts_about(holdout) == [Fact(holdout, ISA, kb.parent(holdout))]


def test_a_document_never_states_a_fact_about_another_category(instance, parsed):
    """One-topic documents: "pick the choice that shares a document with the subject" cannot bridge a hop."""
    parser = Parser(instance.vocab)
    for row in instance.data.train:
        subjects = {fact.subject for _, facts, _ in parser.document(row["text"]) for fact in facts}
        assert len(subjects) == 1, row["text"]


def test_every_category_holdout_inference_is_tested(instance, parsed):
    parser, _, _ = parsed
    reasoner, kb = instance.reasoner, instance.kb
    expected = {f for h in kb.holdouts for f in reasoner.facts_about(h) if f not in reasoner.trained}
    rows = instance.data.tests["category_holdout"]
    assert {parser.test_statement(r, r["choices"][r["label"]]) for r in rows} == expected


def test_documents_have_4_to_max_sentences_and_fit_on_one_line(instance):
    maximum = instance.data.options["max_sentences"]
    parser = Parser(instance.vocab)
    for row in instance.data.train[:300]:
        assert "\n" not in row["text"]
        assert 4 <= len(parser.document(row["text"])) <= maximum
    assert {row["style"] for row in instance.data.train} == {"encyclopedia", "field_notes", "overview", "qa"}


# -- test rows -----------------------------------------------------------------------------


def test_every_item_is_asked_in_two_phrasings_sharing_answer_and_choices_order(instance):
    for rows in instance.data.tests.values():
        by_item = defaultdict(list)
        for row in rows:
            by_item[row["item_id"]].append(row)
        for item_rows in by_item.values():
            assert len(item_rows) >= 2
            assert len({r["query"] for r in item_rows}) == len(item_rows)
            assert len({r["label"] for r in item_rows}) == 1
            assert len({r["source_id"] for r in item_rows}) == 1


def test_groups_are_latin_squares_so_choice_preferences_score_exactly_chance(instance):
    """A scorer that ranks choices by any fixed preference, ignoring the facts, scores 1/4."""
    rng = random.Random(0)
    for split, rows in instance.data.tests.items():
        grouped = [r for r in rows if r["grouped"]]
        if split != "category_holdout":
            assert len(grouped) == len(rows)
        for _ in range(20):
            preference = defaultdict(rng.random)
            picks = [max(range(NUM_CHOICES), key=lambda i: preference[r["choices"][i]]) for r in grouped]
            correct = sum(pick == r["label"] for pick, r in zip(picks, grouped))
            assert correct * NUM_CHOICES == len(grouped), split
        labels = Counter(r["label"] for r in grouped)  # first-choice ties are chance too
        assert len(set(labels.values())) == 1, (split, labels)


def test_ungrouped_holdout_items_keep_choice_preferences_near_chance(instance):
    """category_holdout keeps items no Latin square takes; their distractors are balanced.

    Over random fixed preferences the mean is 1/4 by symmetry whatever the design; the
    spread is what balancing controls (it is about 0.05 on `small`, 0.02 on `paper`).
    """
    rows = instance.data.tests["category_holdout"]
    rng = random.Random(0)
    accuracies = []
    for _ in range(200):
        preference = defaultdict(rng.random)
        accuracies.append(
            sum(max(range(NUM_CHOICES), key=lambda i: preference[r["choices"][i]]) == r["label"] for r in rows)
            / len(rows)
        )
    mean = sum(accuracies) / len(accuracies)
    spread = (sum((a - mean) ** 2 for a in accuracies) / len(accuracies)) ** 0.5
    assert spread < 0.1


def test_test_wordings_never_appear_in_training_and_oracle_wordings_are_their_own():
    training = {t for ts in T.TRAINING.values() for t in ts} | set(T.PRONOUN.values()) | set(T.FILLER)
    for tables in (T.TEST_FORWARD, T.TEST_REVERSE):
        for phrasings in tables.values():
            for query, answer in phrasings:
                assert not any(query.lower() in t.lower() for t in training)
                assert f"{query} {answer}" not in set(T.ORACLE_FORWARD.values()) | set(T.ORACLE_REVERSE.values())


def test_whitespace_contract_of_test_rows(instance):
    for rows in instance.data.tests.values():
        for row in rows:
            assert row["query"] == row["query"].strip() and row["query"]
            assert all(c == c.strip() and c for c in row["choices"])


def test_oracle_rows_are_entailed_statements(instance):
    kinds = Counter(row["kind"] for row in instance.data.oracle)
    assert set(kinds) == {"rephrase", "reversal", "inference"}
    reasoner = instance.reasoner
    assert kinds["inference"] == len([f for f in reasoner.closure if f not in reasoner.trained])
    assert kinds["rephrase"] == kinds["reversal"] == len(instance.kb.facts)
    train_text = {row["text"] for row in instance.data.train}
    assert not train_text & {row["text"] for row in instance.data.oracle}


# -- sizes, presets, determinism -----------------------------------------------------------


def test_small_preset_shows_every_document_in_context():
    data = generate_family("semantic", preset="small")
    assert data.icl_facts == [row["text"] for row in data.train]


def test_paper_preset_has_the_paper_size_and_an_icl_context_that_covers_every_item():
    data = generate_family("semantic", preset="paper")
    assert len(data.train) == PRESETS["paper"].num_documents
    assert data.options["num_categories"] == 110
    assert sum(estimate_tokens(t) for t in data.icl_facts) <= data.coverage["budget_tokens"]
    texts = iter(row["text"] for row in data.train)
    assert all(any(shown == text for text in texts) for shown in data.icl_facts)  # a subsequence, in order
    assert len(data.icl_facts) <= len(data.train) / 8  # the paper subsampled 8x; the budget allows less here
    assert data.coverage["dropped"] == {split: [] for split in SPLITS}
    # The context entails every scored answer, by the reasoner on what the parser reads in it.
    parser = Parser(build_instance(preset="paper").vocab)
    shown = {f for text in data.icl_facts for _, facts, _ in parser.document(text) for f in facts}
    reasoner = Reasoner(shown)
    for rows in data.tests.values():
        for row in rows:
            assert reasoner.entails(parser.test_statement(row, row["choices"][row["label"]])), row["id"]


@pytest.mark.parametrize("preset", ["small", "paper"])
def test_generation_is_deterministic_per_seed(preset):
    first, second = generate(seed=3, preset=preset), generate(seed=3, preset=preset)
    assert first == second
    assert generate(seed=4, preset=preset).train != first.train


def test_sizes_are_options():
    data = generate(num_categories=24, num_holdout=3, num_documents=30)
    assert len(data.train) == 30
    assert data.options["num_categories"] == 24 and data.options["num_holdout"] == 3


@pytest.mark.parametrize(
    "options, message",
    [
        ({"preset": "huge"}, "preset='huge'"),
        ({"num_documents": 3}, "num_documents=3"),
        ({"num_categories": 500}, "num_categories=500"),
        ({"num_holdout": 40}, "num_holdout=40"),
        ({"max_sentences": 2}, "max_sentences=2"),
        ({"icl_token_budget": -1}, "icl_token_budget=-1"),
        ({"num_categories": 14, "num_holdout": 2, "num_documents": 14}, "['syllogism', 'deduction_long']"),
    ],
)
def test_bad_options_name_the_option(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        generate_family("semantic", **options)


def test_data_api_takes_metadata_strings():
    from lm_eval_tasks.api import build_task_dataset, family_options

    assert family_options("semantic")["preset"] == "small"
    dataset = build_task_dataset("semantic", seed="0", num_documents="70", version=1.0, pretrained="x")
    assert set(dataset) == set(SPLITS)
    assert len(dataset["rephrase"][0]["facts"]) == 70


def test_malformed_skeleton_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("categories:\n  robin: {parent: bird, is: [red]}\n")
    with pytest.raises(SkeletonError, match="unknown parent 'bird'"):
        load_skeleton(bad)
    bad.write_text("categories:\n  bird: {is: [a, b, c, d, e, f, g]}\n")
    with pytest.raises(SkeletonError, match="7 properties"):
        load_skeleton(bad)
    bad.write_text("categories:\n  a: {parent: b, is: [x]}\n  b: {parent: a, is: [y]}\n")
    with pytest.raises(SkeletonError, match="'a' is its own ancestor"):
        load_skeleton(bad)
    bad.write_text("categories:\n  a: {is: red}\n")
    with pytest.raises(SkeletonError, match="must be a list"):
        load_skeleton(bad)
    bad.write_text("categories: [\n")
    with pytest.raises(SkeletonError, match="cannot read"):
        load_skeleton(bad)


def test_shipped_skeleton_is_a_tree_with_four_roots():
    skeleton = load_skeleton()
    roots = [c for c, p in skeleton.parents.items() if p is None]
    assert len(roots) == 4
    for root in roots:  # root properties exclude each other, relation by relation
        for relation in PROPERTY_RELATIONS:
            assert any(f.relation == relation for f in skeleton.own_facts[root]), (root, relation)
