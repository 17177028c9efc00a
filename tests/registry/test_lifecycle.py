"""A lot's whole life on PostgreSQL: allocated, submitted with a signed package, registered, sold and
retired in parts, proceeds paid once; a contributor's proof checked by the verifier of
docs/registry.md; the public pages and the certificate; the invariants after each step."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import uuid
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import IntegrityError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from core.api.errors import ApplicationError
from core.crypto.platform_keys import ed25519_signing_keys
from operations.invariants import invariant_violations
from registry import errors
from registry.certificates import PAPER
from registry.exports import export_zip
from registry.models import (
    MG_PER_TONNE,
    LotContribution,
    LotEvent,
    LotProceedsShare,
    LotRetirement,
    LotSale,
    ReductionLot,
)
from registry.services import (
    lot_allocate,
    lot_create,
    lot_register,
    lot_retire,
    lot_sell,
    lot_submit,
    sale_proceeds_pay,
)
from rewards.models import CoinLot, LedgerAccount, LedgerTransaction
from rewards.services import settlement_run
from tests.accounts.factories import UserFactory
from tests.races import race
from tests.registry.factories import behaviour, consenting, days_ago, record, uncapped_version
from tests.rewards.factories import WelfareProjectFactory

pytestmark = pytest.mark.django_db(transaction=True)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "registry.md"


def _documented_verifier():
    """The verifier exactly as docs/registry.md prints it, run on its own."""
    text = DOCS.read_text()
    code = re.search(r"<!-- verifier -->\n```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "docs/registry.md", "exec"), namespace)  # noqa: S102 - our own doc
    return namespace["verify"]


def _wallets() -> dict[int, int]:
    return dict(LedgerAccount.objects.filter(kind="wallet").values_list("owner_id", "balance"))


@pytest.fixture
def registered_lot():
    """Three consenting people, 1.2 t, 0.9 t and 0.4 t of settled bus rides: a lot of 2 t."""
    people = [consenting(user) for user in UserFactory.create_batch(3)]
    for user, carbon in zip(people, (1_200_000_000, 900_000_000, 400_000_000), strict=True):
        record(user, days_ago(3), carbon)
    settlement_run(day=days_ago(3))
    project = WelfareProjectFactory()
    lot = lot_create(
        title="Bus rides, Nov",
        period_start=days_ago(9),
        period_end=days_ago(2),
        behaviours=[(behaviour("bus"), uncapped_version())],
        proceeds_policy="both",
        contributors_share_percent=70,
        welfare_project=project,
        fen_per_coin=10,
        actor="operator",
    )
    lot = lot_allocate(lot=lot, actor="operator")
    export = lot_submit(lot=lot, actor="operator")
    lot = lot_register(lot=lot, exchange_reference="GZ-EX-2026-0042", actor="operator")
    return {"people": people, "lot": lot, "export": export, "project": project}


def _operator() -> Client:
    operator = Client()
    operator.force_login(UserFactory(is_staff=True, is_superuser=True))
    return operator


def _lot_form(**changes: str) -> dict:
    """The admin's *Add reduction lot* form, filled in: a week of bus rides, over."""
    return {
        "title": "Bus rides, Nov",
        "period_start": days_ago(9).isoformat(),
        "period_end": days_ago(2).isoformat(),
        "proceeds_policy": "contributors",
        "contributors_share_percent": "100",
        "welfare_project": "",
        "fen_per_coin": "10",
        "behaviours": [str(behaviour("bus").pk)],
        "methodology_version": str(uncapped_version().pk),
        **changes,
    }


def test_a_lot_of_less_than_one_fen_per_coin_is_refused_at_creation():
    # A lot of 0 fen per coin could never pay a sale's proceeds (they are divided by it).
    operator = _operator()

    response = operator.post("/admin/registry/reductionlot/add/", _lot_form(fen_per_coin="0"))

    assert response.status_code == 200
    assert "fen_per_coin" in response.context["adminform"].form.errors
    with pytest.raises(IntegrityError):
        lot_create(
            title="Bus rides, Nov",
            period_start=days_ago(9),
            period_end=days_ago(2),
            behaviours=[(behaviour("bus"), uncapped_version())],
            fen_per_coin=0,
        )
    assert not ReductionLot.objects.exists()


@pytest.mark.parametrize(
    ("refused", "error"),
    [
        ("period_not_over", errors.LOT_PERIOD_NOT_CLOSED),
        ("behaviour_without_a_factor", errors.LOT_BEHAVIOUR_NOT_IN_VERSION),
    ],
)
def test_the_add_form_shows_what_a_lot_cannot_be_made_of_and_makes_none(refused, error):
    operator = _operator()
    changes = {
        "period_not_over": {"period_end": days_ago(0).isoformat()},
        # The tests' uncapped version has no factor for the metro.
        "behaviour_without_a_factor": {"behaviours": [str(behaviour("bus").pk), str(behaviour("metro").pk)]},
    }[refused]

    response = operator.post("/admin/registry/reductionlot/add/", _lot_form(**changes))

    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [str(error.message)]
    assert not ReductionLot.objects.exists()


def test_the_add_form_sent_twice_makes_one_lot():
    operator = _operator()
    page = operator.get("/admin/registry/reductionlot/add/").content.decode()
    [request_key] = re.findall(r'name="request_key" value="([0-9a-f-]{36})"', page)
    form = _lot_form(request_key=request_key)

    first = operator.post("/admin/registry/reductionlot/add/", form)
    again = operator.post("/admin/registry/reductionlot/add/", form)

    assert first.status_code == again.status_code == 302
    [lot] = ReductionLot.objects.all()
    assert first["Location"] == again["Location"]
    assert LotEvent.objects.filter(lot=lot, kind="created").count() == 1


@pytest.mark.concurrency
def test_one_add_form_sent_twice_at_once_makes_one_lot():
    request_key = uuid.uuid4()
    behaviours = [(behaviour("bus"), uncapped_version())]

    def create() -> int:
        return lot_create(
            title="Bus rides, Nov",
            period_start=days_ago(9),
            period_end=days_ago(2),
            behaviours=behaviours,
            request_key=request_key,
        ).pk

    outcomes = race([create, create])

    [lot] = ReductionLot.objects.all()
    assert outcomes == [lot.pk, lot.pk]
    assert LotEvent.objects.filter(lot=lot, kind="created").count() == 1


def test_the_export_package_is_signed_by_the_platform_key_and_names_its_files(registered_lot):
    lot, export = registered_lot["lot"], registered_lot["export"]
    archive = zipfile.ZipFile(io.BytesIO(export_zip(export=export)))
    manifest = archive.read("manifest.json")
    signature = base64.urlsafe_b64decode(archive.read("manifest.sig").decode() + "==")
    key_id, private_key = ed25519_signing_keys()[0]
    public_key = Ed25519PublicKey.from_public_bytes(private_key.public_key().public_bytes_raw())

    public_key.verify(signature, manifest)  # raises if not signed by the platform key

    data = json.loads(manifest)
    assert data["key_id"] == key_id
    assert data["algorithm"] == "Ed25519"
    for name, digest in data["files"].items():
        assert hashlib.sha256(archive.read(name)).hexdigest() == digest
    document = json.loads(archive.read("lot.json"))
    assert document["tonnes"] == 2
    assert document["volume_mg"] == 2_500_000_000
    assert document["merkle_root"] == lot.merkle_root
    assert document["methodology"] == [{"behaviour": "bus", "methodology_version": 99}]
    assert archive.read("lot.csv").decode().count("\n") == 4  # a header and three contributors


def test_a_contributor_checks_their_share_with_the_documented_verifier(registered_lot, client_for):
    person, lot = registered_lot["people"][1], registered_lot["lot"]
    client = client_for(person)

    mine = client.get("/api/v1/registry/my-lots").json()
    answer = client.get(f"/api/v1/registry/lots/{lot.public_id}/proof").json()

    assert [(item["lot_id"], item["carbon_mg"]) for item in mine] == [(str(lot.public_id), 900_000_000)]
    assert answer["line"] == f"{lot.public_id}|{mine[0]['contributor_id']}|900000000"
    published_root = lot.merkle_root
    verify = _documented_verifier()
    assert verify(answer["line"], answer["proof"], published_root) is True
    forged = answer["line"].replace("900000000", "990000000")
    assert verify(forged, answer["proof"], published_root) is False


def test_a_proof_is_only_for_a_lot_that_holds_the_persons_grams(registered_lot, client_for):
    outsider = client_for(UserFactory())
    response = outsider.get(f"/api/v1/registry/lots/{registered_lot['lot'].public_id}/proof")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "lot_not_found"


def test_sold_and_retired_in_parts_never_more_than_registered(registered_lot):
    lot = registered_lot["lot"]
    sale = lot_sell(
        request_key=uuid.uuid4(),
        lot=lot,
        tonnes=1,
        price_fen_per_tonne=6_000,
        buyer="Guangzhou Metro",
        sold_on=days_ago(1),
    )
    retirement = lot_retire(
        request_key=uuid.uuid4(),
        lot=lot,
        tonnes=1,
        beneficiary="Quzhou Marathon",
        reason="Offset of the race",
        event_name="Marathon 2026",
    )

    with pytest.raises(ApplicationError) as raised:
        lot_retire(request_key=uuid.uuid4(), lot=lot, tonnes=1, beneficiary="Late company", reason="Too late")

    assert raised.value.error is errors.LOT_TONNES_UNAVAILABLE
    assert raised.value.fields == {"status": "registered", "available_tonnes": 0}
    lot.refresh_from_db()
    assert (lot.sold_tonnes, lot.retired_tonnes) == (1, 1)
    prefix = f"QZ-{days_ago(9):%Y-%m}"
    assert lot.serial(sale.serial_offset) == f"{prefix}-000001"
    assert (retirement.serial_first, retirement.serial_last) == (f"{prefix}-000002", f"{prefix}-000002")
    assert list(LotEvent.objects.filter(lot=lot).values_list("kind", flat=True)) == [
        "created",
        "allocated",
        "submitted",
        "registered",
        "sold",
        "retired",
    ]
    with pytest.raises(ApplicationError) as undo:
        lot_register(lot=lot, exchange_reference="again")
    assert undo.value.error is errors.LOT_STATE_CONFLICT
    assert invariant_violations() == []


def test_proceeds_are_paid_once_pro_rata_with_the_largest_remainders(registered_lot):
    lot, people, project = registered_lot["lot"], registered_lot["people"], registered_lot["project"]
    before = _wallets()
    sale = lot_sell(
        request_key=uuid.uuid4(),
        lot=lot,
        tonnes=2,
        price_fen_per_tonne=5_005,
        buyer="Exchange buyer",
        sold_on=days_ago(1),
    )

    paid = sale_proceeds_pay(sale=sale, actor="operator")

    # 10,010 fen: 70 % = 7,007 fen → 700 coins to contributors; 3,003 fen → 300 coins to the project.
    # Pro rata to 12 : 9 : 4 of 700 = 336, 252, 112 exactly.
    assert (paid.contributor_coins, paid.welfare_coins) == (700, 300)
    after = _wallets()
    assert [after[user.pk] - before.get(user.pk, 0) for user in people] == [336, 252, 112]
    assert LedgerAccount.objects.get(kind="welfare_project", owner_id=project.pk).balance == 300
    # One ledger transaction for the sale, one share per contributor, each with its coin lot.
    [minted] = LedgerTransaction.objects.filter(reference=f"lot-sale:{sale.public_id}")
    assert minted.idempotency_key == f"lot-sale:{sale.public_id}"
    assert sorted(
        LotProceedsShare.objects.filter(sale=sale).values_list("user_id", "coins", "transaction")
    ) == sorted(
        [(people[0].pk, 336, minted.pk), (people[1].pk, 252, minted.pk), (people[2].pk, 112, minted.pk)]
    )
    assert sorted(CoinLot.objects.filter(transaction=minted).values_list("amount", flat=True)) == [
        112,
        252,
        336,
    ]
    assert sum(minted.entries.values_list("amount", flat=True)) == 0
    with pytest.raises(ApplicationError) as raised:
        sale_proceeds_pay(sale=LotSale.objects.get(pk=sale.pk))
    assert raised.value.error is errors.PROCEEDS_ALREADY_PAID
    assert _wallets() == after
    assert invariant_violations() == []


@pytest.mark.concurrency
def test_two_payouts_of_one_sale_at_once_pay_it_once(registered_lot):
    # Given a sale of the registered lot.
    lot, people = registered_lot["lot"], registered_lot["people"]
    sale = lot_sell(
        request_key=uuid.uuid4(),
        lot=lot,
        tonnes=2,
        price_fen_per_tonne=5_005,
        buyer="Exchange buyer",
        sold_on=days_ago(1),
    )
    before = _wallets()

    def pay() -> str:
        sale_proceeds_pay(sale=LotSale.objects.get(pk=sale.pk), actor="operator")
        return "paid"

    # When two operators pay its proceeds at the same moment, on two connections.
    outcomes = [
        outcome.error if isinstance(outcome, ApplicationError) else outcome for outcome in race([pay, pay])
    ]

    # Then one pays and the other is told it is paid: each contributor got their share once.
    assert sorted(outcomes, key=str) == sorted(["paid", errors.PROCEEDS_ALREADY_PAID], key=str)
    after = _wallets()
    assert [after[user.pk] - before.get(user.pk, 0) for user in people] == [336, 252, 112]
    assert LedgerTransaction.objects.filter(reference=f"lot-sale:{sale.public_id}").count() == 1
    assert LotProceedsShare.objects.filter(sale=sale).count() == 3
    assert invariant_violations() == []


def test_a_sale_and_a_retirement_are_recorded_once_per_request_key(registered_lot):
    lot = registered_lot["lot"]
    sale_key, retirement_key = uuid.uuid4(), uuid.uuid4()

    def sell() -> LotSale:
        return lot_sell(
            request_key=sale_key,
            lot=lot,
            tonnes=1,
            price_fen_per_tonne=6_000,
            buyer="Buyer",
            sold_on=days_ago(1),
        )

    def retire() -> LotRetirement:
        return lot_retire(
            request_key=retirement_key, lot=lot, tonnes=1, beneficiary="Marathon", reason="offset"
        )

    # The same submission twice (a resent form) answers the first's row and takes no more tonnes.
    assert sell() == sell()
    assert retire() == retire()

    lot.refresh_from_db()
    assert (lot.sold_tonnes, lot.retired_tonnes) == (1, 1)
    assert LotSale.objects.filter(lot=lot).count() == LotRetirement.objects.filter(lot=lot).count() == 1
    assert LotEvent.objects.filter(lot=lot, kind__in=["sold", "retired"]).count() == 2
    assert invariant_violations() == []


@pytest.mark.concurrency
def test_one_sale_form_sent_twice_at_once_records_one_sale(registered_lot):
    lot = registered_lot["lot"]
    request_key = uuid.uuid4()

    def sell() -> int:
        return lot_sell(
            request_key=request_key,
            lot=ReductionLot.objects.get(pk=lot.pk),
            tonnes=1,
            price_fen_per_tonne=6_000,
            buyer="Buyer",
            sold_on=days_ago(1),
        ).pk

    outcomes = race([sell, sell])

    [sale] = LotSale.objects.filter(lot=lot)
    assert outcomes == [sale.pk, sale.pk]
    lot.refresh_from_db()
    assert lot.sold_tonnes == 1
    assert invariant_violations() == []


def test_the_operators_sale_form_sent_again_records_nothing_more(registered_lot):
    lot = registered_lot["lot"]
    operator = _operator()
    page = operator.get(f"/admin/registry/reductionlot/{lot.pk}/step/").content.decode()
    [request_key] = re.findall(r'name="sell-request_key" value="([0-9a-f-]{36})"', page)
    form = {
        "step": "sell",
        "sell-request_key": request_key,
        "sell-tonnes": "1",
        "sell-price_fen_per_tonne": "8000",
        "sell-buyer": "Acme",
        "sell-sold_on": days_ago(1).isoformat(),
    }

    first = operator.post(f"/admin/registry/reductionlot/{lot.pk}/step/", form)
    again = operator.post(f"/admin/registry/reductionlot/{lot.pk}/step/", form)

    assert first.status_code == again.status_code == 302
    assert LotSale.objects.filter(lot=lot).count() == 1
    # The page drawn anew carries a new key: a second sale is a new submission.
    page = operator.get(f"/admin/registry/reductionlot/{lot.pk}/step/").content.decode()
    assert re.findall(r'name="sell-request_key" value="([0-9a-f-]{36})"', page) != [request_key]


def test_remainders_go_to_the_largest_fractions(registered_lot):
    from registry.services import proceeds_shares

    lot, people = registered_lot["lot"], registered_lot["people"]
    # 10 coins over 12 : 9 : 4 → 4.8, 3.6, 1.6 → floors 4, 3, 1 and two left: to .8 and then .6 / .6,
    # the tie going to the smaller pseudonym.
    pseudonyms = dict(LotContribution.objects.filter(lot=lot).values_list("user_id", "contributor_id"))
    second, third = people[1].pk, people[2].pk
    tie_winner, tie_loser = sorted([second, third], key=lambda user_id: pseudonyms[user_id])

    shares = dict(proceeds_shares(lot=lot, pool=10))

    floors = {people[0].pk: 4, second: 3, third: 1}
    assert shares[people[0].pk] == 5
    assert shares[tie_winner] == floors[tie_winner] + 1
    assert shares[tie_loser] == floors[tie_loser]
    assert sum(shares.values()) == 10


def test_the_public_registry_shows_lots_and_retirements_without_sign_in(registered_lot):
    lot = registered_lot["lot"]
    retirement = lot_retire(
        request_key=uuid.uuid4(),
        lot=lot,
        tonnes=2,
        beneficiary="西湖音乐节",
        reason="活动碳中和",
        event_name="2026 音乐节",
    )
    client = Client()

    english = client.get(reverse("registry:lots"), {"lang": "en"})
    chinese = client.get(reverse("registry:lots"), HTTP_ACCEPT_LANGUAGE="zh-Hans")
    page = client.get(reverse("registry:retirement", args=[retirement.public_id]), {"lang": "en"})
    png = client.get(reverse("registry:retirement-certificate", args=[retirement.public_id]))
    listing = client.get(reverse("registry:lot-contributions", args=[lot.public_id]))

    assert english.status_code == 200
    text = english.content.decode()
    assert "Bus rides, Nov" in text
    assert "sold or retired in full" in text
    assert "西湖音乐节" in text
    assert "Bus ride (v99)" in text
    assert "公交出行 (v99)" in chinese.content.decode()
    assert "碳减排登记簿" in chinese.content.decode()
    assert page.status_code == 200
    assert "2 t CO₂e" in page.content.decode()
    assert png["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size == (1200, 850)
    assert listing.content.decode().splitlines()[0] == "lot_id,contributor_id,carbon_mg"
    assert ReductionLot.objects.get(pk=lot.pk).retired_tonnes == 2


def _allocated_lots(numbers: range) -> None:
    """Allocated lots `Lot <number>`, a higher number a later period, each with two retirements."""
    lots = ReductionLot.objects.bulk_create(
        ReductionLot(
            title=f"Lot {number:03d}",
            period_start=days_ago(400 - number),
            period_end=days_ago(400 - number),
            allocated_at=timezone.now(),
            status="registered",
            tonnes=5,
            volume_mg=5 * MG_PER_TONNE,
            serial_prefix="QZ-2026-11",
            serial_start=1 + 5 * number,
            retired_tonnes=2,
        )
        for number in numbers
    )
    LotRetirement.objects.bulk_create(
        LotRetirement(
            lot=lot,
            tonnes=1,
            serial_offset=offset,
            beneficiary=f"{lot.title} beneficiary {offset}",
            reason="offset",
            retired_at=timezone.now(),
            request_key=uuid.uuid4(),
        )
        for lot in lots
        for offset in range(2)
    )


def _titles(response) -> list[str]:
    return re.findall(r'data-lot="[^"]+">\s*<h2><a href="[^"]+">([^<]+)</a>', response.content.decode())


def test_the_public_registry_shows_twenty_lots_a_page_at_the_cost_of_a_page():
    client = Client()
    _allocated_lots(range(21))
    with CaptureQueriesContext(connection) as two_pages:
        client.get(reverse("registry:lots"))
    _allocated_lots(range(21, 61))

    with CaptureQueriesContext(connection) as four_pages:
        first = client.get(reverse("registry:lots"), {"lang": "en"})
    second = client.get(reverse("registry:lots"), {"page": "2", "lang": "en"})
    last = client.get(reverse("registry:lots"), {"page": "4", "lang": "en"})

    assert len(four_pages) == len(two_pages)
    assert _titles(first) == [f"Lot {number:03d}" for number in range(60, 40, -1)]
    assert _titles(second) == [f"Lot {number:03d}" for number in range(40, 20, -1)]
    assert _titles(last) == ["Lot 000"]
    assert "Lot 060 beneficiary 1" in first.content.decode()
    pages = (first, second, last)
    links = [re.findall(r">(Newer lots|Older lots)<", page.content.decode()) for page in pages]
    assert links == [["Older lots"], ["Newer lots", "Older lots"], ["Newer lots"]]


@pytest.mark.parametrize("page", ["0", "-1", "abc", "2.5", "", "99999999999999999999999", "1e9"])
def test_a_public_registry_page_that_is_not_one_answers_the_first_or_the_last(page):
    _allocated_lots(range(21))

    response = Client().get(reverse("registry:lots"), {"page": page, "lang": "en"})

    assert response.status_code == 200
    assert _titles(response) in ([f"Lot {number:03d}" for number in range(20, 0, -1)], ["Lot 000"])


def _ink_outside_the_frame(png: bytes) -> int:
    """The pixels other than paper beside the frame: at the image's edge and between its two lines."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    width, height = image.size
    strips = [(0, 0, 28, height), (40, 40, 49, height - 40)]
    strips += [(width - right, top, width - left, bottom) for left, top, right, bottom in strips]
    return sum(1 for strip in strips for pixel in image.crop(strip).get_flattened_data() if pixel != PAPER)


@pytest.mark.parametrize(
    ("beneficiary", "reason", "event_name"),
    [
        (
            "浙江省衢州市柯城区新新街道智慧社区居民委员会暨2026年第三届衢州国际马拉松组织委员会",
            "活动碳中和",
            "",
        ),
        ("衢" * 200, "碳中和" * 166, "马拉松" * 66),
        (("Quzhou International Marathon Organizing Committee " * 4)[:200], "offset " * 71, "race " * 40),
    ],
)
def test_the_certificate_keeps_long_names_inside_its_frame(beneficiary, reason, event_name):
    lot = ReductionLot.objects.create(
        title="衢州公交通勤社区减排量" * 10,
        period_start=days_ago(40),
        period_end=days_ago(10),
        allocated_at=timezone.now(),
        status="registered",
        tonnes=5,
        volume_mg=5 * MG_PER_TONNE,
        serial_prefix="QZ-2026-11",
        serial_start=1,
        retired_tonnes=1,
    )
    retirement = LotRetirement.objects.create(
        lot=lot,
        tonnes=1,
        serial_offset=0,
        beneficiary=beneficiary,
        reason=reason,
        event_name=event_name,
        retired_at=timezone.now(),
        request_key=uuid.uuid4(),
    )

    png = Client().get(reverse("registry:retirement-certificate", args=[retirement.public_id]))

    assert png.status_code == 200
    assert _ink_outside_the_frame(png.content) == 0
