"""WeRun: the mini-program's encrypted step data, opened with the person's session key."""

from __future__ import annotations

import base64
import datetime
import os

import pytest
from allauth.socialaccount.models import SocialAccount

from accounts import crypto
from accounts.selectors import WECHAT_PROVIDER_ID, WECHAT_SESSION_KEY_FIELD
from activities.models import ActivityRecord, StepDay
from activities.werun import werun_encrypt
from core.local_time import LOCAL_TZ

pytestmark = pytest.mark.django_db

APP_ID = "wx-test-app"
SESSION_KEY = bytes(range(16))


@pytest.fixture(autouse=True)
def _app_id(settings):
    settings.WECHAT_MINIPROGRAM_APP_ID = APP_ID


@pytest.fixture
def mini_program_person(person, authorize):
    """A person who signed in through the mini-program: accounts stores the session key encrypted."""
    SocialAccount.objects.create(
        user=person,
        provider=WECHAT_PROVIDER_ID,
        uid="openid-1",
        extra_data={
            WECHAT_SESSION_KEY_FIELD: crypto.encrypt(
                base64.b64encode(SESSION_KEY).decode(), context=crypto.wechat_session_key_context("openid-1")
            )
        },
    )
    authorize(person)
    return person


def midnight(days_ago: int) -> int:
    day = datetime.datetime.now(tz=LOCAL_TZ).date() - datetime.timedelta(days=days_ago)
    return int(datetime.datetime.combine(day, datetime.time(), tzinfo=LOCAL_TZ).timestamp())


def payload(steps_by_days_ago: dict[int, int], app_id: str = APP_ID) -> dict:
    return {
        "stepInfoList": [{"timestamp": midnight(d), "step": s} for d, s in steps_by_days_ago.items()],
        "watermark": {"appid": app_id, "timestamp": midnight(0)},
    }


def post(client, data: dict, key: bytes = SESSION_KEY):
    iv = os.urandom(16)
    return client.post(
        "/api/v1/activities/steps/werun",
        {
            "encrypted_data": werun_encrypt(session_key=key, iv=iv, payload=data),
            "iv": base64.b64encode(iv).decode(),
        },
        format="json",
    )


def test_werun_steps_are_decrypted_and_credited_per_day(mini_program_person, person_client):
    response = post(person_client, payload({2: 8000, 1: 4000, 0: 1500, 40: 9000}))

    assert response.status_code == 200
    days = response.json()["days"]
    assert [(d["steps"], d["status"], d["credited_carbon_mg"]) for d in days] == [
        (8000, "accepted", 160_000),
        (4000, "accepted", 80_000),
        (1500, "accepted", 30_000),
    ]  # the 40-day-old entry is outside the sync window and left out
    assert StepDay.objects.filter(user=mini_program_person).count() == 3


def test_a_payload_for_another_mini_program_is_refused(mini_program_person, person_client):
    response = post(person_client, payload({0: 1000}, app_id="wx-someone-else"))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "werun_watermark_mismatch"
    assert not StepDay.objects.exists()


def test_a_payload_encrypted_with_another_key_is_refused(mini_program_person, person_client):
    response = post(person_client, payload({0: 1000}), key=bytes(16))

    assert response.json()["error"]["code"] == "werun_payload_invalid"
    assert not ActivityRecord.objects.exists()


def test_garbage_is_refused(mini_program_person, person_client):
    response = person_client.post(
        "/api/v1/activities/steps/werun", {"encrypted_data": "bm90IGFlcw==", "iv": "AAAA"}, format="json"
    )

    assert response.json()["error"]["code"] == "werun_payload_invalid"


@pytest.mark.parametrize(
    "step_info",
    [
        {"timestamp": 10**20, "step": 5},
        {"timestamp": 1e300, "step": 5},
        {"timestamp": 0, "step": 10**20},
        {"timestamp": 0, "step": -5},
    ],
    ids=["a moment past any calendar", "a float past it", "more steps than a day holds", "negative steps"],
)
def test_a_payload_that_decrypts_but_says_nothing_possible_is_refused(
    mini_program_person, person_client, step_info
):
    response = post(
        person_client, {"stepInfoList": [step_info], "watermark": {"appid": APP_ID, "timestamp": 1}}
    )

    assert response.json()["error"]["code"] == "werun_payload_invalid"
    assert not ActivityRecord.objects.exists()


def test_without_a_mini_program_session_werun_cannot_be_synced(person, person_client, authorize):
    authorize(person)

    response = post(person_client, payload({0: 1000}))

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "wechat_session_missing"
