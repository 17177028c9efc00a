"""Every change of state in the registry: lots from creation to allocation, submission, registration,
sales and retirements, and the proceeds of a sale paid back. Each step is a conditional UPDATE that
names the state it moves from (no read-modify-write), appends a `LotEvent`, and is never undone."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Iterable
from typing import TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from psycopg.errors import UniqueViolation
from psycopg.sql import Composable

from activities.models import Behaviour, Factor, MethodologyVersion
from core.api.errors import ApplicationError
from registry import errors, statements
from registry.exports import export_package_build
from registry.merkle import merkle_root
from registry.models import (
    MG_PER_TONNE,
    LotBehaviour,
    LotEvent,
    LotEventKind,
    LotExport,
    LotRetirement,
    LotSale,
    LotStatus,
    ProceedsPolicy,
    ReductionLot,
)
from registry.selectors import lot_commitment
from rewards.ledger import BatchPosting
from rewards.lock_objects import ledger_accounts_lock
from rewards.models import LedgerAccountKind, LedgerTransactionKind, WelfareProject
from rewards.services import coin_expiry_days, issuance_account, project_account_for_project

DEFAULT_SERIAL_PREFIX = "QZ"


def serial_prefix_for(period_start: datetime.date) -> str:
    """`<REGISTRY_SERIAL_PREFIX>-<year>-<month>` of the period's first day: `QZ-2026-11`."""
    prefix = getattr(settings, "REGISTRY_SERIAL_PREFIX", DEFAULT_SERIAL_PREFIX)
    return f"{prefix}-{period_start:%Y-%m}"


def _event(lot: ReductionLot | int, kind: str, actor: str, **details) -> None:
    lot_id = lot if isinstance(lot, int) else lot.pk
    LotEvent.objects.create(lot_id=lot_id, kind=kind, actor=actor, details=details)


def _state_conflict(lot_id: int) -> ApplicationError:
    status = ReductionLot.objects.filter(pk=lot_id).values_list("status", flat=True).first()
    return ApplicationError(errors.LOT_STATE_CONFLICT, fields={"status": status})


# What is recorded once per request key: a lot, a lot's sale or retirement.
Keyed = TypeVar("Keyed", ReductionLot, LotSale, LotRetirement)
Step = TypeVar("Step", LotSale, LotRetirement)


def lot_terms_check(
    *,
    period_start: datetime.date,
    period_end: datetime.date,
    behaviours: Iterable[tuple[Behaviour, MethodologyVersion]],
) -> None:
    """What a lot must be made of (`lot_create`; the admin's form checks it before): a period that is
    over (days before today) and, for each behaviour, a factor in the methodology version named."""
    if period_start > period_end or period_end >= timezone.localdate():
        raise ApplicationError(errors.LOT_PERIOD_NOT_CLOSED)
    for behaviour, version in behaviours:
        if not Factor.objects.filter(version=version, behaviour=behaviour).exists():
            raise ApplicationError(
                errors.LOT_BEHAVIOUR_NOT_IN_VERSION,
                fields={"behaviour": behaviour.code, "methodology_version": version.number},
            )


@transaction.atomic
def lot_create(
    *,
    title: str,
    period_start: datetime.date,
    period_end: datetime.date,
    behaviours: Iterable[tuple[Behaviour, MethodologyVersion]],
    proceeds_policy: str = ProceedsPolicy.CONTRIBUTORS,
    contributors_share_percent: int = 100,
    welfare_project: WelfareProject | None = None,
    fen_per_coin: int = 10,
    actor: str = "",
    request_key: uuid.UUID | None = None,
) -> ReductionLot:
    """Makes a draft lot over a closed period (days before today) and a set of behaviours, each with
    the methodology version whose records it takes (`lot_terms_check`). With a `request_key` (the
    operator's form), once: the same form sent again, or at the same moment, answers the lot it made."""
    pairs = list(behaviours)
    share = {
        ProceedsPolicy.CONTRIBUTORS: 100,
        ProceedsPolicy.WELFARE: 0,
    }.get(proceeds_policy, contributors_share_percent)

    def make() -> ReductionLot:
        lot_terms_check(period_start=period_start, period_end=period_end, behaviours=pairs)
        lot = ReductionLot.objects.create(
            title=title,
            period_start=period_start,
            period_end=period_end,
            proceeds_policy=proceeds_policy,
            contributors_share_percent=share,
            welfare_project=welfare_project,
            fen_per_coin=fen_per_coin,
            request_key=request_key,
        )
        LotBehaviour.objects.bulk_create(
            [
                LotBehaviour(lot=lot, behaviour=behaviour, methodology_version=version)
                for behaviour, version in pairs
            ]
        )
        _event(
            lot,
            LotEventKind.CREATED,
            actor,
            period=[period_start.isoformat(), period_end.isoformat()],
            behaviours={behaviour.code: version.number for behaviour, version in pairs},
            proceeds_policy=str(proceeds_policy),
            contributors_share_percent=share,
        )
        return lot

    if request_key is None:
        return make()
    return _once_per_key(ReductionLot, request_key=request_key, record=make)[0]


def _grams_pool(params: dict) -> None:
    """Inserts the lot's grams and contributions: plainly first (no key taken, the usual case); if
    some key is already in a lot, or a lot allocated at the same moment took it first, again from
    the savepoint, skipping the keys taken (statements.ALLOCATE)."""
    try:
        with transaction.atomic():
            statements.execute(statements.ALLOCATE, params)
    except IntegrityError as error:
        if not isinstance(error.__cause__, UniqueViolation):
            raise
        statements.execute(statements.ALLOCATE_SKIPPING, params)


@transaction.atomic
def lot_allocate(*, lot: ReductionLot, actor: str = "") -> ReductionLot:
    """Allocates to the draft lot, once, set-based: the settled grams of consenting people that no
    lot holds yet (statements.ALLOCATE), then their per-person contributions, the volume, the serial
    numbers of its whole tonnes and the Merkle root over the contributions."""
    claimed = ReductionLot.objects.filter(
        pk=lot.pk, status=LotStatus.DRAFT, allocated_at__isnull=True
    ).update(allocated_at=timezone.now())
    if not claimed:
        raise _state_conflict(lot.pk)
    params = {
        "lot_id": lot.pk,
        "period_start": lot.period_start,
        "period_end": lot.period_end,
        "salt": lot.pseudonym_salt,
    }
    for setting in statements.ALLOCATION_SETTINGS:
        statements.execute(setting)
    # Before the statement's snapshot: a merge in flight commits first (its records, days and the
    # lots' rows the target's), and no merge starts until this allocation commits.
    statements.execute(statements.ALLOCATION_LOCK_SHARED)
    _grams_pool(params)
    [(volume_mg, contributor_count)] = statements.execute(statements.TOTALS, params)
    tonnes = int(volume_mg) // MG_PER_TONNE
    prefix = serial_prefix_for(lot.period_start)
    serial_start = None
    if tonnes:
        [(last_number,)] = statements.execute(statements.SERIALS_TAKE, {"prefix": prefix, "tonnes": tonnes})
        serial_start = last_number - tonnes + 1
    _rows, hashes = lot_commitment(lot=lot)
    root = merkle_root(hashes)
    ReductionLot.objects.filter(pk=lot.pk).update(
        volume_mg=volume_mg,
        contributor_count=contributor_count,
        tonnes=tonnes,
        serial_prefix=prefix,
        serial_start=serial_start,
        merkle_root=root,
    )
    lot.refresh_from_db()
    _event(
        lot,
        LotEventKind.ALLOCATED,
        actor,
        volume_mg=int(volume_mg),
        contributors=int(contributor_count),
        tonnes=tonnes,
        serials=[lot.serial_first, lot.serial_last],
        merkle_root=root,
    )
    return lot


@transaction.atomic
def lot_submit(*, lot: ReductionLot, actor: str = "") -> LotExport:
    """Submits an allocated draft of at least one tonne to the exchange: builds its export package
    (CSV, JSON, a manifest signed with the platform's Ed25519 key)."""
    moved = ReductionLot.objects.filter(
        pk=lot.pk, status=LotStatus.DRAFT, allocated_at__isnull=False, tonnes__gt=0
    ).update(status=LotStatus.SUBMITTED, submitted_at=timezone.now())
    if not moved:
        raise _state_conflict(lot.pk)
    lot.refresh_from_db()
    package = export_package_build(lot=lot)
    export = LotExport.objects.create(lot=lot, **package)
    _event(lot, LotEventKind.SUBMITTED, actor, key_id=export.key_id, signature=export.signature)
    return export


@transaction.atomic
def lot_register(*, lot: ReductionLot, exchange_reference: str, actor: str = "") -> ReductionLot:
    """Records that the exchange registered the submitted lot, under its reference."""
    moved = ReductionLot.objects.filter(pk=lot.pk, status=LotStatus.SUBMITTED).update(
        status=LotStatus.REGISTERED, registered_at=timezone.now(), exchange_reference=exchange_reference
    )
    if not moved:
        raise _state_conflict(lot.pk)
    lot.refresh_from_db()
    _event(lot, LotEventKind.REGISTERED, actor, exchange_reference=exchange_reference)
    return lot


def _tonnes_take(*, lot: ReductionLot, tonnes: int, sql: Composable) -> int:
    if isinstance(tonnes, bool) or not isinstance(tonnes, int) or tonnes <= 0:
        raise ApplicationError(errors.LOT_TONNES_UNAVAILABLE, fields={"tonnes": tonnes})
    taken = statements.execute(sql, {"lot_id": lot.pk, "tonnes": tonnes})
    if not taken:
        current = ReductionLot.objects.get(pk=lot.pk)
        raise ApplicationError(
            errors.LOT_TONNES_UNAVAILABLE,
            fields={"status": current.status, "available_tonnes": current.available_tonnes},
        )
    return int(taken[0][0])


def _once_per_key(
    model: type[Keyed], *, request_key: uuid.UUID, record: Callable[[], Keyed]
) -> tuple[Keyed, bool]:
    """Runs `record` (write the row, and what goes with it) once per request key: its row and True,
    or the row an earlier or a twin submission with the key recorded and False (this one changed
    nothing: a twin's work in flight is rolled back to the savepoint)."""
    earlier = model.objects.filter(request_key=request_key).first()
    if earlier is None:
        try:
            with transaction.atomic():
                return record(), True
        except IntegrityError:
            # A twin that committed first holds the key.
            earlier = model.objects.filter(request_key=request_key).first()
            if earlier is None:
                raise
    return earlier, False


def _once(
    model: type[Step], *, lot: ReductionLot, request_key: uuid.UUID, record: Callable[[], Step]
) -> tuple[Step, bool]:
    """A lot's step (take the tonnes, write the row) once per request key (`_once_per_key`): a key
    that recorded a step of another lot is a fault of the caller."""
    step, recorded = _once_per_key(model, request_key=request_key, record=record)
    if not recorded and step.lot_id != lot.pk:
        raise ValueError(f"the request key {request_key} recorded a step of another lot")
    return step, recorded


@transaction.atomic
def lot_sell(
    *,
    lot: ReductionLot,
    tonnes: int,
    price_fen_per_tonne: int,
    buyer: str,
    sold_on: datetime.date,
    request_key: uuid.UUID,
    actor: str = "",
) -> LotSale:
    """Records a sale of `tonnes` of the registered lot (the next serial numbers in order), once per
    `request_key` (the operator's form: sent again, it records nothing more and answers the sale)."""

    def record() -> LotSale:
        return LotSale.objects.create(
            lot=lot,
            tonnes=tonnes,
            serial_offset=_tonnes_take(lot=lot, tonnes=tonnes, sql=statements.TONNES_TAKE_SOLD),
            price_fen_per_tonne=price_fen_per_tonne,
            proceeds_fen=price_fen_per_tonne * tonnes,
            buyer=buyer,
            sold_on=sold_on,
            request_key=request_key,
        )

    sale, recorded = _once(LotSale, lot=lot, request_key=request_key, record=record)
    if not recorded:
        return sale
    lot.refresh_from_db()
    _event(
        lot,
        LotEventKind.SOLD,
        actor,
        sale=str(sale.public_id),
        tonnes=tonnes,
        serials=[lot.serial(sale.serial_offset), lot.serial(sale.serial_offset + tonnes - 1)],
        price_fen_per_tonne=price_fen_per_tonne,
        buyer=buyer,
        sold_on=sold_on.isoformat(),
    )
    return sale


@transaction.atomic
def lot_retire(
    *,
    lot: ReductionLot,
    tonnes: int,
    beneficiary: str,
    reason: str,
    request_key: uuid.UUID,
    event_name: str = "",
    actor: str = "",
) -> LotRetirement:
    """Retires `tonnes` of the registered lot for good on `beneficiary`'s behalf (an event's offset,
    a company's footprint): the next serial numbers in order; a public page and a certificate. Once
    per `request_key`, as a sale."""

    def record() -> LotRetirement:
        return LotRetirement.objects.create(
            lot=lot,
            tonnes=tonnes,
            serial_offset=_tonnes_take(lot=lot, tonnes=tonnes, sql=statements.TONNES_TAKE_RETIRED),
            beneficiary=beneficiary,
            reason=reason,
            event_name=event_name,
            retired_at=timezone.now(),
            request_key=request_key,
        )

    retirement, recorded = _once(LotRetirement, lot=lot, request_key=request_key, record=record)
    if not recorded:
        return retirement
    lot.refresh_from_db()
    _event(
        lot,
        LotEventKind.RETIRED,
        actor,
        retirement=str(retirement.public_id),
        tonnes=tonnes,
        serials=[retirement.serial_first, retirement.serial_last],
        beneficiary=beneficiary,
        reason=reason,
        event_name=event_name,
    )
    return retirement


def proceeds_split(*, lot: ReductionLot, proceeds_fen: int) -> tuple[int, int]:
    """(coins to the contributors, coins to the welfare project) of a sale's proceeds under the lot's
    policy: the contributors' share in fen, rounded down, then each part in whole coins, rounded down."""
    contributors_fen = proceeds_fen * lot.contributors_share_percent // 100
    welfare_fen = proceeds_fen - contributors_fen if lot.welfare_project_id else 0
    return contributors_fen // lot.fen_per_coin, welfare_fen // lot.fen_per_coin


def proceeds_shares(*, lot: ReductionLot, pool: int) -> list[tuple[int, int]]:
    """(user id, coins) of a pool of whole coins shared pro rata to the grams (largest remainder)."""
    if pool <= 0:
        return []
    return [
        (int(user_id), int(coins))
        for user_id, coins in statements.execute(statements.PRO_RATA, {"lot_id": lot.pk, "pool": pool})
    ]


def proceeds_post(*, sale: LotSale, contributor_coins: int, welfare_coins: int) -> int:
    """Mints a sale's proceeds in one ledger transaction, set-based, whatever the number of
    contributors: each contributor's pro-rata share (statements.PRO_RATA) into their wallet, with a
    coin lot, and the welfare project's coins into its account, all from issuance, under the sale's
    idempotency key `lot-sale:<sale>`; each person's share is a `LotProceedsShare`, unique per sale
    and person. A fixed number of statements (statements.PROCEEDS_*). Call in the payout's
    transaction; answers how many contributors were paid."""
    lot = sale.lot
    params = {
        "sale_id": sale.pk,
        "lot_id": lot.pk,
        "pool": contributor_coins,
        "contributor_coins": contributor_coins,
        "welfare_coins": welfare_coins,
        "project_account": None,
        "issuance": issuance_account().pk,
        "wallet": LedgerAccountKind.WALLET.value,
        "kind": LedgerTransactionKind.ISSUANCE.value,
        "key": f"lot-sale:{sale.public_id}",
        "reference": f"lot-sale:{sale.public_id}",
        "memo": f"Proceeds of {lot.title}",
        "now": timezone.now(),
        "today": timezone.localdate(),
    }
    params["expires_on"] = params["today"] + datetime.timedelta(days=coin_expiry_days())
    posting = BatchPosting(
        kind=LedgerTransactionKind.ISSUANCE,
        reference=params["reference"],
        idempotency_key=params["key"],
        counter_account_id=params["issuance"],
        memo=params["memo"],
    )
    params["transaction"] = posting.transaction_id
    paid = 0
    if contributor_coins:
        [(paid,)] = statements.execute(statements.PROCEEDS_SHARES, params)
        statements.execute(statements.PROCEEDS_WALLETS_OPEN, params)
        statements.execute(statements.PROCEEDS_WALLETS_LOCK, params)
    others = [params["issuance"]]
    if welfare_coins:
        params["project_account"] = project_account_for_project(project_id=lot.welfare_project_id).pk
        others.append(params["project_account"])
    ledger_accounts_lock(account_ids=others)
    posting.legs_post(legs=statements.PROCEEDS_LEGS, params=params, locked=True)
    posting.counter_post()
    return int(paid)


@transaction.atomic
def sale_proceeds_pay(*, sale: LotSale, actor: str = "") -> LotSale:
    """Pays the sale's proceeds once, as the lot's policy says: bonus coins to the contributors pro
    rata to their grams and/or coins to the welfare project, minted in one set-based ledger
    transaction (`proceeds_post`). A second call, or one at the same moment:
    PROCEEDS_ALREADY_PAID, nothing changes."""
    lot = sale.lot
    contributor_coins, welfare_coins = proceeds_split(lot=lot, proceeds_fen=sale.proceeds_fen)
    claimed = LotSale.objects.filter(pk=sale.pk, proceeds_paid_at__isnull=True).update(
        proceeds_paid_at=timezone.now(), contributor_coins=contributor_coins, welfare_coins=welfare_coins
    )
    if not claimed:
        raise ApplicationError(errors.PROCEEDS_ALREADY_PAID)
    paid = 0
    if contributor_coins or welfare_coins:
        paid = proceeds_post(sale=sale, contributor_coins=contributor_coins, welfare_coins=welfare_coins)
    sale.refresh_from_db()
    _event(
        lot,
        LotEventKind.PROCEEDS_PAID,
        actor,
        sale=str(sale.public_id),
        proceeds_fen=sale.proceeds_fen,
        contributor_coins=contributor_coins,
        contributors_paid=paid,
        welfare_coins=welfare_coins,
    )
    return sale
