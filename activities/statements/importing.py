"""Statements other platforms signed for us, brought by the person they are about.

1. The app asks for a one-time nonce (`statement_nonce_issue`) and hands it to the peer platform,
   which signs a statement with our issuer identifier as `aud` and that nonce.
2. The person uploads it. `peer_statement_verify` checks, without writing anything: the issuer is an
   active registered peer, its key (fetched from the peer's JWKS URL when the `kid` is new), the
   signature, the claims' schema and time window, the audience, and the nonce (this person's, not
   expired, not used).
3. `peer_statement_record` imports it in the caller's transaction. Unique keys make a second
   presentation harmless whatever the timing: one import per statement (issuer, `jti`), one per
   nonce, one per peer and month for a person, and a peer's subject feeds one person here.

rewards.services.statements runs 2 and 3 and mints coins where the peer's policy says so.
"""

from __future__ import annotations

import datetime
import json
import logging
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal

import requests
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from joserfc.jwk import OKPKey

from accounts.models import User
from activities import errors
from activities.models import ImportedReduction, PeerPlatform, PeerStatement, PeerSubject, StatementNonce
from activities.sql_statements import peer_statements
from activities.statements.instances import (
    counted_carbon_mg,
    imported_instances_store,
    statement_instances_match,
)
from activities.statements.jws import (
    Unverified,
    VerifiedStatement,
    key_in_jwks,
    month_last_day,
    statement_verify_with,
)
from core.api.boundary import json_text_refused
from core.api.errors import ApplicationError

logger = logging.getLogger(__name__)

MAX_JWKS_BYTES = 256 * 1024


@dataclass(frozen=True)
class IssuedNonce:
    nonce: str
    audience: str
    expires_at: datetime.datetime


@transaction.atomic
def statement_nonce_issue(*, user: User) -> IssuedNonce:
    """A fresh one-time nonce for the person to hand a peer platform, valid for the nonce lifetime."""
    now = timezone.now()
    nonce = StatementNonce.objects.create(
        user=user,
        nonce=secrets.token_urlsafe(24),
        created_at=now,
        expires_at=now + datetime.timedelta(seconds=settings.STATEMENTS_NONCE_LIFETIME_SECONDS),
    )
    return IssuedNonce(nonce=nonce.nonce, audience=settings.STATEMENTS_ISSUER, expires_at=nonce.expires_at)


# An expired nonce is kept this long, so an upload that checked it just before it expired still
# finds it when it marks it used (and answers its own code, not a missing nonce's).
NONCE_KEPT_AFTER_EXPIRY = datetime.timedelta(days=1)


@transaction.atomic
def statement_nonces_delete_expired(*, now: datetime.datetime | None = None) -> int:
    """Deletes the nonces expired more than a day ago, used or not; returns how many went.

    A nonce only matters until it expires: an upload carrying an expired one is refused whether the
    nonce is stored or not (`statement_nonce_expired`, or `statement_nonce_invalid` once deleted),
    and a statement already imported is refused by its own key (issuer + `jti`). Safe to run twice.
    """
    cutoff = (now or timezone.now()) - NONCE_KEPT_AFTER_EXPIRY
    with connection.cursor() as cursor:
        return peer_statements.nonces_delete_expired(cursor, cutoff)


def _jwks_text(url: str) -> bytes:
    """What the peer's JWKS URL answers, read up to MAX_JWKS_BYTES and within the timeout overall
    (not per read), refused as a body would be (a NUL, half a surrogate pair, too deep): raises
    ValueError or requests' errors."""
    timeout = settings.STATEMENTS_PEER_KEYS_TIMEOUT_SECONDS
    deadline = time.monotonic() + timeout
    with requests.get(url, timeout=timeout, allow_redirects=False, stream=True) as response:
        response.raise_for_status()
        content = b""
        for chunk in response.iter_content(chunk_size=16384):
            content += chunk
            if len(content) > MAX_JWKS_BYTES:
                raise ValueError("JWKS too large")
            if time.monotonic() > deadline:
                raise ValueError("JWKS too slow")
    if json_text_refused(content) is not None:
        raise ValueError("a JSON text the API refuses")
    return content


def peer_keys_stale(peer: PeerPlatform, *, now: datetime.datetime) -> bool:
    """Whether keys fetched from the peer's JWKS URL are older than a JWKS may be kept: a key the
    peer retired (compromised) must stop verifying here too, not only when a new kid shows up."""
    max_age = datetime.timedelta(seconds=settings.STATEMENTS_PEER_KEYS_MAX_AGE_SECONDS)
    return bool(peer.jwks_url) and (peer.jwks_fetched_at is None or peer.jwks_fetched_at <= now - max_age)


def peer_keys_refresh(*, peer: PeerPlatform) -> bool:
    """Brings `peer.jwks` up to date: fetched from the peer's JWKS URL and stored (True when fetched).

    Called when a statement names a key we do not hold (the peer rotated). A fetch happens at most
    once per STATEMENTS_PEER_KEYS_REFRESH_SECONDS per peer, so forged `kid`s cannot make us hammer
    it; within that time the keys another request stored are read instead. Requests arriving
    together may each fetch (the same keys): none waits on another.
    """
    now = timezone.now()
    since = now - datetime.timedelta(seconds=settings.STATEMENTS_PEER_KEYS_REFRESH_SECONDS)
    peer.refresh_from_db(fields=["jwks", "jwks_fetched_at"])
    if not peer.jwks_url or (peer.jwks_fetched_at is not None and peer.jwks_fetched_at > since):
        return False
    try:
        jwks = json.loads(_jwks_text(peer.jwks_url))
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise ValueError("not a JWK Set")
    except (requests.RequestException, ValueError, RecursionError) as error:
        logger.warning("peer keys not fetched", extra={"peer": peer.issuer, "error": str(error)[:200]})
        PeerPlatform.objects.filter(pk=peer.pk).update(jwks_fetched_at=now)
        peer.jwks_fetched_at = now
        return False
    PeerPlatform.objects.filter(pk=peer.pk).update(jwks=jwks, jwks_fetched_at=now)
    peer.jwks, peer.jwks_fetched_at = jwks, now
    return True


def _peer_of(unverified: Unverified) -> PeerPlatform:
    peer = PeerPlatform.objects.filter(issuer=unverified.claims["iss"], is_active=True).first()
    if peer is None:
        raise ApplicationError(
            errors.STATEMENT_ISSUER_UNKNOWN, fields={"iss": [str(unverified.claims["iss"])[:200]]}
        )
    return peer


@dataclass(frozen=True)
class VerifiedPeerStatement:
    peer: PeerPlatform
    statement: VerifiedStatement
    nonce: StatementNonce
    token: str


def peer_statement_verify(*, user: User, token: str) -> VerifiedPeerStatement:
    """Every check of a peer's statement for this person; writes nothing but a refreshed peer JWKS."""
    found: dict[str, PeerPlatform] = {}

    def key_for(unverified: Unverified) -> OKPKey:
        peer = found["peer"] = _peer_of(unverified)
        key_id = unverified.header["kid"]
        if peer_keys_stale(peer, now=timezone.now()):
            peer_keys_refresh(peer=peer)
        key = key_in_jwks(peer.jwks, key_id)
        if key is None:
            peer_keys_refresh(peer=peer)
            key = key_in_jwks(peer.jwks, key_id)
        if key is None:
            raise ApplicationError(errors.STATEMENT_KEY_UNKNOWN, fields={"kid": [key_id[:64]]})
        return key

    now = timezone.now()
    statement = statement_verify_with(token, key_for=key_for, now=now)
    peer, claims = found["peer"], statement.claims
    if claims["aud"] != settings.STATEMENTS_ISSUER:
        raise ApplicationError(errors.STATEMENT_WRONG_AUDIENCE, fields={"aud": [claims["aud"]]})
    if PeerStatement.objects.filter(peer=peer, statement_id=claims["jti"]).exists():
        raise ApplicationError(errors.STATEMENT_ALREADY_IMPORTED)
    nonce = StatementNonce.objects.filter(nonce=claims.get("nonce") or "", user=user).first()
    if nonce is None:
        raise ApplicationError(errors.STATEMENT_NONCE_INVALID)
    if nonce.used_at is not None:
        raise ApplicationError(_nonce_used_code(peer=peer, statement_id=claims["jti"]))
    if nonce.expires_at <= now:
        raise ApplicationError(errors.STATEMENT_NONCE_EXPIRED)
    return VerifiedPeerStatement(peer=peer, statement=statement, nonce=nonce, token=token)


def _nonce_used_code(*, peer: PeerPlatform, statement_id: str):
    """A used nonce is a replay when it went with this very statement (a twin upload that lost)."""
    if PeerStatement.objects.filter(peer=peer, statement_id=statement_id).exists():
        return errors.STATEMENT_ALREADY_IMPORTED
    return errors.STATEMENT_NONCE_USED


_CONSTRAINT_CODES = {
    "one_import_per_statement": errors.STATEMENT_ALREADY_IMPORTED,
    "one_import_per_peer_and_month": errors.STATEMENT_PERIOD_ALREADY_IMPORTED,
    "activities_peerstatement_nonce_id_key": errors.STATEMENT_NONCE_USED,
}


def _constraint_of(error: IntegrityError) -> str:
    diagnostics = getattr(error.__cause__, "diag", None)
    return getattr(diagnostics, "constraint_name", "") or ""


@transaction.atomic
def peer_statement_record(*, user: User, verified: VerifiedPeerStatement) -> PeerStatement:
    """Imports a verified statement once; a twin presentation, however timed, gets a 409 code."""
    claims, peer, now = verified.statement.claims, verified.peer, timezone.now()
    PeerSubject.objects.bulk_create(
        [PeerSubject(peer=peer, subject=claims["sub"], user=user, linked_at=now)], ignore_conflicts=True
    )
    if PeerSubject.objects.get(peer=peer, subject=claims["sub"]).user_id != user.pk:
        raise ApplicationError(errors.STATEMENT_SUBJECT_OF_ANOTHER_ACCOUNT)
    # Instances one of the person's reports here already holds do not count again (docs/interop.md).
    matched = statement_instances_match(
        user=user,
        claims=claims,
        month=verified.statement.month,
        last_day=month_last_day(verified.statement.month),
    )
    counted = {item["behaviour"]: counted_carbon_mg(item, matched) for item in claims["reductions"]}
    try:
        with transaction.atomic():
            statement = PeerStatement.objects.create(
                peer=peer,
                user=user,
                statement_id=claims["jti"],
                subject=claims["sub"],
                nonce=verified.nonce,
                month=verified.statement.month,
                total_carbon_mg=sum(counted.values()),
                stated_carbon_mg=claims["total_carbon_mg"],
                issued_at=verified.statement.issued_at,
                expires_at=verified.statement.expires_at,
                imported_at=now,
                token=verified.token,
            )
    except IntegrityError as error:
        code = _CONSTRAINT_CODES.get(_constraint_of(error))
        if code is None:
            raise
        if code == errors.STATEMENT_NONCE_USED:  # the same statement also breaks the nonce's key
            code = _nonce_used_code(peer=peer, statement_id=claims["jti"])
        raise ApplicationError(code) from error
    if not StatementNonce.objects.filter(pk=verified.nonce.pk, used_at__isnull=True).update(used_at=now):
        raise ApplicationError(errors.STATEMENT_NONCE_USED)
    ImportedReduction.objects.bulk_create(
        [
            ImportedReduction(
                statement=statement,
                behaviour=item["behaviour"],
                name=item.get("name", "")[:100],
                unit=item.get("unit", "")[:16],
                quantity=Decimal(item["quantity"]) if "quantity" in item else None,
                standard=(item["standard"] or {}).get("id", ""),
                standard_category=(item["standard"] or {}).get("category", ""),
                standard_behaviour=(item["standard"] or {}).get("behaviour", "")[:64],
                methodology_versions=item["methodology_versions"],
                carbon_mg=counted[item["behaviour"]],
                stated_carbon_mg=item["carbon_mg"],
            )
            for item in claims["reductions"]
        ]
    )
    imported_instances_store(statement=statement, claims=claims, matched=matched)
    return statement
