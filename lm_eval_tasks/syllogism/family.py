"""The syllogism family as the registry, the study and augment see it (see lm_eval_tasks.spec)."""

from lm_eval_tasks.spec import FamilySpec, StudyDefaults
from lm_eval_tasks.syllogism.audit import checker
from lm_eval_tasks.syllogism.generator import generate

SPEC = FamilySpec(
    name="syllogism",
    description="paper dataset 2: simple syllogisms, six candidate conclusions per item",
    generate=generate,
    splits=("deduction",),
    chance=1 / 6,
    oracle=True,  # each item's valid conclusion
    study=StudyDefaults(options={"small": {"num_items": 24}}),
    audit_checker=checker,  # icl-ft audit: the symbolic checker in audit.py
)
