"""Donations of coins to public-welfare projects."""

from __future__ import annotations

import uuid

from django.db import IntegrityError, transaction

from accounts.models import User
from core.api.errors import IDEMPOTENCY_KEY_REUSED, ApplicationError
from rewards.errors import PROJECT_CLOSED
from rewards.ledger import coins_transfer, project_account_for_project, wallet_account_for_user
from rewards.models import Donation, LedgerTransactionKind, WelfareProject


def _replay(*, existing: Donation, project: WelfareProject, amount: int, idempotency_key: str) -> Donation:
    if existing.project_id != project.pk or existing.amount != amount:
        raise ApplicationError(IDEMPOTENCY_KEY_REUSED, fields={"idempotency_key": [idempotency_key]})
    existing.replayed = True
    return existing


@transaction.atomic
def donation_make(
    *, user: User, project: WelfareProject, amount: int, idempotency_key: str | None = None
) -> Donation:
    """Gives `amount` coins from the person's wallet to the project, once per idempotency key.

    The wallet must hold the coins (INSUFFICIENT_COINS, nothing changes). The returned donation has
    `replayed = True` when the key had already been used for the same donation.
    """
    key = idempotency_key or uuid.uuid4().hex
    existing = Donation.objects.filter(user=user, idempotency_key=key).select_related("project").first()
    if existing is not None:
        return _replay(existing=existing, project=project, amount=amount, idempotency_key=key)
    if not project.is_open:
        raise ApplicationError(PROJECT_CLOSED)
    public_id = uuid.uuid4()
    ledger_transaction = coins_transfer(
        source=wallet_account_for_user(user_id=user.pk),
        destination=project_account_for_project(project_id=project.pk),
        amount=amount,
        kind=LedgerTransactionKind.DONATION,
        idempotency_key=f"donation:{user.pk}:{key}",
        reference=f"donation:{public_id}",
    )
    try:
        with transaction.atomic():
            donation = Donation.objects.create(
                public_id=public_id,
                user=user,
                project=project,
                transaction=ledger_transaction,
                amount=amount,
                donor_name=(user.nickname or user.username)[:80],
                idempotency_key=key,
            )
    except IntegrityError:
        # A twin request with the same key committed first; the ledger returned its transaction.
        existing = Donation.objects.get(user=user, idempotency_key=key)
        return _replay(existing=existing, project=project, amount=amount, idempotency_key=key)
    donation.replayed = False
    return donation


@transaction.atomic
def welfare_project_create(
    *, slug: str, title: str, description: str, goal_coins: int, image=None
) -> WelfareProject:
    """Opens a welfare project (operators use the admin; the demo and tests call this)."""
    project = WelfareProject.objects.create(
        slug=slug, title=title, description=description, goal_coins=goal_coins, image=image or ""
    )
    project_account_for_project(project_id=project.pk)
    return project
