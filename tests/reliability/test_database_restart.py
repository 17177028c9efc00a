"""PostgreSQL restarted under load, against a throwaway PostgreSQL (never the machine's shared one).

- While partner batches are being sent (through gunicorn): every batch the API acknowledged is
  stored, every batch it did not is retried by the client with the same record ids, and nothing is
  stored twice.
- While a bulk history import runs (`import_activity_history`, chunk by chunk): the import stops
  with an error saying how far it got, the chunks it committed stay, and the same command run again
  resumes from its checkpoint and ends with every line of the file credited exactly once.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import types
import uuid

import psycopg
import pytest
import requests

from tests.activities.conftest import ride, signed_headers, yesterday_at
from tests.reliability.conftest import FIGURES, count_response, soak
from tests.reliability.processes import BIN, ROOT, environment, gunicorn, processes
from tests.services import _as_postgres_user, _postgres_bin, throwaway_postgres, throwaway_redis

pytestmark = [soak, pytest.mark.concurrency]

SETUP = """
import json
from accounts.models import DataSource
from activities.services import partner_create, partner_customer_link
from tests.accounts.factories import UserFactory, authorization_granted
partner = partner_create(code="city-transit", name="Transit", source=DataSource.TRANSIT_CARD,
                         behaviour_codes=["bus", "metro"])
for number in range(5):
    user = UserFactory()
    authorization_granted(user, DataSource.TRANSIT_CARD)
    partner_customer_link(partner=partner.partner, customer_reference=f"T-{number}", user=user)
print(json.dumps({"api_key": partner.partner.api_key, "secret": partner.signing_secret}))
"""


def _manage(database_url: str, redis_url: str, *arguments: str) -> str:
    return subprocess.run(
        [str(BIN / "python"), "manage.py", *arguments],
        env=environment(redis_url=redis_url, database=database_url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout


def _restart(database_url: str) -> None:
    with psycopg.connect(database_url.replace("postgres://", "postgresql://"), autocommit=True) as connection:
        data_directory = connection.execute("SHOW data_directory").fetchone()[0]
    subprocess.run(
        _as_postgres_user([_postgres_bin("pg_ctl"), "-D", data_directory, "-m", "fast", "-w", "restart"]),
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=60,
    )


def test_partner_batches_across_a_database_restart_are_stored_once():
    with throwaway_postgres() as database_url, throwaway_redis() as redis_url, processes() as started:
        server_url = database_url.rsplit("/", 1)[0].replace("postgres://", "postgresql://") + "/postgres"
        with psycopg.connect(server_url, autocommit=True) as connection:
            connection.execute("CREATE DATABASE carbon_account")
        _manage(database_url, redis_url, "migrate", "--noinput")
        credentials = json.loads(
            _manage(database_url, redis_url, "shell", "-c", SETUP).strip().splitlines()[-1]
        )
        partner = types.SimpleNamespace(
            partner=types.SimpleNamespace(api_key=credentials["api_key"]),
            signing_secret=credentials["secret"],
        )
        base = gunicorn(started, redis_url=redis_url, workers=2, database=database_url)

        acknowledged: set[str] = set()
        sent: set[str] = set()
        stop = threading.Event()
        failures = []

        def send_batches() -> None:
            batch = 0
            while not stop.is_set() and batch < 2000:
                ids = [f"b{batch}-{index}" for index in range(5)]
                records = [
                    ride(record_id, reference=f"T-{index}", at=yesterday_at(6 + index, batch % 60), minutes=1)
                    for index, record_id in enumerate(ids)
                ]
                body = json.dumps({"records": records}).encode()
                for _attempt in range(30):  # the client retries the same records until acknowledged
                    headers = {
                        key.removeprefix("HTTP_").replace("_", "-"): value
                        for key, value in signed_headers(partner, body, request_id=uuid.uuid4().hex).items()
                    }
                    sent.update(ids)
                    try:
                        response = requests.post(
                            f"{base}/api/v1/partner/records",
                            data=body,
                            headers={**headers, "Content-Type": "application/json"},
                            timeout=10,
                        )
                    except requests.RequestException as error:
                        failures.append(str(error)[:100])
                        FIGURES["requests sent"] += 1
                        time.sleep(0.3)
                        continue
                    count_response(response.status_code, during_fault=response.status_code >= 500)
                    if response.status_code == 200:
                        acknowledged.update(ids)
                        break
                    failures.append(f"{response.status_code}")
                    time.sleep(0.3)
                batch += 1

        client = threading.Thread(target=send_batches)
        client.start()
        time.sleep(3)
        _restart(database_url)
        FIGURES["faults injected"] += 1
        time.sleep(5)
        stop.set()
        client.join(timeout=120)

        with psycopg.connect(database_url.replace("postgres://", "postgresql://")) as connection:
            stored = [
                row[0] for row in connection.execute("SELECT external_id FROM activities_activityrecord")
            ]
        invariants = subprocess.run(
            [str(BIN / "python"), "manage.py", "check_invariants"],
            env=environment(redis_url=redis_url, database=database_url),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    stored_ids = {external_id.removeprefix("city-transit:") for external_id in stored}
    assert len(stored) == len(set(stored)), "a record was stored twice"
    assert acknowledged <= stored_ids, "an acknowledged record was lost"
    assert stored_ids <= sent
    assert len(acknowledged) > 20
    assert invariants.returncode == 0, invariants.stdout + invariants.stderr
    FIGURES["invariant checks passed"] += 1


IMPORT_SETUP = """
import json
from accounts.models import DataSource
from activities.services import partner_create, partner_customer_link
from tests.accounts.factories import UserFactory, authorization_granted
partner = partner_create(code="city-transit", name="Transit", source=DataSource.TRANSIT_CARD,
                         behaviour_codes=["bus", "metro"])
for number in range({riders}):
    user = UserFactory()
    authorization_granted(user, DataSource.TRANSIT_CARD)
    partner_customer_link(partner=partner.partner, customer_reference=f"T-{{number}}", user=user)
print("ready")
"""
IMPORT_RIDERS = 40
IMPORT_RIDES_PER_RIDER = 600  # eight a day: 75 days of each rider's history, inside the import's window
RIDE_MG = 80_000  # a bus ride under the default methodology, well below its daily cap


def _history_file(path) -> list[str]:
    """A back file of rides, one line each, oldest first; returns the record ids in file order."""
    import csv
    import datetime

    from core.local_time import LOCAL_TZ

    start = datetime.datetime.combine(
        datetime.datetime.now(LOCAL_TZ).date() - datetime.timedelta(days=80),
        datetime.time(6),
        tzinfo=LOCAL_TZ,
    )
    ids = []
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "customer_reference", "behaviour", "quantity", "occurred_at", "ended_at"])
        for ride_number in range(IMPORT_RIDES_PER_RIDER):
            at = start + datetime.timedelta(hours=3 * ride_number)
            for rider_number in range(IMPORT_RIDERS):
                record_id = f"H{rider_number}-{ride_number}"
                ids.append(record_id)
                writer.writerow([record_id, f"T-{rider_number}", "bus", "1", at.isoformat(), ""])
    return ids


def test_a_history_import_across_a_database_restart_resumes_and_credits_every_line_once(tmp_path):
    with throwaway_postgres() as database_url, throwaway_redis() as redis_url:
        conninfo = database_url.replace("postgres://", "postgresql://")
        server_url = conninfo.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(server_url, autocommit=True) as connection:
            connection.execute("CREATE DATABASE carbon_account")
        _manage(database_url, redis_url, "migrate", "--noinput")
        _manage(database_url, redis_url, "shell", "-c", IMPORT_SETUP.format(riders=IMPORT_RIDERS))
        path = tmp_path / "rides.csv"
        ids = _history_file(path)
        checkpoint = tmp_path / "rides.csv.checkpoint.json"
        command = [
            str(BIN / "python"), "manage.py", "import_activity_history", str(path),
            "--partner", "city-transit", "--chunk-rows", "500", "--no-progress",
        ]  # fmt: skip
        env = environment(redis_url=redis_url, database=database_url)

        # Given an import a few chunks in,
        first = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def chunks_done() -> int:
            try:
                return json.loads(checkpoint.read_text())["line"] - 1
            except (FileNotFoundError, ValueError):
                return 0

        deadline = time.monotonic() + 120
        while chunks_done() < 2000 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        committed_before = chunks_done()
        assert first.poll() is None, "the import ended before the restart: make the file longer"
        assert committed_before >= 2000

        # when PostgreSQL restarts under it,
        _restart(database_url)
        FIGURES["faults injected"] += 1
        _, stderr = first.communicate(timeout=120)

        # then the import stops with a clear error and the chunks it committed stay;
        assert first.returncode == 1, stderr.decode()
        message = stderr.decode()
        assert "Traceback" not in message, message
        assert "run the same command again to resume" in message, message
        with psycopg.connect(conninfo) as connection:
            kept = {
                row[0].removeprefix("city-transit:")
                for row in connection.execute("SELECT external_id FROM activities_activityrecord")
            }
        assert set(ids[:committed_before]) <= kept
        assert len(kept) < len(ids), "the restart came too late to interrupt anything"

        # and the same command again resumes from the checkpoint and ends with every line credited once.
        second = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert second.returncode == 0, second.stdout + second.stderr
        totals = json.loads(checkpoint.read_text())["totals"]
        with psycopg.connect(conninfo) as connection:
            stored = [
                row[0].removeprefix("city-transit:")
                for row in connection.execute("SELECT external_id FROM activities_activityrecord")
            ]
            credited_by_records, credited_by_days = connection.execute(
                "SELECT (SELECT SUM(credited_carbon_mg) FROM activities_activityrecord), "
                "(SELECT SUM(credited_carbon_mg) FROM activities_dailycarbon)"
            ).fetchone()
        invariants = subprocess.run(
            [str(BIN / "python"), "manage.py", "check_invariants"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert len(stored) == len(set(stored)), "a line was stored twice"
    assert set(stored) == set(ids)
    assert credited_by_records == credited_by_days == len(ids) * RIDE_MG
    # A chunk committed just before the restart but not yet checkpointed comes back as duplicates.
    assert totals["lines"] == len(ids)
    assert totals["accepted"] + totals["duplicate"] == len(ids)
    assert totals["rejected"] == totals["held_for_review"] == 0
    assert invariants.returncode == 0, invariants.stdout + invariants.stderr
    FIGURES["invariant checks passed"] += 1
