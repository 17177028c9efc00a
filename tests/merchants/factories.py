"""Factories of the merchants app: approved merchants with an owner and a clerk, live offers."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone

from merchants.models import Merchant, MerchantCategory, MerchantStaff, Offer
from tests.accounts.factories import DistrictFactory, UserFactory


class MerchantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Merchant

    name = factory.Sequence(lambda number: f"小店 {number}")
    category = MerchantCategory.FOOD_AND_DRINK
    district = factory.SubFactory(DistrictFactory)
    licence_number = factory.Sequence(lambda number: f"91330800MA{number:08d}")
    contact_name = "周晓"
    contact_phone = "0570-8000001"
    status = Merchant.Status.APPROVED


class StaffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MerchantStaff

    merchant = factory.SubFactory(MerchantFactory)
    user = factory.SubFactory(UserFactory)
    role = MerchantStaff.Role.OWNER


class OfferFactory(factory.django.DjangoModelFactory):
    """A live offer on sale now, as an approved review leaves it."""

    class Meta:
        model = Offer
        skip_postgeneration_save = True

    merchant = factory.SubFactory(MerchantFactory)
    title = factory.Sequence(lambda number: f"咖啡券 {number}")
    description = "One cup."
    category = MerchantCategory.FOOD_AND_DRINK
    price_coins = 50
    total_stock = 100
    stock_left = factory.LazyAttribute(lambda offer: offer.total_stock)
    limit_per_person = 1
    sale_starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    sale_ends_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))
    coupon_valid_days = 30
    status = Offer.Status.LIVE
    is_reviewed = True
