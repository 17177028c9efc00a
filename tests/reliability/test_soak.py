"""A steady load of mixed traffic for minutes, with faults injected: zero 5xx outside the fault
windows, and every invariant holds at the end (`make soak`; SOAK_SECONDS sets the length).

Traffic, from a few client threads against gunicorn on loopback: guest sign-ins, step syncs, signed
partner batches (some records repeated on purpose), redemptions with an Idempotency-Key (retried
with the same key after a failure), verifications at the counter, wallet reads. Faults, in turn:
a gunicorn worker killed with SIGKILL, Redis stopped for a few seconds then started again.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import signal
import threading
import time
import uuid

import pytest
import requests

from accounts.models import DataSource
from accounts.services import data_source_authorize
from merchants.models import MerchantStaff
from tests.activities.conftest import LOCAL_TZ, ride, signed_headers
from tests.conftest import session_token_for
from tests.merchants.factories import MerchantFactory, OfferFactory, StaffFactory
from tests.reliability.conftest import FIGURES, count_response, soak
from tests.reliability.processes import RedisServer, environment, gunicorn_workers, processes, wait_for
from tests.reliability.world import rider, transit_partner
from tests.rewards.factories import fund_wallet

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency, soak]

SOAK_SECONDS = int(os.environ.get("SOAK_SECONDS", "180"))
CLIENTS = 4
FAULT_EVERY_SECONDS = 20
# A request that started or ended within this margin of a fault counts as during the fault.
FAULT_MARGIN_SECONDS = 2.0


class Load:
    def __init__(self, base: str, world: dict) -> None:
        self.base = base
        self.world = world
        self.fault_windows: list[list[float]] = []
        self.outside_fault_5xx: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def in_fault(self, started: float, ended: float) -> bool:
        with self.lock:
            return any(
                started <= (end or time.monotonic()) + FAULT_MARGIN_SECONDS
                and ended >= begin - FAULT_MARGIN_SECONDS
                for begin, end in self.fault_windows
            )

    def call(self, method: str, path: str, **kwargs) -> requests.Response | None:
        started = time.monotonic()
        try:
            response = requests.request(method, self.base + path, timeout=30, **kwargs)
        except requests.RequestException:
            ended = time.monotonic()
            with self.lock:
                FIGURES["requests sent"] += 1
            if not self.in_fault(started, ended):
                with self.lock:
                    self.outside_fault_5xx.append(f"{method} {path}: connection error")
            return None
        ended = time.monotonic()
        during = self.in_fault(started, ended)
        with self.lock:
            count_response(response.status_code, during_fault=during)
            if response.status_code >= 500 and not during:
                self.outside_fault_5xx.append(
                    f"{method} {path}: {response.status_code} {response.text[:200]}"
                )
        return response

    # --- the traffic -------------------------------------------------------------------------

    def sign_in(self, rng: random.Random) -> None:
        device = f"device-{uuid.uuid4().hex}"
        self.call(
            "POST",
            "/api/v1/guests",
            json={
                "device_id": device,
                "user_agreement_version": "2026-01",
                "privacy_policy_version": "2026-01",
            },
        )

    def steps(self, rng: random.Random) -> None:
        token = rng.choice(self.world["tokens"])
        today = datetime.datetime.now(tz=LOCAL_TZ).date()
        with self.lock:
            self.world["steps"][token] = self.world["steps"].get(token, 0) + rng.randint(0, 400)
            steps = self.world["steps"][token]
        self.call(
            "POST",
            "/api/v1/activities/steps",
            json={"days": [{"day": today.isoformat(), "steps": steps}], "device_id": f"device-{token[:16]}"},
            headers={"X-Session-Token": token},
        )

    def partner_batch(self, rng: random.Random) -> None:
        partner = self.world["partner"]
        at = datetime.datetime.now(tz=LOCAL_TZ) - datetime.timedelta(hours=1, seconds=rng.randint(0, 3000))
        # Some ids repeat on purpose: a partner resending a batch must not credit twice.
        records = [
            ride(f"soak-{rng.randint(0, 400)}", reference=rng.choice(self.world["references"]), at=at)
            for _ in range(rng.randint(1, 5))
        ]
        body = json.dumps({"records": records}).encode()
        headers = {
            key.removeprefix("HTTP_").replace("_", "-"): value
            for key, value in signed_headers(partner, body).items()
        }
        self.call(
            "POST",
            "/api/v1/partner/records",
            data=body,
            headers={**headers, "Content-Type": "application/json"},
        )

    def redeem(self, rng: random.Random) -> None:
        token = rng.choice(self.world["tokens"])
        key = uuid.uuid4().hex
        path = f"/api/v1/catalog/offers/{self.world['offer']}/redeem"
        for _ in range(3):  # a client retries with the same key until it gets an answer
            response = self.call(
                "POST", path, json={}, headers={"X-Session-Token": token, "Idempotency-Key": key}
            )
            if response is not None and response.status_code < 500:
                if response.status_code in {200, 201}:
                    with self.lock:
                        self.world["codes"].append(response.json()["code"])
                return
            time.sleep(0.5)

    def verify(self, rng: random.Random) -> None:
        with self.lock:
            if not self.world["codes"]:
                return
            code = self.world["codes"].pop()
        self.call(
            "POST",
            "/api/v1/merchant/verifications",
            json={"code": code},
            headers={"X-Session-Token": self.world["clerk_token"]},
        )

    def read(self, rng: random.Random) -> None:
        self.call("GET", "/api/v1/wallet", headers={"X-Session-Token": rng.choice(self.world["tokens"])})

    def client(self, seed: int) -> None:
        rng = random.Random(seed)
        actions = [
            self.sign_in,
            self.steps,
            self.partner_batch,
            self.redeem,
            self.verify,
            self.read,
            self.read,
        ]
        while not self.stop.is_set():
            rng.choice(actions)(rng)
            time.sleep(rng.uniform(0.01, 0.05))


def _world() -> dict:
    from accounts.models import AgreementKind
    from accounts.services import agreement_publish

    for kind in (AgreementKind.USER_AGREEMENT, AgreementKind.PRIVACY_POLICY):
        agreement_publish(kind=kind, version="2026-01", title=kind, url=f"https://example.test/{kind}")
    partner = transit_partner()
    references, tokens = [], []
    for number in range(12):
        user = rider(partner, f"T-{number}")
        data_source_authorize(user=user, source=DataSource.PHONE_STEPS)
        fund_wallet(user, 100_000)
        references.append(f"T-{number}")
        tokens.append(session_token_for(user))
    merchant = MerchantFactory()
    clerk = StaffFactory(merchant=merchant, role=MerchantStaff.Role.CLERK).user
    offer = OfferFactory(
        merchant=merchant, price_coins=10, total_stock=100_000, stock_left=100_000, limit_per_person=100_000
    )
    return {
        "partner": partner,
        "references": references,
        "tokens": tokens,
        "steps": {},
        "codes": [],
        "offer": str(offer.public_id),
        "clerk_token": session_token_for(clerk),
    }


def _answers(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_mixed_traffic_with_faults_has_no_5xx_outside_the_faults():
    world = _world()
    redis = RedisServer()
    redis.start()
    try:
        with processes() as started:
            from tests.reliability.processes import BIN, Process
            from tests.services import _free_port

            port = _free_port()
            server = Process(
                [
                    str(BIN / "gunicorn"),
                    "config.wsgi:application",
                    "--workers",
                    "2",
                    "--threads",
                    "2",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--timeout",
                    "60",
                ],
                environment(
                    redis_url=redis.url,
                    LOAD_TEST="1",
                    ACCOUNTS_RATE_GUEST_IP="1000000/hour",
                    ACCOUNTS_RATE_SIGN_IN_IP="1000000/minute",
                ),
                "gunicorn-soak",
            )
            started.append(server)
            load = Load(f"http://127.0.0.1:{port}", world)
            wait_for(lambda: _answers(load.base), timeout=30, what="gunicorn to answer")

            clients = [threading.Thread(target=load.client, args=(seed,)) for seed in range(CLIENTS)]
            for client in clients:
                client.start()
            deadline = time.monotonic() + SOAK_SECONDS
            fault = 0
            while time.monotonic() < deadline - FAULT_EVERY_SECONDS:
                time.sleep(FAULT_EVERY_SECONDS)
                window = [time.monotonic(), None]
                with load.lock:
                    load.fault_windows.append(window)
                if fault % 2 == 0:
                    workers = gunicorn_workers(server)
                    os.kill(random.choice(workers), signal.SIGKILL)
                    wait_for(lambda: len(gunicorn_workers(server)) == 2, timeout=30, what="a new worker")
                else:
                    redis.stop()
                    time.sleep(3)
                    redis.start()
                FIGURES["faults injected"] += 1
                fault += 1
                with load.lock:
                    window[1] = time.monotonic()
            time.sleep(max(0.0, deadline - time.monotonic()))
            load.stop.set()
            for client in clients:
                client.join(timeout=60)
    finally:
        redis.stop()

    assert fault >= 1
    assert load.outside_fault_5xx == [], load.outside_fault_5xx[:20]
    assert FIGURES["requests sent"] > SOAK_SECONDS
