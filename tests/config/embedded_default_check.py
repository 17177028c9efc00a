"""The README's tour over HTTP, against a running `make run` (used by test_embedded_default.py).

Plain HTTP, as a newcomer's browser and phone would: the citizen's API with a session token, the
operator's admin with its sign-in form and CSRF token. Returns what it saw, for the test to assert.
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

import requests

PASSWORD = "carbon-demo-2026"
TIMEOUT = 30


def local_today() -> datetime.date:
    return datetime.datetime.now(ZoneInfo("Asia/Shanghai")).date()


def wait_for(check: Callable[[], object], *, seconds: float, every: float = 2.0) -> object:
    """`check()`'s first truthy answer within `seconds`, else its last answer."""
    deadline = time.monotonic() + seconds
    while True:
        answer = check()
        if answer or time.monotonic() > deadline:
            return answer
        time.sleep(every)


def citizen(base: str, username: str = "lin.wei") -> requests.Session:
    session = requests.Session()
    login = session.post(
        f"{base}/_allauth/app/v1/auth/login",
        json={"username": username, "password": PASSWORD},
        timeout=TIMEOUT,
    )
    login.raise_for_status()
    session.headers.update(
        {"X-Session-Token": login.json()["meta"]["session_token"], "Accept-Language": "en"}
    )
    return session


def operator(base: str) -> requests.Session:
    """The demo operator signed in to the admin through its form."""
    session = requests.Session()
    session.headers["Accept-Language"] = "en"
    form = session.get(f"{base}/admin/login/", timeout=TIMEOUT).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    session.post(
        f"{base}/admin/login/?next=/admin/",
        data={"username": "admin", "password": PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/admin/login/"},
        timeout=TIMEOUT,
    ).raise_for_status()
    return session


def board_names(session: requests.Session, base: str, period: str) -> list[str]:
    return [
        entry["nickname"]
        for entry in session.get(f"{base}/api/v1/leaderboards/{period}", timeout=TIMEOUT).json()["entries"]
    ]


def tour(base: str) -> dict:
    seen: dict = {}
    lin = citizen(base)
    api = f"{base}/api/v1"

    seen["docs"] = lin.get(f"{base}/api/docs/", timeout=TIMEOUT).status_code
    seen["today"] = lin.get(f"{api}/activities/today", timeout=TIMEOUT).status_code
    seen["records"] = lin.get(f"{api}/activities/records", timeout=TIMEOUT).status_code
    seen["history"] = lin.get(f"{api}/wallet/history", timeout=TIMEOUT).status_code
    seen["week_board"] = board_names(lin, base, "week")

    offers = lin.get(f"{api}/catalog/offers?affordable=true", timeout=TIMEOUT).json()["results"]
    cheapest = min(offers, key=lambda offer: offer["price_coins"])
    balance_before = lin.get(f"{api}/wallet", timeout=TIMEOUT).json()["balance"]
    redeem = {"Idempotency-Key": "tour-redeem-0001"}
    first = lin.post(f"{api}/catalog/offers/{cheapest['id']}/redeem", headers=redeem, timeout=TIMEOUT)
    again = lin.post(f"{api}/catalog/offers/{cheapest['id']}/redeem", headers=redeem, timeout=TIMEOUT)
    seen["redeem"] = [first.status_code, again.status_code, first.json()["id"] == again.json()["id"]]
    project = lin.get(f"{api}/welfare/projects", timeout=TIMEOUT).json()["results"][0]
    donation = lin.post(
        f"{api}/welfare/projects/{project['id']}/donations",
        json={"amount": 1},
        headers={"Idempotency-Key": "tour-donate-0001"},
        timeout=TIMEOUT,
    )
    seen["donation"] = donation.status_code
    seen["spent"] = balance_before - lin.get(f"{api}/wallet", timeout=TIMEOUT).json()["balance"]
    seen["price"] = cheapest["price_coins"]

    # Today's walk: credited at once, on today's board within a minute (beat and the worker), no hand step.
    steps = lin.post(
        f"{api}/activities/steps",
        json={"days": [{"day": local_today().isoformat(), "steps": 12000}], "device_id": "tour-phone-0001"},
        timeout=TIMEOUT,
    ).json()["days"][0]
    seen["steps"] = [steps["status"], steps["credited_carbon_mg"]]
    seen["today_board"] = wait_for(lambda: board_names(lin, base, "today"), seconds=150)
    wallet = lin.get(f"{api}/wallet", timeout=TIMEOUT).json()

    # The operator runs tonight's jobs now; the worker settles today's walk into coins.
    admin = operator(base)
    seen["admin"] = [
        admin.get(f"{base}{path}", timeout=TIMEOUT).status_code for path in ("/admin/", "/admin/dashboard/")
    ]
    dashboard = admin.get(f"{base}/admin/dashboard/", timeout=TIMEOUT).text
    token = re.search(
        r'id="night-jobs">\s*<input type="hidden" name="csrfmiddlewaretoken" value="([^"]+)"', dashboard
    )
    pressed = admin.post(
        f"{base}/admin/dashboard/run-tonight/",
        data={"csrfmiddlewaretoken": token.group(1)},
        headers={"Referer": f"{base}/admin/dashboard/"},
        timeout=TIMEOUT,
    )
    seen["night_jobs"] = [pressed.status_code, "Tonight&#x27;s jobs are queued" in pressed.text]
    seen["coins_arrived"] = wait_for(
        lambda: lin.get(f"{api}/wallet", timeout=TIMEOUT).json()["balance"] - wallet["balance"], seconds=120
    )
    seen["pending_coins_estimate"] = wallet["pending_coins_estimate"]
    seen["console"] = requests.get(f"{base}/console/", timeout=TIMEOUT).status_code
    seen["healthz"] = requests.get(f"{base}/healthz", timeout=TIMEOUT).status_code
    seen["readyz"] = requests.get(f"{base}/readyz", timeout=TIMEOUT).status_code
    return seen
