"""Bulk disconnections from a carrier's CSV file, the same rules as the hook, batch by batch.

The file is read a million records at a time (each record's stripped fields, repeated values shared)
and their rows taken in the order of their numbers, a number's own rows in file order: every index
the rows write (the numbers, their events' keys, which lead with the number) then grows at one end
instead of at random pages, which at a million rows halves the database's work. Rows are parsed and
checked one by one (bad rows are reported by line number and do not stop the good ones; a large
file's by a second process) and applied 10,000 at a time by
:func:`app.services.lifecycle.plan_bulk` and ``apply_planned``: a batch is written while the next one
is planned (its rows and statements built, on SQLite without holding the one writer) and the one after
that parsed.
"""

from __future__ import annotations

import asyncio
import codecs
import collections
import contextlib
import csv
import gc
import heapq
import io
import itertools
import multiprocessing
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator

from app.domain.numbers import Number
from app.domain.release import NumberEvent
from app.errors import HeirlineError, InvalidRequest
from app.services import lifecycle
from app.settings import get_settings
from app.storage.engine import refresh_statistics

HEADER = ["phone_number", "disconnected_at", "reason", "aging_ends_at", "line_class"]
BATCH = 10_000  # rows per bulk transaction (the rows are built before it opens: SQLite's writer is held for the inserts)
MAX_REPORTED = 1000  # rejected rows reported in detail: those of the lowest line numbers
RUN = 1_000_000  # records read, sorted and applied together (about 260 MiB); a longer file goes a run at a time
YIELD_EVERY = 1000  # rows read or parsed between chances for the event loop (the upload API shares it)
SPOOL_IN_MEMORY = 8 * 1024 * 1024  # bytes of an uploaded file held in memory; past that it goes to a temporary file

Progress = Callable[[int, "int | None"], None]  # (rows done, rows in the file; None while it is read)
Record = tuple[int, tuple[str, ...]]  # (line, the row's stripped fields, the number as written first)


@dataclass
class ImportSummary:
    rows: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected_count: int = 0
    _reported: list[tuple[int, str]] = field(default_factory=list)  # a heap of (-line, detail)

    @property
    def rejected(self) -> list[tuple[int, str]]:
        """The reported rejections, (line, detail) by line."""
        return sorted((-line, detail) for line, detail in self._reported)

    def as_dict(self) -> dict:
        return {"rows": self.rows, "applied": self.applied, "duplicates": self.duplicates,
                "rejected": self.rejected_count,
                "errors": [{"line": line, "detail": detail} for line, detail in self.rejected]}

    def reject(self, line: int, detail: str) -> None:
        """Count a rejected row; keep its detail if it is among the MAX_REPORTED first lines (rows are
        applied in the order of their numbers, not of their lines)."""
        self.rejected_count += 1
        if len(self._reported) < MAX_REPORTED:
            heapq.heappush(self._reported, (-line, detail))
        elif line < -self._reported[0][0]:
            heapq.heapreplace(self._reported, (-line, detail))


async def import_disconnections(carrier: dict, lines: Iterable[str], progress: Progress | None = None) -> ImportSummary:
    """Apply every good row; report bad rows by line number. Importing the same file again changes nothing."""
    summary = ImportSummary()
    statistics = _Statistics()
    reader = _reader(lines)
    while True:
        records, last = await _read(reader, summary, progress)
        records.sort(key=_number)  # stable: a number's rows stay in file order
        await _apply(records, carrier, summary, statistics, progress, summary.rows if last else None)
        if last:
            break
    await statistics.refresh(summary.applied, final=True)
    if progress:
        progress(summary.rows, summary.rows)
    return summary


async def _apply(records: list[Record], carrier: dict, summary: ImportSummary, statistics: _Statistics,
                 progress: Progress | None, total: int | None) -> None:
    """Apply sorted records, a batch being written while the next is parsed; ``total`` is the file's
    rows once it has been read to its end."""
    writing: asyncio.Task | None = None
    try:
        async with contextlib.aclosing(_parsed(records, carrier, summary)) as batches:
            async for batch in batches:
                planned = await lifecycle.plan_bulk(carrier, [event for _, event in batch])  # while one is written
                if writing is not None:
                    await writing  # batches apply one at a time, in the order of their numbers
                writing = asyncio.create_task(_flush(batch, planned, summary, statistics))
                if progress:
                    progress(summary.applied + summary.duplicates + summary.rejected_count, total)
        if writing is not None:
            await writing
    except BaseException:
        if writing is not None and not writing.done():  # it commits whole or rolls back: never half-applied
            writing.cancel()
            await asyncio.gather(writing, return_exceptions=True)
        raise


_collecting_less = 0  # imports running in this process that asked the collector to wait
_default_threshold = gc.get_threshold()


@contextlib.contextmanager
def collecting_less():
    """While an import runs, the collector's young generation waits for 100,000 new objects instead of
    700. A batch keeps some 100,000 rows, events and their dicts alive at a time, and at the default
    threshold the collector rescanned them over and over: 40 % of a 300,000-row import's time (42.9 s;
    24.5 s like this). Nothing an import builds is cyclic. Process-wide, so it nests: the default comes
    back when the last import of the process ends."""
    global _collecting_less, _default_threshold
    if _collecting_less == 0:
        _default_threshold = gc.get_threshold()
        gc.set_threshold(100_000, *_default_threshold[1:])
    _collecting_less += 1
    try:
        yield
    finally:
        _collecting_less -= 1
        if _collecting_less == 0:
            gc.set_threshold(*_default_threshold)


@contextlib.contextmanager
def without_collector():
    """For a process that does nothing but the import (the command line's): the cyclic collector off
    until it ends. Even waiting for 100,000 new objects it took 8 % of a 300,000-row import (3.0 s of
    36 s, most of it rescanning the batch in hand), and the whole import leaves a few hundred objects in
    cycles. The import's parser process runs without it too (:func:`_parsed`)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


async def spooled(chunks: AsyncIterable[bytes]) -> io.TextIOWrapper:
    """An uploaded file, as text to import: written to a temporary file as it arrives (a monthly file of
    up to 200 MB is not held in a web worker's memory), and checked to be UTF-8 on the way, so that a bad
    byte near its end refuses the whole file before any row is applied."""
    spool = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY)
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        async for chunk in chunks:
            decoder.decode(chunk)
            spool.write(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        spool.close()
        raise InvalidRequest("the file must be UTF-8 CSV") from None
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return io.TextIOWrapper(spool, encoding="utf-8-sig", newline="")


def _reader(lines: Iterable[str]):
    """A CSV reader past the header, which must be HEADER."""
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidRequest("the file is empty; the first line is the header " + ",".join(HEADER)) from None
    except csv.Error as exc:
        raise InvalidRequest(f"line 1 is not CSV: {exc}") from None
    if [h.strip().lstrip("\ufeff").lower() for h in header] != HEADER:
        raise InvalidRequest("the first line must be the header " + ",".join(HEADER))
    return reader


async def _read(reader, summary: ImportSummary, progress: Progress | None) -> tuple[list[Record], bool]:
    """The next RUN records (blank lines left out), and whether the file ended; records that are not
    CSV or have the wrong number of fields are rejected here and not kept."""
    records: list[Record] = []
    shared: dict[str, str] = {}  # a file repeats its times, reasons and classes: one string each
    while len(records) < RUN:
        try:
            values = next(reader)
        except StopIteration:
            return records, True
        except csv.Error as exc:
            summary.rows += 1
            summary.reject(reader.line_num, f"not CSV: {exc}")
            continue
        stripped = [v.strip() for v in values]
        if not any(stripped):
            continue
        summary.rows += 1
        if len(values) != len(HEADER):
            summary.reject(reader.line_num, f"expected {len(HEADER)} fields, found {len(values)}")
            continue
        records.append((reader.line_num, (stripped[0], *(shared.setdefault(v, v) for v in stripped[1:]))))
        if summary.rows % YIELD_EVERY == 0:
            await asyncio.sleep(0)
            if progress:
                progress(summary.rows, None)
    return records, False


PARSER_FROM = 50_000  # records; a larger file is parsed by a second process while this one writes
PARSED_AHEAD = 3  # batches the parser may be ahead of the one being written (a few MiB each in the pipe)


async def _parsed(records: list[Record], carrier: dict, summary: ImportSummary) -> AsyncIterator[list[tuple[int, lifecycle.EventInput]]]:
    """The records parsed and checked, BATCH at a time, as (line, event); bad ones are counted and
    reported in ``summary``. A large file's records are parsed by a second process, a few batches
    ahead of the one being written: parsing and checking a row costs about as much as building and
    writing it, and the two then share both cores."""
    region, jurisdiction = get_settings().default_region, carrier["jurisdiction"]
    chunks = _chunks(records)
    if len(records) < PARSER_FROM:
        for chunk in chunks:
            events: list[tuple[int, lifecycle.EventInput]] = []
            rejected: list[tuple[int, str]] = []
            for done, (line, fields) in enumerate(chunk, 1):
                _parse_one(line, fields, region, jurisdiction, events, rejected)
                if done % 50 == 0:
                    await asyncio.sleep(0)  # let the batch being written go on
            yield _take(events, rejected, summary)
        return
    loop = asyncio.get_running_loop()
    parser = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),  # no fork of a threaded process
                                 initializer=gc.disable)  # it only parses: see without_collector
    try:
        ahead = collections.deque(loop.run_in_executor(parser, _parse_chunk, chunk, region, jurisdiction)
                                  for chunk in itertools.islice(chunks, PARSED_AHEAD))
        while ahead:
            wired, rejected = await ahead.popleft()
            if (chunk := next(chunks, None)) is not None:
                ahead.append(loop.run_in_executor(parser, _parse_chunk, chunk, region, jurisdiction))
            yield _take([_unwire(values) for values in wired], rejected, summary)
    finally:
        parser.shutdown(wait=False, cancel_futures=True)  # an import that failed leaves no parsing behind


def _number(record: Record) -> str:
    return record[1][0]


def _chunks(records: list[Record]) -> Iterator[list[Record]]:
    """The sorted records BATCH at a time, a number's rows (as written) never split between two: a batch
    is planned while the one before it is written, and a plan cannot see that batch's numbers."""
    start = 0
    while start < len(records):
        end = min(start + BATCH, len(records))
        while end < len(records) and _number(records[end]) == _number(records[end - 1]):
            end += 1
        yield records[start:end]
        start = end


def _take(events: list, rejected: list[tuple[int, str]], summary: ImportSummary) -> list:
    for line, detail in rejected:
        summary.reject(line, detail)
    return events


def _parse_one(line: int, fields: tuple[str, ...], region: str, jurisdiction: str, events: list,
               rejected: list[tuple[int, str]]) -> None:
    try:
        event = lifecycle.event_from_data(NumberEvent.DISCONNECTED, dict(zip(HEADER, fields)), "", region,
                                          jurisdiction)
    except HeirlineError as exc:
        rejected.append((line, exc.detail))
        return
    event.key = lifecycle.row_key(event.number.e164, fields)
    events.append((line, event))


def _parse_chunk(chunk: list[Record], region: str, jurisdiction: str) -> tuple[list[tuple], list[tuple[int, str]]]:
    """In the parser process: the chunk's events, each as :func:`_wire` makes it, and its rejections as
    (line, why)."""
    events: list[tuple[int, lifecycle.EventInput]] = []
    rejected: list[tuple[int, str]] = []
    for line, fields in chunk:
        _parse_one(line, fields, region, jurisdiction, events, rejected)
    return [_wire(line, event) for line, event in events], rejected


def _wire(line: int, event: lifecycle.EventInput) -> tuple:
    """A file's parsed disconnection as plain values, for the pipe from the parser process: pickled as
    objects, a dataclass and its number cost the two processes about 18 us a row between them, as values
    about 9. :func:`_unwire` is its inverse (a disconnection has no new carrier)."""
    number = event.number
    return (line, number.e164, number.region, event.key, event.occurred_at, event.reason, event.line_class,
            event.jurisdiction, event.aging_ends_at, event.subscriber_ref, event.carrier_case_id)


def _unwire(values: tuple) -> tuple[int, lifecycle.EventInput]:
    (line, e164, region, key, occurred_at, reason, line_class, jurisdiction, aging_ends_at, subscriber_ref,
     carrier_case_id) = values
    return line, lifecycle.EventInput(NumberEvent.DISCONNECTED, Number(e164, region), key, occurred_at, reason,
                                      line_class, jurisdiction, aging_ends_at, subscriber_ref, carrier_case_id)


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


async def _flush(pending: list[tuple[int, lifecycle.EventInput]], planned: lifecycle.BulkPlan,
                 summary: ImportSummary, statistics: _Statistics) -> None:
    outcomes = await lifecycle.apply_planned(planned)
    for (line, _), outcome in zip(pending, outcomes):
        if outcome.result == "applied":
            summary.applied += 1
        elif outcome.result == "duplicate":
            summary.duplicates += 1
        else:
            summary.reject(line, outcome.error.detail if outcome.error else "rejected")
    await statistics.refresh(summary.applied)
