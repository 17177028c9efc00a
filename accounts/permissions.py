"""Permission classes other apps use: a signed-in person who accepted the agreements in force.

`HasAcceptedCurrentAgreements` is part of DRF's DEFAULT_PERMISSION_CLASSES (after
IsAuthenticated): reads are always allowed (a person must be able to see their data and the new
text), writes wait until the current user agreement and privacy policy are accepted. A view that
sets its own `permission_classes` must list it too, unless it is one of the few writes that stay
open without it: accepting the agreements, revoking a data source, signing out, exporting and
closing the account (a person who declines new terms can always leave).
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts import errors
from accounts.selectors import agreements_pending_check
from accounts.services.agreements import accepted_agreements_copy_refresh, agreements_in_force
from accounts.sessions import agreements_in_force_prefetched
from core.api.errors import ApplicationError


def pending_agreements_fields(pending) -> dict:
    return {
        "pending": [
            {
                "kind": agreement.kind,
                "version": agreement.version,
                "title": agreement.title,
                "url": agreement.url,
            }
            for agreement in pending
        ]
    }


class HasAcceptedCurrentAgreements(BasePermission):
    """Refuses writes (`agreement_acceptance_required`) while a version in force is not accepted."""

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        user = request.user
        if not user or not user.is_authenticated:
            # Anonymous writes are for the other permission classes to judge.
            return True
        current = agreements_in_force(cached=agreements_in_force_prefetched(request))
        check = agreements_pending_check(user=user, current=current)
        if check.copy_behind:
            accepted_agreements_copy_refresh(user=user)
        pending = check.pending
        if pending:
            raise ApplicationError(
                errors.AGREEMENT_ACCEPTANCE_REQUIRED, fields=pending_agreements_fields(pending)
            )
        return True
