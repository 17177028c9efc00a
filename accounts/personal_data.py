"""The accounts app's part of a person's rights: export, erasure and merge of what it holds."""

from __future__ import annotations

from typing import Any

from allauth.socialaccount.models import SocialAccount
from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.utils import timezone

from accounts import crypto
from accounts.masking import mask_identifier
from accounts.models import (
    AgreementAcceptance,
    DataSourceAuthorization,
    Device,
    Friendship,
    IdentityJoin,
    InviteCode,
    PersonalDetails,
    PoolingConsent,
    User,
)
from accounts.selectors import (
    WECHAT_PROVIDER_ID,
    verified_details_masked,
)
from accounts.services.agreements import accepted_agreements_copy_refresh
from accounts.services.profile import delete_file_after_commit
from core.api.serializers import local_datetime_text


def _iso(value) -> str | None:
    return local_datetime_text(value) if value else None


def personal_data_export(*, user: User) -> dict[str, Any]:
    """Profile, consents, identities, devices and friends. Identifiers are masked, as everywhere."""
    return {
        "profile": {
            "public_id": str(user.public_id),
            "nickname": user.nickname,
            "district": user.district.code if user.district_id else None,
            "is_guest": user.is_guest,
            "shows_on_leaderboards": user.shows_on_leaderboards,
            "has_avatar": bool(user.avatar),
            "joined_at": _iso(user.date_joined),
            "last_sign_in_at": _iso(user.last_login),
        },
        "verified_details": verified_details_masked(user=user),
        "agreements_accepted": [
            {
                "kind": acceptance.agreement.kind,
                "version": acceptance.agreement.version,
                "accepted_at": _iso(acceptance.accepted_at),
            }
            for acceptance in AgreementAcceptance.objects.filter(user=user)
            .select_related("agreement")
            .order_by("accepted_at", "id")
        ],
        "data_source_authorizations": [
            {
                "source": authorization.source,
                "granted_at": _iso(authorization.granted_at),
                "revoked_at": _iso(authorization.revoked_at),
            }
            for authorization in DataSourceAuthorization.objects.filter(user=user).order_by(
                "granted_at", "id"
            )
        ],
        "identities": [
            {
                "provider": account.provider,
                "account": mask_identifier(account.uid),
                "linked_at": _iso(account.date_joined),
                "last_sign_in_at": _iso(account.last_login),
            }
            for account in SocialAccount.objects.filter(user=user).order_by("date_joined", "id")
        ],
        "identities_joined_by_id_number": [
            {"provider": join.provider, "joined_at": _iso(join.joined_at), "seen_at": _iso(join.seen_at)}
            for join in IdentityJoin.objects.filter(user=user).order_by("joined_at", "id")
        ],
        "devices": [
            {"first_seen_at": _iso(device.created_at), "last_seen_at": _iso(device.last_seen_at)}
            for device in Device.objects.filter(user=user).order_by("created_at", "id")
        ],
        "friends": [
            {"public_id": str(friend.public_id), "nickname": friend.nickname}
            for friend in User.objects.filter(
                pk__in=Friendship.objects.filter(user=user).values("friend_id")
            ).order_by("id")
        ],
        "invite_code": InviteCode.objects.filter(user=user).values_list("code", flat=True).first(),
        "pooling_consents": [
            {
                "version": consent.agreement.version,
                "granted_at": _iso(consent.granted_at),
                "revoked_at": _iso(consent.revoked_at),
            }
            for consent in PoolingConsent.objects.filter(user=user)
            .select_related("agreement")
            .order_by("granted_at", "id")
        ],
        **_notifications_export(user),
    }


def personal_data_erase(*, user: User) -> None:
    from accounts.services import erase_accounts_data

    erase_accounts_data(user=user)
    _notifications_erase(user)


def _notifications_export(user: User) -> dict[str, Any]:
    from accounts.notifications.models import Notification, NotificationPreference, QuietHours

    quiet = QuietHours.objects.filter(user=user).first()
    return {
        "notifications": [
            {"kind": kind, "params": params, "at": _iso(created_at), "read_at": _iso(read_at)}
            for kind, params, created_at, read_at in Notification.objects.filter(user=user)
            .order_by("id")
            .values_list("kind", "params", "created_at", "read_at")
        ],
        "notification_preferences": [
            {"kind": kind, "channel": channel, "is_enabled": enabled}
            for kind, channel, enabled in NotificationPreference.objects.filter(user=user)
            .order_by("id")
            .values_list("kind", "channel", "is_enabled")
        ],
        "quiet_hours": {"starts_at": quiet.starts_at.isoformat(), "ends_at": quiet.ends_at.isoformat()}
        if quiet
        else None,
    }


def _notifications_erase(user: User) -> None:
    """The inbox, preferences, quiet hours and WeChat grants go (pushes go with their notifications)."""
    from accounts.notifications.models import (
        Notification,
        NotificationPreference,
        QuietHours,
        WeChatSubscription,
        WeChatSubscriptionReport,
    )

    Notification.objects.filter(user=user).delete()
    NotificationPreference.objects.filter(user=user).delete()
    QuietHours.objects.filter(user=user).delete()
    WeChatSubscription.objects.filter(user=user).delete()
    WeChatSubscriptionReport.objects.filter(user=user).delete()


def _notifications_merge(source: User, target: User, *, grants_move: bool) -> None:
    """The inbox, preferences, quiet hours and WeChat grants of a merged account move to the target.

    - Notifications move with their pushes (a pending one is sent to the merged person). An event both
      were told of is kept once, the target's, read if either copy was.
    - Preferences: the target's explicit choices win; the source's fill the kinds and channels the
      target never chose. Quiet hours: the target's, else the source's.
    - WeChat grants belong to the WeChat identity that gave them: when the source's identity becomes
      the target's (`grants_move`: the target had none), its grants add to the target's per template;
      otherwise they were the other openid's and go. Reports' keys move, so a retried report still
      counts once.
    """
    from accounts.notifications.models import (
        Notification,
        NotificationPreference,
        QuietHours,
        WeChatSubscription,
        WeChatSubscriptionReport,
    )

    told = Notification.objects.filter(user=target).values("event_key")
    Notification.objects.filter(user=target, read_at__isnull=True).filter(
        event_key__in=Notification.objects.filter(user=source, read_at__isnull=False).values("event_key")
    ).update(read_at=timezone.now())
    Notification.objects.filter(user=source).exclude(event_key__in=told).update(user=target)
    Notification.objects.filter(user=source).delete()

    chosen = NotificationPreference.objects.filter(
        user=target, kind=OuterRef("kind"), channel=OuterRef("channel")
    )
    NotificationPreference.objects.filter(user=source).exclude(Exists(chosen)).update(user=target)
    NotificationPreference.objects.filter(user=source).delete()
    if not QuietHours.objects.filter(user=target).exists():
        QuietHours.objects.filter(user=source).update(user=target)
    QuietHours.objects.filter(user=source).delete()

    if grants_move:
        source_grant = WeChatSubscription.objects.filter(user=source, template_id=OuterRef("template_id"))
        WeChatSubscription.objects.filter(user=target).filter(Exists(source_grant)).update(
            remaining=F("remaining") + Subquery(source_grant.values("remaining")[:1]),
            updated_at=timezone.now(),
        )
        held = WeChatSubscription.objects.filter(user=target).values("template_id")
        WeChatSubscription.objects.filter(user=source).exclude(template_id__in=held).update(user=target)
    WeChatSubscription.objects.filter(user=source).delete()
    reported = WeChatSubscriptionReport.objects.filter(user=target).values("idempotency_key")
    WeChatSubscriptionReport.objects.filter(user=source).exclude(idempotency_key__in=reported).update(
        user=target
    )
    WeChatSubscriptionReport.objects.filter(user=source).delete()


def accounts_merge(*, source_user: User, target_user: User) -> None:
    """Moves the source's identities, devices, consents, friends and notifications to the target."""
    now = timezone.now()
    source, target = source_user, target_user
    target_has_wechat = SocialAccount.objects.filter(user=target, provider=WECHAT_PROVIDER_ID).exists()
    _notifications_merge(source, target, grants_move=not target_has_wechat)

    # Identities: all move, except a second WeChat identity (an account has at most one).
    if target_has_wechat:
        SocialAccount.objects.filter(user=source, provider=WECHAT_PROVIDER_ID).delete()
    SocialAccount.objects.filter(user=source).update(user=target)
    IdentityJoin.objects.filter(user=source).update(user=target)
    Device.objects.filter(user=source).update(user=target)

    # Bank-verified details: the target keeps its own, and takes the source's for a field it lacks
    # (above all the ID number, which joins one person across banks); otherwise it takes the row.
    target_details = PersonalDetails.objects.filter(user=target).first()
    source_details = PersonalDetails.objects.filter(user=source).first()
    if target_details is None:
        PersonalDetails.objects.filter(user=source).update(user=target)
    elif source_details is not None:
        values: dict[str, str] = {}
        for field in ("phone_number", "id_number"):
            ciphertext = getattr(source_details, f"{field}_ciphertext")
            if getattr(target_details, f"{field}_ciphertext") or not ciphertext:
                continue
            # Sealed for its row: opened under the source row's context, sealed anew for the target's.
            plaintext = crypto.decrypt(
                ciphertext, context=crypto.personal_details_context(field, source_details.pk)
            )
            if plaintext is None:
                continue
            values[f"{field}_ciphertext"] = crypto.encrypt(
                plaintext, context=crypto.personal_details_context(field, target_details.pk)
            )
            values[f"{field}_digest"] = getattr(source_details, f"{field}_digest")
        source_details.delete()  # first: the ID number's digest is unique
        if values:
            PersonalDetails.objects.filter(pk=target_details.pk).update(updated_at=now, **values)

    # Agreements: acceptances the target lacks move; duplicates stay with the closed source.
    target_agreements = AgreementAcceptance.objects.filter(user=target).values("agreement_id")
    AgreementAcceptance.objects.filter(user=source).exclude(agreement_id__in=target_agreements).update(
        user=target
    )
    accepted_agreements_copy_refresh(user=source)
    accepted_agreements_copy_refresh(user=target)

    # Data sources: a grant active on both is kept once (the target's); history moves.
    target_active = DataSourceAuthorization.objects.filter(user=target, revoked_at__isnull=True).values(
        "source"
    )
    DataSourceAuthorization.objects.filter(
        user=source, revoked_at__isnull=True, source__in=target_active
    ).update(revoked_at=now)
    DataSourceAuthorization.objects.filter(user=source).update(user=target)

    # The pooling consent, as the data sources: one stays active (the target's when both are), so
    # the lots allocated from now on pool the person once; the history moves.
    if PoolingConsent.objects.filter(user=target, revoked_at__isnull=True).exists():
        PoolingConsent.objects.filter(user=source, revoked_at__isnull=True).update(revoked_at=now)
    PoolingConsent.objects.filter(user=source).update(user=target)

    # Friends: each friend of the source becomes a friend of the target (both directions),
    # except the target itself; the source's invite code goes away.
    friend_ids = set(
        Friendship.objects.filter(user=source).exclude(friend=target).values_list("friend_id", flat=True)
    )
    Friendship.objects.filter(Q(user=source) | Q(friend=source)).delete()
    Friendship.objects.bulk_create(
        [Friendship(user=target, friend_id=friend_id, created_at=now) for friend_id in friend_ids]
        + [Friendship(user_id=friend_id, friend=target, created_at=now) for friend_id in friend_ids],
        ignore_conflicts=True,
    )
    InviteCode.objects.filter(user=source).delete()

    # Profile: what the target lacks, the source supplies.
    changed = []
    for field in ("nickname", "district", "avatar", "language"):
        if not getattr(target, field) and getattr(source, field):
            setattr(target, field, getattr(source, field))
            changed.append(field)
    if source.avatar and "avatar" not in changed:
        delete_file_after_commit(source.avatar.name)
    if target.is_guest and not source.is_guest:
        target.is_guest = False
        changed.append("is_guest")
    if changed:
        target.save(update_fields=changed)
    source.nickname, source.district, source.avatar = "", None, ""
    source.save(update_fields=["nickname", "district", "avatar"])
