"""CSV files merchants and operators download: opened in a spreadsheet, so UTF-8 with a BOM and no
cell that a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io
from typing import Any


def csv_bytes(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        # Spreadsheets run cells that start with = + - @ as formulas: defuse text cells.
        writer.writerow(
            {
                key: (f"'{value}" if isinstance(value, str) and value[:1] in "=+-@" else value)
                for key, value in row.items()
            }
        )
    # A BOM so that Excel opens the Chinese titles as UTF-8.
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
