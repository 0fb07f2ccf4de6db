"""The semantic family as the registry, the study and augment see it (see lm_eval_tasks.spec)."""

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
    study=StudyDefaults(options={"small": {"preset": "small"}, "paper": {"preset": "paper"}}, augment_items=64),
)
