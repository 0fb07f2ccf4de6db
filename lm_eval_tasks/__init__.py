"""lm-eval tasks and data generators of the ICL-vs-finetuning generalization study.

`TASKS_DIR` is the directory lm-eval indexes (`lm_eval --include_path`). `api` is the Python
data API (`load_family`, `generate_family`); `families` the family registry and the one owner
of task names; `spec` what a family declares (`FamilySpec`, in each folder's `family.py`) and
the data it generates (`FamilyData`). Importing this package is cheap: generators, `datasets`
and `wordfreq` load on first use.
"""

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent

__all__ = ["TASKS_DIR"]
