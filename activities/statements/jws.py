"""Reading and checking a compact JWS statement: the one path both our verifier and imports go through.

The header is read before the signature is checked only to pick the key (`kid`) and the issuer's
key set (`iss`); nothing else is trusted until the signature verifies. Only the fully-specified
`Ed25519` algorithm (RFC 9864) is accepted, so a token cannot choose a weaker one.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from activities import errors
from activities.statements.schema import ALGORITHM, STATEMENT_TYPE, schema_errors
from core.api.boundary import json_text_refused
from core.api.errors import ApplicationError
from core.local_time import local_day_of

# A month of a few thousand instances (format 2) fits; the API's JSON bodies take up to 1 MB.
MAX_TOKEN_LENGTH = 512_000
# The longest a statement may claim to live (`exp` - `iat`): ours live 30 days; beyond this, a date
# no calendar holds would reach the database (year 10000).
MAX_LIFETIME_SECONDS = 10 * 366 * 24 * 3600
# The issuer's local day may run ahead of UTC by up to 14 hours (UTC+14).
MAX_ISSUER_UTC_OFFSET = datetime.timedelta(hours=14)


@dataclass(frozen=True)
class Unverified:
    """What a token says about itself before its signature is checked: only used to find the key."""

    header: dict[str, Any]
    claims: dict[str, Any]


@dataclass(frozen=True)
class VerifiedStatement:
    key_id: str
    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def month(self) -> datetime.date:
        return datetime.date.fromisoformat(self.claims["period"]["start"])

    @property
    def issued_at(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.claims["iat"], tz=datetime.UTC)

    @property
    def expires_at(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.claims["exp"], tz=datetime.UTC)


def _segment(text: str) -> Any:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    # The body's checks at the boundary cannot see into a token: the same ones for its JSON.
    if json_text_refused(raw) is not None:
        raise ValueError("a JSON text the API refuses")
    return json.loads(raw)


def token_peek(token: str) -> Unverified:
    """The header and claims of a compact JWS, unverified; `statement_malformed` if it is not one."""
    parts = token.split(".") if isinstance(token, str) and len(token) <= MAX_TOKEN_LENGTH else []
    if len(parts) != 3 or not all(parts):
        raise ApplicationError(errors.STATEMENT_MALFORMED, fields={"statement": ["not a compact JWS"]})
    try:
        header, claims = _segment(parts[0]), _segment(parts[1])
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise ApplicationError(
            errors.STATEMENT_MALFORMED, fields={"statement": ["not base64url JSON"]}
        ) from error
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ApplicationError(errors.STATEMENT_MALFORMED, fields={"statement": ["not JSON objects"]})
    if header.get("typ") != STATEMENT_TYPE or not isinstance(header.get("kid"), str):
        raise ApplicationError(
            errors.STATEMENT_MALFORMED, fields={"header": [f"typ {STATEMENT_TYPE} and a kid are required"]}
        )
    # No extension of JWS is understood here, so none may be critical (RFC 7515 §4.1.11); joserfc
    # raised TypeError, a 500, on a `crit` that is not a list of names.
    if "crit" in header:
        raise ApplicationError(errors.STATEMENT_MALFORMED, fields={"header": ["crit is not supported"]})
    if not isinstance(claims.get("iss"), str):
        raise ApplicationError(errors.STATEMENT_MALFORMED, fields={"iss": ["required"]})
    return Unverified(header, claims)


def claims_check(claims: dict[str, Any], *, now: datetime.datetime) -> None:
    """The schema, the period (one calendar month), the total, and the statement's time window."""
    problems = schema_errors(claims)
    if problems:
        raise ApplicationError(errors.STATEMENT_MALFORMED, fields=problems)
    start = datetime.date.fromisoformat(claims["period"]["start"])
    end = datetime.date.fromisoformat(claims["period"]["end"])
    # Only an ended month is stated (docs/interop.md). A month that has not begun is refused before its
    # last day is computed (year 9999's would overflow the calendar); the current month by `iat` below.
    if start > local_day_of(now):
        raise ApplicationError(errors.STATEMENT_MALFORMED, fields={"period": ["a month that has not ended"]})
    if start.day != 1 or end != month_last_day(start):
        raise ApplicationError(errors.STATEMENT_MALFORMED, fields={"period": ["not one calendar month"]})
    # Issued once the month was over where the issuer is (at most 14 hours ahead of UTC), and, below,
    # not after now: so the month has ended.
    month_over = datetime.datetime.combine(end + datetime.timedelta(days=1), datetime.time(), datetime.UTC)
    if claims["iat"] < (month_over - MAX_ISSUER_UTC_OFFSET).timestamp():
        raise ApplicationError(errors.STATEMENT_MALFORMED, fields={"iat": ["issued before the month ended"]})
    if claims["exp"] - claims["iat"] > MAX_LIFETIME_SECONDS:
        raise ApplicationError(errors.STATEMENT_MALFORMED, fields={"exp": ["too far after iat"]})
    if sum(item["carbon_mg"] for item in claims["reductions"]) != claims["total_carbon_mg"]:
        raise ApplicationError(
            errors.STATEMENT_MALFORMED, fields={"total_carbon_mg": ["not the sum of the reductions"]}
        )
    if len({item["behaviour"] for item in claims["reductions"]}) != len(claims["reductions"]):
        raise ApplicationError(
            errors.STATEMENT_MALFORMED, fields={"reductions": ["a behaviour is listed twice"]}
        )
    _instances_check(claims)
    timestamp = int(now.timestamp())
    if claims["iat"] > timestamp + settings.STATEMENTS_CLOCK_SKEW_SECONDS:
        raise ApplicationError(errors.STATEMENT_NOT_YET_VALID)
    if claims["exp"] <= timestamp:
        raise ApplicationError(errors.STATEMENT_EXPIRED)


def _instances_check(claims: dict[str, Any]) -> None:
    """Instances come with format 2, each key once per behaviour, adding up to no more than the carbon."""
    for position, item in enumerate(claims["reductions"]):
        instances = item.get("instances")
        if instances is None:
            continue
        if claims.get("version", 1) < 2:
            raise ApplicationError(
                errors.STATEMENT_MALFORMED, fields={f"reductions/{position}/instances": ["format 2 only"]}
            )
        if len({instance["key"] for instance in instances}) != len(instances):
            raise ApplicationError(
                errors.STATEMENT_MALFORMED,
                fields={f"reductions/{position}/instances": ["a key is listed twice"]},
            )
        if sum(instance["carbon_mg"] for instance in instances) > item["carbon_mg"]:
            raise ApplicationError(
                errors.STATEMENT_MALFORMED,
                fields={f"reductions/{position}/instances": ["more carbon than the reduction"]},
            )


def month_last_day(month: datetime.date) -> datetime.date:
    return (month.replace(day=28) + datetime.timedelta(days=4)).replace(day=1) - datetime.timedelta(days=1)


def statement_verify_with(
    token: str, *, key_for: Callable[[Unverified], OKPKey], now: datetime.datetime
) -> VerifiedStatement:
    """Checks the signature under the key `key_for` finds (it raises when there is none), then the claims."""
    unverified = token_peek(token)
    if unverified.header.get("alg") != ALGORITHM:
        raise ApplicationError(errors.STATEMENT_SIGNATURE_INVALID, fields={"alg": [ALGORITHM]})
    key = key_for(unverified)
    try:
        verified = jwt.decode(token, key, algorithms=[ALGORITHM])
    except (JoseError, TypeError, ValueError) as error:  # a header joserfc cannot read is no signature
        raise ApplicationError(errors.STATEMENT_SIGNATURE_INVALID) from error
    claims_check(verified.claims, now=now)
    return VerifiedStatement(
        key_id=unverified.header["kid"], header=dict(verified.header), claims=verified.claims
    )


def key_in_jwks(jwks: Any, key_id: str) -> OKPKey | None:
    """The Ed25519 public key `key_id` of a JWK Set, or None (a malformed entry counts as absent)."""
    for entry in (jwks or {}).get("keys", []) if isinstance(jwks, dict) else []:
        if isinstance(entry, dict) and entry.get("kid") == key_id and entry.get("crv") == "Ed25519":
            try:
                return OKPKey.import_key({key: value for key, value in entry.items() if key != "d"})
            except (JoseError, ValueError, TypeError):
                return None
    return None
