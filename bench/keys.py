"""Benchmark: `manage.py rotate_keys` on a database of many people with bank-verified details.

Creates N people (one INSERT … SELECT), each with a phone and an ID number encrypted under an old
key with the standard suite (the ciphertexts are computed in Python, written by one UPDATE … FROM
unnest), then rotates to a new personal-data key, a new blind index key and the SM suite (SM4-GCM,
HMAC-SM3) at once, and times the run: rows/s, batches, and what is left on the old keys (0).

Usage: .venv/bin/python bench/keys.py [--people 100000] [--batch-size 1000]
Needs PostgreSQL (DATABASE_URL's server; a database named `bench_keys` is recreated) and Redis.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.harness import Report, Row, bench_environment, database_recreate, people_insert  # noqa: E402

DATABASE_NAME = "bench_keys"


def phone_number_of(number: int) -> str:
    return f"138{number:08d}"


def id_number_of(number: int) -> str:
    return f"330802{19800101 + number % 10000:08d}{number % 1000:03d}X"


def people_with_verified_details(count: int, *, prefix: str = "rk-") -> None:
    """`count` people, each with a verified phone and ID number under the current keys (set-based)."""
    from django.db import connection
    from django.utils import timezone

    from accounts import crypto

    people_insert(count, columns={"username": f"'{prefix}' || number"})
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO accounts_personaldetails
                (user_id, phone_number_ciphertext, phone_number_digest, id_number_ciphertext,
                 id_number_digest, updated_at)
            SELECT id, '', '', '', '', %s FROM accounts_user WHERE starts_with(username, %s)
            """,
            [timezone.now(), prefix],
        )
        cursor.execute(
            """
            SELECT d.id, substr(u.username, %s)::int FROM accounts_personaldetails AS d
            JOIN accounts_user AS u ON u.id = d.user_id WHERE starts_with(u.username, %s)
            """,
            [len(prefix) + 1, prefix],
        )
        rows = cursor.fetchall()
    columns: list[list] = [[], [], [], [], []]
    for details_id, number in rows:
        phone, id_number = phone_number_of(number), id_number_of(number)
        columns[0].append(details_id)
        columns[1].append(
            crypto.encrypt(phone, context=crypto.personal_details_context("phone_number", details_id))
        )
        columns[2].append(crypto.blind_index(phone, purpose="phone_number"))
        columns[3].append(
            crypto.encrypt(id_number, context=crypto.personal_details_context("id_number", details_id))
        )
        columns[4].append(crypto.blind_index(id_number, purpose="id_number"))
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE accounts_personaldetails AS d
            SET phone_number_ciphertext = v.phone, phone_number_digest = v.phone_digest,
                id_number_ciphertext = v.id_number, id_number_digest = v.id_digest
            FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[])
                AS v(id, phone, phone_digest, id_number, id_digest)
            WHERE d.id = v.id
            """,
            columns,
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()

    database_url = database_recreate(DATABASE_NAME)
    environment = bench_environment(database_url, os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/13"))
    os.environ.update(environment)
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import override_settings

    from bench.harness import bench_keys

    call_command("migrate", verbosity=0)
    print(f"creating {args.people:,} people with verified details under the old keys …", flush=True)
    started = time.perf_counter()
    people_with_verified_details(args.people)
    print(f"    created in {time.perf_counter() - started:.1f} s", flush=True)

    new = bench_keys()
    rotated = {
        "PERSONAL_DATA_KEYS": [
            new["PERSONAL_DATA_KEYS"].replace("bench:", "new:"),
            environment["PERSONAL_DATA_KEYS"],
        ],
        "BLIND_INDEX_KEYS": [
            new["BLIND_INDEX_KEYS"].replace("bench:", "new:"),
            environment["BLIND_INDEX_KEYS"],
        ],
        "CRYPTO_SUITE": "sm",
    }
    output = io.StringIO()
    with override_settings(**rotated):
        started = time.perf_counter()
        call_command("rotate_keys", batch_size=args.batch_size, stdout=output)
        seconds = time.perf_counter() - started
    print(output.getvalue(), flush=True)
    rows = args.people
    report = Report(size=f"keys-{args.people}")
    report.add(
        Row("key rotation", f"{rows:,} people's phone and ID numbers to a new key and SM4-GCM/HMAC-SM3",
            rows / seconds, "rows/s", notes=f"{seconds:.1f} s, batches of {args.batch_size}")
    )  # fmt: skip
    print(report.table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
