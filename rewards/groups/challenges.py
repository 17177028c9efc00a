"""Team challenges: progress, meeting the target, and paying the reward exactly once per member.

The reward comes from the sponsor's ledger account (kind `challenge_sponsor`), funded through the
ledger from the operators' issuance or a merchant's clearing account. A challenge pays:

- coins: `coins_per_member` to each member who took part (in the group when the target was met,
  carbon credited in the period from the local day they joined, the days progress counts too),
  set-based (`_members_pay`: three statements per challenge whatever its size): one ledger
  transaction per round with a leg per member, keyed `challenge:<id>:members-after:<paid before>`, and a
  `ChallengePayout` row unique per (challenge, member): paid once, whatever runs twice;
- donation: `donation_coins` from the sponsor to a welfare project, in the group's name, once.

Never more than the budget: a round pays as many members (by person) as both the budget left and
the sponsor's locked balance cover, and raises the challenge's `paid_coins` in its own statement only
while `paid_coins + coins <= budget_coins` (nothing moves otherwise); the ledger's balance floor
keeps the sponsor's account from paying coins it does not hold. Settling locks the challenge row,
then its group's (joins and leaves wait), then the payees' wallets and the sponsor's account in the
ledger's order, so two settlements of one challenge take turns and the second finds everyone paid.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import NotificationKind, User
from accounts.notifications.services import notifications_raise
from core.api.errors import ApplicationError
from core.db import execute
from rewards.errors import CHALLENGE_INVALID, CHALLENGE_LIMIT_REACHED, INSUFFICIENT_COINS
from rewards.groups import statements
from rewards.groups.models import (
    ChallengePayout,
    ChallengeReward,
    ChallengeSponsor,
    ChallengeStatus,
    ChallengeTarget,
    Group,
    GroupMembership,
    TeamChallenge,
)
from rewards.ledger import (
    AccountRef,
    BatchPosting,
    TransferCondition,
    TransferConditionUnmet,
    clearing_of,
    coin_expiry_days,
    coins_transfer,
    coins_transfer_if,
    project_account_for_project,
)
from rewards.models import Donation, LedgerAccountKind, LedgerTransactionKind

logger = logging.getLogger(__name__)

# A group's challenges: at most this many open at once (each one met tells every member, and the
# group's page computes each one's progress), each at most a year long, begun at the earliest on the
# first day of the current month (a challenge "this month" set a few days in; not one already met
# by the carbon of years ago).
OPEN_CHALLENGES_MAX = 10
CHALLENGE_DAYS_MAX = 366


def sponsor_account(sponsor: ChallengeSponsor) -> AccountRef:
    return AccountRef(LedgerAccountKind.CHALLENGE_SPONSOR, sponsor.pk)


def sponsor_fund(*, sponsor: ChallengeSponsor, amount: int, idempotency_key: str) -> int:
    """Funds a sponsor's budget through the ledger: a merchant's from its clearing account (coins
    people spent with it), an operator budget by issuing coins. Once per key. Returns the balance."""
    source = (
        clearing_of(merchant_id=sponsor.merchant_id)
        if sponsor.merchant_id
        else AccountRef(LedgerAccountKind.ISSUANCE)
    )
    coins_transfer(
        source=source,
        destination=sponsor_account(sponsor),
        amount=amount,
        kind=LedgerTransactionKind.SPONSOR_FUNDING,
        idempotency_key=f"sponsor:{sponsor.pk}:{idempotency_key}",
        reference=f"sponsor:{sponsor.pk}",
    )
    return sponsor_balance(sponsor=sponsor)


def sponsor_balance(*, sponsor: ChallengeSponsor) -> int:
    from rewards.models import LedgerAccount

    account = LedgerAccount.objects.filter(
        kind=LedgerAccountKind.CHALLENGE_SPONSOR, owner_id=sponsor.pk
    ).first()
    return account.balance if account else 0


def challenge_terms_check(
    *, group: Group, starts_on: datetime.date, ends_on: datetime.date, target_value: int
) -> None:
    """Whether a group may set itself a challenge of this period and target now: raises
    CHALLENGE_INVALID or CHALLENGE_LIMIT_REACHED (the admin's form asks before `challenge_create`,
    which asks again under the group's lock)."""
    today = timezone.localdate()
    if (
        ends_on < starts_on
        or ends_on < today
        or starts_on < today.replace(day=1)
        or (ends_on - starts_on).days >= CHALLENGE_DAYS_MAX
        or target_value <= 0
    ):
        raise ApplicationError(CHALLENGE_INVALID)
    if TeamChallenge.objects.filter(group=group, status=ChallengeStatus.OPEN).count() >= OPEN_CHALLENGES_MAX:
        raise ApplicationError(CHALLENGE_LIMIT_REACHED, fields={"open_challenges_max": OPEN_CHALLENGES_MAX})


@transaction.atomic
def challenge_create(
    *,
    group: Group,
    title: str,
    target_kind: str,
    target_value: int,
    starts_on: datetime.date,
    ends_on: datetime.date,
    created_by: User | None = None,
    reward_kind: str = ChallengeReward.NONE,
    sponsor: ChallengeSponsor | None = None,
    coins_per_member: int = 0,
    welfare_project=None,
    donation_coins: int = 0,
    budget_coins: int = 0,
) -> TeamChallenge:
    """Sets a group a target in a period. With a reward, `budget_coins` caps what it may pay (by
    default what paying every current member, or the donation, costs)."""
    # The group's row lock: two challenges set at once count each other.
    Group.objects.select_for_update().filter(pk=group.pk).values_list("pk", flat=True).first()
    challenge_terms_check(group=group, starts_on=starts_on, ends_on=ends_on, target_value=target_value)
    if reward_kind == ChallengeReward.COINS and not budget_coins:
        budget_coins = coins_per_member * max(group.member_count, 1)
    if reward_kind == ChallengeReward.DONATION and not budget_coins:
        budget_coins = donation_coins
    return TeamChallenge.objects.create(
        group=group,
        title=title,
        target_kind=target_kind,
        target_value=target_value,
        starts_on=starts_on,
        ends_on=ends_on,
        created_by=created_by,
        reward_kind=reward_kind,
        sponsor=sponsor,
        coins_per_member=coins_per_member,
        welfare_project=welfare_project,
        donation_coins=donation_coins,
        budget_coins=budget_coins,
    )


def _member_carbon(challenge: TeamChallenge, today: datetime.date) -> list[tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            statements.CHALLENGE_MEMBER_CARBON,
            {
                "start": challenge.starts_on,
                "end": min(challenge.ends_on, today),
                "group": challenge.group_id,
                "tz": settings.TIME_ZONE,
            },
        )
        return cursor.fetchall()


@dataclass(frozen=True)
class Progress:
    value: int
    target: int
    carbon_mg: int
    active_members: int
    members: int

    @property
    def is_met(self) -> bool:
        return self.value >= self.target

    @property
    def percent(self) -> int:
        return min(100, self.value * 100 // self.target) if self.target else 0


def challenge_progress(*, challenge: TeamChallenge, today: datetime.date | None = None) -> Progress:
    """Where the group stands: grams of CO₂e reduced, or members active, against the target."""
    today = today or timezone.localdate()
    rows = _member_carbon(challenge, today) if today >= challenge.starts_on else []
    carbon_mg = sum(carbon for _user, carbon in rows)
    active = sum(1 for _user, carbon in rows if carbon > 0)
    value = carbon_mg // 1000 if challenge.target_kind == ChallengeTarget.CARBON else active
    return Progress(
        value=value,
        target=challenge.target_value,
        carbon_mg=carbon_mg,
        active_members=active,
        members=len(rows),
    )


@dataclass(frozen=True)
class Settled:
    paid_members: int
    paid_coins: int
    budget_exhausted: bool


def _pay(challenge: TeamChallenge, *, destination, coins: int, key: str):
    condition = TransferCondition(
        statement=statements.CHALLENGE_WITHIN_BUDGET,
        params={"condition_coins": coins, "condition_challenge": challenge.pk},
    )
    return coins_transfer_if(
        condition,
        source=sponsor_account(challenge.sponsor),
        destination=destination,
        amount=coins,
        kind=LedgerTransactionKind.CHALLENGE_REWARD,
        idempotency_key=key,
        reference=f"challenge:{challenge.public_id}",
    ).transaction


def _members_pay(challenge: TeamChallenge, *, today: datetime.date) -> tuple[int, bool]:
    """Pays every member who took part and is not paid yet, set-based: a fixed number of statements
    per challenge, one ledger transaction per round posted by the ledger's batch writer. Call with
    the challenge row locked (and its group's, so the members stay who they are). Returns
    (members paid, budget exhausted)."""
    coins = challenge.coins_per_member
    now = timezone.now()
    params = {
        "group": challenge.group_id,
        "challenge": challenge.pk,
        "sponsor": challenge.sponsor_id,
        "start": challenge.starts_on,
        "end": min(challenge.ends_on, today),
        "met_at": challenge.met_at,
        "tz": settings.TIME_ZONE,
        "now": now,
    }
    execute(statements.CHALLENGE_WALLETS_OPEN, params)
    eligible, sponsor_account_id, sponsor_coins = execute(statements.CHALLENGE_ACCOUNTS_LOCK, params)[0]
    affordable = min(challenge.budget_coins - challenge.paid_coins, sponsor_coins) // coins
    limit = min(eligible, affordable)
    if limit <= 0:
        return 0, eligible > 0
    # The round's payees, fixed before anything moves: capture may credit another member meanwhile.
    payees = execute(statements.CHALLENGE_PAYEES, params | {"limit": limit})
    users = [user_id for user_id, _wallet in payees]
    if not execute(statements.CHALLENGE_BUDGET_TAKE, params | {"coins": coins * len(users)}):
        return 0, True
    local_today = timezone.localdate(now)
    posting = BatchPosting(
        kind=LedgerTransactionKind.CHALLENGE_REWARD,
        reference=f"challenge:{challenge.public_id}",
        # The payout rows are the exactly-once key; a round's ledger key names how many were paid
        # before it (the challenge row is locked: no two rounds see one count).
        idempotency_key=f"challenge:{challenge.pk}:members-after:{challenge.payouts.count()}",
        counter_account_id=sponsor_account_id,
    )
    posting.legs_post(
        legs=statements.CHALLENGE_LEGS,
        params={
            "payee_wallets": [wallet for _user, wallet in payees],
            "payee_coins": coins,
            "payee_earned_on": local_today,
            "payee_expires_on": local_today + datetime.timedelta(days=coin_expiry_days()),
        },
        locked=True,
    )
    posting.counter_post()
    execute(
        statements.CHALLENGE_PAYOUTS_RECORD,
        params | {"users": users, "coins": coins, "transaction": posting.transaction_id},
    )
    return len(users), len(users) < eligible


@transaction.atomic
def challenge_settle(*, challenge_id: int, today: datetime.date | None = None) -> Settled:
    """Pays a met challenge's reward to whoever took part and is not paid yet (or its donation).

    Run when the target is met and again once the period is over (members who took part later are
    paid then). Exactly once per member: the challenge row is locked, each member has one payout
    row (unique per challenge and member). Members are paid set-based (`_members_pay`), as many as
    the budget and the sponsor's account allow, by person; when they run out, it is recorded.
    """
    today = today or timezone.localdate()
    challenge = (
        TeamChallenge.objects.select_for_update(of=("self",))
        .select_related("sponsor", "group")
        .get(pk=challenge_id)
    )
    if challenge.status != ChallengeStatus.MET or challenge.reward_kind == ChallengeReward.NONE:
        return Settled(0, 0, False)
    paid_members = paid_coins = 0
    exhausted = False
    if challenge.reward_kind == ChallengeReward.COINS:
        # Joins and leaves lock the group row: the members stay who they are until the commit.
        Group.objects.select_for_update(of=("self",)).filter(pk=challenge.group_id).values_list("pk").first()
        paid_members, exhausted = _members_pay(challenge, today=today)
        paid_coins = paid_members * challenge.coins_per_member
    elif not challenge.payouts.exists():
        coins = challenge.donation_coins
        try:
            with transaction.atomic():
                moved = _pay(
                    challenge,
                    destination=project_account_for_project(project_id=challenge.welfare_project_id),
                    coins=coins,
                    key=f"challenge:{challenge.pk}:donation",
                )
                Donation.objects.create(
                    user=None,
                    project_id=challenge.welfare_project_id,
                    transaction_id=moved.pk,
                    amount=coins,
                    donor_name=challenge.group.name[:80],
                    idempotency_key=f"challenge:{challenge.pk}",
                )
                ChallengePayout.objects.create(
                    challenge=challenge, user_id=None, user_key=0, coins=coins, transaction_id=moved.pk
                )
            paid_coins = coins
        except TransferConditionUnmet:
            exhausted = True
        except ApplicationError as error:
            if error.error != INSUFFICIENT_COINS:
                raise
            exhausted = True
    if exhausted:
        TeamChallenge.objects.filter(pk=challenge.pk, budget_exhausted_at__isnull=True).update(
            budget_exhausted_at=timezone.now()
        )
        logger.warning("challenge.budget_exhausted", extra={"challenge": challenge.pk})
    return Settled(paid_members=paid_members, paid_coins=paid_coins, budget_exhausted=exhausted)


def _met_notify(challenge: TeamChallenge) -> None:
    members = list(
        GroupMembership.objects.filter(group_id=challenge.group_id).values_list("user_id", flat=True)
    )
    notifications_raise(
        kind=NotificationKind.CHALLENGE_MET,
        user_ids=members,
        event_key=f"challenge_met:{challenge.public_id}",
        params={
            "challenge": challenge.title,
            "challenge_id": str(challenge.public_id),
            "group": challenge.group.name,
            "coins": challenge.coins_per_member if challenge.reward_kind == ChallengeReward.COINS else 0,
        },
    )


def challenges_evaluate(*, today: datetime.date | None = None) -> dict[str, int]:
    """The periodic job: marks open challenges met (telling the members) or missed, and settles
    the met ones until the day after their period (late participants are paid then), and for a day
    after they were marked met (a challenge the job marked late, after an outage, is paid too)."""
    today = today or timezone.localdate()
    met = missed = settled = 0
    for challenge in TeamChallenge.objects.filter(
        status=ChallengeStatus.OPEN, starts_on__lte=today
    ).select_related("group"):
        progress = challenge_progress(challenge=challenge, today=today)
        if progress.is_met:
            with transaction.atomic():
                if TeamChallenge.objects.filter(pk=challenge.pk, status=ChallengeStatus.OPEN).update(
                    status=ChallengeStatus.MET, met_at=timezone.now()
                ):
                    met += 1
                    _met_notify(challenge)
        elif challenge.ends_on < today:
            missed += TeamChallenge.objects.filter(pk=challenge.pk, status=ChallengeStatus.OPEN).update(
                status=ChallengeStatus.MISSED
            )
    for challenge_id in (
        TeamChallenge.objects.filter(status=ChallengeStatus.MET)
        .filter(
            Q(ends_on__gte=today - datetime.timedelta(days=1))
            | Q(met_at__gte=timezone.now() - datetime.timedelta(days=1))
        )
        .exclude(reward_kind=ChallengeReward.NONE)
        .values_list("pk", flat=True)
    ):
        challenge_settle(challenge_id=challenge_id, today=today)
        settled += 1
    return {"met": met, "missed": missed, "settled": settled}


@transaction.atomic
def challenges_merge_lock(*, source_user: User, target_user: User) -> None:
    """Locks the challenges of both people's groups and those that paid either (id order), as
    settlement locks them: a merge takes them before any wallet."""
    source, target = source_user.pk, target_user.pk
    groups = GroupMembership.objects.filter(user_id__in=[source, target]).values("group_id")
    paid = ChallengePayout.objects.filter(user_key__in=[source, target]).values("challenge_id")
    list(
        TeamChallenge.objects.select_for_update(of=("self",))
        .filter(Q(group_id__in=groups) | Q(pk__in=paid))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def challenge_payouts_merge(*, source_user: User, target_user: User) -> int:
    """Makes the source's challenge rewards the target's, so a person is paid once per challenge.

    A reward the source received for a challenge the target was not paid for becomes the target's
    (`user_key` too): a later settlement finds the merged person paid. Where both accounts were paid
    before the merge, both stay paid (a merge takes no coins back) and the target is not paid again.
    The challenges concerned are locked first (id order), as settlement locks them, so a settlement
    running meanwhile either paid the source before (and that payout moves) or sees the merged
    memberships after. Call before the groups' memberships move. Returns the payouts moved.
    """
    source, target = source_user.pk, target_user.pk
    challenges_merge_lock(source_user=source_user, target_user=target_user)
    target_paid = ChallengePayout.objects.filter(user_key=target).values("challenge_id")
    return (
        ChallengePayout.objects.filter(user_key=source)
        .exclude(challenge_id__in=target_paid)
        .update(user_id=target, user_key=target)
    )
