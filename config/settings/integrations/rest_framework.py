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
    "DEFAULT_RENDERER_CLASSES": ["core.api.renderers.JSONRenderer"],
    # Bodies are JSON; the routes that take a file (avatar, offer picture) take multipart instead.
    # The parsers are what the schema advertises, so a generated client sends exactly this.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.CursorPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "anon": "120/min",
        "user": "600/min",
        # Verifying a statement is open to anyone (activities/statements/apis.py): per address.
        "statement_verify": "30/min",
        # Bringing a peer's statement may fetch the peer's keys: per person.
        "statement_import": "30/hour",
    },
    # REMOTE_ADDR already holds the client's address (core.api.client_address resolved it from
    # the trusted proxies' X-Forwarded-For): DRF's get_ident must not read the header again.
    "NUM_PROXIES": 0,
    "DEFAULT_THROTTLE_CLASSES": [
        "core.api.throttles.AnonRateThrottle",
        "core.api.throttles.UserRateThrottle",
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
    # Swagger UI from drf-spectacular-sidecar's static files, not from a CDN at whatever
    # version it serves today: the docs render offline and change only when requirements.txt does.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # /api/docs/ lists both documents in Swagger UI's dropdown: ours, and allauth's sign-in API
    # (accounts/allauth_schema.py). A JavaScript object, as the standalone layout needs its preset.
    "SWAGGER_UI_SETTINGS": """{
  "deepLinking": true,
  "persistAuthorization": true,
  "urls": [
    {"url": "/api/schema/", "name": "Carbon account API (/api/v1/)"},
    {"url": "/_allauth/openapi.json", "name": "Sign-in, allauth headless (/_allauth/app/v1/)"}
  ],
  "layout": "StandaloneLayout",
  "presets": [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset]
}""",
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
        "NotificationKindEnum": "accounts.notifications.models.NotificationKind",
        "NotificationChannelEnum": "accounts.notifications.models.NotificationChannel",
        "GroupKindEnum": "rewards.groups.models.GroupKind",
        "GroupStatusEnum": "rewards.groups.models.GroupStatus",
        "GroupRoleEnum": "rewards.groups.models.GroupRole",
        "ChallengeTargetEnum": "rewards.groups.models.ChallengeTarget",
        "LeaderboardPeriodEnum": "rewards.models.LeaderboardPeriod",
    },
    # Security comes from the authentication classes (accounts.authentication.SessionTokenScheme):
    # a global SECURITY would be appended to each operation's once more.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.add_error_responses",
        "core.api.schema.add_links",
    ],
}
