"""The registry's part of a person's data (accounts.services.rights calls it, after the other apps).

- Export: the lots that hold the person's grams, with the share of each.
- Erasure: nothing to remove. A lot's allocations and shares name the person by account id only
  (the account row stays, pseudonymous, as the ledger's does) and publish a pseudonym per lot; the
  grams stay pooled, as the coins their sale paid stay earned.
- Merge: the grams lots hold of the source become the target's (registry.statements), so no later
  lot pools them again under the target, whose records they are now. The merge first waits for the
  allocations in flight and keeps new ones out until it commits (`accounts_merge_lock`).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import User
from registry import statements
from registry.selectors import contributions_of


def personal_data_export(*, user: User) -> dict[str, Any]:
    return {
        "lots": [
            {
                "lot": str(share.lot.public_id),
                "title": share.lot.title,
                "period_start": share.lot.period_start.isoformat(),
                "period_end": share.lot.period_end.isoformat(),
                "contributor_id": share.contributor_id,
                "carbon_mg": share.carbon_mg,
            }
            for share in contributions_of(user=user)
        ]
    }


def personal_data_erase(*, user: User) -> None:
    """Nothing to remove (see the module's text)."""


def accounts_merge_lock(*, source_user: User, target_user: User) -> None:
    """Before any app moves a row: waits for allocations in flight to commit (their rows of the
    source are then visible and moved below) and keeps new ones out until the merge commits."""
    statements.execute(statements.ALLOCATION_LOCK_EXCLUSIVE)


@transaction.atomic
def accounts_merge(*, source_user: User, target_user: User) -> None:
    params = {"source": source_user.pk, "target": target_user.pk}
    statements.execute(statements.MERGED_ALLOCATIONS_MOVE, params)
    statements.execute(statements.MERGED_ALLOCATIONS_JOIN, params)
    statements.execute(statements.MERGED_CONTRIBUTIONS_MOVE, params)
