"""Our statements: a person's verified reductions of one month, signed for one receiving platform.

A statement counts only credited carbon (records held for review or rejected count nothing), per
behaviour, with the methodology versions that credited it, the standard each behaviour maps
to (`Behaviour.standard*`) and the instances behind it under pairwise keys (format 2,
`statements.instances`). It names the platform it is for (`aud`) and the person under a
pairwise subject for that platform alone (`core.crypto.platform_keys.statement_subject`).
Only ended months are stated: a month still running would give a platform two different
statements of it.
"""

from __future__ import annotations

import datetime
import re
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone
from joserfc import jwt
from joserfc.jwk import OKPKey

from accounts.models import User
from activities import errors
from activities.models import ActivityRecord, Behaviour, RecordStatus
from activities.statements.instances import instance_scope, statement_instances
from activities.statements.jws import Unverified, VerifiedStatement, key_in_jwks, statement_verify_with
from activities.statements.schema import ALGORITHM, STATEMENT_TYPE, STATEMENT_VERSION
from core.api.errors import ApplicationError
from core.crypto import platform_keys

PERIOD = re.compile(r"(\d{4})-(\d{2})")


def statement_month(period: str, *, today: datetime.date | None = None) -> datetime.date:
    """The first day of the month `YYYY-MM`, which must have ended; else `statement_period_invalid`."""
    match = PERIOD.fullmatch(period or "")
    try:
        month = datetime.date(int(match[1]), int(match[2]), 1) if match else None
    except ValueError:
        month = None
    if month is None or month.year < 2000 or month >= (today or timezone.localdate()).replace(day=1):
        raise ApplicationError(errors.STATEMENT_PERIOD_INVALID, fields={"period": [period or ""]})
    return month


def _month_last_day(month: datetime.date) -> datetime.date:
    return (month.replace(day=28) + datetime.timedelta(days=4)).replace(day=1) - datetime.timedelta(days=1)


def _standard(behaviour: Behaviour) -> dict[str, str] | None:
    if not behaviour.standard or not behaviour.standard_category:
        return None
    return {
        "id": behaviour.standard,
        "category": behaviour.standard_category,
        "behaviour": behaviour.standard_behaviour,
    }


def statement_reductions(
    *, user: User, month: datetime.date, instance_scope: bytes | None = None
) -> list[dict[str, Any]]:
    """Credited carbon of the month per behaviour, with the methodology versions that credited it and,
    given a statement's instance scope, its instances under their pairwise keys (`instances`)."""
    rows = (
        ActivityRecord.objects.filter(
            user=user,
            local_day__gte=month,
            local_day__lte=_month_last_day(month),
            status=RecordStatus.CREDITED,
            credited_carbon_mg__gt=0,
        )
        .values("behaviour_id", "factor__version__number")
        .annotate(carbon_mg=Sum("credited_carbon_mg"), quantity=Sum("quantity"))
        .order_by()
    )
    per_behaviour: dict[int, dict[str, Any]] = {}
    for row in rows:
        item = per_behaviour.setdefault(
            row["behaviour_id"], {"carbon_mg": 0, "quantity": 0, "versions": set()}
        )
        item["carbon_mg"] += row["carbon_mg"]
        item["quantity"] += row["quantity"]
        item["versions"].add(row["factor__version__number"])
    listed = (
        statement_instances(user=user, first=month, last=_month_last_day(month), scope=instance_scope)
        if instance_scope is not None
        else {}
    )
    behaviours = Behaviour.objects.in_bulk(list(per_behaviour))
    reductions = []
    for behaviour_id in sorted(
        per_behaviour, key=lambda pk: (behaviours[pk].sort_order, behaviours[pk].code)
    ):
        behaviour, item = behaviours[behaviour_id], per_behaviour[behaviour_id]
        reductions.append(
            {
                "behaviour": behaviour.code,
                "name": behaviour.name,
                "name_en": behaviour.name_en,
                "unit": behaviour.unit,
                "quantity": f"{item['quantity'].normalize():f}",
                "carbon_mg": int(item["carbon_mg"]),
                "methodology_versions": sorted(item["versions"]),
                "standard": _standard(behaviour),
                **({"instances": listed[behaviour_id]} if behaviour_id in listed else {}),
            }
        )
    return reductions


@dataclass(frozen=True)
class IssuedStatement:
    token: str
    key_id: str
    claims: dict[str, Any]


def statement_issue(
    *, user: User, month: datetime.date, audience: str, nonce: str | None = None
) -> IssuedStatement:
    """Signs the person's statement of `month` for the platform `audience` (with its nonce, if given)."""
    now = timezone.now()
    subject = platform_keys.statement_subject(person_id=str(user.public_id), audience=audience)
    scope = instance_scope(issuer=settings.STATEMENTS_ISSUER, audience=audience, subject=subject)
    reductions = statement_reductions(user=user, month=month, instance_scope=scope)
    claims: dict[str, Any] = {
        "iss": settings.STATEMENTS_ISSUER,
        "sub": subject,
        "aud": audience,
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + settings.STATEMENTS_LIFETIME_SECONDS,
        "jti": str(uuid.uuid4()),
        "version": STATEMENT_VERSION,
        **({"nonce": nonce} if nonce else {}),
        "period": {"start": month.isoformat(), "end": _month_last_day(month).isoformat()},
        "total_carbon_mg": sum(item["carbon_mg"] for item in reductions),
        "reductions": reductions,
    }
    key_id, private_key = platform_keys.ed25519_current()
    header = {"alg": ALGORITHM, "kid": key_id, "typ": STATEMENT_TYPE}
    token = jwt.encode(header, claims, OKPKey.import_key(private_key), algorithms=[ALGORITHM])
    return IssuedStatement(token=token, key_id=key_id, claims=claims)


def _our_key(unverified: Unverified) -> OKPKey:
    if unverified.claims["iss"] != settings.STATEMENTS_ISSUER:
        raise ApplicationError(
            errors.STATEMENT_ISSUER_UNKNOWN, fields={"iss": [str(unverified.claims["iss"])[:200]]}
        )
    key = key_in_jwks(platform_keys.ed25519_jwks(), unverified.header["kid"])
    if key is None:
        raise ApplicationError(errors.STATEMENT_KEY_UNKNOWN, fields={"kid": [unverified.header["kid"][:64]]})
    return key


def statement_verify(*, token: str) -> VerifiedStatement:
    """Checks a statement this platform issued, for anyone: valid, or the code of why not.

    Any of our published keys verifies (old ones stay published after a rotation); the audience is
    not checked here: it is the receiving platform's to check.
    """
    return statement_verify_with(token, key_for=_our_key, now=timezone.now())
