"""The merchants API: the catalog and coupons for citizens, the merchant API for staff.

Thin views: validate, call one service or selector, serialize. Merchant routes resolve the
caller's merchant from their staff membership and look objects up inside that merchant only,
so another merchant's offer or coupon is simply not found.
"""

from merchants.apis.citizens import (
    CatalogDetailApi,
    CatalogListApi,
    CouponDetailApi,
    CouponListApi,
    CouponQrApi,
    CouponTokenApi,
    MerchantApplyApi,
    OfferRedeemApi,
)
from merchants.apis.platform import PlatformStatementsApi
from merchants.apis.serializers import REPORT_COLUMNS, STATEMENT_COLUMNS
from merchants.apis.staff import (
    MerchantCouponListApi,
    MerchantMeApi,
    MerchantStatementApi,
    OfferDetailApi,
    OfferEndApi,
    OfferImageApi,
    OfferListApi,
    OfferPauseApi,
    OfferReportApi,
    OfferReportCsvApi,
    OfferResumeApi,
    OfferSubmitApi,
    StaffDetailApi,
    StaffListApi,
    VerificationApi,
)

__all__ = [
    "REPORT_COLUMNS",
    "STATEMENT_COLUMNS",
    "CatalogDetailApi",
    "CatalogListApi",
    "CouponDetailApi",
    "CouponListApi",
    "CouponQrApi",
    "CouponTokenApi",
    "MerchantApplyApi",
    "MerchantCouponListApi",
    "MerchantMeApi",
    "MerchantStatementApi",
    "OfferDetailApi",
    "OfferEndApi",
    "OfferImageApi",
    "OfferListApi",
    "OfferPauseApi",
    "OfferRedeemApi",
    "OfferReportApi",
    "OfferReportCsvApi",
    "OfferResumeApi",
    "OfferSubmitApi",
    "PlatformStatementsApi",
    "StaffDetailApi",
    "StaffListApi",
    "VerificationApi",
]
