from rewards.services import clearing_account_for_merchant, wallet_account_for_user
from tests.merchants.factories import OfferFactory


def test_redeem_then_verify(shop, citizen, citizen_client):
    offer = OfferFactory(merchant=shop.merchant, price_coins=60, total_stock=5)

    response = citizen_client.post(f"/api/v1/catalog/offers/{offer.public_id}/redeem")
    assert response.status_code == 201, response.json()
    code = response.json()["code"]
    offer.refresh_from_db()
    assert offer.stock_left == 4
    assert wallet_account_for_user(user_id=citizen.pk).balance == 940
    assert clearing_account_for_merchant(merchant_id=shop.merchant.pk).balance == 60

    verified = shop.clerk_client.post("/api/v1/merchant/verifications", {"code": code})
    assert verified.status_code == 200, verified.json()
    assert verified.json()["status"] == "verified"
