"""Reads of the rewards app: what a person sees of their wallet, and the welfare projects."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.db.models import Count, F, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from activities.models import ActivityRecord, DailyCarbon, RecordStatus
from rewards.models import (
    CoinLot,
    Donation,
    LedgerAccount,
    LedgerAccountKind,
    LedgerEntry,
    LedgerTransactionKind,
    Settlement,
    SettlementRun,
    SettlementRunStatus,
    WelfareProject,
)
from rewards.services.expiry import EXPIRY_REMINDER_DAYS
from rewards.services.settlement import coin_rate_for_day

NEXT_EXPIRIES_SHOWN = 5


@dataclass(frozen=True)
class Expiry:
    expires_on: datetime.date
    coins: int


@dataclass(frozen=True)
class WalletSummary:
    balance: int
    pending_carbon_mg: int
    carbon_mg_per_coin: int
    next_expiries: list[Expiry] = field(default_factory=list)
    # Coins expiring within the reminder window (30 days): the app shows a warning.
    coins_expiring_soon: int = 0

    @property
    def pending_coins_estimate(self) -> int:
        return self.pending_carbon_mg // self.carbon_mg_per_coin

    @property
    def has_expiry_reminder(self) -> bool:
        return self.coins_expiring_soon > 0


def wallet_of(*, user: User) -> LedgerAccount | None:
    return LedgerAccount.objects.filter(kind=LedgerAccountKind.WALLET, owner_id=user.pk).first()


def wallet_summary(*, user: User, today: datetime.date | None = None) -> WalletSummary:
    """Balance, carbon credited but not yet settled, and the next expiries, oldest first."""
    today = today or timezone.localdate()
    wallet = wallet_of(user=user)
    pending = DailyCarbon.objects.filter(user=user).aggregate(
        pending=Coalesce(Sum("credited_carbon_mg") - Sum("settled_carbon_mg"), 0)
    )["pending"]
    expiries: list[Expiry] = []
    expiring_soon = 0
    if wallet is not None:
        by_day = (
            CoinLot.objects.filter(account=wallet, remaining_amount__gt=0)
            .values("expires_on")
            .annotate(coins=Sum("remaining_amount"))
            .order_by("expires_on")
        )
        expiries = [Expiry(row["expires_on"], row["coins"]) for row in by_day[:NEXT_EXPIRIES_SHOWN]]
        expiring_soon = CoinLot.objects.filter(
            account=wallet,
            remaining_amount__gt=0,
            expires_on__lte=today + datetime.timedelta(days=EXPIRY_REMINDER_DAYS),
        ).aggregate(coins=Coalesce(Sum("remaining_amount"), 0))["coins"]
    return WalletSummary(
        balance=wallet.balance if wallet else 0,
        pending_carbon_mg=int(pending),
        carbon_mg_per_coin=coin_rate_for_day(day=today),
        next_expiries=expiries,
        coins_expiring_soon=expiring_soon,
    )


def wallet_history(*, user: User) -> QuerySet[LedgerEntry]:
    """The entries of the person's wallet, newest first, with their transaction and its cause."""
    return (
        LedgerEntry.objects.filter(account__kind=LedgerAccountKind.WALLET, account__owner_id=user.pk)
        .select_related("transaction", "transaction__donation__project")
        .order_by("-id")
    )


def wallet_entry(*, user: User, entry_id: int) -> LedgerEntry:
    return wallet_history(user=user).get(pk=entry_id)


def settlement_of(*, user: User, entry: LedgerEntry) -> Settlement | None:
    if entry.transaction.kind != LedgerTransactionKind.SETTLEMENT:
        return None
    return Settlement.objects.filter(transaction_id=entry.transaction_id, user_id=user.pk).first()


def settlements_for_entries(*, user: User, entries: list[LedgerEntry]) -> dict[int, Settlement]:
    """transaction id → the person's settlement in it, for one page of history (one query)."""
    settlement = LedgerTransactionKind.SETTLEMENT
    transaction_ids = [entry.transaction_id for entry in entries if entry.transaction.kind == settlement]
    if not transaction_ids:
        return {}
    return {
        settlement.transaction_id: settlement
        for settlement in Settlement.objects.filter(user_id=user.pk, transaction_id__in=transaction_ids)
    }


def activity_records_settled(*, user: User, settlement: Settlement) -> QuerySet[ActivityRecord]:
    """The credited activity records of the days a settlement converted into coins."""
    days = [datetime.date.fromisoformat(day) for day in settlement.carbon_days]
    return (
        ActivityRecord.objects.filter(user=user, local_day__in=days, status=RecordStatus.CREDITED)
        .select_related("behaviour", "factor__version")
        .order_by("local_day", "occurred_at", "id")
    )


def welfare_projects() -> QuerySet[WelfareProject]:
    """Projects with their progress: coins donated (the project account's balance) and donors."""
    project_balance = LedgerAccount.objects.filter(
        kind=LedgerAccountKind.WELFARE_PROJECT, owner_id=OuterRef("pk")
    ).values("balance")[:1]
    return WelfareProject.objects.annotate(
        donated_coins=Coalesce(Subquery(project_balance), 0),
        donors=Count("donations__user", distinct=True),
    ).order_by("-is_open", "-created_at", "-id")


def welfare_project(*, public_id) -> WelfareProject:
    return welfare_projects().get(public_id=public_id)


def donations_of(*, user: User) -> QuerySet[Donation]:
    return Donation.objects.filter(user=user).select_related("project").order_by("-id")


def donation_of(*, user: User, public_id) -> Donation:
    return donations_of(user=user).get(public_id=public_id)


def settlement_owed_day(*, today: datetime.date) -> datetime.date | None:
    """The day that ended before `today` when its settlement has not succeeded and someone has carbon
    waiting to be settled on it or before it; None when the night owes nothing (the catch-up job)."""
    day = today - datetime.timedelta(days=1)
    if SettlementRun.objects.filter(day=day, status=SettlementRunStatus.SUCCEEDED).exists():
        return None
    waiting = DailyCarbon.objects.filter(day__lte=day, credited_carbon_mg__gt=F("settled_carbon_mg"))
    return day if waiting.exists() else None
