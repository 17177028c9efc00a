"""Reads of the registry: the public lots, a person's lots and their inclusion proofs."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import QuerySet

from accounts.models import User
from core.api.errors import ApplicationError
from registry import errors, statements
from registry.merkle import leaf_hash, leaf_line, merkle_proof
from registry.models import LotContribution, LotRetirement, LotStatus, ReductionLot

# A lot's contributions never change once allocated, so a proof can be kept; it is rebuilt from the
# whole list otherwise (one pass over the lot's leaves).
PROOF_CACHE_SECONDS = 24 * 3600


def lot_commitment(*, lot: ReductionLot) -> tuple[list[tuple[str, int]], list[bytes]]:
    """The lot's contribution list in leaf order, and the leaf hashes (for the root and proofs)."""
    rows = [
        (contributor, int(carbon))
        for contributor, carbon in statements.execute(statements.LEAVES, {"lot_id": lot.pk})
    ]
    lot_id = str(lot.public_id)
    hashes = [
        leaf_hash(leaf_line(lot_id=lot_id, contributor_id=contributor, carbon_mg=carbon))
        for contributor, carbon in rows
    ]
    return rows, hashes


def lots_public() -> QuerySet[ReductionLot]:
    """Every lot that has been allocated, newest first, with what the public page shows."""
    return (
        ReductionLot.objects.filter(allocated_at__isnull=False)
        .prefetch_related("behaviours__behaviour", "behaviours__methodology_version", "retirements")
        .order_by("-period_start", "-id")
    )


def retirement_public(*, public_id) -> LotRetirement | None:
    return LotRetirement.objects.filter(public_id=public_id).select_related("lot").first()


def contributions_of(*, user: User) -> QuerySet[LotContribution]:
    """The person's share of each lot that holds their grams, newest lot first."""
    return (
        LotContribution.objects.filter(user_id=user.pk)
        .select_related("lot")
        .order_by("-lot__period_start", "-lot_id")
    )


@dataclass(frozen=True)
class InclusionProof:
    lot: ReductionLot
    contributor_id: str
    carbon_mg: int
    leaf_index: int
    leaf_count: int
    line: str
    proof: list[dict[str, str]]


def inclusion_proof_for(*, user: User, lot_public_id) -> InclusionProof:
    """The proof that the person's share is a leaf of the lot's published root (LOT_NOT_FOUND when the
    lot holds none of their grams)."""
    contribution = (
        LotContribution.objects.filter(user_id=user.pk, lot__public_id=lot_public_id)
        .select_related("lot")
        .first()
    )
    if contribution is None:
        raise ApplicationError(errors.LOT_NOT_FOUND)
    lot = contribution.lot
    key = f"registry:proof:{lot.pk}:{contribution.contributor_id}"
    cached = cache.get(key)
    if cached is None:
        rows, hashes = lot_commitment(lot=lot)
        index = [contributor for contributor, _carbon in rows].index(contribution.contributor_id)
        cached = {"index": index, "count": len(rows), "proof": merkle_proof(hashes, index)}
        cache.set(key, cached, PROOF_CACHE_SECONDS)
    line = leaf_line(
        lot_id=str(lot.public_id),
        contributor_id=contribution.contributor_id,
        carbon_mg=contribution.carbon_mg,
    ).decode()
    return InclusionProof(
        lot=lot,
        contributor_id=contribution.contributor_id,
        carbon_mg=contribution.carbon_mg,
        leaf_index=cached["index"],
        leaf_count=cached["count"],
        line=line,
        proof=cached["proof"],
    )


def status_label(lot: ReductionLot) -> str:
    """The status a reader sees: registered lots say whether they are sold out or retired in full."""
    if lot.status == LotStatus.REGISTERED and lot.tonnes and lot.available_tonnes == 0:
        return "closed"
    return lot.status
