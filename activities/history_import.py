"""Streaming, resumable import of a partner's history file; used by `manage.py import_activity_history`.

A CSV file goes through `bulk_import` a chunk at a time (set-based, COPY into a staging table);
JSON lines go through the partner batch path. Same rules either way.
"""

from __future__ import annotations

import csv
import io
import json
import os
import queue
import threading
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone

from activities import errors as error_codes
from activities.bulk_import import ChunkImporter, ChunkResult, CreditedDaysHook, methodology_fits
from activities.ingest import ACCEPTED, DUPLICATE, DUPLICATE_ACROSS_SOURCES, HELD, REJECTED
from activities.methodology import methodology_load
from activities.models import Partner
from activities.services import partner_records_ingest
from activities.sql_statements import capture as capture_statements

COLUMNS = ["id", "customer_reference", "behaviour", "quantity", "occurred_at", "ended_at"]
# Optional: the yuan paid, for payment behaviours counted from a minimum amount.
AMOUNT = "amount"
# Parts of a chunk imported side by side: PostgreSQL works each on its own core.
DEFAULT_WORKERS = min(2, os.cpu_count() or 1)


class _ChunkParts:
    """Imports each chunk in `workers` parts split by person, each part on its own thread and connection.

    With one worker the chunk is one part, imported on the calling thread and connection (which may
    hold a transaction of the caller's, unseen by other connections). A part's failure is raised
    from `result()` once every part of the chunk has finished (the other parts may have committed:
    on resume those lines come back as duplicates, as a chunk committed just before a crash does).
    """

    def __init__(
        self,
        *,
        workers: int,
        partner: Partner,
        header: list[str],
        methodology,
        parse,
        is_backfill: bool = False,
        on_credited: CreditedDaysHook | None = None,
    ) -> None:
        self.workers, self.partner, self.header, self.methodology = workers, partner, header, methodology
        self.parse, self.is_backfill, self.on_credited = parse, is_backfill, on_credited
        self.reference_column = header.index("customer_reference")
        self.importers: list[ChunkImporter] = []
        self._tasks: list[queue.Queue] = []
        self._results: queue.Queue = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._pending: list[int] = []
        self._inline_result: ChunkResult | None = None

    def __enter__(self) -> _ChunkParts:
        if self.workers == 1:
            self.importers.append(self._importer())
            return self
        for part in range(self.workers):
            tasks: queue.Queue = queue.Queue()
            thread = threading.Thread(
                target=self._work, args=(part, tasks), name=f"history-import-{part}", daemon=True
            )
            self._tasks.append(tasks)
            self._threads.append(thread)
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        for tasks in self._tasks:
            tasks.put(None)
        for thread in self._threads:
            thread.join()

    def _importer(self) -> ChunkImporter:
        return ChunkImporter(
            partner=self.partner,
            header=self.header,
            methodology=self.methodology,
            now=None,
            is_backfill=self.is_backfill,
            on_credited=self.on_credited,
        )

    def _work(self, part: int, tasks: queue.Queue) -> None:
        try:
            importer = None
            while (task := tasks.get()) is not None:
                lines, ordinals, now = task
                try:
                    if importer is None:
                        importer = self._importer()
                        self.importers.append(importer)
                    importer.now = now
                    self._results.put((part, importer.import_chunk(lines, self.parse, ordinals=ordinals)))
                except BaseException as error:  # noqa: BLE001 - raised again by result()
                    self._results.put((part, error))
        finally:
            connection.close()

    def _reference_of(self, line: bytes) -> bytes:
        if b'"' in line:
            fields = next(csv.reader([line.decode("utf-8", "replace")]), [])
            return fields[self.reference_column].encode() if len(fields) > self.reference_column else b""
        fields = line.rstrip(b"\r\n").split(b",")
        return fields[self.reference_column] if len(fields) > self.reference_column else b""

    def _people_of(self, references: set[bytes]) -> dict[bytes, int]:
        """The person each linked reference names (one query a chunk)."""
        texts = {reference: reference.strip().decode("utf-8", "replace") for reference in references}
        with connection.cursor() as cursor:
            people = capture_statements.customer_users(cursor, self.partner.id, sorted(set(texts.values())))
        return {reference: people[text] for reference, text in texts.items() if text in people}

    def _part_of(self, reference: bytes, people: dict[bytes, int]) -> int:
        """A linked reference's part is its person's (by id, so people spread evenly); one that names
        nobody goes by a hash of itself."""
        person = people.get(reference)
        return person % self.workers if person is not None else zlib.crc32(reference) % self.workers

    def start(self, lines: list[bytes], *, now) -> None:
        """Starts importing a chunk; `result()` waits for it.

        A line's part is its person's (of its customer reference where it names nobody), so a
        person's lines share a part, in file order, however many cards they have."""
        if self.workers == 1:
            importer = self.importers[0]
            importer.now = now
            self._inline_result = importer.import_chunk(lines, self.parse)
            return
        numbered = [(ordinal, line, self._reference_of(line)) for ordinal, line in enumerate(lines, start=1)]
        numbered = [(ordinal, line, reference) for ordinal, line, reference in numbered if line.strip()]
        people = self._people_of({reference for _, _, reference in numbered})
        shares: list[tuple[list[bytes], list[int]]] = [([], []) for _ in range(self.workers)]
        for ordinal, line, reference in numbered:  # blank lines are skipped, as in one part
            share = shares[self._part_of(reference, people)]
            share[0].append(line)
            share[1].append(ordinal)
        self._pending = [part for part, (share_lines, _) in enumerate(shares) if share_lines]
        for part in self._pending:
            self._tasks[part].put((*shares[part], now))

    def result(self) -> ChunkResult:
        """The chunk's result over its parts: totals added up, rejected lines in file order."""
        if self.workers == 1:
            return self._inline_result
        results, failure = [], None
        for _ in self._pending:
            _, outcome = self._results.get()
            if isinstance(outcome, BaseException):
                failure = failure or outcome
            else:
                results.append(outcome)
        if failure is not None:
            raise failure
        totals = Counter()
        for outcome in results:
            totals.update(outcome.totals)
        rejected = sorted((row for outcome in results for row in outcome.rejected), key=lambda row: row[0])
        return ChunkResult(totals=totals, rejected=rejected)

    @property
    def lines_read_by_python(self) -> int:
        return sum(importer.lines_read_by_python for importer in self.importers)


class HistoryImport:
    """The import itself, usable from code (the benchmark) as well as from the command."""

    def __init__(
        self,
        *,
        path: Path,
        partner: Partner,
        file_format: str,
        errors_path: Path,
        checkpoint_path: Path,
        batch_size: int = 5000,
        chunk_rows: int = 50_000,
        workers: int = DEFAULT_WORKERS,
        restart: bool = False,
        progress=None,
        is_backfill: bool = False,
        on_credited: CreditedDaysHook | None = None,
    ) -> None:
        """`is_backfill` lifts the history window (an operator's audited back-fill, see
        `rewards/management/commands/backfill_activity_history.py`); `on_credited` is then called in
        each chunk's (or batch's) transaction with the (person, day) pairs its records credited."""
        self.path, self.partner, self.file_format = path, partner, file_format
        self.errors_path, self.checkpoint_path = errors_path, checkpoint_path
        self.batch_size, self.restart, self.progress = batch_size, restart, progress
        self.chunk_rows, self.workers = chunk_rows, max(1, workers)
        self.is_backfill, self.on_credited = is_backfill, on_credited

    def _load_checkpoint(self) -> dict:
        if self.restart or not self.checkpoint_path.exists():
            return {}
        state = json.loads(self.checkpoint_path.read_text())
        if state.get("path") != str(self.path.resolve()) or state.get("partner") != self.partner.code:
            raise CommandError(
                f"{self.checkpoint_path} belongs to another import; use --restart or another file"
            )
        return state

    def _save_checkpoint(self, state: dict) -> None:
        temporary = self.checkpoint_path.with_name(self.checkpoint_path.name + ".tmp")
        temporary.write_text(json.dumps(state))
        os.replace(temporary, self.checkpoint_path)

    def progress_summary(self) -> str:
        """How far the committed part of the import goes, from the checkpoint (for an error message)."""
        if not self.checkpoint_path.exists():
            return "no chunk was committed yet"
        state = json.loads(self.checkpoint_path.read_text())
        return f"the file up to line {state['line']} is imported ({state['totals']['lines']} records)"

    def run(self) -> dict:
        methodology = methodology_load()
        if self.file_format == "csv" and methodology_fits(methodology):
            return self._run_in_chunks(methodology)
        return self._run_in_batches()

    def _run_in_chunks(self, methodology) -> dict:
        """Chunks of `chunk_rows` lines, each checked and credited set-based, a part per person share.

        With `workers` > 1 a chunk is split by person (a hash of the customer reference) into that
        many parts, imported side by side on their own connections, each in its own transaction: a
        person's lines stay in one part and in file order, so caps and holds come out as one
        connection would work them out. The next chunk is read while the parts are imported.
        Inside a caller's transaction (whose rows other connections cannot see) one part runs on
        the caller's connection.
        """
        state = self._load_checkpoint()
        totals = {
            "lines": 0, ACCEPTED: 0, DUPLICATE: 0, DUPLICATE_ACROSS_SOURCES: 0, HELD: 0, REJECTED: 0,
            **state.get("totals", {}),
        }  # fmt: skip
        size = self.path.stat().st_size
        started = time.monotonic()
        imported_now = 0
        workers = 1 if connection.in_atomic_block else self.workers
        with (
            self.path.open("rb") as source,
            self.errors_path.open("a" if state else "w", newline="", encoding="utf-8") as error_file,
        ):
            errors = csv.writer(error_file)
            if not state:
                errors.writerow(["line", "id", "code", "reason", "content"])
            header = self._read_header(source)
            line_number = state.get("line", 1)
            if state:
                source.seek(state["offset"])
            with _ChunkParts(
                workers=workers, partner=self.partner, header=header, methodology=methodology,
                parse=lambda raw: self._parse(raw, header), is_backfill=self.is_backfill,
                on_credited=self.on_credited,
            ) as parts:  # fmt: skip
                self.chunk_parts = parts
                chunk = self._read_chunk(source)
                while chunk:
                    lines, offset = chunk
                    parts.start(lines, now=timezone.now())
                    chunk = self._read_chunk(source)  # while the parts are imported
                    result = parts.result()
                    for ordinal, record_id, code, detail in result.rejected:
                        reason = str(error_codes.RECORD_CODES[code].message) + (
                            f" ({detail})" if detail else ""
                        )
                        content = lines[ordinal - 1].decode("utf-8", "replace").rstrip("\r\n")
                        errors.writerow([line_number + ordinal, record_id, code, reason, content])
                    error_file.flush()
                    for status, count in result.totals.items():
                        totals[status] += count
                    done = sum(result.totals.values())
                    totals["lines"] += done
                    imported_now += done
                    line_number += len(lines)
                    self._save_checkpoint(
                        {
                            "path": str(self.path.resolve()),
                            "partner": self.partner.code,
                            "offset": offset,
                            "line": line_number,
                            "totals": totals,
                        }
                    )
                    self._report(offset, size, totals, imported_now, started)
        elapsed = max(time.monotonic() - started, 1e-9)
        if self.progress:
            self.progress.write("\n")
        return {**totals, "rows_per_second": imported_now / elapsed, "seconds": elapsed}

    @property
    def lines_read_by_python(self) -> int:
        """Lines the API's parser had to read (odd fields), over every part of the chunked import."""
        return self.chunk_parts.lines_read_by_python

    def _read_chunk(self, source) -> tuple[list[bytes], int] | None:
        """The next `chunk_rows` lines and the file offset after them; None at the end of the file."""
        lines = []
        for line in source:
            lines.append(line)
            if len(lines) >= self.chunk_rows:
                break
        return (lines, source.tell()) if lines else None

    def _read_header(self, source) -> list[str]:
        header = [name.strip() for name in next(csv.reader([source.readline().decode("utf-8-sig")]))]
        missing = set(COLUMNS[:5]) - set(header)
        if missing:
            raise CommandError(f"the CSV header lacks {', '.join(sorted(missing))}")
        return header

    def _run_in_batches(self) -> dict:
        """Batches of `batch_size` lines through the partner batch path (JSON lines)."""
        state = self._load_checkpoint()
        totals = {
            "lines": 0, ACCEPTED: 0, DUPLICATE: 0, DUPLICATE_ACROSS_SOURCES: 0, HELD: 0, REJECTED: 0,
            **state.get("totals", {}),
        }  # fmt: skip
        size = self.path.stat().st_size
        started = time.monotonic()
        imported_now = 0
        with (
            self.path.open("rb") as source,
            self.errors_path.open("a" if state else "w", newline="", encoding="utf-8") as error_file,
        ):
            errors = csv.writer(error_file)
            if not state:
                errors.writerow(["line", "id", "code", "reason", "content"])
            header = None
            if self.file_format == "csv":
                header = self._read_header(source)
            line_number = state.get("line", 1 if header else 0)
            if state:
                source.seek(state["offset"])
            batch: list[tuple[int, bytes, Any]] = []
            while True:
                raw = source.readline()
                if raw:
                    line_number += 1
                    if raw.strip():
                        batch.append((line_number, raw, self._parse(raw, header)))
                if batch and (len(batch) >= self.batch_size or not raw):
                    outcomes = self._batch_ingest([item[2] for item in batch])
                    for (number, content, _), outcome in zip(batch, outcomes, strict=True):
                        totals[outcome.status] += 1
                        if outcome.status == REJECTED:
                            reason = outcome.as_dict()["message"] + (
                                f" ({outcome.detail})" if outcome.detail else ""
                            )
                            errors.writerow(
                                [
                                    number,
                                    outcome.external_id,
                                    outcome.code,
                                    reason,
                                    content.decode("utf-8", "replace").rstrip("\r\n"),
                                ]
                            )
                    error_file.flush()
                    totals["lines"] += len(batch)
                    imported_now += len(batch)
                    batch = []
                    self._save_checkpoint(
                        {
                            "path": str(self.path.resolve()),
                            "partner": self.partner.code,
                            "offset": source.tell(),
                            "line": line_number,
                            "totals": totals,
                        }
                    )
                    self._report(source.tell(), size, totals, imported_now, started)
                if not raw:
                    break
        elapsed = max(time.monotonic() - started, 1e-9)
        if self.progress:
            self.progress.write("\n")
        return {**totals, "rows_per_second": imported_now / elapsed, "seconds": elapsed}

    def _batch_ingest(self, records: list[Any]) -> list:
        """One batch through the partner path; with `on_credited`, in one transaction with its hook."""
        with transaction.atomic():
            now = timezone.now()
            outcomes = partner_records_ingest(
                partner=self.partner, records=records, is_history=True, is_backfill=self.is_backfill, now=now
            )
            days = sorted({(o.user_id, o.local_day) for o in outcomes if o.credited_carbon_mg > 0})
            if self.on_credited is not None and days:
                self.on_credited(days, f"{self.partner.code}:{now.isoformat()}:batch")
        return outcomes

    def _parse(self, raw: bytes, header: list[str] | None) -> Any:
        text = raw.decode("utf-8", "replace")
        if header is None:
            try:
                return json.loads(text)
            except ValueError:
                return None  # rejected as invalid_record
        values = next(csv.reader(io.StringIO(text)), [])
        record = dict(zip(header, values, strict=False))
        for optional in ("ended_at", "amount"):
            if not record.get(optional):
                record.pop(optional, None)
        return record

    def _report(self, position: int, size: int, totals: dict, imported_now: int, started: float) -> None:
        if not self.progress:
            return
        elapsed = max(time.monotonic() - started, 1e-9)
        done = position / size if size else 1
        bar = "#" * int(done * 30)
        self.progress.write(
            f"\r[{bar:<30}] {done:6.1%} {totals['lines']:>12,} lines "
            f"{imported_now / elapsed:>9,.0f} rows/s  "
            f"{totals[ACCEPTED]:,} accepted {totals[DUPLICATE]:,} duplicate {totals[REJECTED]:,} rejected"
        )
        self.progress.flush()
