"""Parsing and filtering of generations, and the prompts they answer (no model needed)."""

from __future__ import annotations

import collections

import pytest

from augment.parsing import DROP_REASONS, parse_generation, split_sentences, words_of
from augment.prompting import GLOBAL_PROMPT, LOCAL_PROMPT, render, split_shared_prefix

SOURCE = "femp are bigger than glon."


def parse(generation: str, seen=None, **kwargs):
    options = dict(
        source=SOURCE,
        context_words=words_of(SOURCE),
        stop_strings=LOCAL_PROMPT.stop_strings,
        seen=set() if seen is None else seen,
    )
    options.update(kwargs)
    return parse_generation(generation, "rephrase", **options)


def test_numbered_answer_with_sections_gets_kinds_and_stops_at_next_example():
    generation = (
        " Femp are larger than glon.\n"
        "2. Compared with glon, femp are bigger.\n"
        "Reversals:\n"
        "1. Glon are smaller than femp.\n"
        "2) Compared with femp, glon are smaller.\n"
        "\n"
        "Statement: Owls are quieter than crows.\n"
        "Rephrasings:\n1. Crows are louder than owls.\n"
    )
    kept, dropped = parse(generation)
    assert [(s.kind, s.text) for s in kept] == [
        ("rephrase", "Femp are larger than glon."),
        ("rephrase", "Compared with glon, femp are bigger."),
        ("reversal", "Glon are smaller than femp."),
        ("reversal", "Compared with femp, glon are smaller."),
    ]
    assert dropped == []


def test_bulleted_and_run_on_lines_are_split_into_sentences():
    pieces = split_sentences("- femp are big. glon are small!\n* femp win?\n• glon lose.\n+ done.", "inference")
    assert [text for _, text in pieces] == ["femp are big.", "glon are small!", "femp win?", "glon lose.", "done."]
    assert {kind for kind, _ in pieces} == {"inference"}


def test_every_drop_reason_is_counted():
    generation = (
        " femp are bigger than glon.\n"  # copy_of_source (case and punctuation ignored)
        "2.\n"  # empty
        "3. Femp are larger than glon.\n"  # kept
        "4. FEMP are larger than glon!\n"  # duplicate of 3
        "5. Horses are lighter than elephants.\n"  # off_topic: a copied demonstration
        "6. femp are bigger than zorft.\n"  # new_nonsense_word
        "7. Femp are bigger than Moe.\n"  # lost_entity: "Moe" is English, but glon is gone
        "8. femp " + "and glon " * 25 + "are big.\n"  # too_long
        "9. glon are smaller than"  # truncated by the token limit
    )
    kept, dropped = parse(generation, require_all_entities=True)
    assert [s.text for s in kept] == ["Femp are larger than glon."]
    counts = collections.Counter(d.reason for d in dropped)
    assert counts == {reason: 1 for reason in DROP_REASONS}
    assert sum(counts.values()) + len(kept) == 9


def test_restating_one_sentence_of_a_document_keeps_only_that_sentences_entities():
    document = "Here is what is known about plafas. Plafas have smosas. A proma is a kind of plafa."
    generation = " Plafas are known to have smosas.\n2. Smosas are had by plafas.\n3. Dogs have tails.\n"
    kept, dropped = parse(generation, source=document, context_words=words_of(document), require_all_entities=True)
    assert [s.text for s in kept] == ["Plafas are known to have smosas.", "Smosas are had by plafas."]
    assert [d.reason for d in dropped] == ["off_topic"]


def test_inferences_may_leave_out_an_entity_of_the_source():
    kept, _ = parse(" glon are bigger than snirp.\n", context_words=words_of(SOURCE + " snirp"))
    assert [s.text for s in kept] == ["glon are bigger than snirp."]


def test_duplicates_are_judged_across_samples_of_one_item():
    seen: set[str] = set()
    first, _ = parse(" Femp are larger than glon.\n", seen=seen)
    second, dropped = parse(" femp are larger than glon.\n2. glon are smaller than femp.\n", seen=seen)
    assert len(first) == 1 and [s.text for s in second] == ["glon are smaller than femp."]
    assert [d.reason for d in dropped] == ["duplicate"]


def test_copies_of_other_training_documents_are_dropped():
    kept, dropped = parse(
        " troff are older than femp.\n",
        context_words=words_of(SOURCE + " troff are older"),
        copies=frozenset({"troff are older than femp"}),
    )
    assert kept == [] and [d.reason for d in dropped] == ["copy_of_source"]


def test_a_garbage_generation_keeps_nothing_and_counts_everything():
    kept, dropped = parse("!!!\n\n1.\n@@ zzkv qorp\n")
    assert kept == []
    assert [d.reason for d in dropped] == ["empty", "empty", "truncated"]


def test_local_prompt_demonstrations_are_unrelated_to_the_data():
    from lm_eval_tasks.api import FAMILIES, generate_family
    from lm_eval_tasks.lexicon import is_english

    prompt = render(LOCAL_PROMPT, statement="femp are bigger than glon.")
    assert prompt.endswith("Statement: femp are bigger than glon.\nRephrasings:\n1.")
    demonstrations = prompt.split("Statement: femp")[0]
    # no nonsense word at all (but the section header), and no entity of any family's training data
    assert {word for word in words_of(demonstrations) if not is_english(word)} == {"rephrasings"}
    for family in FAMILIES:
        entities = {w for row in generate_family(family).train for w in words_of(row["text"]) if not is_english(w)}
        assert not entities & words_of(demonstrations)


def test_global_prompt_splits_into_shared_prefix_and_per_document_suffixes():
    context = ["femp are bigger than glon.", "troff are older than yomp."]
    documents = ["femp are bigger than glon.", "troff are older than yomp."]
    prefix, suffixes = split_shared_prefix(GLOBAL_PROMPT, documents, context=context)
    assert all(fact in prefix for fact in context) and prefix.endswith("\n")
    for document, suffix in zip(documents, suffixes):
        assert prefix + suffix == render(GLOBAL_PROMPT, context=context, document=document)
        assert document in suffix and suffix.endswith("1.")


def test_a_missing_template_variable_is_an_error():
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        render(LOCAL_PROMPT)
