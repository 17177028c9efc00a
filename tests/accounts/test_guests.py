import threading

import pytest
from django.db import connection
from django.utils import translation

from accounts import crypto
from accounts.models import AgreementAcceptance, Device, User
from tests.accounts.conftest import app_client, open_guest

pytestmark = pytest.mark.django_db


def test_a_device_opens_a_guest_account_with_consent_and_a_session_token(agreements):
    response = open_guest(app_client())

    assert response.status_code == 201
    body = response.json()
    assert body["created"] is True
    assert body["user"]["is_guest"] is True
    assert body["user"]["pending_agreements"] == []
    user = User.objects.get(public_id=body["user"]["public_id"])
    assert not user.has_usable_password()
    assert set(AgreementAcceptance.objects.filter(user=user).values_list("agreement__kind", flat=True)) == {
        "user_agreement",
        "privacy_policy",
    }
    me = app_client(body["meta"]["session_token"]).get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["public_id"] == body["user"]["public_id"]


def test_the_raw_device_id_is_never_stored(agreements):
    open_guest(app_client(), device_id="my-secret-device-id-1234")

    device = Device.objects.get()
    assert "my-secret-device-id-1234" not in device.device_digest
    assert device.device_digest == crypto.blind_index("my-secret-device-id-1234", purpose="device")
    assert device.device_digest.startswith("sha256:dev-1:")


def test_a_device_stored_under_an_old_blind_index_key_is_found_and_moves_to_the_current_key(
    agreements, settings
):
    old_key = "old:" + "A" * 43
    settings.BLIND_INDEX_KEYS = [old_key]
    first = open_guest(app_client(), device_id="a-device-seen-before-rotation").json()
    settings.BLIND_INDEX_KEYS = ["new:" + "B" * 43, old_key]

    again = open_guest(app_client(), device_id="a-device-seen-before-rotation").json()

    assert again["user"]["public_id"] == first["user"]["public_id"]
    assert Device.objects.get().device_digest.startswith("sha256:new:")
    assert User.objects.count() == 1


def test_the_same_device_gets_its_existing_guest_account_back(agreements):
    first = open_guest(app_client()).json()

    second = open_guest(app_client())

    assert second.status_code == 200
    assert second.json()["created"] is False
    assert second.json()["user"]["public_id"] == first["user"]["public_id"]
    assert second.json()["meta"]["session_token"] != first["meta"]["session_token"]
    assert User.objects.count() == 1


def test_an_outdated_agreement_version_is_refused_and_nothing_is_created(agreements):
    response = open_guest(app_client(), user_agreement="2025-07")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "agreement_version_not_current"
    assert response.json()["error"]["fields"]["current"]["user_agreement"] == "2026-01"
    assert User.objects.count() == 0


def test_the_deprecated_one_field_per_agreement_shape_still_opens_an_account(agreements):
    # What released apps sent before `accepted` was the one shape.
    response = app_client().post(
        "/api/v1/guests",
        {
            "device_id": "device-0123456789abcdef",
            "user_agreement_version": "2026-01",
            "privacy_policy_version": "2026-01",
        },
        format="json",
    )

    assert response.status_code == 201
    user = User.objects.get(public_id=response.json()["user"]["public_id"])
    assert AgreementAcceptance.objects.filter(user=user).count() == 2


def test_the_deprecated_shape_is_held_to_the_versions_in_force_too(agreements):
    response = app_client().post(
        "/api/v1/guests",
        {
            "device_id": "device-0123456789abcdef",
            "user_agreement_version": "2026-01",
            "privacy_policy_version": "2025-07",
        },
        format="json",
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "agreement_version_not_current"
    assert User.objects.count() == 0


@pytest.mark.parametrize(
    ("accepted", "message"),
    [
        (
            [{"kind": "user_agreement", "version": "2026-01"}],
            "Send the versions of both the user agreement and the privacy policy.",
        ),
        (
            [
                {"kind": "user_agreement", "version": "2026-01"},
                {"kind": "user_agreement", "version": "2026-01"},
            ],
            "Send each kind of agreement once.",
        ),
    ],
)
def test_a_guest_accepts_each_agreement_once(agreements, accepted, message):
    response = app_client().post(
        "/api/v1/guests", {"device_id": "device-0123456789abcdef", "accepted": accepted}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"accepted": [message]}
    assert User.objects.count() == 0


def test_no_guest_account_before_an_agreement_is_published(db):
    response = open_guest(app_client())

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "agreement_not_published"
    assert User.objects.count() == 0


@pytest.mark.parametrize("device_id", ["short", "has spaces in it 12345", "x" * 129])
def test_a_malformed_device_id_is_refused(agreements, device_id):
    response = open_guest(app_client(), device_id=device_id)

    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"device_id_invalid", "validation_failed"}
    assert User.objects.count() == 0


def test_guest_creation_is_throttled_per_device(agreements, settings):
    settings.ACCOUNTS_RATE_LIMITS = {**settings.ACCOUNTS_RATE_LIMITS, "guest_device": "2/hour"}
    for _ in range(2):
        assert open_guest(app_client()).status_code in {200, 201}

    response = open_guest(app_client())
    other_device = open_guest(app_client(), device_id="another-device-0123456789")

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1
    assert other_device.status_code == 201


def test_guest_creation_is_throttled_per_ip(agreements, settings):
    settings.ACCOUNTS_RATE_LIMITS = {**settings.ACCOUNTS_RATE_LIMITS, "guest_ip": "3/hour"}
    for number in range(3):
        assert open_guest(app_client(), device_id=f"device-{number:020d}").status_code == 201

    response = open_guest(app_client(), device_id="device-99999999999999999999")

    assert response.status_code == 429
    assert response.json()["error"]["fields"]["retry_after_seconds"] >= 1
    assert User.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_one_device_asking_twice_at_once_gets_one_account(agreements):
    results: list[int] = []
    barrier = threading.Barrier(4)

    def ask() -> None:
        try:
            barrier.wait()
            results.append(open_guest(app_client(), device_id="racing-device-0123456789").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results).count(201) == 1
    assert sorted(results).count(200) == 3
    assert User.objects.count() == 1
    assert Device.objects.count() == 1


def test_a_guest_session_is_a_real_allauth_session(agreements):
    token = open_guest(app_client()).json()["meta"]["session_token"]

    response = app_client(token).get("/_allauth/app/v1/auth/session")

    assert response.status_code == 200
    assert response.json()["meta"]["is_authenticated"] is True
    assert response.json()["data"]["user"]["is_guest"] is True


def test_the_schema_shows_one_shape_for_accepted_agreements_and_the_old_fields_deprecated(client):
    schemas = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["components"][
        "schemas"
    ]

    guest = schemas["GuestGuestInputRequest"]
    accept = schemas["MyAgreementsAgreementAcceptInputRequest"]
    assert sorted(guest["required"]) == ["accepted", "device_id"]
    assert guest["properties"]["user_agreement_version"]["deprecated"] is True
    assert guest["properties"]["privacy_policy_version"]["deprecated"] is True
    assert guest["properties"]["accepted"]["items"] == accept["properties"]["accepted"]["items"]
    assert guest["properties"]["accepted"]["items"] == {
        "$ref": "#/components/schemas/AcceptedAgreementRequest"
    }


def test_the_shape_error_is_in_the_users_language(agreements):
    # The request activates Chinese for this thread; the override puts the language back after it.
    with translation.override("en"):
        response = app_client().post(
            "/api/v1/guests",
            {
                "device_id": "device-0123456789abcdef",
                "accepted": [{"kind": "privacy_policy", "version": "2026-01"}],
            },
            format="json",
            HTTP_ACCEPT_LANGUAGE="zh-Hans",
        )

    assert response.json()["error"]["fields"] == {"accepted": ["请同时发送用户协议和隐私政策的版本。"]}
