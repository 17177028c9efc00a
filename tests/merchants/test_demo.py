import pytest
from django.core.management import call_command

from merchants.models import Coupon, Merchant, MerchantStaff, Offer

pytestmark = pytest.mark.django_db


def test_the_demo_loads_twice_without_duplicates(capsys):
    call_command("load_demo")
    call_command("load_demo")

    output = capsys.readouterr().out
    assert "leaf.owner" in output
    assert "leaf.clerk" in output
    assert Merchant.objects.filter(status="approved").count() == 2
    assert Offer.objects.filter(status="live").count() == 3
    assert all(offer.thumbnail for offer in Offer.objects.all())
    assert MerchantStaff.objects.filter(role="clerk").count() == 1
    assert Coupon.objects.filter(user__username="lin.wei").count() == 1
