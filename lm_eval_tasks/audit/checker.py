"""The plug-in interface: what a family gives the audit.

A family folder provides `lm_eval_tasks/<family>/audit.py` with a function

    def checker(data: FamilyData) -> FamilyChecker

returning a subclass of `FamilyChecker` (this module), and declares it in its `family.py`:

    from lm_eval_tasks.<family>.audit import checker
    SPEC = FamilySpec(name="<family>", ..., audit_checker=checker)

The audit finds it through the family registry (`lm_eval_tasks.families.family_spec`), so a
new family plugs in without touching anything outside its folder. Two methods are required: they are
the family's symbolic checker, written from the text (never from the generator's
rendering code):

- `facts_in(context, target)`: the facts that `target` states when read after `context`
  (the earlier sentences of the same document, or "" for a unit on its own). A fact is any
  hashable value the family chooses, e.g. a (subject, relation, value) triple.
- `supported(facts, split, row)`: the indices of the row's choices that follow from
  `facts`. A label is valid when this is exactly `[row["label"]]` for the facts of the
  whole training set; an item is covered by the ICL context, or learnable under a
  finetuning unit, when the label is among the choices supported by the facts of that
  context, or of the units taken one at a time.

Everything else has a default and may be overridden: `paper_sizes` (the card's size
table), `template_words` (the fixed words of the family's templates: every other word is
content, e.g. an entity), `words` (content words of a text, for the shortcut heuristics),
`kind` (an item's type, for the `--limit` prefix balance), `lexicon_forms` (every
nonsense form the data uses), `extra_heuristics` (family-specific shortcuts, e.g. premise
copying) and `permitted` (shortcut scores the paper's design allows, with the reason).
A family whose spec declares no `audit_checker` gets the fact-blind checks only.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from lm_eval_tasks.spec import FamilyData

# In `permitted`: every fact-aware heuristic on that split.
FACT_AWARE = "*fact-aware*"
TOKEN = re.compile(r"[A-Za-z][A-Za-z'-]*|\d+|[^\sA-Za-z\d]")


@dataclasses.dataclass(frozen=True)
class Heuristic:
    """A shortcut that skips the tested inference (`extra_heuristics` returns a family's own)."""

    name: str
    fact_aware: bool  # reads the training text (`heuristics.Corpus`), not just the item
    # (row, corpus) -> a score per choice; the highest wins
    score: Callable[[dict[str, Any], Any], list[float]]


def tokens(text: str) -> list[str]:
    """Lower-cased words, numbers and punctuation marks of `text`, in order."""
    return [t.lower() for t in TOKEN.findall(text)]


class FamilyChecker:
    """Base class of a family's audit plug-in (see the module docstring)."""

    #: What the paper reports for this dataset: label -> value, shown beside `sizes()`.
    paper_sizes: ClassVar[dict[str, str]] = {}
    #: Fixed words of the family's templates (lower case); every other word is content.
    template_words: frozenset[str] = frozenset()
    #: split -> {heuristic name, or FACT_AWARE for all fact-aware ones: why the design permits its score}.
    permitted: ClassVar[dict[str, dict[str, str]]] = {}
    #: Whether `facts_in` / `supported` are implemented (label validity, coverage, learnability).
    symbolic = True

    def __init__(self, data: FamilyData):
        self.data = data

    # -- the symbolic checker ------------------------------------------------------------

    def facts_in(self, context: str, target: str) -> frozenset[Hashable]:
        raise NotImplementedError

    def supported(self, facts: frozenset[Hashable], split: str, row: dict[str, Any]) -> list[int]:
        raise NotImplementedError

    # -- defaults ------------------------------------------------------------------------

    def words(self, text: str) -> list[str]:
        """Content words of `text` in order: every word that is not a template word."""
        return [t for t in tokens(text) if t[0].isalpha() and t not in self.template_words]

    def kind(self, split: str, row: dict[str, Any]) -> Hashable:
        """The item's type, for the prefix balance of `--limit` (None: a single type)."""
        return None

    def item_id(self, row: dict[str, Any]) -> str:
        """Rows of one item (its phrasings) share this id."""
        return row.get("item_id", row["id"])

    def lexicon_forms(self) -> list[str] | None:
        """Every nonsense word form in the data, to check against English (None: the family uses real names)."""
        return None

    def extra_heuristics(self) -> list[Heuristic]:
        return []

    def chance(self, split: str, rows: list[dict[str, Any]]) -> float:
        """A fact-blind guess's expected accuracy: uniform over the choices."""
        return sum(1 / len(row["choices"]) for row in rows) / len(rows)

    def sizes(self) -> dict[str, int]:
        data = self.data
        sizes = {"training documents": len(data.train), "ICL context entries": len(data.icl_facts)}
        for split, rows in data.tests.items():
            sizes[f"{split} items"] = len({self.item_id(row) for row in rows})
        return sizes
