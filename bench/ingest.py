"""Benchmark: partner batch ingest and bulk history import, against a raw COPY measured in the same run.

Figures (issue 4):
1. partner batches through the service (`services.partner_records_ingest`), batches of 500, in
   sequence on one connection — records/s;
2. the same through HTTP: gunicorn (production settings) and signed requests from client processes
   — records/s (the clients share the machine's two cores with the server and PostgreSQL); then
   again with the partner signing in SM2 with SM3 (target: within 10 % of HMAC-SHA256);
   the cross-source rule: the same kind of rides, each naming its instance (a line), through the
   service with the methodology's instance fields removed and then declared (the rule checks and
   keys every ride), in the same run (target: within 15 % of the run without the rule);
3. the bulk import command's engine on a CSV file (chunks COPY'd into staging tables, checked and
   credited set-based) — rows/s and its resident memory at 25 % and at 100 % of the file (flat memory);
4. the reference: a raw `COPY` of the same rows, already resolved to table columns, into the same
   table (`activities_activityrecord`), in the same run, rolled back afterwards — with the table's
   foreign keys checked inside the timed COPY (as a committed load pays), and, for information,
   without (a rolled-back COPY never checks its deferred foreign keys).

Targets: ≥ 15,000 records/s ingest; import ≥ 0.5 × COPY with flat memory.

Usage: .venv/bin/python bench/ingest.py [--people 10000] [--records 100000] [--http-records 100000]
       [--import-rows 300000] [--chunk-rows 50000] [--clients 2] [--workers 2]
Needs PostgreSQL (DATABASE_URL's server; a database named `bench_activities` is recreated) and Redis.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import os
import random
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.harness import Report, Row, bench_environment, database_recreate, gunicorn_server  # noqa: E402

DATABASE_NAME = "bench_activities"


def _seed(people: int) -> tuple[str, str, str]:
    """People who linked a transit card and authorized it; one transit partner. Returns its credentials."""
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from accounts.models import DataSource, DataSourceAuthorization, User
    from activities.models import PartnerCustomerLink
    from activities.services import partner_create

    unusable = make_password(None)
    User.objects.bulk_create(
        [User(username=f"bench{n}", password=unusable) for n in range(people)], batch_size=5000
    )
    user_ids = list(
        User.objects.filter(username__startswith="bench").order_by("id").values_list("id", flat=True)
    )
    now = timezone.now()
    DataSourceAuthorization.objects.bulk_create(
        [
            # Authorized a year ago: the benchmark's rides (the last days) are after the grant.
            DataSourceAuthorization(
                user_id=u, source=DataSource.TRANSIT_CARD, granted_at=now - datetime.timedelta(days=365)
            )
            for u in user_ids
        ],
        batch_size=5000,
    )
    created = partner_create(
        code="bench-transit",
        name="Bench Transit",
        source=DataSource.TRANSIT_CARD,
        behaviour_codes=["bus", "metro"],
    )
    PartnerCustomerLink.objects.bulk_create(
        [
            PartnerCustomerLink(partner=created.partner, customer_reference=f"C{n}", user_id=user_id)
            for n, user_id in enumerate(user_ids)
        ],
        batch_size=5000,
    )
    return created.partner.code, created.partner.api_key, created.signing_secret


def _analyze() -> None:
    """Fresh planner statistics, as autovacuum keeps them on a live database (the tables grew from empty)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "ANALYZE activities_activityrecord, activities_behaviourday, activities_dailycarbon, "
            "activities_partnercustomerlink, accounts_datasourceauthorization, accounts_user"
        )


def _records(prefix: str, count: int, people: int, *, days: int, seed: int) -> list[dict]:
    """Rides spread over people and days (few enough per person and day that caps rarely bite)."""
    from django.utils import timezone

    generator = random.Random(seed)
    now = timezone.localtime()
    rows = []
    for n in range(count):
        started = now - datetime.timedelta(seconds=generator.randrange(3600, days * 86400))
        rows.append(
            {
                "id": f"{prefix}{n}",
                "customer_reference": f"C{generator.randrange(people)}",
                "behaviour": "bus" if n % 3 else "metro",
                "quantity": "1",
                "occurred_at": started.isoformat(timespec="seconds"),
                "ended_at": (started + datetime.timedelta(minutes=25)).isoformat(timespec="seconds"),
            }
        )
    return rows


def _with_lines(records: list[dict], seed: int) -> list[dict]:
    """Each ride names its instance: the line (one of 200), boarded at its own second."""
    generator = random.Random(seed)
    return [{**record, "instance": {"line": f"L{generator.randrange(200)}"}} for record in records]


def _instance_rule(*, enabled: bool) -> None:
    """Declares (or removes) the rides' instance fields in the methodology (bus and metro)."""
    from activities.models import Factor

    Factor.objects.filter(behaviour__code__in=["bus", "metro"]).update(
        instance_fields=["line"] if enabled else [],
        instance_time_tolerance_seconds=120 if enabled else None,
    )


def _cross_source_rule(partner_code: str, args, report) -> None:
    """Partner ingest of rides that name their instance, without the rule and then with it.

    The run with the rule goes second, on a table grown by the first run's records: if anything,
    the comparison is unfavourable to it.
    """
    rates = {}
    for enabled in (False, True):
        _instance_rule(enabled=enabled)
        records = _with_lines(
            _records(f"X{int(enabled)}-", args.cross_source_records, args.people, days=25, seed=20 + enabled),
            seed=30 + enabled,
        )
        rate, counts = _service_ingest(partner_code, records, args.batch_size, args.streams)
        rates[enabled] = rate
        label = "with" if enabled else "without"
        print(
            f"    cross-source rule {'on' if enabled else 'off'}: {rate:,.0f} records/s {counts}", flush=True
        )
        report.add(
            Row("partner ingest", f"service, rides naming their line, {label} the cross-source rule", rate,
                "records/s", reference="without the rule" if enabled else "",
                reference_value=rates[False] if enabled else None,
                target="≥ 0.85× without the rule" if enabled else "",
                met=rate >= 0.85 * rates[False] if enabled else None,
                notes=json.dumps(counts))
        )  # fmt: skip
        _analyze()
    _instance_rule(enabled=True)


def _service_ingest(
    partner_code: str, records: list[dict], batch_size: int, streams: int
) -> tuple[float, dict]:
    """Batches through the service, from `streams` threads (each its own connection) like server workers."""
    import threading

    from django.db import connection

    from activities.models import Partner
    from activities.services import partner_records_ingest

    partner = Partner.objects.get(code=partner_code)
    batches = [records[offset : offset + batch_size] for offset in range(0, len(records), batch_size)]
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def stream(share: list[list[dict]]) -> None:
        try:
            for batch in share:
                outcomes = partner_records_ingest(partner=partner, records=batch)
                with lock:
                    for outcome in outcomes:
                        counts[outcome.status] = counts.get(outcome.status, 0) + 1
        finally:
            connection.close()

    threads = [threading.Thread(target=stream, args=(batches[index::streams],)) for index in range(streams)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(records) / (time.perf_counter() - started), counts


def _http_client(
    url: str, api_key: str, secret: str, bodies: list[bytes], sm2_keys: tuple[str, str] | None = None
) -> dict[str, int]:
    """Signs each batch as a partner does: HMAC-SHA256 with the secret, or SM2 with `sm2_keys`
    (public, private, hex) — a bank of the national suite."""
    import gmssl_pyx
    import requests

    sys.path.insert(0, str(BASE_DIR))
    from activities.signing import request_message, signature_of

    def sign(stamp: str, request_id: str, body: bytes) -> str:
        message = request_message("POST", "/api/v1/partner/records", stamp, request_id, body)
        if sm2_keys is None:
            return signature_of(secret, message)
        public, private = (bytes.fromhex(key) for key in sm2_keys)
        return gmssl_pyx.sm2_sign(private, public, message).hex()

    counts: dict[str, int] = {}
    with requests.Session() as session:
        for body in bodies:
            stamp, request_id = str(int(time.time())), uuid.uuid4().hex
            response = session.post(
                f"{url}/api/v1/partner/records",
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Partner-Key": api_key,
                    "X-Timestamp": stamp,
                    "X-Partner-Request-Id": request_id,
                    "X-Signature": sign(stamp, request_id, body),
                },
                timeout=120,
            )
            if response.status_code != 200:
                counts[f"http_{response.status_code}"] = counts.get(f"http_{response.status_code}", 0) + 1
                continue
            payload = response.json()
            for status in ("accepted", "duplicate", "rejected", "held_for_review"):
                counts[status] = counts.get(status, 0) + payload[status]
    return counts


def _http_ingest(
    environment: dict,
    api_key: str,
    secret: str,
    records: list[dict],
    batch_size: int,
    clients: int,
    workers: int,
    sm2_keys: tuple[str, str] | None = None,
) -> tuple[float, dict]:
    bodies = [
        json.dumps({"records": records[offset : offset + batch_size]}).encode()
        for offset in range(0, len(records), batch_size)
    ]
    shares = [bodies[index::clients] for index in range(clients)]
    with gunicorn_server(environment, workers=workers) as url, ProcessPoolExecutor(clients) as pool:
        started = time.perf_counter()
        results = list(
            pool.map(
                _http_client,
                [url] * clients,
                [api_key] * clients,
                [secret] * clients,
                shares,
                [sm2_keys] * clients,
            )
        )
        elapsed = time.perf_counter() - started
    counts: dict[str, int] = {}
    for result in results:
        for key, value in result.items():
            counts[key] = counts.get(key, 0) + value
    return len(records) / elapsed, counts


def _sm2_http_ingest(environment: dict, partner_code: str, api_key: str, args) -> tuple[float, dict]:
    """The HTTP run again, the partner switched to SM2 with SM3 (its key pair registered): one SM2
    verification per batch instead of one HMAC."""
    import gmssl_pyx

    from activities.models import Partner, SignatureScheme

    public, private = gmssl_pyx.sm2_key_generate()
    Partner.objects.filter(code=partner_code).update(
        signature_scheme=SignatureScheme.SM2_SM3, sm2_public_key=public.hex()
    )
    try:
        records = _records("M", args.http_records, args.people, days=25, seed=4)
        return _http_ingest(
            environment, api_key, "", records, args.batch_size, args.clients, args.workers,
            sm2_keys=(public.hex(), private.hex()),
        )  # fmt: skip
    finally:
        Partner.objects.filter(code=partner_code).update(signature_scheme=SignatureScheme.HMAC_SHA256)


def _write_csv(path: Path, records: list[dict]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)


def _copy_reference(partner_code: str, records: list[dict], *, check_constraints: bool = True) -> float:
    """Raw COPY of the same rows, already resolved to the table's columns, rolled back afterwards.

    With `check_constraints` the table's foreign keys (deferred until commit, like every Django
    foreign key) are checked inside the timed COPY, as a load that commits pays for them; without,
    they are never checked, since the COPY is rolled back.
    """
    from django.db import connection, transaction
    from django.utils import timezone

    from activities.methodology import methodology_load
    from activities.models import Partner, PartnerCustomerLink

    partner = Partner.objects.get(code=partner_code)
    users = dict(
        PartnerCustomerLink.objects.filter(partner=partner).values_list("customer_reference", "user_id")
    )
    methodology = methodology_load()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    now = datetime.datetime.now(tz=datetime.UTC).isoformat()
    for record in records:
        behaviour = methodology.behaviours_by_code[record["behaviour"]]
        occurred = datetime.datetime.fromisoformat(record["occurred_at"])
        day = timezone.localdate(occurred)
        factor = methodology.factor_for(behaviour.id, day)
        writer.writerow(
            [
                users[record["customer_reference"]], behaviour.id, factor.id, partner.source, partner.id,
                f"copy:{record['id']}", record["quantity"], record["occurred_at"], record["ended_at"],
                day.isoformat(), "", factor.carbon_mg_per_unit, factor.carbon_mg_per_unit, "", "credited", "",
                now, now, "",
            ]
        )  # fmt: skip
    data = buffer.getvalue().encode()
    columns = (
        "user_id, behaviour_id, factor_id, source, partner_id, external_id, quantity, occurred_at, "
        "ended_at, local_day, device_id, gross_carbon_mg, credited_carbon_mg, capped_by, status, "
        "hold_reason, created_at, credited_at, appeal_note"
    )
    text_columns = "device_id, capped_by, hold_reason, appeal_note"
    with transaction.atomic():
        with connection.cursor() as cursor:
            if check_constraints:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            started = time.perf_counter()
            statement = (
                f"COPY activities_activityrecord ({columns}) FROM STDIN "
                f"(FORMAT csv, FORCE_NOT_NULL ({text_columns}))"
            )
            with cursor.cursor.copy(statement) as copy:
                for offset in range(0, len(data), 1 << 20):
                    copy.write(data[offset : offset + (1 << 20)])
            elapsed = time.perf_counter() - started
        transaction.set_rollback(True)
    return len(records) / elapsed


def _import(partner_code: str, path: Path, chunk_rows: int = 50_000) -> tuple[float, float, float, dict]:
    import psutil

    from activities.history_import import HistoryImport
    from activities.models import Partner

    process = psutil.Process()
    samples: list[tuple[float, float]] = []

    class Progress:
        size = path.stat().st_size

        def write(self, text: str) -> None:
            if "%" in text:
                done = float(text.split("]")[1].split("%")[0]) / 100
                samples.append((done, process.memory_info().rss / 2**20))

        def flush(self) -> None:
            pass

    workdir = Path(tempfile.mkdtemp(prefix="bench-import-"))
    importer = HistoryImport(
        path=path,
        partner=Partner.objects.get(code=partner_code),
        file_format="csv",
        errors_path=workdir / "errors.csv",
        checkpoint_path=workdir / "checkpoint.json",
        chunk_rows=chunk_rows,
        progress=Progress(),
    )
    totals = importer.run()
    quarter = next((rss for done, rss in samples if done >= 0.25), samples[0][1])
    return totals["rows_per_second"], quarter, samples[-1][1], totals


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--http-records", type=int, default=100_000)
    parser.add_argument("--import-rows", type=int, default=300_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--chunk-rows", type=int, default=50_000, help="Lines per bulk import chunk.")
    parser.add_argument("--streams", type=int, default=2, help="Concurrent service streams (threads).")
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--cross-source-records",
        type=int,
        default=100_000,
        help="Rides per run of the cross-source rule (0: skip).",
    )
    parser.add_argument("--skip-import", action="store_true", help="Leave out the bulk import and COPY.")
    args = parser.parse_args()

    database_url = database_recreate(DATABASE_NAME)
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/13")
    environment = bench_environment(database_url, redis_url)
    os.environ.update(environment)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    print(f"seeding {args.people:,} people with linked transit cards …", flush=True)
    partner_code, api_key, secret = _seed(args.people)
    _analyze()
    report = Report(size=f"ingest-{args.records}")

    for streams in sorted({1, args.streams}):
        records = _records(f"S{streams}-", args.records, args.people, days=25, seed=10 + streams)
        rate, counts = _service_ingest(partner_code, records, args.batch_size, streams)
        report.add(
            Row("partner ingest", f"service, batches of {args.batch_size}, {streams} stream(s)", rate,
                "records/s", target="≥ 15,000/s", met=rate >= 15_000, notes=json.dumps(counts))
        )  # fmt: skip
        print(f"    outcomes: {counts}", flush=True)
        _analyze()

    if args.cross_source_records:
        _cross_source_rule(partner_code, args, report)

    if args.http_records:
        http_records = _records("H", args.http_records, args.people, days=25, seed=2)
        rate, counts = _http_ingest(
            environment, api_key, secret, http_records, args.batch_size, args.clients, args.workers
        )
        report.add(
            Row("partner ingest", f"HTTP (gunicorn ×{args.workers}, {args.clients} signing clients)", rate,
                "records/s", target="≥ 15,000/s", met=rate >= 15_000, notes=json.dumps(counts))
        )  # fmt: skip
        print(f"    outcomes: {counts}", flush=True)
        _analyze()
        hmac_rate = rate
        rate, counts = _sm2_http_ingest(environment, partner_code, api_key, args)
        report.add(
            Row("partner ingest", "HTTP, the same with SM2-signed batches (SM3)", rate, "records/s",
                reference="HMAC-SHA256 batches", reference_value=hmac_rate, target="≥ 0.9× HMAC-SHA256",
                met=rate >= 0.9 * hmac_rate, notes=json.dumps(counts))
        )  # fmt: skip
        print(f"    outcomes: {counts}", flush=True)
        _analyze()

    if args.skip_import:
        print(report.table())
        print(f"results: {report.save()}")
        return 0
    # Within the history window (ACTIVITIES_HISTORY_WINDOW_DAYS, 90 days): older lines are rejected.
    import_records = _records("I", args.import_rows, args.people, days=85, seed=3)
    copy_unchecked_rate = _copy_reference(partner_code, import_records, check_constraints=False)
    copy_rate = _copy_reference(partner_code, import_records)
    print(
        f"    raw COPY: {copy_rate:,.0f} rows/s with its foreign keys checked, "
        f"{copy_unchecked_rate:,.0f} rows/s when they are never checked",
        flush=True,
    )
    path = Path(tempfile.mkdtemp(prefix="bench-history-")) / "history.csv"
    _write_csv(path, import_records)
    del import_records
    import_rate, rss_quarter, rss_end, totals = _import(partner_code, path, args.chunk_rows)
    report.add(
        Row("bulk import", f"{args.import_rows:,} CSV rows, chunks of {args.chunk_rows:,}", import_rate,
            "rows/s", reference="raw COPY (foreign keys checked)", reference_value=copy_rate,
            target="≥ 0.5× COPY", met=import_rate >= 0.5 * copy_rate,
            notes=f"RSS {rss_quarter:.0f} MiB at 25%, {rss_end:.0f} MiB at 100%; raw COPY without its "
                  f"foreign key checks {copy_unchecked_rate:,.0f} rows/s "
                  f"({import_rate / copy_unchecked_rate:.2f}×); "
                  f"{totals}")
    )  # fmt: skip
    print(f"    resident memory: {rss_quarter:.0f} MiB at 25 % of the file, {rss_end:.0f} MiB at the end")
    print()
    print(report.table())
    print(f"results: {report.save()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
