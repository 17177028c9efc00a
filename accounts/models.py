"""Who uses the platform: people (bank users and guests), their districts and data-source consents."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class District(models.Model):
    """A district of the city: where a person lives, for district leaderboards and reports."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=64)
    name_en = models.CharField(_("English name"), max_length=64, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("district")
        verbose_name_plural = _("districts")

    def __str__(self) -> str:
        return self.name


class Language(models.TextChoices):
    """The languages people read us in (settings.LANGUAGES); the platform's own is Simplified Chinese."""

    ZH_HANS = "zh-hans", "简体中文"
    EN = "en", "English"


class User(AbstractUser):
    """A person with a carbon account: a bank user, a mini-program user or a guest (tourist).

    `public_id` is what the API shows; the integer id never leaves the server.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    nickname = models.CharField(_("nickname"), max_length=40, blank=True)
    district = models.ForeignKey(
        District, null=True, blank=True, on_delete=models.PROTECT, related_name="residents"
    )
    is_guest = models.BooleanField(
        _("guest"), default=False, help_text=_("Opened without a bank or mini-program identity.")
    )
    shows_on_leaderboards = models.BooleanField(_("shows on leaderboards"), default=True)
    # The language the person chose for what reaches them without a request (WeChat messages) and
    # for the inbox when the app sends no Accept-Language; blank: the platform's, Simplified Chinese.
    language = models.CharField(_("language"), max_length=16, choices=Language.choices, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    avatar = models.ImageField(_("avatar"), upload_to="avatars/", blank=True)
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("Set when this account was merged into another and closed."),
    )
    # A copy of the person's agreement acceptances, read with the person on every request, so that
    # checking the versions in force costs no query. Only what it lists is trusted (acceptances
    # are never withdrawn); a version it lacks is looked up in the acceptances themselves.
    accepted_agreement_ids = models.JSONField(
        _("accepted agreement versions"), default=list, blank=True, editable=False
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        verbose_name = _("person")
        verbose_name_plural = _("people")

    def __str__(self) -> str:
        return self.nickname or self.username

    @property
    def is_closed(self) -> bool:
        return self.closed_at is not None


class DataSource(models.TextChoices):
    """The sources of activity data a person authorizes one by one (PIPL: travel data is sensitive)."""

    PHONE_STEPS = "phone_steps", _("Steps from my phone")
    TRANSIT_CARD = "transit_card", _("Transit card rides")
    BANK_PAYMENTS = "bank_payments", _("Bank payments and e-bills")
    RECYCLING_STATION = "recycling_station", _("Recycling stations")
    CHARGING_OPERATOR = "charging_operator", _("EV charging operators")
    SHARED_MOBILITY = "shared_mobility", _("Shared bicycles")
    ONLINE_SERVICES = "online_services", _("Online services (take-out, bookings, e-invoices)")
    CHARITY = "charity", _("Donation stations (old clothes)")


class DataSourceAuthorization(models.Model):
    """One grant of one data source by one person; revoking closes it, the row stays as history."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="data_source_authorizations")
    source = models.CharField(max_length=32, choices=DataSource.choices)
    granted_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "source"],
                condition=Q(revoked_at__isnull=True),
                name="one_active_authorization_per_source",
            ),
        ]
        indexes = [models.Index(fields=["source", "user"], name="authorization_source_user")]
        verbose_name = _("data source authorization")
        verbose_name_plural = _("data source authorizations")

    def __str__(self) -> str:
        return f"{self.user_id}:{self.source}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AgreementKind(models.TextChoices):
    USER_AGREEMENT = "user_agreement", _("User agreement")
    PRIVACY_POLICY = "privacy_policy", _("Privacy policy")
    # Optional: allowing one's verified reductions to be pooled into lots and sold on a carbon
    # exchange. Its text says what happens to the proceeds; it is granted and revoked on its own
    # (`PoolingConsent`), never required to use the platform.
    POOLING_CONSENT = "pooling_consent", _("Pooling and sale of my reductions")


# The kinds everyone must accept before their writes are accepted.
REQUIRED_AGREEMENT_KINDS = (AgreementKind.USER_AGREEMENT, AgreementKind.PRIVACY_POLICY)


class Agreement(models.Model):
    """One published version of the user agreement or the privacy policy.

    The current version of a kind is the latest one whose `effective_at` has passed; a person must
    have accepted the current version of every kind before their writes are accepted.
    """

    kind = models.CharField(max_length=32, choices=AgreementKind.choices)
    version = models.CharField(max_length=32)
    title = models.CharField(_("title"), max_length=200)
    url = models.URLField(_("text URL"), blank=True)
    summary = models.TextField(_("what changed"), blank=True)
    effective_at = models.DateTimeField(_("effective from"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "-effective_at"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "version"], name="one_agreement_per_kind_version"),
        ]
        verbose_name = _("agreement version")
        verbose_name_plural = _("agreement versions")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.version}"


class AgreementAcceptance(models.Model):
    """A person accepted one version of one agreement. Never edited: it is evidence."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="agreement_acceptances")
    agreement = models.ForeignKey(Agreement, on_delete=models.PROTECT, related_name="acceptances")
    accepted_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "agreement"], name="one_acceptance_per_agreement"),
        ]
        verbose_name = _("agreement acceptance")
        verbose_name_plural = _("agreement acceptances")

    def __str__(self) -> str:
        return f"{self.user_id}:{self.agreement_id}"


class PoolingConsent(models.Model):
    """A person allows their verified reductions to be pooled into lots sold on a carbon exchange.

    Separate from the agreements everyone accepts: without an active consent none of the person's
    grams enters a lot. Revoking closes the row (it stays as history) and keeps the person out of
    every lot allocated from then on; what was already pooled stays pooled. `agreement` is the
    version of the pooling text (kind `pooling_consent`) the person was shown.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="pooling_consents")
    agreement = models.ForeignKey(Agreement, on_delete=models.PROTECT, related_name="+")
    granted_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=Q(revoked_at__isnull=True), name="one_active_pooling_consent"
            ),
        ]
        verbose_name = _("pooling consent")
        verbose_name_plural = _("pooling consents")

    def __str__(self) -> str:
        return f"{self.user_id}:{self.agreement_id}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Device(models.Model):
    """A device that opened a guest account. Only a keyed hash of the app's device id is kept."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="devices")
    # `<algorithm>:<key id>:<digest>` (core/crypto/blind_index.py).
    device_digest = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        verbose_name = _("device")
        verbose_name_plural = _("devices")

    def __str__(self) -> str:
        return f"{self.user_id}:{self.device_digest[-8:]}"


class PersonalDetails(models.Model):
    """What a bank vouched for: phone number and ID number, encrypted, each with a keyed blind index.

    The ciphertexts can't be searched, so lookups go through the HMAC digests; masked forms are
    derived on the fly and are the only thing the API, logs and admin ever show.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="personal_details")
    phone_number_ciphertext = models.TextField(blank=True)
    phone_number_digest = models.CharField(max_length=100, blank=True, db_index=True)
    id_number_ciphertext = models.TextField(blank=True)
    id_number_digest = models.CharField(max_length=100, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            # One ID number is one person: a bank identity whose bank verified an ID number that an
            # account holds joins that account (`accounts.services.bank_identity_join`). The unique
            # index also decides between two first sign-ins through two banks at once.
            models.UniqueConstraint(
                fields=["id_number_digest"],
                condition=~Q(id_number_digest=""),
                name="one_account_per_id_number",
            ),
        ]
        verbose_name = _("verified personal details")
        verbose_name_plural = _("verified personal details")

    def __str__(self) -> str:
        return f"{self.user_id}"


class IdentityJoin(models.Model):
    """A bank identity that joined an existing account at its first sign-in: its bank verified the
    ID number that account holds (the blind index, never anything weaker). The audit of one person
    across banks; the person is told until they have seen it (`seen_at`)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="identity_joins")
    provider = models.CharField(_("bank"), max_length=200)
    identity = models.ForeignKey(
        "socialaccount.SocialAccount", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    joined_at = models.DateTimeField(_("joined at"))
    seen_at = models.DateTimeField(_("seen by the person at"), null=True, blank=True)

    class Meta:
        ordering = ["-joined_at", "-id"]
        verbose_name = _("identity joined by ID number")
        verbose_name_plural = _("identities joined by ID number")

    def __str__(self) -> str:
        return f"{self.provider}→{self.user_id}"


class InviteCode(models.Model):
    """A person's own friend-invite code, shared as a code or a link."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="invite_code")
    code = models.CharField(max_length=16, unique=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("invite code")
        verbose_name_plural = _("invite codes")

    def __str__(self) -> str:
        return self.code


class Friendship(models.Model):
    """One direction of a friendship; services always write both directions together."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="friendships")
    friend = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "friend"], name="one_friendship_per_pair"),
            models.CheckConstraint(condition=~Q(user=models.F("friend")), name="no_friendship_with_self"),
        ]
        verbose_name = _("friendship")
        verbose_name_plural = _("friendships")

    def __str__(self) -> str:
        return f"{self.user_id}->{self.friend_id}"


class PersonSession(AbstractBaseSession):
    """A session (the app's session token, the admin's and console's cookie), with the person it signed
    in, indexed: closing an account (erasure, a merge) ends that person's sessions by it, rather
    than leaving until they expire rows that hold the bank subject or WeChat openid they signed in with.
    """

    user_id = models.BigIntegerField(null=True, db_index=True)

    class Meta:
        verbose_name = _("session")
        verbose_name_plural = _("sessions")

    @classmethod
    def get_session_store_class(cls):
        from accounts.sessions import SessionStore

        return SessionStore


from accounts.notifications.models import (  # noqa: E402, F401 - the app's models, beside their services
    Notification,
    NotificationChannel,
    NotificationKind,
    NotificationPreference,
    PushStatus,
    QuietHours,
    WeChatPush,
    WeChatSubscription,
    WeChatSubscriptionReport,
    WeChatTemplate,
)
