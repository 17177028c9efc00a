"""Streaming, resumable import of a partner's history file; used by `manage.py import_activity_history`."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError

from activities.ingest import ACCEPTED, DUPLICATE, HELD, REJECTED
from activities.models import Partner
from activities.services import partner_records_ingest

COLUMNS = ["id", "customer_reference", "behaviour", "quantity", "occurred_at", "ended_at"]


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
        restart: bool = False,
        progress=None,
    ) -> None:
        self.path, self.partner, self.file_format = path, partner, file_format
        self.errors_path, self.checkpoint_path = errors_path, checkpoint_path
        self.batch_size, self.restart, self.progress = batch_size, restart, progress

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

    def run(self) -> dict:
        state = self._load_checkpoint()
        totals = {
            "lines": 0, ACCEPTED: 0, DUPLICATE: 0, HELD: 0, REJECTED: 0, **state.get("totals", {}),
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
                header = [name.strip() for name in next(csv.reader([source.readline().decode("utf-8-sig")]))]
                missing = set(COLUMNS[:5]) - set(header)
                if missing:
                    raise CommandError(f"the CSV header lacks {', '.join(sorted(missing))}")
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
                    outcomes = partner_records_ingest(
                        partner=self.partner, records=[item[2] for item in batch], is_history=True
                    )
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

    def _parse(self, raw: bytes, header: list[str] | None) -> Any:
        text = raw.decode("utf-8", "replace")
        if header is None:
            try:
                return json.loads(text)
            except ValueError:
                return None  # rejected as invalid_record
        values = next(csv.reader(io.StringIO(text)), [])
        record = dict(zip(header, values, strict=False))
        if not record.get("ended_at"):
            record.pop("ended_at", None)
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
