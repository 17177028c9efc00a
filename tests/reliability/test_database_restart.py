"""PostgreSQL restarted while partner batches are being sent: every batch the API acknowledged is
stored, every batch it did not is retried by the client with the same record ids, and nothing is
stored twice. Runs against a throwaway PostgreSQL (never the machine's shared one) and gunicorn.
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
from accounts.services import data_source_authorize
from activities.services import partner_create, partner_customer_link
from tests.accounts.factories import UserFactory
partner = partner_create(code="city-transit", name="Transit", source=DataSource.TRANSIT_CARD,
                         behaviour_codes=["bus", "metro"])
for number in range(5):
    user = UserFactory()
    data_source_authorize(user=user, source=DataSource.TRANSIT_CARD)
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
