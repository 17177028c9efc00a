"""Statements of another platform brought by a person: a second platform (a local HTTP server with
its own Ed25519 keys and JWKS) signs them; we refuse forged, expired, wrong-audience, replayed,
wrong-nonce and unregistered-issuer ones with their codes, and import a valid one once — counted in
the report, the rating and the credit profile, marked with its issuer, and minted once under the
peer's coin policy, even when two uploads of it race (real threads on PostgreSQL)."""

from __future__ import annotations

import datetime
import json
import threading

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from activities.models import ImportedReduction, PeerPlatform, PeerStatement, PeerSubject, StatementNonce
from activities.statements.importing import MAX_JWKS_BYTES, peer_keys_refresh
from rewards.gamification.credit_profile import credit_profile_of
from rewards.gamification.ratings import ratings_rate_month
from rewards.models import LedgerTransaction, MonthlyRating, StatementMint
from rewards.selectors import wallet_id_of
from tests.accounts.factories import UserFactory
from tests.activities.peer_platform import LocalPeer, last_month
from tests.conftest import session_token_for
from tests.rewards.factories import carbon_credit


@pytest.fixture
def peer():
    with LocalPeer().serving() as running:
        yield running


def register(peer: LocalPeer, **policy) -> PeerPlatform:
    fields = {
        "name": "Green Commute",
        "issuer": peer.issuer,
        "jwks_url": peer.jwks_url,
        "counts_in_report": True,
        "counts_in_rating": True,
        "counts_in_credit_profile": True,
        "mints_coins": True,
        "coin_share_percent": 50,
    }
    return PeerPlatform.objects.create(**{**fields, **policy})


def client_of(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_SESSION_TOKEN=session_token_for(user))
    return client


def nonce_for(client: APIClient) -> str:
    response = client.post("/api/v1/me/statements/nonces")
    assert response.status_code == 201
    return response.json()["nonce"]


def statement_from_peer(peer: LocalPeer, nonce: str, month: datetime.date) -> str:
    """What the person's app does at the peer: asks it for a statement for us, with our nonce."""
    answer = requests.get(
        f"{peer.url}/statements",
        params={"aud": settings.STATEMENTS_ISSUER, "nonce": nonce, "month": month.strftime("%Y-%m")},
        timeout=5,
    )
    answer.raise_for_status()
    return answer.json()["statement"]


def upload(client: APIClient, token: str):
    return client.post("/api/v1/me/statements/imports", {"statement": token}, format="json")


def wallet_balance(user) -> int:
    from rewards.models import LedgerAccount

    wallet_id = wallet_id_of(user=user)
    return LedgerAccount.objects.get(pk=wallet_id).balance if wallet_id else 0


def state() -> dict:
    return {
        "statements": PeerStatement.objects.count(),
        "reductions": ImportedReduction.objects.count(),
        "mints": StatementMint.objects.count(),
        "ledger": LedgerTransaction.objects.count(),
        "nonces_used": StatementNonce.objects.filter(used_at__isnull=False).count(),
    }


@pytest.mark.django_db
def test_a_nonce_names_us_as_the_audience_and_lives_an_hour(person, client_for):
    response = client_for(person).post("/api/v1/me/statements/nonces")

    assert response.status_code == 201
    body = response.json()
    assert body["audience"] == settings.STATEMENTS_ISSUER
    assert len(body["nonce"]) == 32
    nonce = StatementNonce.objects.get(nonce=body["nonce"])
    assert (nonce.user, nonce.used_at) == (person, None)
    assert nonce.expires_at - nonce.created_at == datetime.timedelta(hours=1)


@pytest.mark.django_db
def test_a_valid_statement_is_imported_counted_and_minted_once(peer):
    registered = register(peer)
    month = last_month()
    person = UserFactory()
    carbon_credit(person, month.replace(day=3), 1_000_000)  # measured here: 1 kg
    client = client_of(person)
    token = statement_from_peer(peer, nonce_for(client), month)

    response = upload(client, token)

    assert response.status_code == 201, response.json()
    body = response.json()
    statement = PeerStatement.objects.get()
    assert body == {
        "id": str(statement.public_id),
        "issuer": peer.issuer,
        "platform": "Green Commute",
        "statement_id": statement.statement_id,
        "month": month.strftime("%Y-%m"),
        "total_carbon_mg": 623_456,
        "reductions": [
            {
                "behaviour": "bus",
                "name": "公交出行",
                "carbon_mg": 500_000,
                "methodology_versions": [3],
                "standard": {"id": "T/ACEF 031-2022", "category": "travel", "behaviour": "公交出行"},
            },
            {
                "behaviour": "green_delivery",
                "name": "",
                "carbon_mg": 123_456,
                "methodology_versions": [3],
                "standard": {"id": "T/ACEF 031-2022", "category": "use", "behaviour": "绿色包装快递"},
            },
        ],
        "imported_at": body["imported_at"],
        "coins_minted": 31,  # 623.456 g × 50 % at 10 g a coin
    }
    # The peer's keys were fetched once, from its JWKS URL, and kept.
    registered.refresh_from_db()
    assert (peer.jwks_requests, registered.jwks) == (1, peer.jwks())
    # Minted once, through the ledger, keyed by the statement.
    mint = StatementMint.objects.get()
    assert (mint.coins, mint.carbon_mg, mint.coin_share_percent, mint.carbon_mg_per_coin) == (
        31,
        623_456,
        50,
        10_000,
    )
    assert mint.transaction.idempotency_key == f"peer_statement:{registered.pk}:{statement.statement_id}"
    assert wallet_balance(person) == 31
    history = client.get("/api/v1/wallet/history").json()["results"]
    assert [(row["amount"], row["kind"], row["cause"]["statement_id"]) for row in history] == [
        (31, "peer_statement", str(statement.public_id))
    ]
    # Counted in the report, marked with the issuer.
    report = client.get(f"/api/v1/reports/month/{month:%Y-%m}").json()
    assert (report["total_carbon_mg"], report["imported_carbon_mg"]) == (1_623_456, 623_456)
    assert [(row["behaviour"], row["carbon_mg"], row["issuer"]) for row in report["behaviours"]] == [
        ("bus", 500_000, peer.issuer),
        ("green_delivery", 123_456, peer.issuer),
    ]
    this_month = client.get(f"/api/v1/reports/month/{timezone.localdate():%Y-%m}").json()
    assert this_month["coins"]["earned"] == 31  # coins count when minted, today
    # In the month's rating …
    ratings_rate_month(month=month)
    assert MonthlyRating.objects.get(user=person, month=month).carbon_mg == 1_623_456
    # … and in the green credit profile, with its issuer.
    twelve = credit_profile_of(user=person)["twelve_months"]
    assert (twelve["carbon_mg"], twelve["imported_carbon_mg"]) == (1_623_456, 623_456)
    assert twelve["imported"] == [
        {"month": month, "issuer": peer.issuer, "platform": "Green Commute", "carbon_mg": 623_456}
    ]
    assert [row for row in twelve["per_month"] if row["month"] == month] == [
        {"month": month, "carbon_mg": 1_623_456, "imported_carbon_mg": 623_456}
    ]
    # Brought again: refused, nothing changes.
    before = state()
    again = upload(client, token)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "statement_already_imported")
    assert state() == before
    assert wallet_balance(person) == 31


@pytest.mark.django_db
def test_where_the_peer_s_policy_says_no_it_neither_mints_nor_counts(peer):
    register(peer, mints_coins=False, counts_in_rating=False, counts_in_credit_profile=False)
    month = last_month()
    person = UserFactory()
    carbon_credit(person, month.replace(day=3), 1_000_000)
    client = client_of(person)

    response = upload(client, statement_from_peer(peer, nonce_for(client), month))

    assert (response.status_code, response.json()["coins_minted"]) == (201, 0)
    assert (StatementMint.objects.count(), LedgerTransaction.objects.count(), wallet_balance(person)) == (
        0,
        0,
        0,
    )
    assert client.get(f"/api/v1/reports/month/{month:%Y-%m}").json()["imported_carbon_mg"] == 623_456
    ratings_rate_month(month=month)
    assert MonthlyRating.objects.get(user=person, month=month).carbon_mg == 1_000_000
    assert credit_profile_of(user=person)["twelve_months"]["imported_carbon_mg"] == 0


def _refusals(peer: LocalPeer, person, other) -> dict[str, str]:
    """A statement of each kind we refuse, made by the peer (or a forger) for `person`."""
    month = last_month()
    us = settings.STATEMENTS_ISSUER
    client, other_client = client_of(person), client_of(other)
    stranger = LocalPeer()
    stranger_claims = stranger.claims(audience=us, nonce=nonce_for(client), month=month)
    forger = LocalPeer()
    expired_nonce = nonce_for(client)
    StatementNonce.objects.filter(nonce=expired_nonce).update(
        expires_at=datetime.datetime.now(tz=datetime.UTC) - datetime.timedelta(seconds=1)
    )
    replayed = peer.sign(peer.claims(audience=us, nonce=nonce_for(client), month=month))
    assert upload(client, replayed).status_code == 201
    used_nonce = StatementNonce.objects.get(statement__statement_id__isnull=False).nonce
    now = int(datetime.datetime.now(tz=datetime.UTC).timestamp())

    def fresh(**overrides) -> dict:
        return peer.claims(audience=us, nonce=nonce_for(client), month=month, **overrides)

    return {
        # Signed by someone else's key under the peer's key id.
        "forged": peer.sign(fresh(), key=forger.keys["peer-1"], key_id="peer-1"),
        "expired": peer.sign(fresh(exp=now - 5)),
        "wrong audience": peer.sign(fresh(aud="https://elsewhere.example")),
        "replayed": replayed,
        "no nonce": peer.sign(peer.claims(audience=us, nonce=None, month=month)),
        "unknown nonce": peer.sign(peer.claims(audience=us, nonce="made-up-nonce", month=month)),
        "another person's nonce": peer.sign(
            peer.claims(audience=us, nonce=nonce_for(other_client), month=month)
        ),
        "expired nonce": peer.sign(peer.claims(audience=us, nonce=expired_nonce, month=month)),
        "used nonce": peer.sign(
            peer.claims(audience=us, nonce=used_nonce, month=month.replace(year=month.year - 1))
        ),
        "unregistered issuer": stranger.sign(stranger_claims),
        "unknown key": peer.sign(fresh(), key=forger.keys["peer-1"], key_id="peer-9"),
        "not a month": peer.sign(fresh(period={"start": "2026-01-02", "end": "2026-01-31"})),
        "same month again": peer.sign(fresh()),
    }


EXPECTED = {
    "forged": (422, "statement_signature_invalid"),
    "expired": (422, "statement_expired"),
    "wrong audience": (422, "statement_wrong_audience"),
    "replayed": (409, "statement_already_imported"),
    "no nonce": (422, "statement_nonce_invalid"),
    "unknown nonce": (422, "statement_nonce_invalid"),
    "another person's nonce": (422, "statement_nonce_invalid"),
    "expired nonce": (422, "statement_nonce_expired"),
    "used nonce": (409, "statement_nonce_used"),
    "unregistered issuer": (422, "statement_issuer_unknown"),
    "unknown key": (422, "statement_key_unknown"),
    "not a month": (400, "statement_malformed"),
    "same month again": (409, "statement_period_already_imported"),
}


@pytest.mark.django_db
def test_bad_statements_are_refused_with_their_codes_and_change_nothing(peer):
    register(peer)
    person, other = UserFactory(), UserFactory()
    tokens = _refusals(peer, person, other)
    before, balance = state(), wallet_balance(person)

    answers = {name: upload(client_of(person), token) for name, token in tokens.items()}

    assert {
        name: (answer.status_code, answer.json()["error"]["code"]) for name, answer in answers.items()
    } == EXPECTED
    assert state() == before
    assert wallet_balance(person) == balance


@pytest.mark.django_db
def test_a_peer_s_account_feeds_one_account_here(peer):
    register(peer)
    month = last_month()
    first, second = client_of(UserFactory()), client_of(UserFactory())
    assert upload(first, statement_from_peer(peer, nonce_for(first), month)).status_code == 201

    response = upload(second, statement_from_peer(peer, nonce_for(second), month))

    assert (response.status_code, response.json()["error"]["code"]) == (
        409,
        "statement_subject_of_another_account",
    )
    assert PeerStatement.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_uploads_of_one_statement_at_once_import_and_mint_it_once(peer):
    register(peer)
    person = UserFactory()
    token = statement_from_peer(peer, nonce_for(client_of(person)), last_month())
    barrier = threading.Barrier(2)
    answers: list = []

    def present() -> None:
        try:
            client = client_of(person)
            barrier.wait(timeout=10)
            answers.append(upload(client, token))
        finally:
            connection.close()

    threads = [threading.Thread(target=present) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    outcomes = sorted(
        (answer.status_code, answer.json().get("error", {}).get("code", "imported")) for answer in answers
    )
    assert outcomes == [(201, "imported"), (409, "statement_already_imported")]
    assert (PeerStatement.objects.count(), StatementMint.objects.count()) == (1, 1)
    assert LedgerTransaction.objects.filter(kind="peer_statement").count() == 1
    assert wallet_balance(person) == 31


@pytest.mark.django_db
def test_a_refusal_is_said_in_the_person_s_language(peer):
    register(peer)
    client = client_of(UserFactory())
    token = peer.sign(
        peer.claims(audience="https://elsewhere.example", nonce=nonce_for(client), month=last_month())
    )

    response = client.post(
        "/api/v1/me/statements/imports", {"statement": token}, format="json", HTTP_ACCEPT_LANGUAGE="zh-Hans"
    )

    assert response.json()["error"] == {
        "code": "statement_wrong_audience",
        "message": "这份证明是签发给其他平台的。",
        "fields": {"aud": ["https://elsewhere.example"]},
    }


@pytest.mark.django_db
def test_operators_register_a_peer_in_the_admin_and_fetch_its_keys(peer, admin_client):
    private = peer.keys["peer-1"].as_dict(private=True, kid="peer-1")
    form = {
        "name": "Green Commute",
        "issuer": peer.issuer,
        "jwks_url": peer.jwks_url,
        "is_active": "on",
        "counts_in_report": "on",
        "mints_coins": "on",
        "coin_share_percent": "40",
    }

    refused = admin_client.post(
        "/admin/activities/peerplatform/add/", {**form, "jwks": json.dumps({"keys": [private]})}
    )
    added = admin_client.post(
        "/admin/activities/peerplatform/add/", {**form, "jwks": json.dumps(peer.jwks())}
    )

    assert refused.status_code == 200
    assert "This is a private key: paste only the public keys." in refused.content.decode()
    assert added.status_code == 302
    registered = PeerPlatform.objects.get()
    assert (registered.issuer, registered.jwks, registered.mints_coins, registered.counts_in_rating) == (
        peer.issuer,
        peer.jwks(),
        True,
        False,
    )
    # The peer rotates: the admin action fetches its new keys at once.
    peer.add_key("peer-2")
    admin_client.post(
        "/admin/activities/peerplatform/", {"action": "fetch_keys", "_selected_action": [registered.pk]}
    )
    registered.refresh_from_db()
    assert [key["kid"] for key in registered.jwks["keys"]] == ["peer-1", "peer-2"]


@pytest.mark.django_db
def test_a_peer_s_new_key_is_fetched_when_a_statement_names_it(peer):
    register(peer, jwks=peer.jwks())
    person = UserFactory()
    client = client_of(person)
    peer.add_key("peer-2")
    peer.signing_key_id = "peer-2"

    response = upload(client, statement_from_peer(peer, nonce_for(client), last_month()))

    assert response.status_code == 201
    assert peer.jwks_requests == 1


@pytest.mark.django_db
def test_a_merge_keeps_imported_statements_and_erasure_keeps_only_their_amounts(peer):
    from accounts.services import account_erase, account_merge

    register(peer)
    source, target = UserFactory(), UserFactory()
    client = client_of(source)
    assert upload(client, statement_from_peer(peer, nonce_for(client), last_month())).status_code == 201

    account_merge(source_user=source, target_user=target)
    statement = PeerStatement.objects.get()
    assert statement.user == target
    assert PeerSubject.objects.get().user == target

    account_erase(user=target)
    statement.refresh_from_db()
    assert (statement.token, statement.subject, statement.total_carbon_mg) == (
        "",
        f"erased:{statement.pk}",
        623_456,
    )
    assert (PeerSubject.objects.count(), StatementNonce.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_the_invariants_hold_after_an_import_and_catch_a_second_mint(peer):
    from operations.invariants import invariant_violations
    from rewards.models import LedgerTransactionKind
    from rewards.services import coins_issue, wallet_account_for_user

    register(peer)
    person = UserFactory()
    client = client_of(person)
    assert upload(client, statement_from_peer(peer, nonce_for(client), last_month())).status_code == 201
    assert invariant_violations() == []

    stray = coins_issue(
        destination=wallet_account_for_user(user_id=person.pk),
        amount=5,
        kind=LedgerTransactionKind.PEER_STATEMENT,
        idempotency_key="peer_statement:stray",
        reference="peer_statement:stray",
    )

    assert invariant_violations() == [
        f"statement minted: ledger transaction {stray.pk} without a mint: "
        "its mint says 0 coins for person None, 1 ledger transactions minted 0"
    ]


# --- Dates a hostile peer may sign -------------------------------------------------------------


def _signed_for(peer: LocalPeer, client: APIClient, month: datetime.date, **overrides) -> str:
    return peer.sign(
        peer.claims(audience=settings.STATEMENTS_ISSUER, nonce=nonce_for(client), month=month, **overrides)
    )


@pytest.mark.django_db
@pytest.mark.parametrize("years_ahead", [0, 1])
def test_a_statement_of_a_month_not_ended_is_refused(peer, years_ahead):
    # Statements are of ended months: a peer could otherwise state the month twice, before and after.
    register(peer)
    client = client_of(UserFactory())
    this_month = timezone.localdate().replace(day=1)
    month = this_month.replace(year=this_month.year + years_ahead)

    response = upload(client, _signed_for(peer, client, month))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "statement_malformed"
    assert not PeerStatement.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": 253_402_300_800},  # 10000-01-01
        {"period": {"start": "9999-12-01", "end": "9999-12-31"}},
    ],
    ids=["expiry in year 10000", "period of December 9999"],
)
def test_dates_past_the_calendar_are_a_refusal_not_a_server_error(peer, overrides):
    register(peer)
    client = client_of(UserFactory())
    client.raise_request_exception = False

    response = upload(client, _signed_for(peer, client, last_month(), **overrides))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "statement_malformed"
    assert not PeerStatement.objects.exists()


# --- What a peer's JWKS URL answers, and for how long we keep it ------------------------------


@pytest.mark.django_db
def test_a_key_the_peer_retired_stops_verifying_once_its_keys_are_stale(peer):
    registered = register(peer, mints_coins=False)
    client = client_of(UserFactory())
    assert upload(client, statement_from_peer(peer, nonce_for(client), last_month())).status_code == 201
    stolen = peer.keys["peer-1"]
    # The peer retires peer-1 (compromised): its JWKS lists peer-2 alone. An hour later:
    peer.add_key("peer-2")
    del peer.keys["peer-1"]
    PeerPlatform.objects.filter(pk=registered.pk).update(
        jwks_fetched_at=timezone.now() - datetime.timedelta(hours=1)
    )
    other = client_of(UserFactory())
    claims = peer.claims(
        audience=settings.STATEMENTS_ISSUER, nonce=nonce_for(other), month=last_month(), sub="someone-else"
    )

    response = upload(other, peer.sign(claims, key=stolen, key_id="peer-1"))

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "statement_key_unknown"
    assert PeerStatement.objects.count() == 1


@pytest.mark.django_db
def test_a_jwks_url_that_answers_without_end_is_not_read_whole(peer):
    registered = register(peer)
    peer.jwks_stream_bytes = 200 * 1024 * 1024

    assert peer_keys_refresh(peer=registered) is False

    assert peer.jwks_bytes_sent < 32 * MAX_JWKS_BYTES


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        b'{"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "\\ud800", "x": "AA"}]}',
        b'{"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "a\\u0000b", "x": "AA"}]}',
    ],
    ids=["half a surrogate pair", "nul"],
)
def test_a_jwks_no_column_can_hold_is_a_key_unknown_not_a_server_error(peer, body):
    register(peer)
    peer.jwks_body = body
    PeerPlatform.objects.update(jwks={"keys": []}, jwks_fetched_at=None)
    client = client_of(UserFactory())
    client.raise_request_exception = False

    response = upload(client, statement_from_peer(peer, nonce_for(client), last_month()))

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "statement_key_unknown"
