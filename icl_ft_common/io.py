"""Atomic writes and the tolerant JSONL reader shared by every package.

Atomic: a file is written to a temporary sibling (same directory, so the rename cannot cross
file systems), flushed and fsynced, then renamed over the target with `os.replace`. A reader,
or a crash at any moment, sees the old file or the complete new one, never a torn one; the
parent directories are created as needed; a failed write removes its temporary file and
leaves the old file in place.

Tolerant: `read_jsonl_rows` keeps the rows that are JSON objects with the required non-empty
string fields and skips and counts every other line, so one bad row of a user's file costs
that row, not the run (the caller decides whether zero good rows is an error).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(temporary_path)`, then move the result to `path` atomically.

    `write` may use the path however it likes (e.g. `figure.savefig(temporary)`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 would make the file private
        write(temporary)
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    atomic_write(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def json_text(value: Any, sort_keys: bool = False) -> str:
    """The project's JSON file format: indented, UTF-8 (not \\u-escaped), one final newline."""
    return json.dumps(value, indent=2, sort_keys=sort_keys, ensure_ascii=False) + "\n"


def write_json_atomic(path: str | Path, value: Any, sort_keys: bool = False) -> None:
    write_text_atomic(path, json_text(value, sort_keys=sort_keys))


def jsonl_text(rows: Iterable[Any]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_jsonl_atomic(path: str | Path, rows: Iterable[Any]) -> None:
    write_text_atomic(path, jsonl_text(rows))


def read_json(path: str | Path) -> Any:
    """The parsed file; OSError, UnicodeDecodeError or ValueError (json.JSONDecodeError) if it cannot be."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


@dataclasses.dataclass(frozen=True)
class JsonlRows:
    """What `read_jsonl_rows` found in a file."""

    rows: list[dict[str, Any]]
    skipped: int  # non-empty lines that are not well-formed rows
    first_problem: str  # e.g. "line 19: invalid JSON (Expecting value)"; "" if none was skipped

    def describe_skipped(self, path: str | Path) -> str:
        """One log line about the skipped rows."""
        return f"{path}: skipped {self.skipped} malformed row(s) (first at {self.first_problem})"


def read_jsonl_rows(path: str | Path, required: Sequence[str] = ()) -> JsonlRows:
    """The rows of a JSONL file that are JSON objects with a non-empty string for each `required` key.

    Blank lines are ignored; every other line that is not such a row is skipped and counted.
    Raises OSError or UnicodeDecodeError when the file cannot be read at all.
    """
    rows, skipped, first_problem = [], 0, ""
    requirement = " and ".join(f'"{key}"' for key in required)
    with open(path, encoding="utf-8") as lines:  # iterating splits at "\n" only, unlike str.splitlines
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                problem = "" if isinstance(row, dict) else "not a JSON object"
            except json.JSONDecodeError as err:
                row, problem = None, f"invalid JSON ({err.msg})"
            if not problem and not all(isinstance(row.get(key), str) and row[key].strip() for key in required):
                problem = f"needs a non-empty string {requirement}"
            if problem:
                skipped += 1
                first_problem = first_problem or f"line {number}: {problem}"
                continue
            rows.append(row)
    return JsonlRows(rows, skipped, first_problem)
