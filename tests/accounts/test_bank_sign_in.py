import time

import pytest
from allauth.socialaccount.models import SocialAccount
from cryptography.hazmat.primitives.asymmetric import rsa

from accounts.models import PersonalDetails, User
from accounts.selectors import users_with_phone_number
from tests.accounts.conftest import app_client, open_guest

pytestmark = pytest.mark.django_db

PHONE = "13812345678"
ID_NUMBER = "33080219900101123X"


def test_a_bank_id_token_signs_in_and_opens_an_account(banks):
    bank = banks["quzhou-bank"]

    response = bank.sign_in(app_client(), bank.id_token(sub="customer-1"))

    assert response.status_code == 200, response.content
    account = SocialAccount.objects.get(provider="quzhou-bank", uid="customer-1")
    token = response.json()["meta"]["session_token"]
    assert app_client(token).get("/api/v1/me").json()["public_id"] == str(account.user.public_id)


def test_several_banks_are_configured_at_once(banks):
    for bank_id, bank in banks.items():
        response = bank.sign_in(app_client(), bank.id_token(sub="same-subject"))
        assert response.status_code == 200, (bank_id, response.content)

    # The same subject at two banks is two different people.
    assert User.objects.count() == 2


def test_phone_and_id_number_are_encrypted_indexed_and_masked(banks):
    bank = banks["quzhou-bank"]
    response = bank.sign_in(
        app_client(),
        bank.id_token(sub="customer-1", phone_number=PHONE, cn_id_number=ID_NUMBER, name="王小明"),
    )
    user = User.objects.get()
    details = PersonalDetails.objects.get(user=user)

    assert PHONE not in details.phone_number_ciphertext
    assert ID_NUMBER not in details.id_number_ciphertext
    extra_data = str(SocialAccount.objects.get().extra_data)
    assert PHONE not in extra_data
    assert ID_NUMBER not in extra_data
    assert "王小明" not in extra_data
    assert list(users_with_phone_number(phone_number=PHONE)) == [user]
    me = app_client(response.json()["meta"]["session_token"]).get("/api/v1/me").json()
    assert me["phone_number"] == "138****5678"
    assert me["id_number"] == "330***********123X"
    assert user.first_name == ""
    assert user.username.startswith("u-")


def test_a_forged_signature_is_refused(banks):
    bank = banks["quzhou-bank"]
    forger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    response = bank.sign_in(app_client(), bank.id_token(sub="customer-1", key=forger_key))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "identity_token_invalid"
    assert response.json()["errors"][0]["code"] == "identity_token_invalid"
    assert User.objects.count() == 0


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "c" * 5000},
        {"sub": "customer\x00-1"},
        {"sub": "customer-\ud800"},
        {"sub": "customer-1", "phone_number": "138\ud800"},
        {"sub": "customer-1", "cn_id_number": "3" * 500},
    ],
    ids=[
        "a customer id longer than any we store",
        "a NUL",
        "half a surrogate pair",
        "in the phone",
        "long id number",
    ],
)
def test_a_bank_signed_token_naming_what_we_cannot_store_is_refused(banks, claims):
    bank = banks["quzhou-bank"]

    response = bank.sign_in(app_client(), bank.id_token(**claims))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "identity_token_invalid"
    assert User.objects.count() == 0


def test_a_token_for_another_audience_is_refused(banks):
    bank = banks["quzhou-bank"]

    response = bank.sign_in(app_client(), bank.id_token(sub="customer-1", aud="another-app"))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "identity_token_invalid"
    assert User.objects.count() == 0


def test_a_token_from_another_bank_is_refused(banks):
    quzhou, jiangshan = banks["quzhou-bank"], banks["jiangshan-bank"]

    response = quzhou.sign_in(app_client(), jiangshan.id_token(sub="customer-1", aud=quzhou.client_id))

    assert response.status_code == 400
    assert User.objects.count() == 0


def test_an_expired_token_is_refused(banks):
    bank = banks["quzhou-bank"]
    an_hour_ago = int(time.time()) - 3600

    response = bank.sign_in(
        app_client(), bank.id_token(sub="customer-1", iat=an_hour_ago, exp=an_hour_ago + 300)
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "identity_token_invalid"
    assert User.objects.count() == 0


def test_a_replayed_token_is_refused(banks):
    bank = banks["quzhou-bank"]
    id_token = bank.id_token(sub="customer-1")
    assert bank.sign_in(app_client(), id_token).status_code == 200

    replay = bank.sign_in(app_client(), id_token)

    assert replay.status_code == 400
    assert replay.json()["error"]["code"] == "identity_token_invalid"
    assert "session_token" not in (replay.json().get("meta") or {})


def test_a_token_without_jti_or_exp_is_refused_as_it_could_be_replayed(banks):
    bank = banks["quzhou-bank"]

    without_jti = bank.sign_in(app_client(), bank.id_token(sub="customer-1", jti=None))
    without_exp = bank.sign_in(app_client(), bank.id_token(sub="customer-1", exp=None))

    assert without_jti.json()["error"]["code"] == "identity_token_invalid"
    assert without_exp.json()["error"]["code"] == "identity_token_invalid"
    assert User.objects.count() == 0


def test_a_guest_upgrades_to_a_bank_identity_and_keeps_the_same_account(banks, agreements):
    guest = open_guest(app_client()).json()
    bank = banks["quzhou-bank"]
    client = app_client(guest["meta"]["session_token"])

    response = bank.sign_in(client, bank.id_token(sub="customer-1", phone_number=PHONE), process="connect")

    assert response.status_code == 200, response.content
    user = User.objects.get(public_id=guest["user"]["public_id"])
    assert user.is_guest is False
    assert SocialAccount.objects.get(uid="customer-1").user == user
    assert PersonalDetails.objects.filter(user=user).exists()
    assert User.objects.count() == 1
    # Signing in with the bank later lands in the same account.
    again = bank.sign_in(app_client(), bank.id_token(sub="customer-1"))
    assert app_client(again.json()["meta"]["session_token"]).get("/api/v1/me").json()["public_id"] == str(
        user.public_id
    )


def test_the_upgraded_devices_guest_sign_in_stops_working(banks, agreements):
    guest = open_guest(app_client()).json()
    bank = banks["quzhou-bank"]
    bank.sign_in(app_client(guest["meta"]["session_token"]), bank.id_token(sub="c-1"), process="connect")

    response = open_guest(app_client())

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "guest_device_upgraded"


def test_linking_an_identity_that_has_its_own_account_asks_for_a_merge(banks, agreements):
    bank = banks["quzhou-bank"]
    bank.sign_in(app_client(), bank.id_token(sub="customer-1"))
    guest = open_guest(app_client()).json()

    response = bank.sign_in(
        app_client(guest["meta"]["session_token"]), bank.id_token(sub="customer-1"), process="connect"
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "identity_linked_elsewhere"
    assert SocialAccount.objects.get(uid="customer-1").user.public_id != guest["user"]["public_id"]


def test_logout_revokes_the_session_token(banks):
    bank = banks["quzhou-bank"]
    token = bank.sign_in(app_client(), bank.id_token(sub="customer-1")).json()["meta"]["session_token"]
    client = app_client(token)
    assert client.get("/api/v1/me").status_code == 200

    logout = client.delete("/_allauth/app/v1/auth/session")

    assert logout.status_code == 401  # allauth: "signed out" is an unauthenticated session state
    after = client.get("/api/v1/me")
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "not_authenticated"


def test_sign_in_logs_never_carry_the_phone_or_id_number(banks, caplog):
    bank = banks["quzhou-bank"]
    caplog.set_level("DEBUG")

    bank.sign_in(app_client(), bank.id_token(sub="customer-1", phone_number=PHONE, cn_id_number=ID_NUMBER))
    bank.sign_in(app_client(), bank.id_token(sub="customer-1", phone_number=PHONE, aud="wrong"))

    assert PHONE not in caplog.text
    assert ID_NUMBER not in caplog.text


def test_merging_is_rate_limited(client_for, settings):
    settings.ACCOUNTS_RATE_LIMITS = {**settings.ACCOUNTS_RATE_LIMITS, "merge": "2/hour"}
    client = client_for(User.objects.create(username="merger"))
    for _ in range(2):
        client.post("/api/v1/me/merge", {"source_session_token": "nope"}, format="json")

    response = client.post("/api/v1/me/merge", {"source_session_token": "nope"}, format="json")

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"


def test_one_account_links_several_banks_and_one_wechat(banks, wechat, agreements):
    import base64

    from tests.accounts.conftest import wechat_sign_in

    token = open_guest(app_client()).json()["meta"]["session_token"]
    client = app_client(token)
    for bank in banks.values():
        assert bank.sign_in(client, bank.id_token(sub="same-person"), process="connect").status_code == 200
    wechat.add_code("c", openid="openid-linked", session_key=base64.b64encode(b"s" * 16).decode())
    assert wechat_sign_in(client, "c", process="connect").status_code == 200

    identities = client.get("/api/v1/me/identities").json()

    assert sorted(item["provider"] for item in identities) == [
        "jiangshan-bank",
        "quzhou-bank",
        "wechat_miniprogram",
    ]
    assert User.objects.count() == 1
    for identity in identities[:-1]:
        assert client.delete(f"/api/v1/me/identities/{identity['id']}").status_code == 204
    last = client.delete(f"/api/v1/me/identities/{identities[-1]['id']}")
    assert last.json()["error"]["code"] == "identity_last_way_in"


def test_garbage_and_keyless_tokens_are_refused_not_crashed_on(banks):
    import jwt as pyjwt

    bank = banks["quzhou-bank"]
    no_kid = pyjwt.encode(
        {"iss": bank.issuer, "sub": "x", "aud": bank.client_id, "exp": int(time.time()) + 60, "jti": "j"},
        bank.key,
        algorithm="RS256",
    )

    for id_token in ("not-a-jwt", no_kid):
        response = bank.sign_in(app_client(), id_token)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "identity_token_invalid"


def test_the_banks_discovery_document_is_fetched_once_not_per_sign_in(banks):
    bank = banks["quzhou-bank"]

    for number in range(3):
        assert bank.sign_in(app_client(), bank.id_token(sub=f"customer-{number}")).status_code == 200

    assert bank.discovery_requests == 1
