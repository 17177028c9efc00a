"""One instance across sources, at midnight: the lock that serializes reports of one instance on two days.

Two reports of one instance within the time tolerance fall into the same or neighbouring buckets
(`methodology.instance_identity`). In the same bucket they meet in the unique index
(`one_credited_report_per_instance`); on the same local day they serialize on the person's counter
row of that day, which capture locks before it looks for the credited report. Neighbouring buckets
on two local days share neither: each report would look, find nothing committed, and be credited.

So every report within the tolerance of a local midnight first takes a transaction-level advisory
lock named by the person, the behaviour, the instance key and that midnight. Two reports of one
instance on either side of a midnight are both within the tolerance of it, so they take the same
lock: the second waits until the first commits, then finds its credited report. The lock is taken
before the counters (every capture path in that order; one kept across a rerun from a savepoint is
still first), in the order of its number, and it is released at the commit. Reports far from
midnight take none, so a chunk of history takes a handful, not one per line.

Both capture paths run the one statement (`sql_statements.instances`): the batch over its candidates
(`ingest._credit`), the bulk import over its staging table (`bulk_import.ChunkImporter._import`).
"""

from __future__ import annotations

import datetime

from activities.sql_statements.instances import candidate_midnights_lock
from core.local_time import LOCAL_TZ


def instance_midnights_lock(
    cursor, reports: list[tuple[int, int, str | None, datetime.datetime, int | None]]
) -> None:
    """Takes the midnight locks of a batch's reports: (person, behaviour, key, occurred at, tolerance)."""
    near = [report for report in reports if _near_midnight(report[3], report[4]) and report[2]]
    if near:
        candidate_midnights_lock(cursor, near)


def _near_midnight(occurred_at: datetime.datetime, tolerance: int | None) -> bool:
    """Within the tolerance of a local midnight: a cheap filter, the statement decides exactly."""
    if not tolerance:
        return False
    local = occurred_at.astimezone(LOCAL_TZ)
    since = datetime.timedelta(hours=local.hour, minutes=local.minute, seconds=local.second)
    return min(since, datetime.timedelta(days=1) - since) <= datetime.timedelta(seconds=tolerance + 1)
