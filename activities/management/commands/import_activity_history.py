"""Bulk import of a partner's history file (CSV or JSON lines), through the same rules as the API.

    manage.py import_activity_history --partner city-transit rides-2025.csv \
        --errors rides-2025.errors.csv --checkpoint rides-2025.checkpoint.json

- Streams: the file is read a chunk at a time; memory does not grow with the file. A CSV chunk
  (50,000 lines) is COPY'd into a staging table and checked and credited with a handful of
  set-based statements (`activities.bulk_import`); JSON lines go through the partner batch path in
  batches of `--batch-size`.
- Parallel: each chunk is split by person into `--workers` parts (default: two, one per core here)
  imported side by side, each on its own connection and in its own transaction; a person's lines
  stay in one part, in file order.
- Same rules as the partner API (`services.partner_records_ingest`): consent (and only activity
  from the moment the person authorized the source), dedupe, caps, plausibility; the age window is
  the history window (`ACTIVITIES_HISTORY_WINDOW_DAYS`, 90 days by default) instead of the API's:
  older lines are rejected as `occurred_before_history_window`. Older history is an operator's
  audited back-fill: `manage.py backfill_activity_history` (the same options, plus --operator and
  --reason), which settles each back-filled day at its own coin rate with its own expiry.
- Resumable: after each committed chunk the byte offset is written to the checkpoint file; run the
  same command again to continue where it stopped. A chunk committed just before a crash is sent
  again on resume and comes back as duplicates (so may the part of a chunk that committed before
  its other part failed): nothing is credited twice. If the database goes
  away mid-import (a restart, a failover) the command stops with an error saying how far it got.
- Every rejected line goes to the error file with its line number, code and reason.

CSV files have a header with: id, customer_reference, behaviour, quantity, occurred_at[, ended_at].
JSON lines carry one object per line with the same keys.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import InterfaceError, OperationalError

from activities.history_import import DEFAULT_WORKERS, HistoryImport
from activities.ingest import ACCEPTED, DUPLICATE, DUPLICATE_ACROSS_SOURCES, HELD, REJECTED
from activities.models import Partner


class Command(BaseCommand):
    help = (
        "Import a partner's activity history (CSV or JSON lines): streaming, resumable, with an error file."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--partner", required=True, help="The partner's code.")
        parser.add_argument(
            "--format", choices=["csv", "jsonl"], help="Guessed from the file name when left out."
        )
        parser.add_argument(
            "--errors", type=Path, help="Where rejected lines go (default: <path>.errors.csv)."
        )
        parser.add_argument(
            "--checkpoint", type=Path, help="Progress file (default: <path>.checkpoint.json)."
        )
        parser.add_argument("--batch-size", type=int, default=5000, help="Records per batch (batch path).")
        parser.add_argument(
            "--chunk-rows", type=int, default=50_000, help="Lines per chunk (PostgreSQL, CSV)."
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=DEFAULT_WORKERS,
            help=f"Parts of each chunk imported side by side, split by person (default: {DEFAULT_WORKERS}).",
        )
        parser.add_argument("--restart", action="store_true", help="Ignore an existing checkpoint.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        self.run_import(options, partner=self.partner_of(options))

    def partner_of(self, options: dict) -> Partner:
        partner = Partner.objects.filter(code=options["partner"]).first()
        if partner is None:
            raise CommandError(f"no partner with code {options['partner']!r}")
        return partner

    def run_import(self, options: dict, *, partner: Partner, **import_options: Any) -> dict:
        """Runs the import the options describe; `import_options` go to `HistoryImport` as they are."""
        path: Path = options["path"]
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        file_format = options["format"] or (
            "jsonl" if path.suffix in {".jsonl", ".ndjson", ".json"} else "csv"
        )
        errors_path = options["errors"] or path.with_name(path.name + ".errors.csv")
        checkpoint_path = options["checkpoint"] or path.with_name(path.name + ".checkpoint.json")
        importer = HistoryImport(
            path=path,
            partner=partner,
            file_format=file_format,
            errors_path=errors_path,
            checkpoint_path=checkpoint_path,
            batch_size=max(1, options["batch_size"]),
            chunk_rows=max(1, options["chunk_rows"]),
            workers=max(1, options["workers"]),
            restart=options["restart"],
            progress=None if options["no_progress"] else sys.stderr,
            **import_options,
        )
        try:
            totals = importer.run()
        except (OperationalError, InterfaceError) as error:
            # The database went away (a restart, a failover): every chunk before the checkpoint is
            # committed, the one in flight rolled back with the connection.
            raise CommandError(
                f"the database connection was lost ({str(error).strip().splitlines()[0]}); "
                f"{importer.progress_summary()}: run the same command again to resume"
            ) from error
        self.stdout.write(
            f"{totals['lines']} lines: {totals[ACCEPTED]} accepted, {totals[DUPLICATE]} duplicate, "
            f"{totals[DUPLICATE_ACROSS_SOURCES]} already credited from another source, "
            f"{totals[HELD]} held for review, {totals[REJECTED]} rejected (see {errors_path}); "
            f"{totals['rows_per_second']:.0f} rows/s"
        )
        return totals
