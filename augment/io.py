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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from icl_ft_common.artifacts import dropped_path, partial_path, summary_path
from icl_ft_common.io import write_json_atomic, write_jsonl_atomic

__all__ = ["OutputError", "ResumableWriter", "dropped_path", "summary_path"]

logger = logging.getLogger(__name__)


class OutputError(RuntimeError):
    """The output cannot be written or resumed; the message says what to do."""


class ResumableWriter:
    """`saved_settings` turns a header written by an earlier version into today's setting names."""

    def __init__(
        self,
        output: Path,
        settings: dict[str, Any],
        overwrite: bool = False,
        saved_settings: Callable[[dict[str, Any]], dict[str, Any]] = dict,
    ):
        self.output = Path(output)
        self.partial = partial_path(self.output)
        self.settings = json.loads(json.dumps(settings))  # as it reads back from the file (tuples -> lists)
        self.saved_settings = saved_settings
        if self.output.exists() and not overwrite:
            raise OutputError(f"{self.output} already exists; pass --overwrite or choose another --output")
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
        saved = json.loads(json.dumps(self.saved_settings(header["settings"])))
        if saved != self.settings:
            changed = sorted(k for k in {**saved, **self.settings} if saved.get(k) != self.settings.get(k))
            raise OutputError(
                f"{self.partial} was written with other settings (differing: {changed}); rerun with the same "
                "settings to resume, or delete it to start afresh"
            )
        for number, line in enumerate(complete[1:], start=2):
            try:
                record = json.loads(line)
                self.records.setdefault(record["item"], record)
            except (json.JSONDecodeError, KeyError, TypeError):
                raise OutputError(
                    f"{self.partial}:{number} is not a valid record; delete the file to start afresh"
                ) from None
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
        write_jsonl_atomic(dropped_path(self.output), self.collect("dropped"))
        write_json_atomic(summary_path(self.output), summary)
        # The data file last: once it exists, its sidecars do too.
        write_jsonl_atomic(self.output, self.collect("rows"))
        self.partial.unlink()
