"""The reversal_curse family as the registry, the study and augment see it (see lm_eval_tasks.spec)."""

from lm_eval_tasks.reversal_curse.audit import checker
from lm_eval_tasks.reversal_curse.generator import generate
from lm_eval_tasks.spec import FamilySpec, StudyDefaults

SPEC = FamilySpec(
    name="reversal_curse",
    description="paper dataset 3: the reversal curse (Berglund et al. 2023), fictional celebrities",
    generate=generate,
    splits=("forward", "reverse"),
    chance=1 / 4,  # four names or four descriptions per item
    oracle=True,  # each fact rephrased and reversed
    study=StudyDefaults(options={"small": {"num_celebrities": 16, "train_phrasings": 4}}),
    audit_checker=checker,  # icl-ft audit: the symbolic checker in audit.py
)
