"""Groups (residential communities, employers, schools, open teams), their boards and team challenges.

A package of rewards, like gamification: the boards are ranked from activities' `DailyCarbon`, and
a challenge's reward moves through the ledger. Imported by `rewards.models` so the app owns them.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

# Letters and digits that cannot be misread (no 0/O, 1/I/L).
INVITE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
INVITE_CODE_LENGTH = 8


def new_invite_code() -> str:
    return "".join(secrets.choice(INVITE_ALPHABET) for _ in range(INVITE_CODE_LENGTH))


class GroupKind(models.TextChoices):
    COMMUNITY = "community", _("Residential community")
    EMPLOYER = "employer", _("Employer")
    SCHOOL = "school", _("School")
    TEAM = "team", _("Open team")


class GroupStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for verification")
    ACTIVE = "active", _("Active")
    REJECTED = "rejected", _("Rejected")
    CLOSED = "closed", _("Closed")


class Group(models.Model):
    """A group people join by invite code. Teams are active at once; the other kinds after an
    operator verified the application (`verification_note` says what was checked)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(_("kind"), max_length=16, choices=GroupKind.choices)
    name = models.CharField(_("name"), max_length=60)
    description = models.CharField(_("description"), max_length=300, blank=True)
    district = models.ForeignKey(
        "accounts.District", null=True, blank=True, on_delete=models.PROTECT, related_name="groups"
    )
    status = models.CharField(_("status"), max_length=16, choices=GroupStatus.choices)
    invite_code = models.CharField(max_length=16, unique=True, default=new_invite_code)
    # Applications: who applies for a verified kind and with what proof (licence number, letter …).
    applicant_name = models.CharField(_("applicant's organisation"), max_length=120, blank=True)
    applicant_proof = models.CharField(_("proof given"), max_length=300, blank=True)
    verification_note = models.CharField(_("verification note"), max_length=300, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A cache of the active memberships (kept by the services with F()), for the boards and limits.
    member_count = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(member_count__gte=0), name="group_member_count_never_negative"
            ),
            models.CheckConstraint(
                condition=Q(kind="team") | ~Q(status="active") | Q(verified_at__isnull=False),
                name="group_verified_before_active",
            ),
        ]
        verbose_name = _("group")
        verbose_name_plural = _("groups")

    def __str__(self) -> str:
        return self.name


class GroupRole(models.TextChoices):
    OWNER = "owner", _("Owner")
    ADMIN = "admin", _("Admin")
    MEMBER = "member", _("Member")


class GroupMembership(models.Model):
    """A person in a group; at most one owner per group (a partial unique index)."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="group_memberships"
    )
    role = models.CharField(max_length=16, choices=GroupRole.choices, default=GroupRole.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "user"], name="one_membership_per_group"),
            models.UniqueConstraint(fields=["group"], condition=Q(role="owner"), name="one_owner_per_group"),
        ]
        indexes = [models.Index(fields=["user"], name="membership_by_person")]
        verbose_name = _("group membership")
        verbose_name_plural = _("group memberships")

    def __str__(self) -> str:
        return f"{self.user_id} in {self.group_id} ({self.role})"


class GroupBoardBuild(models.Model):
    """One build of the group boards of a period (as `LeaderboardBuild` for people)."""

    period = models.CharField(max_length=16)
    period_start = models.DateField()
    through_day = models.DateField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    groups = models.IntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["period", "period_start", "-id"], name="group_board_latest")]

    def __str__(self) -> str:
        return f"{self.period} {self.period_start} #{self.pk}"


class GroupBoardEntry(models.Model):
    """A group's place on a build: carbon reduced per member, ranked city-wide and in its district."""

    build_id = models.BigIntegerField()
    group_id = models.BigIntegerField()
    district_id = models.BigIntegerField(null=True)
    members = models.IntegerField()
    carbon_mg = models.BigIntegerField()
    carbon_per_member_mg = models.BigIntegerField()
    city_rank = models.BigIntegerField()
    district_rank = models.BigIntegerField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["build_id", "group_id"], name="group_board_group")]
        indexes = [
            models.Index(fields=["build_id", "city_rank"], name="group_board_city"),
            models.Index(fields=["build_id", "district_id", "district_rank"], name="group_board_district"),
        ]

    def __str__(self) -> str:
        return f"#{self.city_rank} group {self.group_id}"


class GroupMemberBoardEntry(models.Model):
    """A member's place within their group on a build."""

    build_id = models.BigIntegerField()
    group_id = models.BigIntegerField()
    user_id = models.BigIntegerField()
    carbon_mg = models.BigIntegerField()
    rank = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["build_id", "group_id", "user_id"], name="group_member_board_person"
            )
        ]
        indexes = [models.Index(fields=["build_id", "group_id", "rank"], name="group_member_board_rank")]

    def __str__(self) -> str:
        return f"#{self.rank} {self.user_id} in {self.group_id}"


class ChallengeSponsor(models.Model):
    """Who pays a challenge's rewards: an operator budget or a merchant. Its ledger account (kind
    `challenge_sponsor`, owner this row) is funded through the ledger; its balance is the budget."""

    name = models.CharField(_("name"), max_length=120)
    # A merchant's id when a merchant sponsors (rewards does not import merchants).
    merchant_id = models.BigIntegerField(_("merchant id"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("challenge sponsor")
        verbose_name_plural = _("challenge sponsors")

    def __str__(self) -> str:
        return self.name


class ChallengeTarget(models.TextChoices):
    CARBON = "carbon", _("Carbon reduced by the group (grams)")
    ACTIVE_MEMBERS = "active_members", _("Members active in the period")


class ChallengeReward(models.TextChoices):
    NONE = "none", _("No reward")
    COINS = "coins", _("Coins to each member who took part")
    DONATION = "donation", _("A pooled donation to a welfare project")


class ChallengeStatus(models.TextChoices):
    OPEN = "open", _("Open")
    MET = "met", _("Met")
    MISSED = "missed", _("Missed")
    CANCELLED = "cancelled", _("Cancelled")


class TeamChallenge(models.Model):
    """A target for a group in a period, and what its sponsor pays when the group meets it.

    `budget_coins` caps what the challenge may pay; `paid_coins` counts what it paid, raised only by
    a conditional UPDATE in the same statement as each ledger transfer (never above the budget).
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="challenges")
    title = models.CharField(_("title"), max_length=80)
    target_kind = models.CharField(_("target"), max_length=16, choices=ChallengeTarget.choices)
    target_value = models.BigIntegerField(_("target value"))
    starts_on = models.DateField(_("first day"))
    ends_on = models.DateField(_("last day"))
    reward_kind = models.CharField(
        _("reward"), max_length=16, choices=ChallengeReward.choices, default=ChallengeReward.NONE
    )
    sponsor = models.ForeignKey(
        ChallengeSponsor, null=True, blank=True, on_delete=models.PROTECT, related_name="challenges"
    )
    coins_per_member = models.BigIntegerField(_("coins per member"), default=0)
    welfare_project = models.ForeignKey(
        "rewards.WelfareProject", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    donation_coins = models.BigIntegerField(_("donated coins"), default=0)
    budget_coins = models.BigIntegerField(_("budget in coins"), default=0)
    paid_coins = models.BigIntegerField(default=0, editable=False)
    status = models.CharField(max_length=16, choices=ChallengeStatus.choices, default=ChallengeStatus.OPEN)
    met_at = models.DateTimeField(null=True, blank=True)
    # Set when a reward could not be paid in full (the sponsor's account or the budget ran out).
    budget_exhausted_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_on", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(target_value__gt=0), name="challenge_target_positive"),
            models.CheckConstraint(condition=Q(ends_on__gte=models.F("starts_on")), name="challenge_period"),
            models.CheckConstraint(
                condition=Q(paid_coins__gte=0, paid_coins__lte=models.F("budget_coins")),
                name="challenge_paid_within_budget",
            ),
            models.CheckConstraint(
                condition=Q(reward_kind="none")
                | Q(reward_kind="coins", sponsor__isnull=False, coins_per_member__gt=0)
                | Q(
                    reward_kind="donation",
                    sponsor__isnull=False,
                    welfare_project__isnull=False,
                    donation_coins__gt=0,
                ),
                name="challenge_reward_complete",
            ),
        ]
        indexes = [models.Index(fields=["status", "ends_on"], name="challenge_open")]
        verbose_name = _("team challenge")
        verbose_name_plural = _("team challenges")

    def __str__(self) -> str:
        return self.title


class ChallengePayout(models.Model):
    """A member's reward for a challenge: one row per member and challenge (paid once: the unique
    key), and the ledger transaction that paid it (a round of members shares one). The pooled
    donation is the row without a person."""

    challenge = models.ForeignKey(TeamChallenge, on_delete=models.PROTECT, related_name="payouts")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept when the person is erased (user becomes null): the payment stays paid once.
    user_key = models.BigIntegerField()
    coins = models.BigIntegerField()
    # One ledger transaction pays a round of members (set-based): many payouts, one transaction.
    transaction = models.ForeignKey(
        "rewards.LedgerTransaction", on_delete=models.PROTECT, related_name="challenge_payouts"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["challenge", "user_key"], name="one_payout_per_member"),
            models.CheckConstraint(condition=Q(coins__gt=0), name="payout_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.coins} → {self.user_key} ({self.challenge_id})"
