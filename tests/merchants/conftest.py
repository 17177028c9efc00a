"""Fixtures of the merchants tests: a merchant with an owner and a clerk, a funded citizen."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from merchants.models import Merchant, MerchantStaff
from tests.accounts.factories import UserFactory
from tests.merchants.factories import MerchantFactory, StaffFactory
from tests.rewards.factories import fund_wallet


@dataclass
class Shop:
    merchant: Merchant
    owner: User
    clerk: User
    owner_client: APIClient
    clerk_client: APIClient


def make_shop(client_for) -> Shop:
    merchant = MerchantFactory()
    owner = StaffFactory(merchant=merchant, role=MerchantStaff.Role.OWNER).user
    clerk = StaffFactory(merchant=merchant, role=MerchantStaff.Role.CLERK).user
    return Shop(merchant, owner, clerk, client_for(owner), client_for(clerk))


@pytest.fixture
def shop(db, client_for) -> Shop:
    return make_shop(client_for)


@pytest.fixture
def other_shop(db, client_for) -> Shop:
    return make_shop(client_for)


@pytest.fixture
def citizen(db) -> User:
    user = UserFactory()
    fund_wallet(user, 1000)
    return user


@pytest.fixture
def citizen_client(citizen, client_for) -> APIClient:
    return client_for(citizen)
