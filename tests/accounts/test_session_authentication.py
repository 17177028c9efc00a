"""Session-token authentication: the person a token signs in, checked as Django checks a session."""

from __future__ import annotations

import pytest
from allauth.headless.internal.sessionkit import new_session
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from accounts.authentication import SessionTokenAuthentication
from accounts.models import District, User
from accounts.selectors import user_by_id
from accounts.sessions import SessionStore, session_prefetch
from accounts.sessions import signed_in_user as session_user
from tests.accounts.conftest import app_client
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db

BACKEND = "django.contrib.auth.backends.ModelBackend"


def signed_in_session(user: User, *, backend: str = BACKEND, auth_hash: str | None = None):
    session = new_session()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = backend
    session[HASH_SESSION_KEY] = user.get_session_auth_hash() if auth_hash is None else auth_hash
    session.save()
    return session


def test_user_by_id_reads_every_field_as_the_orm_does():
    district = District.objects.create(code="kecheng", name="柯城区")
    user = UserFactory(nickname="林**", district=district, shows_on_leaderboards=False, is_guest=True)
    expected = User.objects.get(pk=user.pk)
    loaded = user_by_id(user.pk)
    for field in User._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(expected, field.attname), field.name
    assert loaded.district == district
    assert loaded._state.adding is False
    assert loaded._state.db == "default"


@pytest.mark.parametrize("user_id", [None, "", "not-a-number", "12abc", 10**12])
def test_user_by_id_of_nothing_or_nobody_is_none(user_id):
    assert user_by_id(user_id) is None


def test_a_token_signs_in_its_person():
    user = UserFactory()
    session = signed_in_session(user)
    assert app_client(session.session_key).get("/api/v1/me").status_code == 200
    assert session_user(SessionStore(session.session_key)).pk == user.pk


def test_a_password_change_signs_out_every_session_made_before_it():
    user = UserFactory()
    session = signed_in_session(user)
    user.set_password("a-new-password-2026")
    user.save()
    assert app_client(session.session_key).get("/api/v1/me").status_code == 401
    # Django's rule: a session whose hash no longer verifies is flushed.
    assert not SessionStore().exists(session.session_key)


def test_a_session_of_a_backend_no_longer_configured_signs_in_nobody():
    session = signed_in_session(UserFactory(), backend="some.removed.Backend")
    assert app_client(session.session_key).get("/api/v1/me").status_code == 401


def test_a_session_without_a_hash_signs_in_nobody():
    session = signed_in_session(UserFactory(), auth_hash="")
    assert app_client(session.session_key).get("/api/v1/me").status_code == 401


def test_a_session_hashed_under_a_retired_secret_is_renewed(settings):
    user = UserFactory()
    old_hash = user.get_session_auth_hash()
    session = signed_in_session(user, auth_hash=old_hash)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-rotated-secret-key-0123456789abcdefghijklmnopqrstuvwxyz-rotated"
    store = SessionStore(session.session_key)
    assert session_user(store).pk == user.pk
    assert store[HASH_SESSION_KEY] == user.get_session_auth_hash() != old_hash


def test_a_deactivated_person_is_signed_out():
    user = UserFactory()
    session = signed_in_session(user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert app_client(session.session_key).get("/api/v1/me").status_code == 401


def test_a_session_handed_over_for_another_token_is_not_used():
    mine, theirs = UserFactory(), UserFactory()
    my_session, their_session = signed_in_session(mine), signed_in_session(theirs)
    request = APIRequestFactory().get("/api/v1/me", HTTP_X_SESSION_TOKEN=my_session.session_key)
    session_prefetch(request, token=their_session.session_key)

    user, session = SessionTokenAuthentication().authenticate(Request(request))

    assert user.pk == mine.pk
    assert session.session_key == my_session.session_key


def test_a_session_handed_over_for_the_token_is_checked_as_any():
    user = UserFactory()
    session = signed_in_session(user)
    request = APIRequestFactory().get("/api/v1/me", HTTP_X_SESSION_TOKEN=session.session_key)
    session_prefetch(request, token=session.session_key)
    user.set_password("a-new-password-2026")
    user.save()

    assert SessionTokenAuthentication().authenticate(Request(request)) is None


def test_a_token_seen_before_reads_its_session_and_counts_its_limit_in_one_round_trip(monkeypatch):
    import redis.client

    from core.api.throttles import UserRateThrottle

    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/min", "anon": "120/min"})
    client = app_client(signed_in_session(UserFactory()).session_key)
    assert client.get("/api/v1/wallet").status_code == 200  # this process learns whom the token signs in
    round_trips = []
    send_command, send_pipeline = redis.client.Redis.execute_command, redis.client.Pipeline.execute

    def command(client, *args, **options):
        if not isinstance(client, redis.client.Pipeline):
            round_trips.append(str(args[0]))
        return send_command(client, *args, **options)

    def pipeline(client, *args, **options):
        round_trips.append("pipeline: " + ", ".join(str(queued[0][0]) for queued in client.command_stack))
        return send_pipeline(client, *args, **options)

    monkeypatch.setattr(redis.client.Redis, "execute_command", command)
    monkeypatch.setattr(redis.client.Pipeline, "execute", pipeline)

    assert client.get("/api/v1/wallet").status_code == 200
    assert round_trips == ["pipeline: MGET, INCRBY, EXPIRE"]
    # The count handed over is the throttle's: the fourth request of the minute is refused.
    assert client.get("/api/v1/wallet").status_code == 200
    assert client.get("/api/v1/wallet").json()["error"]["code"] == "rate_limited"


def test_a_token_signed_out_since_is_not_signed_in_by_what_this_process_remembers():
    user = UserFactory()
    session = signed_in_session(user)
    client = app_client(session.session_key)
    assert client.get("/api/v1/wallet").status_code == 200
    SessionStore(session.session_key).delete()

    assert client.get("/api/v1/wallet").status_code == 401


# --- The signed-in person cached (accounts.sessions.USER_READING) -----------------------------


def test_a_repeat_signed_in_request_reads_the_person_from_the_cache(
    person, person_client, django_assert_num_queries
):
    person_client.get("/api/v1/wallet")

    with django_assert_num_queries(0):
        assert person_client.get("/api/v1/wallet").status_code == 200


def test_a_person_deactivated_is_refused_on_their_next_request(person, person_client):
    assert person_client.get("/api/v1/wallet").status_code == 200

    person.is_active = False
    person.save()

    assert person_client.get("/api/v1/wallet").status_code == 401


def test_a_change_made_by_update_is_seen_on_the_next_request(person, person_client):
    from accounts.notifications.services import preferences_set
    from accounts.sessions import USER_READING

    person_client.get("/api/v1/wallet")
    assert USER_READING.read(person.pk).value.language != "en"

    preferences_set(user=person, choices=[], language="en")  # an UPDATE, not a save
    person_client.get("/api/v1/wallet")

    cached = USER_READING.read(person.pk)
    assert (cached.hit, cached.value.language) == (True, "en")


def test_a_token_this_process_has_not_seen_reads_the_cached_readings_in_one_more_round_trip(
    person, person_client, monkeypatch, django_assert_num_queries
):
    import redis.client

    from accounts import sessions

    person_client.get("/api/v1/wallet")  # the person's row and wallet cached
    sessions._SIGNED_IN.clear()  # as a worker that has not served this token yet
    round_trips = []
    send_command = redis.client.Redis.execute_command

    def command(client, *args, **options):
        if not isinstance(client, redis.client.Pipeline):
            round_trips.append(str(args[0]))
        return send_command(client, *args, **options)

    monkeypatch.setattr(redis.client.Redis, "execute_command", command)
    with django_assert_num_queries(0):
        assert person_client.get("/api/v1/wallet").status_code == 200

    # The session; then the person's row and the wallet together (the rate limit counts on its own).
    assert round_trips.count("MGET") == 2, round_trips
