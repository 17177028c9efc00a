import base64

import pytest
from allauth.socialaccount.models import SocialAccount

from accounts.models import User
from accounts.selectors import WECHAT_SESSION_KEY_FIELD, wechat_session_key_for_user
from tests.accounts.conftest import app_client, open_guest, wechat_sign_in

pytestmark = pytest.mark.django_db

SESSION_KEY = base64.b64encode(b"0123456789abcdef").decode()
NEW_SESSION_KEY = base64.b64encode(b"fedcba9876543210").decode()


def test_a_wx_login_code_signs_in_and_opens_an_account(wechat):
    wechat.add_code("code-1", openid="openid-alice", session_key=SESSION_KEY, unionid="union-alice")

    response = wechat_sign_in(app_client(), "code-1")

    assert response.status_code == 200, response.content
    body = response.json()
    token = body["meta"]["session_token"]
    assert body["meta"]["is_authenticated"] is True
    account = SocialAccount.objects.get(provider="wechat_miniprogram", uid="openid-alice")
    assert account.user.is_guest is False
    me = app_client(token).get("/api/v1/me")
    assert me.json()["public_id"] == str(account.user.public_id)
    assert wechat.requests[0]["appid"] == ["wx-test-app"]
    assert wechat.requests[0]["grant_type"] == ["authorization_code"]


def test_the_session_key_is_kept_encrypted_and_given_to_activities(wechat):
    wechat.add_code("code-1", openid="openid-alice", session_key=SESSION_KEY)
    wechat_sign_in(app_client(), "code-1")
    account = SocialAccount.objects.get(uid="openid-alice")

    assert SESSION_KEY not in str(account.extra_data)
    assert account.extra_data[WECHAT_SESSION_KEY_FIELD].startswith("fernet:dev-1:")
    assert wechat_session_key_for_user(user_id=account.user_id) == b"0123456789abcdef"


def test_signing_in_again_refreshes_the_session_key_and_keeps_the_account(wechat):
    wechat.add_code("code-1", openid="openid-alice", session_key=SESSION_KEY)
    wechat.add_code("code-2", openid="openid-alice", session_key=NEW_SESSION_KEY)
    wechat_sign_in(app_client(), "code-1")

    response = wechat_sign_in(app_client(), "code-2")

    assert response.status_code == 200
    assert User.objects.count() == 1
    assert wechat_session_key_for_user(user_id=User.objects.get().pk) == b"fedcba9876543210"


def test_an_invalid_code_answers_our_envelope_and_allauths_keys(wechat):
    response = wechat_sign_in(app_client(), "never-issued")

    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "wechat_code_invalid"
    assert body["error"]["fields"] == {"token": [body["error"]["message"]]}
    assert body["errors"][0]["code"] == "wechat_code_invalid"
    assert body["status"] == 400
    assert User.objects.count() == 0


def test_a_code_is_good_only_once(wechat):
    wechat.add_code("code-1", openid="openid-alice", session_key=SESSION_KEY)
    assert wechat_sign_in(app_client(), "code-1").status_code == 200

    replay = wechat_sign_in(app_client(), "code-1")

    assert replay.status_code == 400
    assert replay.json()["error"]["code"] == "wechat_code_invalid"


def test_wechats_rate_limit_is_a_429_with_our_code(wechat):
    response = wechat_sign_in(app_client(), "rate-limited")

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "wechat_rate_limited"
    assert response.json()["status"] == 429
    assert response["Retry-After"]


def test_wechat_unreachable_or_busy_is_a_503(wechat, settings):
    assert wechat_sign_in(app_client(), "system-busy").json()["error"]["code"] == "wechat_unavailable"

    settings.WECHAT_API_BASE_URL = "http://127.0.0.1:9"
    response = wechat_sign_in(app_client(), "anything")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "wechat_unavailable"


def test_a_wrong_app_id_is_refused_before_wechat_is_called(wechat):
    response = app_client().post(
        "/_allauth/app/v1/auth/provider/token",
        {
            "provider": "wechat_miniprogram",
            "process": "login",
            "token": {"client_id": "someone-elses-app", "access_token": "code"},
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "identity_token_invalid"
    assert wechat.requests == []


def test_a_guest_links_wechat_and_keeps_the_same_account(wechat, agreements):
    guest = open_guest(app_client()).json()
    wechat.add_code("code-1", openid="openid-alice", session_key=SESSION_KEY)

    response = wechat_sign_in(app_client(guest["meta"]["session_token"]), "code-1", process="connect")

    assert response.status_code == 200, response.content
    user = User.objects.get(public_id=guest["user"]["public_id"])
    assert user.is_guest is False
    assert SocialAccount.objects.get(uid="openid-alice").user == user
    assert User.objects.count() == 1


def test_an_account_links_only_one_wechat_identity(wechat, agreements):
    guest = open_guest(app_client()).json()
    client = app_client(guest["meta"]["session_token"])
    wechat.add_code("code-1", openid="openid-alice", session_key=SESSION_KEY)
    wechat.add_code("code-2", openid="openid-other", session_key=SESSION_KEY)
    wechat_sign_in(client, "code-1", process="connect")

    response = wechat_sign_in(client, "code-2", process="connect")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "wechat_already_linked"
    assert not SocialAccount.objects.filter(uid="openid-other").exists()


def test_sign_in_is_rate_limited_per_ip_with_the_envelope(wechat, settings):
    settings.ACCOUNTS_RATE_LIMITS = {**settings.ACCOUNTS_RATE_LIMITS, "sign_in_ip": "2/minute"}
    wechat_sign_in(app_client(), "x")
    wechat_sign_in(app_client(), "y")

    response = wechat_sign_in(app_client(), "z")

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert response.json()["errors"][0]["code"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1
    assert len(wechat.requests) == 2
