"""The rewards app's part of export, erasure and account merges (called by accounts).

The ledger is never rewritten: erasure leaves every ledger row in place (the wallet belongs to the
same, now pseudonymous, account row) and blanks the donor name printed on certificates; a merge
moves the coins with one ledger transfer that keeps each coin's original expiry day.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from accounts.models import User
from rewards.lock_objects import ledger_accounts_lock
from rewards.models import (
    CoinLot,
    Donation,
    LedgerAccount,
    LedgerAccountKind,
    LedgerEntry,
    LedgerTransactionKind,
    Settlement,
)
from rewards.services import LotSpec, ledger_transaction_post, wallet_account_for_user


def personal_data_export(*, user: User) -> dict[str, Any]:
    """The wallet, every movement of it with its cause, the coins' expiry days, settlements, donations."""
    wallet = LedgerAccount.objects.filter(kind=LedgerAccountKind.WALLET, owner_id=user.pk).first()
    entries = (
        LedgerEntry.objects.filter(account=wallet).select_related("transaction").order_by("id")
        if wallet
        else []
    )
    lots = CoinLot.objects.filter(account=wallet).order_by("id") if wallet else []
    return {
        "wallet_balance": wallet.balance if wallet else 0,
        "wallet_history": [
            {
                "amount": entry.amount,
                "kind": entry.transaction.kind,
                "reference": entry.transaction.reference,
                "memo": entry.transaction.memo,
                "at": entry.transaction.created_at.isoformat(),
            }
            for entry in entries
        ],
        "coin_lots": [
            {
                "earned_on": lot.earned_on.isoformat(),
                "expires_on": lot.expires_on.isoformat(),
                "amount": lot.amount,
                "remaining": lot.remaining_amount,
            }
            for lot in lots
        ],
        "settlements": [
            {"day": day.isoformat(), "coins": coins, "carbon_mg": carbon_mg, "carbon_days": carbon_days}
            for day, coins, carbon_mg, carbon_days in Settlement.objects.filter(user_id=user.pk)
            .order_by("day")
            .values_list("day", "coins", "carbon_mg", "carbon_days")
        ],
        "donations": [
            {
                "id": str(donation.public_id),
                "project": donation.project.title,
                "amount": donation.amount,
                "donor_name": donation.donor_name,
                "at": donation.created_at.isoformat(),
            }
            for donation in Donation.objects.filter(user=user).select_related("project").order_by("id")
        ],
    }


def personal_data_erase(*, user: User) -> None:
    """Ledger rows stay (balanced, pseudonymous); the name printed on donation certificates goes."""
    Donation.objects.filter(user=user).update(donor_name="")


def accounts_merge(*, source_user: User, target_user: User) -> None:
    """Moves the source's coins to the target by one ledger transfer, each coin keeping its expiry day,
    and its donations (a request key both used is renamed on the source's copy)."""
    source = LedgerAccount.objects.filter(kind=LedgerAccountKind.WALLET, owner_id=source_user.pk).first()
    if source is not None:
        target = wallet_account_for_user(user_id=target_user.pk)
        balance = ledger_accounts_lock(account_ids=[source.pk, target.pk])[source.pk].balance
        if balance > 0:
            lots = [
                LotSpec(lot.remaining_amount, lot.earned_on, lot.expires_on)
                for lot in CoinLot.objects.filter(account=source, remaining_amount__gt=0).order_by(
                    "expires_on", "id"
                )
            ]
            ledger_transaction_post(
                legs=[(source, -balance), (target, balance)],
                kind=LedgerTransactionKind.ACCOUNT_MERGE,
                idempotency_key=f"account_merge:{source.pk}:{target.pk}",
                reference=f"account_merge:{source_user.public_id}",
                memo="Coins moved from a merged account",
                credit_lots={target.pk: lots},
            )
    target_keys = Donation.objects.filter(user=target_user).values("idempotency_key")
    for donation in Donation.objects.filter(Q(user=source_user) & Q(idempotency_key__in=target_keys)):
        donation.idempotency_key = f"merged:{donation.public_id}"
        donation.save(update_fields=["idempotency_key"])
    Donation.objects.filter(user=source_user).update(user=target_user)
