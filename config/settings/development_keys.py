"""Keys for development and tests only. They are public (they are in the repository):
production refuses to start with any of them (config/settings/production.py)."""

PARTNER_SECRET_KEYS = ["dev-1:AKA2ZQ36x9pPcWmQYOOxGjBntkZohu70CKKZA_YqZ4k"]
PERSONAL_DATA_KEYS = ["dev-1:LpwD7SWfCZ-32eOdqm2I9LovjQpi8gCY3HOFj5HJyZE"]
BLIND_INDEX_KEYS = ["dev-1:zkBrtusNt9L8E0P5L7IOmn0yXGm_0qHWKHeWYgsqBmY"]
PLATFORM_SM2_SIGNING_KEYS = ["dev-1:d2d6f5889b7f2d5024bd6ab2a0326807a64f0f2b2104b382435debacc67c02e5"]
PLATFORM_ED25519_SIGNING_KEYS = ["dev-1:LgGOBU1j9J_2grAox2e2otxAqByOoWZDRt5-g4h9T0U"]
STATEMENT_SUBJECT_KEYS = ["dev-1:tpSE6ciodIRO0n7gwJReTnBfWQ9Nqi6zdeMGn_mu3mE"]
COUPON_TOKEN_KEYS = ["dev-1:NAlKUGphrrwul9QQ5K-zla6xKnk37x9bVZEPjbNYMvI"]

KEY_SETTINGS = (
    "PARTNER_SECRET_KEYS",
    "PERSONAL_DATA_KEYS",
    "BLIND_INDEX_KEYS",
    "PLATFORM_SM2_SIGNING_KEYS",
    "PLATFORM_ED25519_SIGNING_KEYS",
    "STATEMENT_SUBJECT_KEYS",
    "COUPON_TOKEN_KEYS",
)
__all__ = list(KEY_SETTINGS)
