"""Resumable, atomic JSONL output.

While a run goes, `<output>.partial` collects one line per finished source item:
`{"item": id, "rows": [...], "dropped": [...], "generations": n}`, appended, flushed and fsynced, so an
interrupted run loses at most the item being generated. Its first line records the run's
settings; a rerun with the same settings skips the items already there (no duplicate, no
loss), a rerun with other settings is refused. A torn last line (killed mid-write) is cut
off and its item generated again. `finish()` writes the final JSONL and its summary each
to a temporary file and renames it into place, so the final file is either absent or
complete, then removes the partial file.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class OutputError(RuntimeError):
    """The output cannot be written or resumed; the message says what to do."""


def summary_path(output: Path) -> Path:
    """`x.jsonl` -> `x.summary.json`."""
    return output.with_name(output.stem + ".summary.json")


def dropped_path(output: Path) -> Path:
    """`x.jsonl` -> `x.dropped.jsonl`: every filtered-out sentence with its reason, for auditing."""
    return output.with_name(output.stem + ".dropped.jsonl")


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class ResumableWriter:
    def __init__(self, output: Path, settings: dict[str, Any], overwrite: bool = False):
        self.output = Path(output)
        self.partial = self.output.with_name(self.output.name + ".partial")
        self.settings = json.loads(json.dumps(settings))  # as it reads back from the file (tuples -> lists)
        if self.output.exists() and not overwrite:
            raise OutputError(f"{self.output} already exists; pass --overwrite true or choose another --output")
        self.records: dict[str, dict[str, Any]] = {}
        if self.partial.exists():
            self._resume()
        else:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            self._append({"settings": settings})

    def _resume(self) -> None:
        raw = self.partial.read_bytes()
        lines = raw.split(b"\n")
        # Every complete line ends in "\n": whatever follows the last one is a torn write.
        complete, torn = lines[:-1], lines[-1]
        try:
            header = json.loads(complete[0]) if complete else None
        except json.JSONDecodeError:
            header = None
        if not header or "settings" not in header:
            raise OutputError(f"{self.partial} is not a partial output of this tool; delete it to start afresh")
        if header["settings"] != self.settings:
            changed = sorted(k for k in {**header["settings"], **self.settings}
                             if header["settings"].get(k) != self.settings.get(k))  # fmt: skip
            raise OutputError(
                f"{self.partial} was written with other settings (differing: {changed}); rerun with the same "
                "settings to resume, or delete it to start afresh"
            )
        for number, line in enumerate(complete[1:], start=2):
            try:
                record = json.loads(line)
                self.records.setdefault(record["item"], record)
            except (json.JSONDecodeError, KeyError, TypeError):
                raise OutputError(f"{self.partial}:{number} is not a valid record; delete the file to start afresh")
        if torn:
            logger.warning(
                "%s: dropping a torn last line (interrupted write); its item is generated again", self.partial
            )
            with open(self.partial, "r+b") as handle:
                handle.truncate(len(raw) - len(torn))
        if self.records:
            logger.info("resuming %s: %d item(s) already done", self.partial, len(self.records))

    def _append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with open(self.partial, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def is_done(self, item: str) -> bool:
        return item in self.records

    def add(self, item: str, rows: list[dict[str, Any]], dropped: list[dict[str, Any]], generations: int) -> None:
        """Record a finished source item: its kept rows, its dropped sentences, how many generations."""
        if item in self.records:
            raise OutputError(f"item {item!r} written twice")
        record = {"item": item, "rows": rows, "dropped": dropped, "generations": generations}
        self._append(record)
        self.records[item] = record

    def collect(self, key: str) -> list[Any]:
        """Every record's `key` list ("rows" or "dropped"), in item order."""
        return [entry for record in self.records.values() for entry in record[key]]

    def finish(self, summary: dict[str, Any]) -> None:
        """Write the final JSONL, the dropped sentences and the summary atomically, then remove the partial."""
        write_atomically(dropped_path(self.output), _jsonl(self.collect("dropped")))
        write_atomically(summary_path(self.output), json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        # The data file last: once it exists, its sidecars do too.
        write_atomically(self.output, _jsonl(self.collect("rows")))
        self.partial.unlink()
