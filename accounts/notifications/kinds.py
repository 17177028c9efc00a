"""What each kind of notification says and opens, rendered in the reader's language at read time.

A notification stores a kind and its parameters; the title and body are these translated patterns
filled with them, so a person who switches language sees their whole inbox in the new one.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from accounts.notifications.models import NotificationKind


@dataclass(frozen=True)
class KindText:
    title: Promise
    body: Promise
    # The page the app opens, filled with the parameters like the texts.
    link: str


KINDS: dict[str, KindText] = {
    NotificationKind.COINS_EXPIRING: KindText(
        _("Coins about to expire"),
        _("%(coins)s coins expire within %(days)s days, the first on %(expires_on)s. Use or donate them."),
        "/pages/wallet/index?tab=expiring",
    ),
    NotificationKind.REVIEW_DECIDED: KindText(
        _("Your activity was reviewed"),
        _("Your activity of %(day)s was %(decision)s."),
        "/pages/activities/detail?id=%(record)s",
    ),
    NotificationKind.APPEAL_DECIDED: KindText(
        _("Your appeal was decided"),
        _("Your appeal about the activity of %(day)s was %(decision)s."),
        "/pages/activities/detail?id=%(record)s",
    ),
    NotificationKind.BADGE_EARNED: KindText(
        _("New badge"),
        _("You earned the badge “%(badge)s”."),
        "/pages/badges/index?badge=%(key)s",
    ),
    NotificationKind.COUPON_EXPIRING: KindText(
        _("Coupon about to expire"),
        _("Your coupon for “%(offer)s” expires on %(expires_on)s."),
        "/pages/coupons/detail?id=%(coupon)s",
    ),
    NotificationKind.CHALLENGE_MET: KindText(
        _("Team challenge met"),
        _("%(group)s met the challenge “%(challenge)s”. %(reward)s"),
        "/pages/groups/challenge?id=%(challenge_id)s",
    ),
    NotificationKind.MONTHLY_REPORT_READY: KindText(
        _("Your monthly report is ready"),
        _("See how much carbon you reduced in %(month)s."),
        "/pages/reports/index?period=month&start=%(start)s",
    ),
    NotificationKind.BANK_IDENTITY_JOINED: KindText(
        _("Bank account linked"),
        _("Your %(bank)s identity is now part of your carbon account."),
        "/pages/me/identities",
    ),
}

# Words inside a body that depend on the parameters, translated too.
DECISIONS = {"approved": _("approved"), "rejected": _("rejected")}


def _fill(pattern: str, params: dict) -> str:
    try:
        return pattern % params
    except (KeyError, TypeError, ValueError):
        return pattern


def _readable(kind: str, params: dict) -> dict:
    values = dict(params)
    if "decision" in values:
        values["decision"] = str(DECISIONS.get(values["decision"], values["decision"]))
    if kind == NotificationKind.BADGE_EARNED:
        from django.utils.translation import get_language

        english = (get_language() or "").startswith("en")
        values["badge"] = values.get("name_en" if english else "name") or values.get("key", "")
    if kind == NotificationKind.CHALLENGE_MET:
        coins = values.get("coins") or 0
        values["reward"] = (
            str(_("Each member who took part receives %(coins)s coins.") % {"coins": coins}) if coins else ""
        )
    return values


def render(*, kind: str, params: dict) -> tuple[str, str]:
    """(title, body) in the active language."""
    text = KINDS[kind]
    return str(text.title), _fill(str(text.body), _readable(kind, params)).strip()


def link_for(*, kind: str, params: dict) -> str:
    return _fill(KINDS[kind].link, params)
