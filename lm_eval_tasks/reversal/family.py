"""The reversal family as the registry, the study and augment see it (see lm_eval_tasks.spec)."""

from lm_eval_tasks.reversal.audit import checker
from lm_eval_tasks.reversal.generator import generate
from lm_eval_tasks.spec import FamilySpec, StudyDefaults

SPEC = FamilySpec(
    name="reversal",
    description="paper dataset 1: simple reversals ('femp are more dangerous than glon')",
    generate=generate,
    splits=("forward", "reverse"),
    chance=1 / 2,  # the stated comparative or its opposite
    oracle=True,  # each fact's reversal and a rephrasing
    study=StudyDefaults(options={"small": {"num_facts": 20, "examples_per_fact": 5}}),
    audit_checker=checker,  # icl-ft audit: the symbolic checker in audit.py
)
