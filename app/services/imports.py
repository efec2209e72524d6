"""Bulk disconnections from a carrier's CSV file, the same rules as the hook, batch by batch.

Rows are parsed and checked one by one (bad rows are reported by line number and do not stop the
good ones) and applied 10,000 at a time by :func:`app.services.lifecycle.apply_bulk`, while the next
batch is parsed.
"""

from __future__ import annotations

import asyncio
import csv
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from app.domain.release import NumberEvent
from app.errors import HeirlineError, InvalidRequest
from app.services import lifecycle
from app.settings import get_settings
from app.storage.engine import refresh_statistics

HEADER = ["phone_number", "disconnected_at", "reason", "aging_ends_at", "line_class"]
BATCH = 10_000  # rows per bulk transaction (the rows are built before it opens: SQLite's writer is held for the inserts)
MAX_REPORTED = 1000


@dataclass
class ImportSummary:
    rows: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    rejected_count: int = 0

    def as_dict(self) -> dict:
        return {"rows": self.rows, "applied": self.applied, "duplicates": self.duplicates,
                "rejected": self.rejected_count,
                "errors": [{"line": line, "detail": detail} for line, detail in self.rejected]}

    def reject(self, line: int, detail: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_REPORTED:
            self.rejected.append((line, detail))


async def import_disconnections(carrier: dict, lines: Iterable[str],
                                progress: Callable[[int], None] | None = None) -> ImportSummary:
    """Apply every good row; report bad rows by line number. Importing the same file again changes nothing."""
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidRequest("the file is empty; the first line is the header " + ",".join(HEADER)) from None
    except csv.Error as exc:
        raise InvalidRequest(f"line 1 is not CSV: {exc}") from None
    if [h.strip().lstrip("\ufeff").lower() for h in header] != HEADER:
        raise InvalidRequest("the first line must be the header " + ",".join(HEADER))
    summary = ImportSummary()
    statistics = _Statistics()
    pending: list[tuple[int, lifecycle.EventInput]] = []
    writing: asyncio.Task | None = None  # one batch is written while the next is parsed
    try:
        for parsed, item in enumerate(_events(reader, carrier, summary), 1):
            pending.append(item)
            if parsed % 50 == 0:
                await asyncio.sleep(0)  # let the batch being written go on
            if len(pending) >= BATCH:
                if writing is not None:
                    await writing  # batches apply in file order, one at a time
                writing = asyncio.create_task(_flush(carrier, pending, summary, statistics))
                pending = []
                if progress:
                    progress(summary.rows)
        if writing is not None:
            await writing
        if pending:
            await _flush(carrier, pending, summary, statistics)
        await statistics.refresh(summary.applied, final=True)
    except BaseException:
        if writing is not None and not writing.done():  # it commits whole or rolls back: never half-applied
            writing.cancel()
            await asyncio.gather(writing, return_exceptions=True)
        raise
    if progress:
        progress(summary.rows)
    summary.rejected.sort()
    return summary


def _events(reader, carrier: dict, summary: ImportSummary) -> Iterator[tuple[int, lifecycle.EventInput]]:
    """Each good row as (line, event); bad rows are counted and reported in ``summary``."""
    region = get_settings().default_region
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            summary.rows += 1
            summary.reject(reader.line_num, f"not CSV: {exc}")
            continue
        line = reader.line_num
        stripped = [v.strip() for v in values]
        if not any(stripped):
            continue
        summary.rows += 1
        if len(values) != len(HEADER):
            summary.reject(line, f"expected {len(HEADER)} fields, found {len(values)}")
            continue
        try:
            event = lifecycle.event_from_data(NumberEvent.DISCONNECTED, dict(zip(HEADER, stripped)),
                                              lifecycle.row_key(stripped), region, carrier["jurisdiction"])
        except HeirlineError as exc:
            summary.reject(line, exc.detail)
            continue
        yield line, event


class _Statistics:
    """The planner's statistics of the tables an import writes and reads back, refreshed each time what
    this import has written doubles, and at its end (see :func:`refresh_statistics`): a handful of
    ANALYZEs for a million rows, against lookups that would otherwise scan whole tables."""

    TABLES = ("phone_number", "tenure", "release_case", "number_event")

    def __init__(self) -> None:
        self.written = 0

    async def refresh(self, written: int, *, final: bool = False) -> None:
        if written >= BATCH and (written >= 2 * self.written or final and written > self.written):
            await refresh_statistics(*self.TABLES)
            self.written = written


async def _flush(carrier: dict, pending: list[tuple[int, lifecycle.EventInput]], summary: ImportSummary,
                 statistics: _Statistics) -> None:
    outcomes = await lifecycle.apply_bulk(carrier, [event for _, event in pending])
    for (line, _), outcome in zip(pending, outcomes):
        if outcome.result == "applied":
            summary.applied += 1
        elif outcome.result == "duplicate":
            summary.duplicates += 1
        else:
            summary.reject(line, outcome.error.detail if outcome.error else "rejected")
    await statistics.refresh(summary.applied)
