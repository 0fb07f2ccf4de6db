"""The process family as the registry, the study and augment see it (see lm_eval_tasks.spec)."""

from lm_eval_tasks.process.audit import checker
from lm_eval_tasks.process.generator import CHOICE_KINDS, PRESETS, SPLITS, generate
from lm_eval_tasks.spec import AugmentPrompt, FamilySpec, StudyDefaults

SPEC = FamilySpec(
    name="process",
    description="paper dataset 5: process knowledge, a made-up calculus with held-out rule combinations",
    generate=generate,
    splits=tuple(SPLITS),
    chance=1 / len(CHOICE_KINDS),
    oracle=True,  # further worked applications over trained rule pairs only (kind "inference")
    # The training facts augment works from: 11 rule facts (intro, procedure, 5 table entries,
    # 4 rules) plus one per worked application (16 small, 40 paper).
    study=StudyDefaults(
        options={"small": {"preset": "small"}, "paper": {"preset": "paper"}},
        augment_items=11 + PRESETS["small"].num_worked,
    ),
    audit_checker=checker,  # icl-ft audit: the symbolic checker in audit.py
    # A procedure is restated and applied, not reversed: prompts/process-{local,global}-v1.jinja.
    augment_prompts={
        "local": AugmentPrompt(version="process-local-v1", answer_kind="rephrase", stop_strings=("Statement:",)),
        "global": AugmentPrompt(
            version="process-global-v1", answer_kind="inference", stop_strings=("\n\n", "Fact to think about")
        ),
    },
)
