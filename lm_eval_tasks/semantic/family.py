"""The semantic family as the registry, the study and augment see it (see lm_eval_tasks.spec)."""

from lm_eval_tasks.semantic.audit import checker
from lm_eval_tasks.semantic.generator import generate
from lm_eval_tasks.semantic.questions import NUM_CHOICES, SPLITS
from lm_eval_tasks.spec import FamilySpec, StudyDefaults

SPEC = FamilySpec(
    name="semantic",
    description="paper dataset 4: the semantic structure benchmark (a nonsense-word taxonomy)",
    generate=generate,
    splits=SPLITS,
    chance=1 / NUM_CHOICES,
    oracle=True,  # the reasoner's facts, reversals and inferences
    study=StudyDefaults(
        options={
            # 24 categories (3 held out): 326 test rows at seed 0 instead of the small preset's 578, so that
            # the study's small preset can score every item and `make run` stays under 30 minutes.
            "small": {"preset": "small", "num_categories": 24, "num_holdout": 3, "num_documents": 48},
            "paper": {"preset": "paper"},
        },
        augment_items=64,
    ),
    audit_checker=checker,  # icl-ft audit: the symbolic checker in audit.py
)
