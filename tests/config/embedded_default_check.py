"""Run by `test_embedded_default.py` in a subprocess, after `migrate` and `load_demo` on SQLite.

Walks the README's tour as a newcomer would on `make run`'s embedded default (SQLite, no Redis,
tasks in-process) and prints what it saw as JSON.
"""

from __future__ import annotations

import io
import json

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

assert connection.vendor == "sqlite", connection.vendor
seen: dict = {}

client = Client()
login = client.post(
    "/_allauth/app/v1/auth/login",
    {"username": "lin.wei", "password": "carbon-demo-2026"},
    content_type="application/json",
)
seen["login"] = login.status_code
headers = {"HTTP_X_SESSION_TOKEN": login.json()["meta"]["session_token"]}

seen["today"] = client.get("/api/v1/activities/today", **headers).status_code
seen["records"] = client.get("/api/v1/activities/records", **headers).status_code
wallet = client.get("/api/v1/wallet", **headers).json()
seen["balance_before"] = wallet["balance"]
seen["history"] = client.get("/api/v1/wallet/history", **headers).status_code

offers = client.get("/api/v1/catalog/offers?affordable=true", **headers).json()["results"]
seen["affordable_offers"] = len(offers)
cheapest = min(offers, key=lambda offer: offer["price_coins"])
redeem_headers = {**headers, "HTTP_IDEMPOTENCY_KEY": "tour-redeem-0001"}
first = client.post(f"/api/v1/catalog/offers/{cheapest['id']}/redeem", **redeem_headers)
again = client.post(f"/api/v1/catalog/offers/{cheapest['id']}/redeem", **redeem_headers)
seen["redeem"] = [first.status_code, again.status_code, first.json()["id"] == again.json()["id"]]
seen["price"] = cheapest["price_coins"]

project = client.get("/api/v1/welfare/projects", **headers).json()["results"][0]
donation = client.post(
    f"/api/v1/welfare/projects/{project['id']}/donations",
    {"amount": 1},
    content_type="application/json",
    HTTP_IDEMPOTENCY_KEY="tour-donate-0001",
    **headers,
)
seen["donation"] = donation.status_code
seen["balance_after"] = client.get("/api/v1/wallet", **headers).json()["balance"]
seen["leaderboard"] = client.get("/api/v1/leaderboards/week", **headers).status_code

operator = Client()
assert operator.login(username="admin", password="carbon-demo-2026")
seen["admin"] = [operator.get(path).status_code for path in ("/admin/", "/admin/dashboard/")]
seen["console"] = Client().get("/console/", follow=True).status_code
call_command("ledger_audit", stdout=io.StringIO())
seen["ledger_audit"] = "ok"
print(json.dumps(seen))
