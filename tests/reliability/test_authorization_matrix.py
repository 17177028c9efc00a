"""The authorization matrix, generated from the URL conf: every API route that takes an object id is
tried by a person, a guest, another merchant's clerk and a partner against someone else's object —
always 401/403/404, never the object's data. A route added without an entry here fails the test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from allauth.socialaccount.models import SocialAccount
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.notifications.models import Notification, NotificationKind
from accounts.notifications.services import notification_raise
from accounts.services import friendship_accept, invite_code_get_or_create
from activities.models import ActivityRecord, PartnerCustomerLink
from merchants.models import MerchantStaff
from merchants.services import offer_redeem
from rewards.groups.challenges import challenge_create
from rewards.groups.models import ChallengeTarget, GroupKind
from rewards.groups.services import group_create, group_join
from rewards.models import LedgerEntry
from rewards.services import donation_make, wallet_account_for_user
from tests.accounts.factories import GuestFactory, UserFactory
from tests.activities.conftest import signed_headers
from tests.merchants.factories import MerchantFactory, OfferFactory, StaffFactory
from tests.reliability.conftest import FIGURES, count_response
from tests.reliability.world import build_world
from tests.rewards.factories import WelfareProjectFactory, fund_wallet

pytestmark = pytest.mark.django_db


@dataclass
class Victims:
    """Someone else's objects, one of each kind an id in a route can point to."""

    ids: dict[str, str]
    secrets: list[str]  # strings that must never appear in an attacker's response


@dataclass(frozen=True)
class Entry:
    # Fills the route's path parameters with the victim's object; None: the route is not owned by anyone.
    parameters: Callable[[Victims], dict[str, str]] | None
    reason: str = ""
    # A valid body, so that a refusal is about whose object it is, not about the input.
    body: dict | None = None


def _owned(**names: str) -> Callable[[Victims], dict[str, str]]:
    return lambda victims: {parameter: victims.ids[name] for parameter, name in names.items()}


# Every route under /api/v1/ with a path parameter, by URL name. A new one must be added here.
MATRIX: dict[str, Entry] = {
    "me-identity": Entry(_owned(identity_id="identity")),
    "me-data-source": Entry(None, "a data source code of the caller's own account, not an object"),
    "friend-invitation": Entry(
        (), None, "an invite code is shared on purpose: it shows the inviter's nickname"
    ),
    "friend": Entry(_owned(public_id="friend")),
    "activities-record": Entry(_owned(record_id="record")),
    "activities-record-appeal": Entry(_owned(record_id="record"), body={"note": "Mine."}),
    "activities-partner-link": Entry(_owned(link_id="partner_link")),
    "wallet-history-entry": Entry(_owned(entry_id="entry")),
    "welfare-project": Entry(None, "projects are public"),
    "welfare-project-donate": Entry(None, "anyone may donate to a public project"),
    "welfare-donation": Entry(_owned(donation_id="donation")),
    "welfare-donation-certificate": Entry(_owned(donation_id="donation")),
    "catalog-offer": Entry(None, "the catalog is public"),
    "catalog-offer-redeem": Entry(None, "anyone may redeem a live offer"),
    "coupon": Entry(_owned(coupon_id="coupon")),
    "coupon-token": Entry(_owned(coupon_id="coupon")),
    "coupon-qr": Entry(_owned(coupon_id="coupon")),
    "merchant-staff-member": Entry(_owned(staff_id="staff"), body={"role": "owner"}),
    "merchant-offer": Entry(_owned(offer_id="offer"), body={"title": "Taken over"}),
    "merchant-offer-image": Entry(_owned(offer_id="offer")),
    "merchant-offer-submit": Entry(_owned(offer_id="offer")),
    "merchant-offer-pause": Entry(_owned(offer_id="offer")),
    "merchant-offer-resume": Entry(_owned(offer_id="offer")),
    "merchant-offer-end": Entry(_owned(offer_id="offer")),
    "merchant-statement": Entry(None, "a month of the caller's own merchant: covered by tests/merchants"),
    "leaderboard": Entry(None, "a period code of a public board, not an object"),
    "report": Entry(None, "a period of the caller's own report: no one else's id can be named"),
    "report-card": Entry(None, "a period of the caller's own report card: no one else's id can be named"),
    "credit-profile-consent": Entry(None, "a partner code of the caller's own consent, not an object"),
    "platform-merchant-statements": Entry(lambda victims: {"month": "2026-11"}),
    "notification-read": Entry(_owned(notification_id="notification")),
    "group": Entry(_owned(group_id="group"), body={"name": "Taken over"}),
    "group-invite": Entry(_owned(group_id="group")),
    "group-invite-qr": Entry(_owned(group_id="group")),
    "group-members": Entry(_owned(group_id="group")),
    "group-member": Entry(_owned(group_id="group", member_id="group_member"), body={"role": "admin"}),
    "group-leaderboard": Entry(_owned(group_id="group")),
    "group-challenges": Entry(_owned(group_id="group")),
    "group-challenge": Entry(_owned(group_id="group", challenge_id="challenge")),
    "registry-lot-proof": Entry(None, "lots are public; the proof is always of the caller's own share"),
}


def _routes_with_parameters() -> dict[str, tuple[str, tuple[str, ...]]]:
    """URL name → (route, the HTTP methods its view answers), for every /api/v1/ route with a parameter."""
    found: dict[str, tuple[str, tuple[str, ...]]] = {}

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/v1/") and "<" in route:
                view = pattern.callback.view_class
                methods = tuple(m for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m))
                found[pattern.name] = ("/" + route, methods)

    walk(get_resolver().url_patterns, "")
    return found


ROUTES = _routes_with_parameters()


def test_every_route_that_takes_an_id_has_an_entry_in_the_matrix():
    assert set(ROUTES) - set(MATRIX) == set(), "add the new routes to MATRIX"
    assert set(MATRIX) - set(ROUTES) == set(), "routes in MATRIX that no longer exist"


def _path(name: str, parameters: dict[str, str]) -> str:
    path = ROUTES[name][0]
    for key, value in parameters.items():
        path = path.replace(f"<{key}>", value)
        for converter in ("int", "uuid", "str", "slug", "path"):
            path = path.replace(f"<{converter}:{key}>", value)
    assert "<" not in path, path
    return path


@pytest.fixture
def victims(client_for) -> Victims:
    world = build_world()
    person = world.person
    friend = UserFactory()
    friendship_accept(user=friend, code=invite_code_get_or_create(user=person).code)
    identity = SocialAccount.objects.create(user=person, provider="weixin", uid="victim-openid")
    project = WelfareProjectFactory()
    fund_wallet(person, 100)
    donation = donation_make(user=person, project=project, amount=3, idempotency_key="victim-donation")
    merchant = MerchantFactory(name="Victim Tea House")
    owner = StaffFactory(merchant=merchant, role=MerchantStaff.Role.OWNER)
    clerk = StaffFactory(merchant=merchant, role=MerchantStaff.Role.CLERK)
    offer = OfferFactory(merchant=merchant, title="Victim's secret offer", description="victim-description")
    coupon = offer_redeem(user=person, offer_public_id=offer.public_id).coupon
    entry = LedgerEntry.objects.filter(account=wallet_account_for_user(user_id=person.pk)).latest("id")
    record = ActivityRecord.objects.filter(user=person).latest("id")
    link = PartnerCustomerLink.objects.get(user=person)
    group = group_create(user=person, kind=GroupKind.TEAM, name="Victim's secret team")
    group_member = UserFactory()
    group_join(user=group_member, invite_code=group.invite_code)
    challenge = challenge_create(
        group=group,
        title="Victim's secret challenge",
        target_kind=ChallengeTarget.CARBON,
        target_value=1000,
        starts_on=timezone.localdate(),
        ends_on=timezone.localdate(),
    )
    notification_raise(
        user_id=person.pk,
        kind=NotificationKind.BADGE_EARNED,
        event_key="victim-badge",
        params={"key": "walk"},
    )
    return Victims(
        ids={
            "identity": str(identity.pk),
            "friend": str(friend.public_id),
            "record": str(record.pk),
            "partner_link": str(link.pk),
            "entry": str(entry.pk),
            "donation": str(donation.public_id),
            "coupon": str(coupon.public_id),
            "staff": str(clerk.public_id),
            "offer": str(offer.public_id),
            "owner": str(owner.public_id),
            "group": str(group.public_id),
            "group_member": str(group_member.public_id),
            "challenge": str(challenge.public_id),
            "notification": str(Notification.objects.get(user=person, event_key="victim-badge").public_id),
        },
        secrets=[
            str(person.public_id),
            str(friend.public_id),
            "victim-openid",
            str(donation.public_id),
            coupon.code,
            str(coupon.public_id),
            "Victim's secret offer",
            "victim-description",
            link.customer_reference,
            record.external_id,
            "Victim's secret team",
            "Victim's secret challenge",
            group.invite_code,
        ],
    )


def _attackers(client_for, victims) -> dict[str, APIClient]:
    from tests.reliability.world import transit_partner

    other_merchant = MerchantFactory(name="Rival Noodles")
    clerk = StaffFactory(merchant=other_merchant, role=MerchantStaff.Role.CLERK).user
    owner = StaffFactory(merchant=other_merchant, role=MerchantStaff.Role.OWNER).user
    partner = transit_partner(code="rival-bank")
    partner_client = APIClient()
    partner_client.credentials(**signed_headers(partner, b""))
    return {
        "person": client_for(UserFactory()),
        "guest": client_for(GuestFactory()),
        "clerk": client_for(clerk),
        "owner": client_for(owner),
        "partner": partner_client,
        "nobody": APIClient(),
    }


OWNED = sorted(
    (name, method) for name, entry in MATRIX.items() if entry.parameters for method in ROUTES[name][1]
)


def test_nobody_reaches_someone_elses_object_through_any_route(victims, client_for):
    attackers = _attackers(client_for, victims)
    tried, wrong = 0, []
    for name, method in OWNED:
        entry = MATRIX[name]
        path = _path(name, entry.parameters(victims))
        for who, client in attackers.items():
            response = getattr(client, method)(path, entry.body or {}, format="json")
            count_response(response.status_code)
            FIGURES["bad inputs tried"] += 1
            tried += 1
            allowed = {401, 403, 404} if who in {"partner", "nobody"} else {403, 404}
            body = response.content.decode(errors="replace")
            leaked = [secret for secret in victims.secrets if secret in body]
            if response.status_code not in allowed or leaked:
                wrong.append((name, method, who, response.status_code, leaked, body[:200]))
            elif response["Content-Type"].startswith("application/json"):
                assert set(json.loads(body)) == {"error"}, body
    assert wrong == [], "\n".join(map(str, wrong))
    assert tried == len(OWNED) * len(attackers)
    assert User.objects.filter(public_id=victims.secrets[0]).exists()
