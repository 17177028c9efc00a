"""Error codes of the accounts app (see config/api/errors.py)."""
