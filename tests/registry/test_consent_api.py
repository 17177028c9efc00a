"""The pooling consent through the API: the text in force, grant (naming the version shown),
revoke (even before new terms are accepted), history; never required to use the platform."""

from __future__ import annotations

import pytest

from accounts.models import PoolingConsent
from accounts.selectors import agreements_pending_for
from tests.registry.factories import POOLING_VERSION, pooling_text_published

pytestmark = pytest.mark.django_db


def test_without_a_published_text_the_consent_cannot_be_granted(person, person_client):
    response = person_client.put("/api/v1/me/pooling-consent", {"version": "x"}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "pooling_consent_unavailable"
    assert not PoolingConsent.objects.exists()


def test_a_person_grants_the_version_shown_and_revokes_it_for_the_future(person, person_client):
    pooling_text_published()

    shown = person_client.get("/api/v1/me/pooling-consent").json()
    stale = person_client.put("/api/v1/me/pooling-consent", {"version": "2020-01"}, format="json")
    granted = person_client.put("/api/v1/me/pooling-consent", {"version": POOLING_VERSION}, format="json")
    again = person_client.put("/api/v1/me/pooling-consent", {"version": POOLING_VERSION}, format="json")
    revoked = person_client.delete("/api/v1/me/pooling-consent")
    history = person_client.get("/api/v1/me/pooling-consent/history").json()

    assert (shown["is_granted"], shown["agreement"]["version"]) == (False, POOLING_VERSION)
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "agreement_version_not_current"
    assert granted.status_code == 200
    assert (granted.json()["is_granted"], granted.json()["granted_version"]) == (True, POOLING_VERSION)
    assert again.json()["granted_at"] == granted.json()["granted_at"]
    assert revoked.json()["is_granted"] is False
    assert [(item["version"], item["revoked_at"] is not None) for item in history] == [
        (POOLING_VERSION, True)
    ]


def test_the_pooling_text_is_never_among_the_agreements_everyone_must_accept(person):
    pooling_text_published()

    assert [agreement.kind for agreement in agreements_pending_for(user=person)] == []
