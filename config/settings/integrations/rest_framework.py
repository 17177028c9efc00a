"""Django REST framework and drf-spectacular: one API contract under /api/v1/."""

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.SessionTokenAuthentication",
    ],
    # Writes wait until the agreements in force are accepted (reads never do): accounts/permissions.py.
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "accounts.permissions.HasAcceptedCurrentAgreements",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "config.api.pagination.CursorPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "config.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "anon": "120/min",
        "user": "600/min",
        # Verifying a statement is open to anyone (activities/statements/apis.py): per address.
        "statement_verify": "30/min",
        # Bringing a peer's statement may fetch the peer's keys: per person.
        "statement_import": "30/hour",
    },
    "DEFAULT_THROTTLE_CLASSES": [
        "config.api.throttles.AnonRateThrottle",
        "config.api.throttles.UserRateThrottle",
    ],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Personal Carbon Account API",
    "DESCRIPTION": (
        "The API behind the carbon account mobile app: sign-in, activity capture, "
        "the carbon-coin wallet, rewards and reports. Every error uses one envelope: "
        '`{"error": {"code", "message", "fields"}}`; see docs/api-errors.md.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "AgreementKindEnum": "accounts.models.AgreementKind",
        "DataSourceEnum": "accounts.models.DataSource",
        "LedgerTransactionKindEnum": "rewards.models.LedgerTransactionKind",
        "ActivityRecordStatusEnum": "activities.models.RecordStatus",
        "CaptureOutcomeEnum": "activities.apis.OUTCOME_STATUSES",
        "OfferStatusEnum": "merchants.models.Offer.Status",
        "CouponStatusEnum": "merchants.models.Coupon.Status",
        "StaffRoleEnum": "merchants.models.MerchantStaff.Role",
        "MerchantCategoryEnum": "merchants.models.MerchantCategory",
    },
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "SessionToken": {"type": "apiKey", "in": "header", "name": "X-Session-Token"},
        }
    },
    "SECURITY": [{"SessionToken": []}],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.api.schema.add_error_responses",
        "config.api.schema.add_links",
    ],
}
