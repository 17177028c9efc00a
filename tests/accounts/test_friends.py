import contextlib
import threading

import pytest
from django.db import connection
from django.utils import timezone

from accounts import services
from accounts.models import Friendship
from accounts.selectors import friend_ids_of
from core.api.errors import ApplicationError
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_person_has_one_invite_code_and_link(person_client):
    first = person_client.get("/api/v1/me/invite").json()
    second = person_client.get("/api/v1/me/invite").json()

    assert first == second
    assert len(first["code"]) == 8
    assert first["link"] == f"/pages/friends/accept?code={first['code']}"


def test_accepting_an_invitation_makes_friends_both_ways(client_for):
    inviter, invitee = UserFactory(nickname="林薇"), UserFactory()
    code = client_for(inviter).get("/api/v1/me/invite").json()["code"]

    preview = client_for(invitee).get(f"/api/v1/friends/invitations/{code}")
    response = client_for(invitee).post("/api/v1/friends", {"code": code.lower()}, format="json")

    assert preview.json() == {"public_id": str(inviter.public_id), "nickname": "林薇"}
    assert response.status_code == 201
    assert friend_ids_of(user_id=invitee.id) == {inviter.id}
    assert friend_ids_of(user_id=inviter.id) == {invitee.id}
    listing = client_for(inviter).get("/api/v1/friends").json()
    assert [friend["public_id"] for friend in listing] == [str(invitee.public_id)]


def test_accepting_twice_or_ones_own_code_is_refused(client_for):
    inviter, invitee = UserFactory(), UserFactory()
    code = client_for(inviter).get("/api/v1/me/invite").json()["code"]
    client_for(invitee).post("/api/v1/friends", {"code": code}, format="json")

    again = client_for(invitee).post("/api/v1/friends", {"code": code}, format="json")
    own = client_for(inviter).post("/api/v1/friends", {"code": code}, format="json")

    assert again.json()["error"]["code"] == "already_friends"
    assert own.json()["error"]["code"] == "friend_self"
    assert Friendship.objects.count() == 2


def test_an_unknown_or_rotated_code_is_refused(client_for):
    inviter, invitee = UserFactory(), UserFactory()
    old = client_for(inviter).get("/api/v1/me/invite").json()["code"]
    new = client_for(inviter).post("/api/v1/me/invite").json()["code"]

    response = client_for(invitee).post("/api/v1/friends", {"code": old}, format="json")

    assert new != old
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "invite_code_unknown"
    assert Friendship.objects.count() == 0


def test_removing_a_friend_ends_both_directions(client_for):
    person, friend = UserFactory(), UserFactory()
    services.friendship_accept(user=person, code=services.invite_code_get_or_create(user=friend).code)

    response = client_for(person).delete(f"/api/v1/friends/{friend.public_id}")
    again = client_for(person).delete(f"/api/v1/friends/{friend.public_id}")

    assert response.status_code == 204
    assert again.json()["error"]["code"] == "friend_not_found"
    assert friend_ids_of(user_id=friend.id) == set()


def test_friends_of_a_closed_account_drop_out_of_leaderboards():
    person, friend = UserFactory(), UserFactory()
    services.friendship_accept(user=person, code=services.invite_code_get_or_create(user=friend).code)
    friend.closed_at = timezone.now()
    friend.save()

    assert friend_ids_of(user_id=person.id) == set()


@pytest.mark.django_db(transaction=True)
def test_both_accepting_each_others_codes_at_once_makes_one_friendship():
    first, second = UserFactory(), UserFactory()
    codes = {
        first.pk: services.invite_code_get_or_create(user=first).code,
        second.pk: services.invite_code_get_or_create(user=second).code,
    }
    barrier = threading.Barrier(2)
    failures = []

    def accept(user, code) -> None:
        try:
            barrier.wait()
            # "already friends" is a fine outcome for the second one.
            with contextlib.suppress(ApplicationError):
                services.friendship_accept(user=user, code=code)
        except Exception as error:  # noqa: BLE001 - a deadlock here would be a 500 in the app
            failures.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=accept, args=(first, codes[second.pk])),
        threading.Thread(target=accept, args=(second, codes[first.pk])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert Friendship.objects.count() == 2
    assert friend_ids_of(user_id=first.id) == {second.id}
