"""The versioned Jinja prompt templates shipped in `augment/prompts/`.

A template's version is its file name without `.jinja` ("local-v1"). A changed prompt is a
new file, never an edit of an old one, so `prompt_version` in an output row always names
the exact text that produced it (the summary also records each template's SHA-256).
A family may bring its own prompt for a mode (`FamilySpec.augment_prompts`, a template in its
folder's `prompts/`); `prompt_for` picks it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from importlib import resources

PROMPTS_PACKAGE = "augment"
PROMPTS_DIR = "prompts"


@dataclasses.dataclass(frozen=True)
class PromptSpec:
    version: str  # file stem of the template
    answer_kind: str  # kind of the sentences before any section header of the answer
    stop_strings: tuple[str, ...]  # the model has finished its answer when it writes one
    # Rephrasings and reversals of one fact name all of its entities; inferences need not.
    require_all_entities: bool = False
    package: str = PROMPTS_PACKAGE  # the package whose `prompts/` folder holds the template


LOCAL_PROMPT = PromptSpec(
    version="local-v1", answer_kind="rephrase", stop_strings=("Statement:",), require_all_entities=True
)
# A blank line ends the numbered list; a restated instruction means it started over.
GLOBAL_PROMPT = PromptSpec(version="global-v2", answer_kind="inference", stop_strings=("\n\n", "Fact to think about"))


def prompt_for(mode: str, family: str) -> PromptSpec | None:
    """The prompt of augment mode `mode` for `family`: the family's own if its spec names one,
    else the generic one; None for a mode without a prompt (oracle)."""
    from lm_eval_tasks.families import family_spec

    own = family_spec(family).augment_prompts.get(mode)
    if own is None:
        return {"local": LOCAL_PROMPT, "global": GLOBAL_PROMPT}.get(mode)
    return PromptSpec(
        version=own.version,
        answer_kind=own.answer_kind,
        stop_strings=tuple(own.stop_strings),
        require_all_entities=own.require_all_entities,
        package=f"lm_eval_tasks.{family}",
    )


@functools.cache
def template_source(version: str, package: str = PROMPTS_PACKAGE) -> str:
    path = resources.files(package).joinpath(PROMPTS_DIR, f"{version}.jinja")
    if not path.is_file():
        where = package.replace(".", "/")
        raise FileNotFoundError(f"no prompt template {version!r} in {where}/{PROMPTS_DIR}/")
    return path.read_text(encoding="utf-8")


def template_sha256(version: str, package: str = PROMPTS_PACKAGE) -> str:
    return hashlib.sha256(template_source(version, package).encode()).hexdigest()


@functools.cache
def _template(version: str, package: str = PROMPTS_PACKAGE):
    import jinja2

    # StrictUndefined: a misspelt variable is an error, not a silently empty prompt.
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
    return environment.from_string(template_source(version, package))


def render(spec: PromptSpec, **variables) -> str:
    """The prompt text; it ends where the model's answer starts (no trailing whitespace)."""
    return _template(spec.version, spec.package).render(**variables).rstrip()


# Rendered in place of the document to find where the per-document part of a prompt starts.
_DOCUMENT_MARK = "\x00DOCUMENT\x00"


def split_shared_prefix(spec: PromptSpec, documents: list[str], **variables) -> tuple[str, list[str]]:
    """(prefix, suffixes) with prefix + suffixes[i] == render(spec, document=documents[i], ...).

    The prefix is everything the template writes before the first use of `document`, cut
    back to the last line break so that tokenizing prefix and suffix apart gives the same
    tokens as tokenizing them together (tokenizers do not merge across a newline).
    """
    marked = render(spec, document=_DOCUMENT_MARK, **variables)
    cut = marked.index(_DOCUMENT_MARK)
    cut = marked.rfind("\n", 0, cut) + 1
    prefix = marked[:cut]
    suffixes = []
    for document in documents:
        full = render(spec, document=document, **variables)
        if not full.startswith(prefix):
            raise ValueError(f"template {spec.version} writes the document before its shared context")
        suffixes.append(full[len(prefix) :])
    return prefix, suffixes
