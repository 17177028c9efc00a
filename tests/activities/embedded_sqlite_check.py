"""Run by `test_embedded_sqlite.py` in a subprocess, on a migrated SQLite database as `make run` has.

Loads the accounts and activities demo (the latter twice), signs in a demo citizen, syncs steps,
posts a signed partner batch, reads today and the history. Prints what it saw as JSON.
"""

from __future__ import annotations

import datetime
import json
import time
import uuid

import django

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402

from accounts import demo as accounts_demo  # noqa: E402
from activities import demo, services, signing  # noqa: E402
from activities.ingest import LOCAL_TZ, local_day_of  # noqa: E402
from activities.models import ActivityRecord, BehaviourDay, DailyCarbon, Partner, StepDay  # noqa: E402


def counts() -> dict:
    return {
        "records": ActivityRecord.objects.count(),
        "step_days": StepDay.objects.count(),
        "behaviour_days": BehaviourDay.objects.count(),
        "credited_mg": sum(DailyCarbon.objects.values_list("credited_carbon_mg", flat=True)),
    }


assert connection.vendor == "sqlite", connection.vendor
# The demo as `load_demo` loads it (accounts, then activities), then the activities part again.
with transaction.atomic():
    accounts_demo.load_demo()
with transaction.atomic():
    seen: dict = {"demo": demo.load_demo()}
seen["after_demo"] = counts()
with transaction.atomic():
    demo.load_demo()
seen["after_second_demo"] = counts()

client = Client()
login = client.post(
    "/_allauth/app/v1/auth/login",
    {"username": "lin.wei", "password": "carbon-demo-2026"},
    content_type="application/json",
)
token = login.json()["meta"]["session_token"]
person = {"HTTP_X_SESSION_TOKEN": token}
today = local_day_of(datetime.datetime.now(tz=LOCAL_TZ))
synced = client.post(
    "/api/v1/activities/steps",
    {"days": [{"day": today.isoformat(), "steps": 5000}], "device_id": "sqlite-check-phone"},
    content_type="application/json",
    **person,
)
seen["steps"] = synced.json()["days"][0]

partner = Partner.objects.get(code=demo.TRANSIT_PARTNER)
secret = services.partner_secret_rotate(partner=partner)
now = datetime.datetime.now(tz=LOCAL_TZ)
midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
started = now - min(datetime.timedelta(hours=1), (now - midnight) / 2)  # earlier today, whenever it runs
body = json.dumps(
    {
        "records": [
            {
                "id": f"sqlite-check-{uuid.uuid4().hex}",
                "customer_reference": demo.CARDS["lin.wei"],
                "behaviour": "bus",
                "quantity": "1",
                "occurred_at": started.isoformat(),
                "ended_at": (started + (now - started) / 2).isoformat(),
            },
            {
                "id": "sqlite-check-stranger",
                "customer_reference": "nobody",
                "behaviour": "bus",
                "quantity": "1",
                "occurred_at": started.isoformat(),
            },
        ]
    }
).encode()
stamp, request_id = str(int(time.time())), uuid.uuid4().hex
batch = client.post(
    "/api/v1/partner/records",
    data=body,
    content_type="application/json",
    HTTP_X_PARTNER_KEY=partner.api_key,
    HTTP_X_TIMESTAMP=stamp,
    HTTP_X_PARTNER_REQUEST_ID=request_id,
    HTTP_X_SIGNATURE=signing.signature_of(secret, stamp, request_id, body),
)
seen["batch"] = {"status": batch.status_code, "results": [r["status"] for r in batch.json()["records"]]}
today_view = client.get("/api/v1/activities/today", **person).json()
seen["today"] = {row["behaviour"]: row["credited_carbon_mg"] for row in today_view["behaviours"]}
history = client.get("/api/v1/activities/records?page_size=5", **person)
seen["history"] = {"status": history.status_code, "count": len(history.json()["results"])}
print(json.dumps(seen))
