"""The steps, today's carbon and wallet examples in docs/mobile-integration.md come from the running API.

This test walks what the app does every day (sync the phone's step counts, show today's carbon and
what is left of each cap, show the wallet) and compares each exchange with the document's example
(`tests.mobile_doc`; `UPDATE_DOCS=1` rewrites them).
"""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from accounts import services as accounts_services
from accounts.models import DataSource
from tests.accounts.factories import UserFactory
from tests.mobile_doc import Recorder, examples_check, is_carbon_example
from tests.rewards.factories import fund_wallet

pytestmark = pytest.mark.django_db


def test_the_documented_carbon_examples_are_what_the_api_answers(client_for):
    today = timezone.localdate()
    yesterday = today - datetime.timedelta(days=1)
    person = UserFactory(nickname="小绿")
    fund_wallet(person, 120)
    app = client_for(person)
    rec = Recorder()

    def steps(*days: tuple[datetime.date, int]) -> dict:
        return {
            "days": [{"day": day.isoformat(), "steps": count} for day, count in days],
            "device_id": "5b0f3c8e-6f1a-4d2b-9c7e-1a2b3c4d5e6f",
        }

    rec.call("carbon-steps-not-authorized", app, "post", "/api/v1/activities/steps", steps((today, 4000)))
    accounts_services.data_source_authorize(user=person, source=DataSource.PHONE_STEPS)
    rec.call("carbon-steps", app, "post", "/api/v1/activities/steps", steps((yesterday, 8000), (today, 4000)))
    rec.call("carbon-steps-again", app, "post", "/api/v1/activities/steps", steps((today, 12_000)))
    rec.call("carbon-today", app, "get", "/api/v1/activities/today")
    rec.call("carbon-wallet", app, "get", "/api/v1/wallet")

    examples_check(rec, owns=is_carbon_example)
