"""Carbon coins: wallets on a double-entry ledger, settlement, expiry, donations."""
