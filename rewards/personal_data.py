"""The rewards app's part of export, erasure and account merges (called by accounts).

Ratings, badges, leaderboard places, green credit profile consents and the log of banks' fetches
are exported; erasure removes them (leaderboards and ratings are derived data, rebuilt from what
is left); a merge moves badges and the consent history to the target and drops the source's
derived rows, which the next rebuild computes from the merged carbon.

The ledger is never rewritten: erasure leaves every ledger row in place (the wallet belongs to the
same, now pseudonymous, account row) and blanks the donor name printed on certificates; a merge
moves the coins with one ledger transfer that keeps each coin's original expiry day.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from accounts.models import User
from core.api.serializers import local_datetime_text
from rewards.lock_objects import ledger_accounts_lock
from rewards.models import (
    BadgeAward,
    BadgeProgress,
    CoinLot,
    CreditProfileAccess,
    CreditProfileConsent,
    Donation,
    LeaderboardEntry,
    LedgerAccount,
    LedgerAccountKind,
    LedgerEntry,
    LedgerTransactionKind,
    MonthlyRating,
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
                "at": local_datetime_text(entry.transaction.created_at),
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
                "at": local_datetime_text(donation.created_at),
            }
            for donation in Donation.objects.filter(user=user).select_related("project").order_by("id")
        ],
        **_gamification_export(user),
    }


def _groups_export(user: User) -> dict[str, Any]:
    from rewards.groups.models import ChallengePayout, GroupMembership

    return {
        "groups": [
            {
                "id": str(membership.group.public_id),
                "kind": membership.group.kind,
                "name": membership.group.name,
                "role": membership.role,
                "joined_at": membership.joined_at.isoformat(),
            }
            for membership in GroupMembership.objects.filter(user=user).select_related("group").order_by("id")
        ],
        "challenge_rewards": [
            {"challenge": payout.challenge.title, "coins": payout.coins, "at": payout.created_at.isoformat()}
            for payout in ChallengePayout.objects.filter(user_key=user.pk)
            .select_related("challenge")
            .order_by("id")
        ],
    }


def _gamification_export(user: User) -> dict[str, Any]:
    return {
        **_groups_export(user),
        "monthly_ratings": [
            {"month": month.strftime("%Y-%m"), "level": level, "carbon_mg": carbon_mg, "city_rank": rank}
            for month, level, carbon_mg, rank in MonthlyRating.objects.filter(user=user)
            .order_by("month")
            .values_list("month", "level", "carbon_mg", "city_rank")
        ],
        "badges": [
            {"badge": key, "awarded_at": local_datetime_text(awarded_at)}
            for key, awarded_at in BadgeAward.objects.filter(user=user)
            .order_by("awarded_at", "id")
            .values_list("badge__key", "awarded_at")
        ],
        "streak": next(
            (
                {"latest_run": [start.isoformat(), end.isoformat()], "longest_days": longest}
                for start, end, longest in BadgeProgress.objects.filter(user=user).values_list(
                    "run_start", "run_end", "longest_days"
                )
            ),
            None,
        ),
        "leaderboard_places": [
            {
                "build": build_id,
                "city_rank": city_rank,
                "district_rank": district_rank,
                "carbon_mg": carbon_mg,
            }
            for build_id, city_rank, district_rank, carbon_mg in LeaderboardEntry.objects.filter(
                user_id=user.pk
            )
            .order_by("build_id")
            .values_list("build_id", "city_rank", "district_rank", "carbon_mg")
        ],
        "credit_profile_consents": [
            {
                "partner": consent.partner.code,
                "granted_at": local_datetime_text(consent.granted_at),
                "revoked_at": local_datetime_text(consent.revoked_at) if consent.revoked_at else None,
            }
            for consent in CreditProfileConsent.objects.filter(user=user)
            .select_related("partner")
            .order_by("id")
        ],
        "credit_profile_accesses": [
            {
                "partner": access.partner.code,
                "outcome": access.outcome,
                "at": local_datetime_text(access.accessed_at),
            }
            for access in CreditProfileAccess.objects.filter(user=user)
            .select_related("partner")
            .order_by("id")
        ],
    }


def personal_data_erase(*, user: User) -> None:
    """Ledger rows stay (balanced, pseudonymous); the name printed on donation certificates goes, and
    so do ratings, badges, streaks, leaderboard places, consents and the log of banks' fetches."""
    Donation.objects.filter(user=user).update(donor_name="")
    MonthlyRating.objects.filter(user=user).delete()
    BadgeAward.objects.filter(user=user).delete()
    BadgeProgress.objects.filter(user=user).delete()
    LeaderboardEntry.objects.filter(user_id=user.pk).delete()
    CreditProfileConsent.objects.filter(user=user).delete()
    CreditProfileAccess.objects.filter(user=user).delete()
    # Out of every group (an owner's ownership passes on); challenge rewards paid stay in the ledger.
    from rewards.groups.models import GroupMemberBoardEntry
    from rewards.groups.services import memberships_erase

    memberships_erase(user=user)
    GroupMemberBoardEntry.objects.filter(user_id=user.pk).delete()


def accounts_merge_lock(*, source_user: User, target_user: User) -> None:
    """Before any app moves a row: the challenges of both people's groups, then both wallets
    (opened if missing: an insert waits for a settlement opening one), in the global order."""
    from rewards.groups.challenges import challenges_merge_lock

    challenges_merge_lock(source_user=source_user, target_user=target_user)
    ledger_accounts_lock(
        account_ids=[wallet_account_for_user(user_id=user.pk).pk for user in (source_user, target_user)]
    )


def accounts_merge(*, source_user: User, target_user: User) -> dict[str, int]:
    """Moves the source's groups and challenge rewards (first: they lock the challenges before any
    wallet, as settlement does), then its coins to the target by one ledger transfer, each coin
    keeping its expiry day, and its donations (a request key both used is renamed on the source's
    copy). Reports how many groups the source left for the person's group limit."""
    groups_left = _groups_merge(source_user=source_user, target_user=target_user)
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
    _gamification_merge(source_user=source_user, target_user=target_user)
    return {"groups_left": groups_left}


def _groups_merge(*, source_user: User, target_user: User) -> int:
    """Challenge rewards, then memberships (`rewards.groups`); the source's places on the group boards
    go (the next build ranks the merged person once)."""
    from rewards.groups.challenges import challenge_payouts_merge
    from rewards.groups.models import GroupMemberBoardEntry
    from rewards.groups.services import memberships_merge

    challenge_payouts_merge(source_user=source_user, target_user=target_user)
    left = memberships_merge(source_user=source_user, target_user=target_user)
    GroupMemberBoardEntry.objects.filter(user_id=source_user.pk).delete()
    return len(left)


def _gamification_merge(*, source_user: User, target_user: User) -> None:
    """Badges the target lacks move over (one award per badge); consents end, their history moves;
    the source's ratings and board places go (the rebuilds count the merged carbon once)."""
    held = BadgeAward.objects.filter(user=target_user).values("badge_id")
    BadgeAward.objects.filter(user=source_user).exclude(badge_id__in=held).update(user=target_user)
    BadgeAward.objects.filter(user=source_user).delete()
    # The days are the target's now (activities merged them, and capped some): what the progress
    # counted of them is forgotten, and the next refresh counts the target again from all its days.
    from rewards.gamification.progress import progress_forget

    progress_forget(user_ids=[source_user.pk, target_user.pk])
    # A bank was allowed to read the source account's profile, not the merged one: the grant ends.
    from django.utils import timezone

    CreditProfileConsent.objects.filter(user=source_user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    CreditProfileConsent.objects.filter(user=source_user).update(user=target_user)
    CreditProfileAccess.objects.filter(user=source_user).update(user=target_user)
    MonthlyRating.objects.filter(user=source_user).delete()
    LeaderboardEntry.objects.filter(user_id=source_user.pk).delete()
