"""Demo merchants for `make run`: live offers with pictures, an owner and a clerk, a redeemed coupon.

Idempotent: every object is looked up by a natural key before it is created, and the demo
citizen's coins and coupon use fixed idempotency keys.
"""

from __future__ import annotations

import io
from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image, ImageDraw

from accounts.demo import DEMO_PASSWORD
from accounts.models import District, User
from accounts.services import agreements_accept_current
from merchants import services
from merchants.models import Merchant, MerchantCategory, MerchantStaff, Offer
from rewards.models import LedgerTransactionKind
from rewards.services import coins_issue, wallet_account_for_user

MERCHANTS = [
    {
        "licence_number": "91330802MA2DEMO01X",
        "name": "绿叶咖啡",
        "category": MerchantCategory.FOOD_AND_DRINK,
        "district": "kecheng",
        "contact_name": "周晓",
        "contact_phone": "0570-8000001",
        "owner": ("leaf.owner", "绿叶店长"),
        "clerk": ("leaf.clerk", "绿叶店员"),
        "offers": [
            ("美式咖啡一杯", "凭券到店兑换一杯中杯美式咖啡。", 60, 200, 1, (106, 153, 78)),
            ("全场饮品立减5元", "单笔消费满20元可用。", 30, 500, 3, (167, 201, 87)),
        ],
    },
    {
        "licence_number": "91330803MA2DEMO02Y",
        "name": "衢州公共自行车",
        "category": MerchantCategory.TRANSPORT,
        "district": "qujiang",
        "contact_name": "王磊",
        "contact_phone": "0570-8000002",
        "owner": ("bike.owner", "自行车运营"),
        "clerk": None,
        "offers": [
            ("公共自行车月卡", "30天内每次骑行前一小时免费。", 300, 100, 1, (56, 102, 65)),
        ],
    },
]


def _demo_picture(colour: tuple[int, int, int], title: str) -> SimpleUploadedFile:
    picture = Image.new("RGB", (800, 600), colour)
    ImageDraw.Draw(picture).rectangle((40, 40, 760, 560), outline=(255, 255, 255), width=8)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return SimpleUploadedFile(f"{title}.png", buffer.getvalue(), content_type="image/png")


def _person(username: str, nickname: str, district: District) -> User:
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User.objects.create_user(
            username=username, password=DEMO_PASSWORD, nickname=nickname, district=district
        )
        # Like every demo person, staff have accepted the agreements: their writes go through.
        agreements_accept_current(user=user)
    return user


def load_demo() -> list[str]:
    operator = User.objects.filter(username="admin").first()
    now = timezone.now()
    logins: list[str] = []
    for spec in MERCHANTS:
        district = District.objects.get(code=spec["district"])
        owner = _person(*spec["owner"], district)
        merchant = Merchant.objects.filter(licence_number=spec["licence_number"]).first()
        if merchant is None:
            merchant = services.merchant_apply(
                user=owner,
                name=spec["name"],
                category=spec["category"],
                district=district,
                licence_number=spec["licence_number"],
                contact_name=spec["contact_name"],
                contact_phone=spec["contact_phone"],
            )
            merchant = services.merchant_approve(merchant=merchant, reviewer=operator or owner)
        logins.append(f"merchant owner of {merchant.name}: {owner.username} / {DEMO_PASSWORD}")
        if spec["clerk"]:
            clerk = _person(*spec["clerk"], district)
            if not MerchantStaff.objects.filter(user=clerk).exists():
                services.staff_add(
                    merchant=merchant, user_public_id=clerk.public_id, role=MerchantStaff.Role.CLERK
                )
            logins.append(f"merchant clerk of {merchant.name}: {clerk.username} / {DEMO_PASSWORD}")
        for title, description, price, stock, limit, colour in spec["offers"]:
            if Offer.objects.filter(merchant=merchant, title=title).exists():
                continue
            offer = services.offer_create(
                merchant=merchant,
                title=title,
                description=description,
                category=spec["category"],
                price_coins=price,
                total_stock=stock,
                limit_per_person=limit,
                sale_starts_at=now - timedelta(days=1),
                sale_ends_at=now + timedelta(days=180),
                coupon_valid_days=30,
                districts=[],
            )
            services.offer_image_set(offer=offer, upload=_demo_picture(colour, offer.public_id.hex))
            services.offer_submit(offer=offer)
            services.offer_approve(offer=offer, reviewer=operator or owner, seen_at=timezone.now())

    citizen = User.objects.filter(username="lin.wei").first()
    coffee = Offer.objects.filter(title="美式咖啡一杯", status=Offer.Status.LIVE).first()
    if citizen is not None and coffee is not None:
        coins_issue(
            destination=wallet_account_for_user(user_id=citizen.pk),
            amount=500,
            kind=LedgerTransactionKind.ISSUANCE,
            idempotency_key="demo:merchants:lin.wei:coins",
            reference="demo:merchants",
            memo="Demo coins for the catalog",
        )
        # Outside this command's transaction the on-commit hooks of the redemption run at once.
        redemption = services.offer_redeem(
            user=citizen, offer_public_id=coffee.public_id, idempotency_key="demo-coupon-lin-wei-coffee"
        )
        logins.append(f"{citizen.nickname} holds coupon {redemption.coupon.display_code} for {coffee.title}")
    return logins
