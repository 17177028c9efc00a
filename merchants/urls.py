"""Merchants routes, under /api/v1/: the catalog and coupons for citizens, `merchant/…` for staff."""

from django.urls import path

from merchants import apis

urlpatterns = [
    # Citizens
    path("catalog/offers", apis.CatalogListApi.as_view(), name="catalog-offers"),
    path("catalog/offers/<uuid:offer_id>", apis.CatalogDetailApi.as_view(), name="catalog-offer"),
    path("catalog/offers/<uuid:offer_id>/redeem", apis.OfferRedeemApi.as_view(), name="catalog-offer-redeem"),
    path("coupons", apis.CouponListApi.as_view(), name="coupons"),
    path("coupons/<uuid:coupon_id>", apis.CouponDetailApi.as_view(), name="coupon"),
    path("coupons/<uuid:coupon_id>/token", apis.CouponTokenApi.as_view(), name="coupon-token"),
    path("coupons/<uuid:coupon_id>/qr.png", apis.CouponQrApi.as_view(), name="coupon-qr"),
    path("merchant-applications", apis.MerchantApplyApi.as_view(), name="merchant-applications"),
    # Merchant staff
    path("merchant", apis.MerchantMeApi.as_view(), name="merchant"),
    path("merchant/staff", apis.StaffListApi.as_view(), name="merchant-staff"),
    path("merchant/staff/<uuid:staff_id>", apis.StaffDetailApi.as_view(), name="merchant-staff-member"),
    path("merchant/offers", apis.OfferListApi.as_view(), name="merchant-offers"),
    path("merchant/offers/<uuid:offer_id>", apis.OfferDetailApi.as_view(), name="merchant-offer"),
    path("merchant/offers/<uuid:offer_id>/image", apis.OfferImageApi.as_view(), name="merchant-offer-image"),
    path(
        "merchant/offers/<uuid:offer_id>/submit", apis.OfferSubmitApi.as_view(), name="merchant-offer-submit"
    ),
    path("merchant/offers/<uuid:offer_id>/pause", apis.OfferPauseApi.as_view(), name="merchant-offer-pause"),
    path(
        "merchant/offers/<uuid:offer_id>/resume", apis.OfferResumeApi.as_view(), name="merchant-offer-resume"
    ),
    path("merchant/offers/<uuid:offer_id>/end", apis.OfferEndApi.as_view(), name="merchant-offer-end"),
    path("merchant/coupons", apis.MerchantCouponListApi.as_view(), name="merchant-coupons"),
    path("merchant/verifications", apis.VerificationApi.as_view(), name="merchant-verifications"),
    path("merchant/reports/offers", apis.OfferReportApi.as_view(), name="merchant-report-offers"),
    path("merchant/reports/offers.csv", apis.OfferReportCsvApi.as_view(), name="merchant-report-offers-csv"),
    path("merchant/statements/<str:month>", apis.MerchantStatementApi.as_view(), name="merchant-statement"),
    # Operators
    path(
        "platform/merchant-statements/<str:month>",
        apis.PlatformStatementsApi.as_view(),
        name="platform-merchant-statements",
    ),
]
