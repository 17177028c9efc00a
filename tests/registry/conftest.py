"""The registry's tests reuse the rewards tests' seeded rows (methodology, badges, thresholds)."""

from tests.rewards.conftest import seeded_rows  # noqa: F401
