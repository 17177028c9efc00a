"""Signed carbon statements (docs/interop.md): who we are in them, how long they and nonces live.

STATEMENTS_ISSUER is this platform's identifier: the `iss` of the statements it signs and the `aud`
it accepts in statements other platforms sign for it. Production takes it from the environment,
else `https://` and the first of ALLOWED_HOSTS (config/settings/production.py).
"""

from config.settings.environment import env

STATEMENTS_ISSUER = env("STATEMENTS_ISSUER", default="http://127.0.0.1:8000")
# A statement is valid this long after it was signed; a signing key stays published at least as long
# after it stopped signing (docs/interop.md, retiring a key).
STATEMENTS_LIFETIME_SECONDS = env.int("STATEMENTS_LIFETIME_SECONDS", default=30 * 24 * 3600)
# How long a person has to bring back a peer's statement carrying the nonce we handed them.
STATEMENTS_NONCE_LIFETIME_SECONDS = env.int("STATEMENTS_NONCE_LIFETIME_SECONDS", default=3600)
# Clocks of two platforms differ: a statement issued up to this far in the future is still taken.
STATEMENTS_CLOCK_SKEW_SECONDS = env.int("STATEMENTS_CLOCK_SKEW_SECONDS", default=60)
# A peer's JWKS URL is fetched when a statement names a key we do not hold, at most this often.
STATEMENTS_PEER_KEYS_REFRESH_SECONDS = env.int("STATEMENTS_PEER_KEYS_REFRESH_SECONDS", default=60)
# Keys fetched from a peer's JWKS URL are fetched again once this old (our own JWKS says five minutes),
# so a key the peer retired stops verifying here.
STATEMENTS_PEER_KEYS_MAX_AGE_SECONDS = env.int("STATEMENTS_PEER_KEYS_MAX_AGE_SECONDS", default=300)
STATEMENTS_PEER_KEYS_TIMEOUT_SECONDS = env.float("STATEMENTS_PEER_KEYS_TIMEOUT_SECONDS", default=5.0)
