"""Scoring of the generative process tasks (`icl_ft_process_<split>_gen_{icl,ft}`).

The model continues "- glorp[<input>] =" and its answer counts when it is the same
function as the correct result: both are canonicalized by `calculus.canonical`, the
one function the generator also wrote the answers with. What is read as the answer:
the first line of the generation, up to its first sentence end, after its last "=" (so
"glorp[a] + glorp[b] = mof(x) + kel(x)." is read as "mof(x) + kel(x)"). Anything that
is not an expression of the calculus (unknown names, leftover "glorp[...]", prose,
an empty string) is unparseable and scores 0; nothing a model writes raises.

lm-eval imports `process_results` by its dotted name from the task YAML, so this
module is the package's own, imported once (not a `utils.py` loaded by file path).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from lm_eval_tasks.process.calculus import canonical, parse_expression

logger = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"\.(?:\s|$)")


def extract_answer(generation: str) -> str:
    """The part of a generation that is read as the answer."""
    lines = generation.strip().splitlines()
    first_sentence = _SENTENCE_END.split(lines[0], maxsplit=1)[0] if lines else ""
    return first_sentence.rsplit("=", 1)[-1].strip()


def score_generation(generation: str, answer: str, primitives: Sequence[str]) -> dict[str, int]:
    """{"exact_match": 1 if the generation's answer equals `answer` as a function, "parsed": 1 if it parsed}."""
    expr = parse_expression(extract_answer(generation), primitives)
    if expr is None:
        return {"exact_match": 0, "parsed": 0}
    try:
        same = canonical(expr) == answer
    except Exception:  # an answer sympy cannot expand is not the answer
        logger.debug("could not canonicalize %r", generation, exc_info=True)
        return {"exact_match": 0, "parsed": 1}
    return {"exact_match": int(same), "parsed": 1}


def process_results(doc: dict, results: list[str]) -> dict[str, int]:
    """lm-eval's hook for `generate_until` tasks: one generation per doc."""
    return score_generation(results[0] if results else "", doc["answer"], doc["primitives"])
