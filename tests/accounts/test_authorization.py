"""Who may call what: anonymous callers get 401 everywhere but the ways in, and one person can
never read or change another's profile, consents, identities or friends."""

import pytest
from allauth.socialaccount.models import SocialAccount

from accounts import services
from accounts.models import DataSource, User
from accounts.selectors import data_source_is_authorized, friend_ids_of
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db

SIGNED_IN_ROUTES = [
    ("get", "/api/v1/me"),
    ("patch", "/api/v1/me"),
    ("get", "/api/v1/me/agreements"),
    ("post", "/api/v1/me/agreements"),
    ("put", "/api/v1/me/avatar"),
    ("delete", "/api/v1/me/avatar"),
    ("get", "/api/v1/me/identities"),
    ("delete", "/api/v1/me/identities/1"),
    ("post", "/api/v1/me/merge"),
    ("get", "/api/v1/me/data-sources"),
    ("get", "/api/v1/me/data-sources/history"),
    ("put", "/api/v1/me/data-sources/phone_steps"),
    ("delete", "/api/v1/me/data-sources/phone_steps"),
    ("get", "/api/v1/me/invite"),
    ("post", "/api/v1/me/invite"),
    ("get", "/api/v1/me/export"),
    ("post", "/api/v1/me/erasure"),
    ("get", "/api/v1/friends"),
    ("post", "/api/v1/friends"),
    ("get", "/api/v1/friends/invitations/ABCDEFGH"),
    ("delete", "/api/v1/friends/00000000-0000-0000-0000-000000000000"),
]


@pytest.mark.parametrize(("method", "path"), SIGNED_IN_ROUTES)
def test_every_route_but_the_ways_in_needs_a_session_token(api_client, method, path):
    response = getattr(api_client, method)(path, {}, format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"]


@pytest.mark.parametrize(("method", "path"), SIGNED_IN_ROUTES)
def test_a_closed_accounts_token_is_refused_everywhere(client_for, method, path):
    person = UserFactory()
    client = client_for(person)
    services.account_erase(user=person)

    response = getattr(client, method)(path, {}, format="json")

    assert response.status_code == 401


def test_an_unknown_token_is_refused(api_client):
    api_client.credentials(HTTP_X_SESSION_TOKEN="not-a-real-token")

    assert api_client.get("/api/v1/me").status_code == 401


def test_one_person_never_sees_anothers_profile_consents_identities_or_friends(client_for):
    alice, bob, carol = UserFactory(nickname="Alice"), UserFactory(nickname="Bob"), UserFactory()
    services.data_source_authorize(user=bob, source=DataSource.TRANSIT_CARD)
    SocialAccount.objects.create(user=bob, provider="quzhou-bank", uid="bob-at-the-bank")
    services.friendship_accept(user=bob, code=services.invite_code_get_or_create(user=carol).code)
    alice_client = client_for(alice)

    me = alice_client.get("/api/v1/me").json()
    sources = alice_client.get("/api/v1/me/data-sources").json()
    history = alice_client.get("/api/v1/me/data-sources/history").json()
    identities = alice_client.get("/api/v1/me/identities").json()
    friends = alice_client.get("/api/v1/friends").json()
    export = alice_client.get("/api/v1/me/export").content.decode()

    assert me["public_id"] == str(alice.public_id)
    assert not any(item["is_authorized"] for item in sources)
    assert history == []
    assert identities == []
    assert friends == []
    assert "Bob" not in export
    assert str(bob.public_id) not in export


def test_one_person_can_never_change_anothers_data(client_for):
    alice, bob, carol = UserFactory(), UserFactory(nickname="Bob"), UserFactory()
    services.data_source_authorize(user=bob, source=DataSource.TRANSIT_CARD)
    bobs_identity = SocialAccount.objects.create(user=bob, provider="quzhou-bank", uid="bob-at-the-bank")
    SocialAccount.objects.create(user=bob, provider="jiangshan-bank", uid="bob-at-the-other-bank")
    services.friendship_accept(user=bob, code=services.invite_code_get_or_create(user=carol).code)
    alice_client = client_for(alice)

    unlink = alice_client.delete(f"/api/v1/me/identities/{bobs_identity.pk}")
    unfriend = alice_client.delete(f"/api/v1/friends/{carol.public_id}")
    revoke = alice_client.delete("/api/v1/me/data-sources/transit_card")
    rename = alice_client.patch("/api/v1/me", {"nickname": "Hacked"}, format="json")

    assert unlink.status_code == 404
    assert unlink.json()["error"]["code"] == "identity_not_found"
    assert SocialAccount.objects.filter(pk=bobs_identity.pk, user=bob).exists()
    assert unfriend.json()["error"]["code"] == "friend_not_found"
    assert friend_ids_of(user_id=bob.id) == {carol.id}
    assert revoke.status_code == 200
    assert data_source_is_authorized(user_id=bob.id, source=DataSource.TRANSIT_CARD) is True
    assert rename.status_code == 200
    assert User.objects.get(pk=bob.pk).nickname == "Bob"


def test_identities_are_listed_masked_and_the_last_one_cant_be_unlinked(client_for):
    person = UserFactory()
    person.set_unusable_password()
    person.save()
    first = SocialAccount.objects.create(user=person, provider="quzhou-bank", uid="subject-0001-quzhou")
    second = SocialAccount.objects.create(user=person, provider="wechat_miniprogram", uid="openid-0002-wx")
    client = client_for(person)

    listing = client.get("/api/v1/me/identities").json()
    unlink_first = client.delete(f"/api/v1/me/identities/{first.pk}")
    unlink_last = client.delete(f"/api/v1/me/identities/{second.pk}")

    assert [item["account"] for item in listing] == ["subj…zhou", "open…2-wx"]
    assert unlink_first.status_code == 204
    assert unlink_last.status_code == 409
    assert unlink_last.json()["error"]["code"] == "identity_last_way_in"
    assert SocialAccount.objects.filter(pk=second.pk).exists()


def test_allauth_errors_carry_our_envelope_and_keep_allauths_keys(api_client):
    unauthenticated = api_client.get("/_allauth/app/v1/auth/session")
    malformed = api_client.post(
        "/_allauth/app/v1/auth/provider/token", {"provider": "quzhou-bank", "process": "login"}, format="json"
    )

    assert unauthenticated.status_code == 401
    body = unauthenticated.json()
    assert body["error"]["code"] == "not_authenticated"
    assert "flows" in body["data"]
    assert body["meta"]["is_authenticated"] is False
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] in {"identity_token_invalid", "validation_failed"}
    assert malformed.json()["errors"]
