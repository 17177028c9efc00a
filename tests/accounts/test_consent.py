import importlib
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import services
from accounts.models import (
    AgreementAcceptance,
    AgreementKind,
    DataSource,
    DataSourceAuthorization,
    User,
)
from accounts.selectors import data_source_is_authorized

pytestmark = pytest.mark.django_db


def accept_all(client, version="2026-01"):
    return client.post(
        "/api/v1/me/agreements",
        {
            "accepted": [
                {"kind": "user_agreement", "version": version},
                {"kind": "privacy_policy", "version": version},
            ]
        },
        format="json",
    )


def test_the_current_agreements_are_public(agreements, api_client):
    response = api_client.get("/api/v1/agreements")

    assert response.status_code == 200
    assert [(item["kind"], item["version"]) for item in response.json()] == [
        ("privacy_policy", "2026-01"),
        ("user_agreement", "2026-01"),
    ]


def test_writes_wait_for_acceptance_reads_do_not(agreements, person, person_client):
    refused = person_client.patch("/api/v1/me", {"nickname": "新名字"}, format="json")
    read = person_client.get("/api/v1/me")

    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "agreement_acceptance_required"
    assert {item["kind"] for item in error["fields"]["pending"]} == {"user_agreement", "privacy_policy"}
    person.refresh_from_db()
    assert person.nickname != "新名字"
    assert read.status_code == 200
    assert len(read.json()["pending_agreements"]) == 2


def test_accepting_records_the_versions_and_opens_writes(agreements, person, person_client):
    response = accept_all(person_client)

    assert response.status_code == 200
    assert response.json()["pending"] == []
    assert AgreementAcceptance.objects.filter(user=person).count() == 2
    assert person_client.patch("/api/v1/me", {"nickname": "新名字"}, format="json").status_code == 200


def test_a_new_version_blocks_writes_until_accepted(agreements, person, person_client):
    accept_all(person_client)
    services.agreement_publish(kind=AgreementKind.PRIVACY_POLICY, version="2026-06", title="Privacy 2026-06")

    refused = person_client.put("/api/v1/me/data-sources/phone_steps")
    outdated = accept_all(person_client, version="2026-01")
    accepted = person_client.post(
        "/api/v1/me/agreements",
        {"accepted": [{"kind": "privacy_policy", "version": "2026-06"}]},
        format="json",
    )
    allowed = person_client.put("/api/v1/me/data-sources/phone_steps")

    assert refused.json()["error"]["code"] == "agreement_acceptance_required"
    assert refused.json()["error"]["fields"]["pending"][0]["version"] == "2026-06"
    assert outdated.status_code == 409
    assert outdated.json()["error"]["code"] == "agreement_version_not_current"
    assert accepted.status_code == 200
    assert allowed.status_code == 200


def test_a_version_effective_in_the_future_does_not_block_yet(agreements, person, person_client):
    accept_all(person_client)
    services.agreement_publish(
        kind=AgreementKind.USER_AGREEMENT,
        version="2027-01",
        title="Next year",
        effective_at=timezone.now() + timedelta(days=30),
    )

    assert person_client.patch("/api/v1/me", {"nickname": "x"}, format="json").status_code == 200


def test_revoking_a_data_source_never_waits_for_new_terms(agreements, person, person_client):
    services.data_source_authorize(user=person, source=DataSource.TRANSIT_CARD)

    response = person_client.delete("/api/v1/me/data-sources/transit_card")

    assert response.status_code == 200
    assert data_source_is_authorized(user_id=person.id, source=DataSource.TRANSIT_CARD) is False


def test_each_source_is_granted_and_revoked_on_its_own_with_history(person, person_client):
    person_client.put("/api/v1/me/data-sources/phone_steps")
    person_client.put("/api/v1/me/data-sources/transit_card")
    person_client.delete("/api/v1/me/data-sources/transit_card")
    person_client.put("/api/v1/me/data-sources/transit_card")
    listing = person_client.get("/api/v1/me/data-sources").json()
    history = person_client.get("/api/v1/me/data-sources/history").json()

    authorized = {item["source"] for item in listing if item["is_authorized"]}
    assert authorized == {"phone_steps", "transit_card"}
    assert len(listing) == len(DataSource)
    assert [(item["source"], item["revoked_at"] is None) for item in history].count(
        ("transit_card", False)
    ) == 1
    assert DataSourceAuthorization.objects.filter(user=person).count() == 3


def test_granting_twice_keeps_one_active_grant(person):
    first = services.data_source_authorize(user=person, source=DataSource.PHONE_STEPS)
    second = services.data_source_authorize(user=person, source=DataSource.PHONE_STEPS)

    assert first.pk == second.pk
    assert DataSourceAuthorization.objects.filter(user=person).count() == 1


def test_revoking_stops_the_source_but_keeps_the_history(person):
    services.data_source_authorize(user=person, source=DataSource.BANK_PAYMENTS)

    revoked = services.data_source_revoke(user=person, source=DataSource.BANK_PAYMENTS)
    again = services.data_source_revoke(user=person, source=DataSource.BANK_PAYMENTS)

    assert revoked.revoked_at is not None
    assert again is None
    assert data_source_is_authorized(user_id=person.id, source=DataSource.BANK_PAYMENTS) is False
    assert DataSourceAuthorization.objects.filter(user=person).count() == 1


def test_an_unknown_source_is_a_404(person_client):
    response = person_client.put("/api/v1/me/data-sources/telepathy")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "data_source_unknown"


@pytest.mark.django_db(transaction=True)
def test_concurrent_grants_of_one_source_leave_one_active_authorization():
    import threading

    from django.db import connection

    from tests.accounts.factories import UserFactory

    person = UserFactory()
    barrier = threading.Barrier(4)
    granted: list[int] = []

    def grant() -> None:
        try:
            barrier.wait()
            granted.append(services.data_source_authorize(user=person, source=DataSource.SHARED_MOBILITY).pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=grant) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(granted)) == 1
    assert DataSourceAuthorization.objects.filter(user=person, revoked_at__isnull=True).count() == 1


def _acceptance_reads(queries) -> int:
    return sum(
        "accounts_agreementacceptance" in query["sql"] and query["sql"].lstrip().startswith("SELECT")
        for query in queries.captured_queries
    )


def test_a_write_by_someone_who_accepted_reads_no_acceptances(agreements, person, person_client):
    accept_all(person_client)
    person.refresh_from_db()
    assert sorted(person.accepted_agreement_ids) == sorted(agreement.pk for agreement in agreements.values())

    with CaptureQueriesContext(connection) as queries:
        response = person_client.patch("/api/v1/me", {"nickname": "新名字"}, format="json")

    assert response.status_code == 200
    assert _acceptance_reads(queries) == 0


def test_a_copy_behind_the_acceptances_is_looked_up_and_brought_up_to_date(agreements, person, person_client):
    accept_all(person_client)
    # Two acceptances committing side by side can leave the copy without one of them.
    User.objects.filter(pk=person.pk).update(accepted_agreement_ids=[])

    allowed = person_client.patch("/api/v1/me", {"nickname": "新名字"}, format="json")

    assert allowed.status_code == 200
    person.refresh_from_db()
    assert sorted(person.accepted_agreement_ids) == sorted(agreement.pk for agreement in agreements.values())


def test_the_copy_never_vouches_for_a_version_published_after_it(agreements, person, person_client):
    accept_all(person_client)
    services.agreement_publish(kind=AgreementKind.USER_AGREEMENT, version="2026-06", title="Terms 2026-06")

    refused = person_client.patch("/api/v1/me", {"nickname": "新名字"}, format="json")

    assert refused.status_code == 403
    assert refused.json()["error"]["fields"]["pending"][0]["version"] == "2026-06"


def test_the_migration_fills_the_copy_from_the_acceptances(agreements, person):

    from django.db import connection

    services.agreements_accept_current(user=person)
    User.objects.filter(pk=person.pk).update(accepted_agreement_ids=[])
    migration = importlib.import_module("accounts.migrations.0003_user_accepted_agreement_ids")

    migration.accepted_agreements_copy_fill(None, connection.schema_editor())

    person.refresh_from_db()
    assert sorted(person.accepted_agreement_ids) == sorted(agreement.pk for agreement in agreements.values())
